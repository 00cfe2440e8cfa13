/**
 * Every Envoy config the repository ships or its tests use is accepted by the pinned Envoy
 * (`envoy --mode validate`) and keeps countersign's rules. Envoy is the authority on what Envoy
 * accepts; the rules (checkSemantics.ts) guard what Envoy cannot know, and each rule is shown here
 * on a config that Envoy accepts.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { load as loadYaml } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkSemantics } from "./checkSemantics.js";
import { isPlainObject } from "./configProblem.js";
import { adminAddressOf, EXPOSED_ADMIN_PATHS, exposureProblems, isLoopbackAddress, leadsBeyondAdminReads } from "./listenerExposure.js";
import { warningsIn } from "../support/envoy.js";
import { createEnvoyTestFiles, type EnvoyTestFiles, envoyValidate, withTestFiles } from "./envoyValidate.js";
import { type ConfigProblem, ENVOY_VERDICT_PATH, envoyProblems, formatProblems, loadEnvoyYaml, validateBootstrapFile } from "./validateBootstrap.js";

const ENVOY_DIR = fileURLToPath(new URL("../../envoy/", import.meta.url));
const ENVOY_YAML = join(ENVOY_DIR, "envoy.yaml");
/** Every Envoy bootstrap the repository ships: envoy/envoy*.yaml (the sidecar's, the shared service's, …). */
const SHIPPED_BOOTSTRAPS = readdirSync(ENVOY_DIR)
  .filter((f) => /^envoy.*\.ya?ml$/.test(f))
  .sort();
const EMULATOR_FIXTURE = fileURLToPath(new URL("../emulator/fixtures/agreed-shape.envoy.yaml", import.meta.url));
const SHIPPED_TEXT = readFileSync(ENVOY_YAML, "utf8");
const SHIPPED = loadEnvoyYaml(ENVOY_YAML);

let files: EnvoyTestFiles;
beforeAll(async () => {
  files = await createEnvoyTestFiles();
});
afterAll(() => files.remove());

type Obj = Record<string, unknown>;

/** A deep copy without the YAML aliases' sharing, so a mutation touches one place only. */
function copyOfShipped(): Obj {
  return JSON.parse(JSON.stringify(SHIPPED)) as Obj;
}

function obj(value: unknown, what: string): Obj {
  if (!isPlainObject(value)) throw new Error(`test setup: ${what} is not a mapping`);
  return value;
}

function list(value: unknown, what: string): unknown[] {
  if (!Array.isArray(value)) throw new Error(`test setup: ${what} is not a list`);
  return value;
}

function listenerIndex(doc: Obj, name: string): number {
  const listeners = list(obj(doc["static_resources"], "static_resources")["listeners"], "listeners");
  const index = listeners.findIndex((l) => isPlainObject(l) && l["name"] === name);
  if (index < 0) throw new Error(`test setup: no listener ${name}`);
  return index;
}

function listener(doc: Obj, name: string): Obj {
  const listeners = list(obj(doc["static_resources"], "static_resources")["listeners"], "listeners");
  return obj(listeners[listenerIndex(doc, name)], name);
}

function hcmOf(doc: Obj, name: string): Obj {
  const chain = obj(list(listener(doc, name)["filter_chains"], "filter_chains")[0], "filter chain");
  return obj(obj(list(chain["filters"], "filters")[0], "filter")["typed_config"], "HCM");
}

function hcmPath(doc: Obj, name: string): string {
  return `static_resources.listeners[${listenerIndex(doc, name)}].filter_chains[0].filters[0].typed_config`;
}

function extProcFilterOf(doc: Obj, name: string): Obj {
  return obj(list(hcmOf(doc, name)["http_filters"], "http_filters")[0], "ext_proc filter");
}

function extProcOf(doc: Obj, name: string): Obj {
  return obj(extProcFilterOf(doc, name)["typed_config"], "ext_proc");
}

function firstRouteOf(doc: Obj, name: string): Obj {
  const vhosts = list(obj(hcmOf(doc, name)["route_config"], "route_config")["virtual_hosts"], "virtual_hosts");
  return obj(list(obj(vhosts[0], "vhost")["routes"], "routes")[0], "route");
}

function clusterIndex(doc: Obj, name: string): number {
  const clusters = list(obj(doc["static_resources"], "static_resources")["clusters"], "clusters");
  const index = clusters.findIndex((c) => isPlainObject(c) && c["name"] === name);
  if (index < 0) throw new Error(`test setup: no cluster ${name}`);
  return index;
}

function clusterNamed(doc: Obj, name: string): Obj {
  const clusters = list(obj(doc["static_resources"], "static_resources")["clusters"], "clusters");
  return obj(clusters[clusterIndex(doc, name)], name);
}

/** The shipped file with `edit` applied to a copy, as the text Envoy is given. */
function edited(edit: (doc: Obj) => void): { doc: Obj; text: string } {
  const doc = copyOfShipped();
  edit(doc);
  return { doc, text: JSON.stringify(doc) };
}

/** Errors at exactly these paths, each message containing its text. */
function errorsAt(...expected: [path: string, text: string][]): ConfigProblem[] {
  return expected.map(([path, text]) => ({ path, message: expect.stringContaining(text) as unknown as string, severity: "error" }));
}

describe("envoy/envoy.yaml", () => {
  it("is accepted by the pinned Envoy without a warning, and keeps countersign's rules", () => {
    const problems = validateBootstrapFile(ENVOY_YAML, files);
    expect(problems, formatProblems(problems)).toEqual([]);
  });

  it("has the five listeners, the admin on loopback and the internal listener extension", () => {
    const doc = copyOfShipped();
    const names = list(obj(doc["static_resources"], "sr")["listeners"], "listeners").map((l) => obj(l, "l")["name"]);
    expect(names).toEqual(["connect_in", "endpoint_in", "tls_decap", "plain_sign", "envoy_stats"]);
    expect(obj(obj(doc["admin"], "admin")["address"], "address")).toEqual({
      socket_address: { address: "127.0.0.1", port_value: 9901 },
    });
  });

  it("signs with ext_proc fail-closed, headers only, mode override allowed and a 2 s message timeout", () => {
    const doc = copyOfShipped();
    for (const name of ["tls_decap", "plain_sign"]) {
      const extProc = extProcOf(doc, name);
      expect(extProc).toMatchObject({
        grpc_service: { envoy_grpc: { cluster_name: "countersign" } },
        failure_mode_allow: false,
        allow_mode_override: true,
        message_timeout: "2s",
        processing_mode: {
          request_header_mode: "SEND",
          response_header_mode: "SKIP",
          request_body_mode: "NONE",
          response_body_mode: "NONE",
          request_trailer_mode: "SKIP",
          response_trailer_mode: "SKIP",
        },
      });
      expect(extProc).not.toHaveProperty("mutation_rules");
      expect(listener(doc, name)["per_connection_buffer_limit_bytes"]).toBe(1_048_576);
    }
  });

  it("rewrites the host in endpoint mode before the signing listener, never inside it", () => {
    const doc = copyOfShipped();
    expect(obj(firstRouteOf(doc, "endpoint_in")["route"], "route")).toMatchObject({
      cluster: "plain_sign",
      host_rewrite_literal: "s3.us-east-1.amazonaws.com",
    });
    expect(hcmOf(doc, "endpoint_in")["http_filters"]).toHaveLength(1);
    for (const name of ["tls_decap", "plain_sign"]) {
      expect(Object.keys(obj(firstRouteOf(doc, name)["route"], "route")).sort()).toEqual(["cluster", "timeout"]);
    }
  });
});

describe("what the shipped bootstraps expose beyond loopback (envoy/envoy*.yaml)", () => {
  it("finds the shipped bootstraps", () => {
    expect(SHIPPED_BOOTSTRAPS).toContain("envoy.yaml");
  });

  it.each(SHIPPED_BOOTSTRAPS)("%s: every listener that leads to countersign or AWS binds loopback; beyond it only GET /ready and GET /stats/prometheus", (file) => {
    const doc = obj(loadEnvoyYaml(join(ENVOY_DIR, file)), file);
    expect(exposureProblems(doc), formatProblems(exposureProblems(doc))).toEqual([]);
    const admin = adminAddressOf(doc);
    const clusters = new Map(list(obj(doc["static_resources"], "sr")["clusters"], "clusters").map((c) => [String(obj(c, "cluster")["name"]), obj(c, "cluster")]));
    for (const l of list(obj(doc["static_resources"], "sr")["listeners"], "listeners").map((x) => obj(x, "listener"))) {
      if (!isPlainObject(l["address"])) continue; // internal listeners: no socket
      const address = String(obj(l["address"]["socket_address"], "socket_address")["address"]);
      const why = leadsBeyondAdminReads(l, clusters, admin);
      // A listener leading anywhere but the admin API's two read-only paths is a signing listener: loopback only.
      if (why !== undefined) expect(isLoopbackAddress(address), `${String(l["name"])} (${why}) binds ${address}`).toBe(true);
    }
  });

  it("envoy.yaml: connect_in and endpoint_in bind 127.0.0.1; envoy_stats binds 0.0.0.0:9902 and forwards GET /ready and GET /stats/prometheus to the admin API, 404 for the rest", () => {
    const doc = copyOfShipped();
    for (const name of ["connect_in", "endpoint_in"]) expect(obj(listener(doc, name)["address"], "address")).toMatchObject({ socket_address: { address: "127.0.0.1" } });
    expect(listener(doc, "envoy_stats")["address"]).toEqual({ socket_address: { address: "0.0.0.0", port_value: 9902 } });
    const vhosts = list(obj(hcmOf(doc, "envoy_stats")["route_config"], "rc")["virtual_hosts"], "vhosts");
    expect(vhosts).toHaveLength(1);
    expect(obj(vhosts[0], "vhost")["routes"]).toEqual([
      ...EXPOSED_ADMIN_PATHS.map((path) => ({ match: { path, headers: [{ name: ":method", string_match: { exact: "GET" } }] }, route: { cluster: "envoy_admin" } })),
      { match: { prefix: "/" }, direct_response: { status: 404 } },
    ]);
    expect(clusterNamed(doc, "envoy_admin")).toMatchObject({
      type: "STATIC",
      load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: 9901 } } } }] }] },
    });
  });
});

describe("the Envoy emulator's fixture (test/emulator/fixtures/agreed-shape.envoy.yaml)", () => {
  it("is accepted by the pinned Envoy without a warning, and keeps countersign's rules", () => {
    const problems = validateBootstrapFile(EMULATOR_FIXTURE, files);
    expect(problems, formatProblems(problems)).toEqual([]);
  });
});

describe("envoy --mode validate rejects a malformed config and says where", () => {
  const at = (doc: Obj, name: string): string => `static_resources.listeners[${listenerIndex(doc, name)}]`;
  it.each<[string, (doc: Obj) => void, (doc: Obj) => string]>([
    [
      "an unknown field",
      (d) => void (extProcOf(d, "tls_decap")["failure_mode_alow"] = false),
      (d) => `${at(d, "tls_decap")}.filter_chains[0].filters[0].typed_config.<any>.http_filters[0].typed_config.<any>:  message envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor`,
    ],
    ["a scalar of the wrong type", (d) => void (hcmOf(d, "tls_decap")["stat_prefix"] = 42), (d) => `${at(d, "tls_decap")}.filter_chains[0].filters[0].typed_config.<any>.stat_prefix`],
    ["a bool that is no boolean word", (d) => void (extProcOf(d, "tls_decap")["failure_mode_allow"] = "maybe"), () => "failure_mode_allow: bool"],
    ["an integer out of range", (d) => void (listener(d, "tls_decap")["per_connection_buffer_limit_bytes"] = 2 ** 32), (d) => `${at(d, "tls_decap")}.per_connection_buffer_limit_bytes`],
    ["an enum name that does not exist", (d) => void (obj(extProcOf(d, "tls_decap")["processing_mode"], "mode")["request_body_mode"] = "BUFERED"), () => "unknown enum value: 'BUFERED'"],
    [
      "an unknown @type",
      (d) => void (extProcOf(d, "tls_decap")["@type"] = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcesor"),
      () => "could not find @type 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcesor'",
    ],
    ["a duration that is not a Duration string", (d) => void (extProcOf(d, "tls_decap")["message_timeout"] = "1m"), () => "message_timeout"],
    ["a negative duration", (d) => void (extProcOf(d, "tls_decap")["message_timeout"] = "-1s"), () => "Expected positive duration"],
    // Envoy names whichever of the two it parsed second (its JSON map order varies), so only the reason is fixed.
    ["two members of one oneof", (d) => void (obj(firstRouteOf(d, "endpoint_in")["match"], "match")["path"] = "/exact"), () => "has already been set (either directly or as part of a oneof)"],
    ["a missing field that protoc-gen-validate requires", (d) => void delete hcmOf(d, "endpoint_in")["stat_prefix"], () => "StatPrefix: value length must be at least 1"],
    ["a route to an undefined cluster", (d) => void (obj(firstRouteOf(d, "connect_in")["route"], "route")["cluster"] = "tls_decapp"), () => "route: unknown cluster 'tls_decapp'"],
    [
      "a router that is not the last filter",
      (d) => {
        const filters = list(hcmOf(d, "tls_decap")["http_filters"], "filters");
        filters.push(filters.shift());
      },
      () => "must be the last filter in a http filter chain",
    ],
    [
      "a dynamic forward proxy filter and cluster whose DNS caches differ",
      (d) => void (obj(obj(clusterNamed(d, "aws_upstream")["cluster_type"], "ct")["typed_config"], "cfg")["dns_cache_config"] = { name: "aws_dns_cache", dns_lookup_family: "ALL" }),
      () => "config specified DNS cache 'aws_dns_cache' with different settings",
    ],
    ["internal listeners without their bootstrap extension", (d) => void delete d["bootstrap_extensions"], () => "InternalListener bootstrap extension is mandatory"],
    [
      "an SDS secret file that does not exist",
      (d) => {
        const text = JSON.stringify(listener(d, "tls_decap")).replace("/etc/envoy/tls-certificate.sds.yaml", "/etc/envoy/missing.sds.yaml");
        Object.assign(listener(d, "tls_decap"), JSON.parse(text));
      },
      () => "missing.sds.yaml",
    ],
  ])("%s", (_name, edit, where) => {
    const { doc, text } = edited(edit);
    const verdict = envoyValidate(text, files);
    expect(verdict.accepted, verdict.output).toBe(false);
    expect(verdict.output.replace(/\s+/g, " ")).toContain(where(doc).replace(/\s+/g, " "));
    expect(envoyProblems(verdict)).toEqual([{ path: ENVOY_VERDICT_PATH, message: verdict.output, severity: "error" }]);
  });

  it("a deprecated field is accepted with Envoy's warning, which fails the shipped-file check", () => {
    const { text } = edited((d) => void (listener(d, "connect_in")["reuse_port"] = true));
    const verdict = envoyValidate(text, files);
    expect(verdict.accepted).toBe(true);
    expect(verdict.warnings).toEqual([expect.stringContaining("Using deprecated option 'envoy.config.listener.v3.Listener.reuse_port'")]);
    expect(envoyProblems(verdict)).toEqual([{ path: ENVOY_VERDICT_PATH, message: verdict.warnings[0], severity: "warning" }]);
  });
});

describe("countersign's rules refuse what Envoy accepts", () => {
  const signingHcm = (d: Obj): string => hcmPath(d, "tls_decap");
  const extProcPath = (d: Obj, name = "tls_decap"): string => `${hcmPath(d, name)}.http_filters[0].typed_config`;

  it.each<[string, (doc: Obj) => void, (doc: Obj) => [string, string][]]>([
    ["failure_mode_allow: true", (d) => void (extProcOf(d, "tls_decap")["failure_mode_allow"] = true), (d) => [[`${extProcPath(d)}.failure_mode_allow`, "ext_proc: failure_mode_allow must not be true"]]],
    [
      "failure_mode_allow as the string yes, which Envoy reads as true",
      (d) => void (extProcOf(d, "tls_decap")["failure_mode_allow"] = "yes"),
      (d) => [[`${extProcPath(d)}.failure_mode_allow`, 'failure_mode_allow must be false or absent, got the string "yes", which Envoy may read as true']],
    ],
    ["allow_mode_override: false", (d) => void (extProcOf(d, "plain_sign")["allow_mode_override"] = false), (d) => [[`${extProcPath(d, "plain_sign")}.allow_mode_override`, "ext_proc: allow_mode_override must be true"]]],
    ["observability_mode: true", (d) => void (extProcOf(d, "tls_decap")["observability_mode"] = true), (d) => [[`${extProcPath(d)}.observability_mode`, "observability_mode must not be true"]]],
    ["the ext_proc filter disabled", (d) => void (extProcFilterOf(d, "tls_decap")["disabled"] = true), (d) => [[`${signingHcm(d)}.http_filters[0].disabled`, "ext_proc must not be disabled"]]],
    [
      "per-route ext_proc settings",
      (d) => {
        firstRouteOf(d, "tls_decap")["typed_per_filter_config"] = {
          "envoy.filters.http.ext_proc": { "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute", disabled: true },
        };
      },
      (d) => [[`${signingHcm(d)}.route_config.virtual_hosts[0].routes[0].typed_per_filter_config["envoy.filters.http.ext_proc"]`, "per-route filter settings"]],
    ],
    [
      "request body mode BUFFERED by default",
      (d) => void (obj(extProcOf(d, "tls_decap")["processing_mode"], "mode")["request_body_mode"] = "BUFFERED"),
      (d) => [[`${extProcPath(d)}.processing_mode.request_body_mode`, "request_body_mode must be NONE (bodies are sent only when countersign asks; BUFFERED by default would send every body), got BUFFERED"]],
    ],
    [
      "response headers sent to countersign",
      (d) => void (obj(extProcOf(d, "tls_decap")["processing_mode"], "mode")["response_header_mode"] = "SEND"),
      (d) => [[`${extProcPath(d)}.processing_mode.response_header_mode`, "response_header_mode must be SKIP"]],
    ],
    ["no message_timeout", (d) => void delete extProcOf(d, "tls_decap")["message_timeout"], (d) => [[extProcPath(d), "message_timeout must be set"]]],
    [
      "a grpc_service naming an undefined cluster",
      (d) => void (obj(obj(extProcOf(d, "tls_decap")["grpc_service"], "grpc")["envoy_grpc"], "envoy_grpc")["cluster_name"] = "countersing"),
      (d) => [[`${extProcPath(d)}.grpc_service.envoy_grpc.cluster_name`, 'grpc_service names cluster "countersing", which is not defined']],
    ],
    [
      "an ext_proc cluster without HTTP/2",
      (d) => void delete clusterNamed(d, "countersign")["typed_extension_protocol_options"],
      (d) => [[`static_resources.clusters[${clusterIndex(d, "countersign")}]`, 'cluster "countersign" serves ext_proc (gRPC) and must use HTTP/2']],
    ],
    [
      "an internal address that names a listener which is not internal",
      (d) => {
        const text = JSON.stringify(clusterNamed(d, "plain_sign")).replace('"server_listener_name":"plain_sign"', '"server_listener_name":"endpoint_in"');
        Object.assign(clusterNamed(d, "plain_sign"), JSON.parse(text));
      },
      (d) => [
        [
          `static_resources.clusters[${clusterIndex(d, "plain_sign")}].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.envoy_internal_address.server_listener_name`,
          '"endpoint_in" is not an internal listener',
        ],
      ],
    ],
    [
      "two listeners of one name",
      (d) => {
        const copy = JSON.parse(JSON.stringify(listener(d, "connect_in"))) as Obj;
        obj(obj(copy["address"], "address")["socket_address"], "socket")["port_value"] = 15009;
        list(obj(d["static_resources"], "sr")["listeners"], "listeners").push(copy);
      },
      (d) => [[`static_resources.listeners[${list(obj(d["static_resources"], "sr")["listeners"], "l").length - 1}].name`, 'listener "connect_in" is defined twice']],
    ],
    [
      "a host rewrite after ext_proc",
      (d) => void (obj(firstRouteOf(d, "tls_decap")["route"], "route")["host_rewrite_literal"] = "s3.eu-west-1.amazonaws.com"),
      (d) => [[`${signingHcm(d)}.route_config.virtual_hosts[0].routes[0].route.host_rewrite_literal`, 'listener "tls_decap": host_rewrite_literal changes the request after ext_proc signed it']],
    ],
    [
      "a path rewrite after ext_proc",
      (d) => void (obj(firstRouteOf(d, "plain_sign")["route"], "route")["prefix_rewrite"] = "/v2/"),
      (d) => [[`${hcmPath(d, "plain_sign")}.route_config.virtual_hosts[0].routes[0].route.prefix_rewrite`, 'listener "plain_sign": prefix_rewrite changes the request after ext_proc signed it']],
    ],
    [
      "auto_host_rewrite: true after ext_proc",
      (d) => void (obj(firstRouteOf(d, "tls_decap")["route"], "route")["auto_host_rewrite"] = true),
      (d) => [[`${signingHcm(d)}.route_config.virtual_hosts[0].routes[0].route.auto_host_rewrite`, "auto_host_rewrite changes the request after ext_proc signed it"]],
    ],
    [
      "a signed header removed after ext_proc",
      (d) => void (obj(hcmOf(d, "tls_decap")["route_config"], "rc")["request_headers_to_remove"] = ["x-amz-date"]),
      (d) => [[`${signingHcm(d)}.route_config.request_headers_to_remove[0]`, 'removing "x-amz-date" after ext_proc changes a signed header']],
    ],
    [
      "a filter between ext_proc and the router",
      (d) => {
        list(hcmOf(d, "tls_decap")["http_filters"], "filters").splice(1, 0, {
          name: "envoy.filters.http.header_mutation",
          typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation" },
        });
      },
      (d) => [[`${signingHcm(d)}.http_filters[1]`, 'filter "envoy.filters.http.header_mutation" runs after ext_proc and may change the signed request']],
    ],
    [
      "a buffer limit that differs from countersign's 1 MiB",
      (d) => void (listener(d, "plain_sign")["per_connection_buffer_limit_bytes"] = 2_097_152),
      (d) => [[`static_resources.listeners[${listenerIndex(d, "plain_sign")}].per_connection_buffer_limit_bytes`, "the request body buffer limit must be 1048576 (countersign's limits.max_buffered_body_bytes), got 2097152"]],
    ],
    [
      "a camelCase field name (Envoy accepts the JSON name)",
      (d) => {
        const extProc = extProcOf(d, "tls_decap");
        delete extProc["failure_mode_allow"];
        extProc["failureModeAllow"] = true;
      },
      (d) => [[`${extProcPath(d)}.failureModeAllow`, '"failureModeAllow" is a JSON field name: Envoy accepts it, but countersign\'s rules read proto field names; write "failure_mode_allow"']],
    ],
    [
      "the CONNECT listener bound to 0.0.0.0 (an open signing proxy)",
      (d) => void (obj(obj(listener(d, "connect_in")["address"], "a")["socket_address"], "sa")["address"] = "0.0.0.0"),
      (d) => [[`static_resources.listeners[${listenerIndex(d, "connect_in")}].address.socket_address.address`, 'listener "connect_in" binds 0.0.0.0:15001, beyond loopback, and accepts upgrades (CONNECT, websocket)']],
    ],
    [
      "the endpoint listener with an additional address beyond loopback",
      (d) => void (listener(d, "endpoint_in")["additional_addresses"] = [{ address: { socket_address: { address: "0.0.0.0", port_value: 15012 } } }]),
      (d) => [[`static_resources.listeners[${listenerIndex(d, "endpoint_in")}].additional_addresses[0].address.socket_address.address`, 'listener "endpoint_in" binds 0.0.0.0:15012, beyond loopback, and has a route with host_rewrite_literal']],
    ],
    [
      "the stats listener forwarding every path to the admin API",
      (d) => void (obj(firstRouteOf(d, "envoy_stats")["match"], "match")["path"] = "/config_dump"),
      (d) => [[`static_resources.listeners[${listenerIndex(d, "envoy_stats")}].address.socket_address.address`, "forwards /config_dump; only /ready and /stats/prometheus may leave loopback"]],
    ],
    [
      "the stats listener forwarding /ready for any method",
      (d) => void delete obj(firstRouteOf(d, "envoy_stats")["match"], "match")["headers"],
      (d) => [[`static_resources.listeners[${listenerIndex(d, "envoy_stats")}].address.socket_address.address`, "forwards /ready for any method; match :method exactly GET"]],
    ],
    [
      "the stats listener routing /ready to a signing listener",
      (d) => void (obj(firstRouteOf(d, "envoy_stats")["route"], "route")["cluster"] = "plain_sign"),
      (d) => [[`static_resources.listeners[${listenerIndex(d, "envoy_stats")}].address.socket_address.address`, 'routes to cluster "plain_sign", whose endpoints are not only the admin API (127.0.0.1:9901)']],
    ],
    [
      "the stats listener's admin cluster pointed at countersign",
      (d) => {
        const text = JSON.stringify(clusterNamed(d, "envoy_admin")).replace('"port_value":9901', '"port_value":50051');
        Object.assign(clusterNamed(d, "envoy_admin"), JSON.parse(text));
      },
      (d) => [[`static_resources.listeners[${listenerIndex(d, "envoy_stats")}].address.socket_address.address`, 'routes to cluster "envoy_admin", whose endpoints are not only the admin API (127.0.0.1:9901)']],
    ],
    [
      "the admin API bound to 0.0.0.0",
      (d) => void (obj(obj(obj(d["admin"], "admin")["address"], "a")["socket_address"], "sa")["address"] = "0.0.0.0"),
      () => [
        ["admin.address.socket_address.address", "the admin API binds 0.0.0.0, beyond loopback"],
        // The stats listener's cluster is then no longer the admin address (127.0.0.1:9901 ≠ 0.0.0.0:9901).
        ["static_resources.listeners[4].address.socket_address.address", 'routes to cluster "envoy_admin", whose endpoints are not only the admin API (0.0.0.0:9901)'],
      ],
    ],
    [
      "a single mapping where a list belongs (Envoy reads a list of one)",
      (d) => {
        const l = listener(d, "tls_decap");
        l["filter_chains"] = list(l["filter_chains"], "chains")[0];
      },
      (d) => [[`static_resources.listeners[${listenerIndex(d, "tls_decap")}].filter_chains`, "expected a list, got a mapping: Envoy reads it as a list of one"]],
    ],
  ])("%s", (_name, edit, expected) => {
    const { doc, text } = edited(edit);
    const verdict = envoyValidate(text, files);
    expect(verdict.accepted, verdict.output).toBe(true);
    const problems = checkSemantics(doc);
    expect(problems, formatProblems(problems)).toEqual(errorsAt(...expected(doc)));
  });

  it("failure_mode_allow: on, unquoted (YAML 1.1 true to Envoy, a string to js-yaml) is refused at both signing listeners", () => {
    const text = SHIPPED_TEXT.replace(/failure_mode_allow: false/g, "failure_mode_allow: on");
    expect(text).not.toBe(SHIPPED_TEXT);
    expect(envoyValidate(text, files).accepted).toBe(true);
    const doc = obj(loadYaml(text), "doc");
    const problems = checkSemantics(doc);
    expect(problems, formatProblems(problems)).toEqual(
      errorsAt(
        ...["tls_decap", "plain_sign"].map((name): [string, string] => [`${extProcPath(doc, name)}.failure_mode_allow`, 'got the string "on", which Envoy may read as true']),
      ),
    );
  });

  it("an ext_proc @type with another type URL prefix is still recognised (Envoy reads the name after the last /)", () => {
    const { doc, text } = edited((d) => {
      const extProc = extProcOf(d, "tls_decap");
      extProc["@type"] = "example.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor";
      extProc["failure_mode_allow"] = true;
    });
    expect(envoyValidate(text, files).accepted).toBe(true);
    expect(checkSemantics(doc)).toEqual(errorsAt([`${extProcPath(doc)}.failure_mode_allow`, "failure_mode_allow must not be true"]));
  });
});

describe("envoyValidate", () => {
  it("points the shipped certificate, key and CA bundle paths at the test copies and leaves the rest alone", () => {
    const text = "a: /etc/countersign/tls/tls.crt\nb: /etc/countersign/tls/tls.key\nc: /etc/ssl/certs/ca-certificates.crt\nd: /etc/other\n";
    expect(withTestFiles(text, files)).toBe(`a: ${files.dir}/tls.crt\nb: ${files.dir}/tls.key\nc: ${files.dir}/ca.crt\nd: /etc/other\n`);
  });

  it("passes Envoy's own arguments on, with the same paths replaced (a --config-yaml fragment is merged)", () => {
    const fragment = "static_resources: { listeners: [ { name: extra, bogus_field: 1 } ] }";
    const verdict = envoyValidate(SHIPPED_TEXT, files, ["--config-yaml", fragment]);
    expect(verdict.accepted).toBe(false);
    expect(verdict.output).toContain("bogus_field");
  });

  it("reads the message of each [warning] line of Envoy's log", () => {
    const output = [
      "[2026-12-07 00:20:57.217][14857][warning][misc] [source/common/protobuf/message_validator_impl.cc:23] Deprecated field: type X",
      "[2026-12-07 00:20:57.218][14857][info][main] [source/server/server.cc:1] not a warning",
      "configuration 'x.yaml' OK",
    ].join("\n");
    expect(warningsIn(output)).toEqual(["Deprecated field: type X"]);
  });
});
