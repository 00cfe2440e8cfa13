import { describe, expect, it } from "vitest";
import { durationSeconds, scalarProblem } from "./checkAgainstProto.js";
import { isPlainObject } from "./configProblem.js";
import { messageNamesIn } from "./envoyProtos.js";
import { type ConfigProblem, formatProblems, loadEnvoyYaml, validateBootstrap } from "./validateBootstrap.js";

const ENVOY_YAML = new URL("../../envoy/envoy.yaml", import.meta.url).pathname;
const SHIPPED = loadEnvoyYaml(ENVOY_YAML);

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

function extProcOf(doc: Obj, name: string): Obj {
  return obj(obj(list(hcmOf(doc, name)["http_filters"], "http_filters")[0], "ext_proc filter")["typed_config"], "ext_proc");
}

function firstRouteOf(doc: Obj, name: string): Obj {
  const vhosts = list(obj(hcmOf(doc, name)["route_config"], "route_config")["virtual_hosts"], "virtual_hosts");
  return obj(list(obj(vhosts[0], "vhost")["routes"], "routes")[0], "route");
}

function clusterNamed(doc: Obj, name: string): Obj {
  const clusters = list(obj(doc["static_resources"], "static_resources")["clusters"], "clusters");
  return obj(clusters.find((c) => isPlainObject(c) && c["name"] === name), name);
}

function errorsOf(doc: unknown): ConfigProblem[] {
  return validateBootstrap(doc).filter((p) => p.severity === "error");
}

/** Exactly one problem, at `path`, whose message contains `text`. */
function expectOnly(problems: ConfigProblem[], path: string, text: string): void {
  expect(problems, formatProblems(problems)).toEqual([
    { path, message: expect.stringContaining(text) as unknown as string, severity: "error" },
  ]);
}

describe("envoy/envoy.yaml", () => {
  it("passes the strict proto check and countersign's rules with no errors or warnings", () => {
    const problems = validateBootstrap(SHIPPED);
    expect(problems, formatProblems(problems)).toEqual([]);
  });

  it("has the four listeners, the admin on loopback and the internal listener extension", () => {
    const doc = copyOfShipped();
    const names = list(obj(doc["static_resources"], "sr")["listeners"], "listeners").map((l) => obj(l, "l")["name"]);
    expect(names).toEqual(["connect_in", "endpoint_in", "tls_decap", "plain_sign"]);
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

describe("validateBootstrap reports each broken rule at its YAML path", () => {
  it("an unknown field, with a suggestion", () => {
    const doc = copyOfShipped();
    extProcOf(doc, "tls_decap")["failure_mode_alow"] = false;
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "tls_decap")}.http_filters[0].typed_config.failure_mode_alow`,
      'unknown field "failure_mode_alow" in envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor (did you mean "failure_mode_allow"?)',
    );
  });

  it("a scalar of the wrong type", () => {
    const doc = copyOfShipped();
    hcmOf(doc, "tls_decap")["stat_prefix"] = 42;
    expectOnly(errorsOf(doc), `${hcmPath(doc, "tls_decap")}.stat_prefix`, "expected a string, got number 42");
  });

  it("a bool written as a string", () => {
    const doc = copyOfShipped();
    extProcOf(doc, "plain_sign")["allow_mode_override"] = "yes";
    const problems = errorsOf(doc);
    // The proto check rejects the type, and the rule check sees allow_mode_override is not true.
    expect(problems.map((p) => p.message)).toEqual([
      expect.stringContaining('field "allow_mode_override" (bool): expected true or false, got the string "yes"'),
      expect.stringContaining("allow_mode_override must be true"),
    ]);
  });

  it("an integer out of range in a wrapper type", () => {
    const doc = copyOfShipped();
    listener(doc, "tls_decap")["per_connection_buffer_limit_bytes"] = 2 ** 32;
    const path = `static_resources.listeners[${listenerIndex(doc, "tls_decap")}].per_connection_buffer_limit_bytes`;
    expect(errorsOf(doc)).toEqual([
      { path, message: "google.protobuf.UInt32Value: 4294967296 is outside the uint32 range 0..4294967295", severity: "error" },
      { path, message: expect.stringContaining("the request body buffer limit must be 1048576") as unknown as string, severity: "error" },
    ]);
  });

  it("an enum name that does not exist", () => {
    const doc = copyOfShipped();
    obj(extProcOf(doc, "tls_decap")["processing_mode"], "mode")["request_body_mode"] = "BUFERED";
    const problems = errorsOf(doc);
    const path = `${hcmPath(doc, "tls_decap")}.http_filters[0].typed_config.processing_mode.request_body_mode`;
    expect(problems[0]).toEqual({
      path,
      message:
        '"BUFERED" is not a value of envoy.extensions.filters.http.ext_proc.v3.ProcessingMode.BodySendMode; expected one of NONE, STREAMED, BUFFERED, BUFFERED_PARTIAL',
      severity: "error",
    });
  });

  it("an unknown @type", () => {
    const doc = copyOfShipped();
    extProcOf(doc, "tls_decap")["@type"] = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcesor";
    const problems = errorsOf(doc);
    expect(problems[0]).toEqual({
      path: `${hcmPath(doc, "tls_decap")}.http_filters[0].typed_config["@type"]`,
      message:
        'unknown @type "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcesor": no message envoy.extensions.filters.http.ext_proc.v3.ExternalProcesor in Envoy\'s API',
      severity: "error",
    });
  });

  it("an unknown field inside a typed_extension_protocol_options map value", () => {
    const doc = copyOfShipped();
    const options = obj(clusterNamed(doc, "countersign")["typed_extension_protocol_options"], "options");
    obj(options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"], "http options")["http2"] = {};
    const problems = errorsOf(doc);
    expect(problems.map((p) => p.path)).toEqual([
      'static_resources.clusters[0].typed_extension_protocol_options["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].http2',
    ]);
  });

  it("an undefined cluster", () => {
    const doc = copyOfShipped();
    obj(obj(extProcOf(doc, "tls_decap")["grpc_service"], "grpc")["envoy_grpc"], "envoy_grpc")["cluster_name"] = "countersing";
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "tls_decap")}.http_filters[0].typed_config.grpc_service.envoy_grpc.cluster_name`,
      'grpc_service names cluster "countersing", which is not defined',
    );
  });

  it("a route to an undefined cluster", () => {
    const doc = copyOfShipped();
    obj(firstRouteOf(doc, "connect_in")["route"], "route")["cluster"] = "tls_decapp";
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "connect_in")}.route_config.virtual_hosts[0].routes[0].route.cluster`,
      'route names cluster "tls_decapp"',
    );
  });

  it("an internal address that names a listener which is not internal", () => {
    const doc = copyOfShipped();
    const cluster = clusterNamed(doc, "plain_sign");
    const text = JSON.stringify(cluster).replace('"server_listener_name":"plain_sign"', '"server_listener_name":"endpoint_in"');
    Object.assign(cluster, JSON.parse(text));
    const problems = errorsOf(doc);
    expect(problems.map((p) => p.message)).toEqual([
      '"endpoint_in" is not an internal listener (a listener with internal_listener: {})',
    ]);
  });

  it("failure_mode_allow: true", () => {
    const doc = copyOfShipped();
    extProcOf(doc, "tls_decap")["failure_mode_allow"] = true;
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "tls_decap")}.http_filters[0].typed_config.failure_mode_allow`,
      "ext_proc: failure_mode_allow must not be true",
    );
  });

  it("allow_mode_override: false", () => {
    const doc = copyOfShipped();
    extProcOf(doc, "plain_sign")["allow_mode_override"] = false;
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "plain_sign")}.http_filters[0].typed_config.allow_mode_override`,
      "ext_proc: allow_mode_override must be true",
    );
  });

  it("request body mode BUFFERED by default", () => {
    const doc = copyOfShipped();
    obj(extProcOf(doc, "tls_decap")["processing_mode"], "mode")["request_body_mode"] = "BUFFERED";
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "tls_decap")}.http_filters[0].typed_config.processing_mode.request_body_mode`,
      "request_body_mode must be NONE (bodies are sent only when countersign asks; BUFFERED by default would send every body), got BUFFERED",
    );
  });

  it("response headers sent to countersign", () => {
    const doc = copyOfShipped();
    obj(extProcOf(doc, "tls_decap")["processing_mode"], "mode")["response_header_mode"] = "SEND";
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "tls_decap")}.http_filters[0].typed_config.processing_mode.response_header_mode`,
      "response_header_mode must be SKIP",
    );
  });

  it("no message_timeout", () => {
    const doc = copyOfShipped();
    delete extProcOf(doc, "tls_decap")["message_timeout"];
    expectOnly(errorsOf(doc), `${hcmPath(doc, "tls_decap")}.http_filters[0].typed_config`, "message_timeout must be set");
  });

  it("a message_timeout that is not a Duration string", () => {
    const doc = copyOfShipped();
    extProcOf(doc, "tls_decap")["message_timeout"] = 2;
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "tls_decap")}.http_filters[0].typed_config.message_timeout`,
      'expected a duration such as "2s" or "0.250s", got number 2',
    );
  });

  it("a host rewrite after ext_proc", () => {
    const doc = copyOfShipped();
    obj(firstRouteOf(doc, "tls_decap")["route"], "route")["host_rewrite_literal"] = "s3.eu-west-1.amazonaws.com";
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "tls_decap")}.route_config.virtual_hosts[0].routes[0].route.host_rewrite_literal`,
      'listener "tls_decap": host_rewrite_literal changes the request after ext_proc signed it',
    );
  });

  it("a path rewrite after ext_proc", () => {
    const doc = copyOfShipped();
    obj(firstRouteOf(doc, "plain_sign")["route"], "route")["prefix_rewrite"] = "/v2/";
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "plain_sign")}.route_config.virtual_hosts[0].routes[0].route.prefix_rewrite`,
      'listener "plain_sign": prefix_rewrite changes the request after ext_proc signed it',
    );
  });

  it("auto_host_rewrite: true after ext_proc", () => {
    const doc = copyOfShipped();
    obj(firstRouteOf(doc, "tls_decap")["route"], "route")["auto_host_rewrite"] = true;
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "tls_decap")}.route_config.virtual_hosts[0].routes[0].route.auto_host_rewrite`,
      "auto_host_rewrite changes the request after ext_proc signed it",
    );
  });

  it("a filter between ext_proc and the router", () => {
    const doc = copyOfShipped();
    list(hcmOf(doc, "tls_decap")["http_filters"], "filters").splice(1, 0, {
      name: "envoy.filters.http.header_mutation",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation" },
    });
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "tls_decap")}.http_filters[1]`,
      'filter "envoy.filters.http.header_mutation" runs after ext_proc and may change the signed request',
    );
  });

  it("a buffer limit that differs from countersign's 1 MiB", () => {
    const doc = copyOfShipped();
    listener(doc, "plain_sign")["per_connection_buffer_limit_bytes"] = 2_097_152;
    expectOnly(
      errorsOf(doc),
      `static_resources.listeners[${listenerIndex(doc, "plain_sign")}].per_connection_buffer_limit_bytes`,
      "the request body buffer limit must be 1048576 (countersign's limits.max_buffered_body_bytes), got 2097152",
    );
  });

  it("an ext_proc cluster without HTTP/2", () => {
    const doc = copyOfShipped();
    delete clusterNamed(doc, "countersign")["typed_extension_protocol_options"];
    const problems = errorsOf(doc);
    expect(new Set(problems.map((p) => p.path))).toEqual(new Set(["static_resources.clusters[0]"]));
    expect(problems[0]?.message).toContain('cluster "countersign" serves ext_proc (gRPC) and must use HTTP/2');
  });

  it("two members of one oneof", () => {
    const doc = copyOfShipped();
    obj(firstRouteOf(doc, "endpoint_in")["match"], "match")["path"] = "/exact";
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "endpoint_in")}.route_config.virtual_hosts[0].routes[0].match`,
      'only one of "prefix", "path" may be set (oneof path_specifier)',
    );
  });

  it("a repeated field that is not a list", () => {
    const doc = copyOfShipped();
    const vhosts = list(obj(hcmOf(doc, "endpoint_in")["route_config"], "rc")["virtual_hosts"], "vhosts");
    obj(vhosts[0], "vhost")["domains"] = "*";
    expectOnly(
      errorsOf(doc),
      `${hcmPath(doc, "endpoint_in")}.route_config.virtual_hosts[0].domains`,
      'expected a list (repeated field "domains"), got the string "*"',
    );
  });

  it("a missing field that protoc-gen-validate requires", () => {
    const doc = copyOfShipped();
    delete hcmOf(doc, "endpoint_in")["stat_prefix"];
    expectOnly(errorsOf(doc), hcmPath(doc, "endpoint_in"), 'missing required field "stat_prefix" (must not be empty)');
  });

  it("a deprecated field is a warning, not an error", () => {
    const doc = copyOfShipped();
    listener(doc, "connect_in")["reuse_port"] = true;
    expect(validateBootstrap(doc)).toEqual([
      {
        path: `static_resources.listeners[${listenerIndex(doc, "connect_in")}].reuse_port`,
        message: 'field "reuse_port" is deprecated',
        severity: "warning",
      },
    ]);
  });
});

describe("helpers", () => {
  it("messageNamesIn lists nested messages with their package and ignores comments", () => {
    const source = `syntax = "proto3";
      package a.b;
      // message Commented {
      message Outer { message Inner { string s = 1; } oneof x { int32 i = 2; } enum E { A = 0; } }
      message Next { option (o) = { k: "message Fake {" }; }`;
    expect(messageNamesIn(source)).toEqual(["a.b.Outer", "a.b.Outer.Inner", "a.b.Next"]);
  });

  it.each([
    ["2s", 2],
    ["0.200s", 0.2],
    ["-1.5s", -1.5],
    ["0s", 0],
  ])("durationSeconds(%j) = %d", (text, seconds) => {
    expect(durationSeconds(text)).toBeCloseTo(seconds, 9);
  });

  it.each(["2", "2 s", "1m", "1.0000000001s", ""])("durationSeconds(%j) is not a duration", (text) => {
    expect(durationSeconds(text)).toBeUndefined();
  });

  it.each([
    [15001, "uint32", undefined],
    ["18446744073709551615", "uint64", undefined],
    [-1, "uint32", "-1 is outside the uint32 range 0..4294967295"],
    [1.5, "int32", "expected an integer, got number 1.5"],
    ["SGVsbG8=", "bytes", undefined],
    [true, "string", "expected a string, got boolean true"],
  ])("scalarProblem(%j, %s)", (value, scalar, expected) => {
    expect(scalarProblem(value, scalar)).toBe(expected);
  });
});
