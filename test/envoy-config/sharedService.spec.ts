/**
 * envoy/envoy-shared-service.yaml, the bootstrap for workload pods whose countersign is the shared
 * service (k8s/shared-service): generated from envoy/envoy.yaml (scripts/gen-envoy-shared-service.ts),
 * accepted by the pinned Envoy, keeps countersign's rules, and differs from envoy.yaml in the
 * `countersign` cluster only, which dials the Service over TLS with a client certificate.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { load as loadYaml } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVICE_HOST, SERVICE_TLS_NAME, SHARED_SERVICE_BOOTSTRAP, SIDECAR_BOOTSTRAP, sharedServiceBootstrap } from "../../scripts/gen-envoy-shared-service.js";
import { REPO } from "../support/startServe.js";
import { isPlainObject } from "./configProblem.js";
import { createEnvoyTestFiles, type EnvoyTestFiles } from "./envoyValidate.js";
import { formatProblems, validateBootstrapFile } from "./validateBootstrap.js";

type Obj = Record<string, unknown>;

const SIDECAR_TEXT = readFileSync(SIDECAR_BOOTSTRAP, "utf8");
const SHARED_TEXT = readFileSync(SHARED_SERVICE_BOOTSTRAP, "utf8");

function parsed(text: string): Obj {
  // A JSON copy undoes the YAML aliases' sharing, so equal configs compare equal however written.
  const doc = JSON.parse(JSON.stringify(loadYaml(text))) as unknown;
  if (!isPlainObject(doc)) throw new Error("test setup: not a mapping");
  return doc;
}

function clustersOf(doc: Obj): Obj[] {
  const statics = doc["static_resources"];
  const clusters = isPlainObject(statics) ? statics["clusters"] : undefined;
  if (!Array.isArray(clusters)) throw new Error("test setup: no clusters");
  return clusters.filter(isPlainObject);
}

function countersignCluster(doc: Obj): Obj {
  const found = clustersOf(doc).find((c) => c["name"] === "countersign");
  if (!found) throw new Error("test setup: no countersign cluster");
  return found;
}

/** The document with the `countersign` cluster taken out: what the two bootstraps must share. */
function withoutCountersignCluster(doc: Obj): Obj {
  const statics = doc["static_resources"] as Obj;
  return { ...doc, static_resources: { ...statics, clusters: clustersOf(doc).filter((c) => c["name"] !== "countersign") } };
}

let files: EnvoyTestFiles;
beforeAll(async () => {
  files = await createEnvoyTestFiles();
});
afterAll(() => files.remove());

describe("envoy/envoy-shared-service.yaml", () => {
  it("is what scripts/gen-envoy-shared-service.ts makes of envoy/envoy.yaml (run `npm run gen:envoy` after changing envoy.yaml)", () => {
    expect(SHARED_TEXT === sharedServiceBootstrap(SIDECAR_TEXT), "envoy/envoy-shared-service.yaml is stale: run `npm run gen:envoy` and commit it").toBe(true);
  });

  it("shares every listener, cluster and bootstrap field with envoy/envoy.yaml except the countersign cluster", () => {
    const shared = parsed(SHARED_TEXT);
    const sidecar = parsed(SIDECAR_TEXT);
    expect(withoutCountersignCluster(shared)).toEqual(withoutCountersignCluster(sidecar));
    expect(countersignCluster(shared)).not.toEqual(countersignCluster(sidecar));
    expect(clustersOf(shared).map((c) => c["name"])).toEqual(clustersOf(sidecar).map((c) => c["name"]));
  });

  it("is accepted by the pinned Envoy without a warning, and keeps countersign's rules", () => {
    const problems = validateBootstrapFile(SHARED_SERVICE_BOOTSTRAP, files);
    expect(problems, formatProblems(problems)).toEqual([]);
  });

  it("dials the countersign Service by DNS over HTTP/2 and TLS: SNI and SAN are the Service's name, the client certificate and the CA come through watched SDS files", () => {
    const cluster = countersignCluster(parsed(SHARED_TEXT));
    expect(cluster).toMatchObject({
      cluster_type: {
        name: "envoy.clusters.dns",
        typed_config: { "@type": "type.googleapis.com/envoy.extensions.clusters.dns.v3.DnsCluster", dns_refresh_rate: "5s", all_addresses_in_single_endpoint: false },
      },
      load_assignment: { endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: SERVICE_HOST, port_value: 50051 } } } }] }] },
      typed_extension_protocol_options: {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": { explicit_http_config: { http2_protocol_options: { connection_keepalive: { interval: "30s", timeout: "5s" } } } },
      },
      transport_socket: {
        name: "envoy.transport_sockets.tls",
        typed_config: {
          "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
          sni: SERVICE_TLS_NAME,
          common_tls_context: {
            alpn_protocols: ["h2"],
            tls_certificate_sds_secret_configs: [
              { name: "countersign_grpc_client", sds_config: { path_config_source: { path: "/etc/envoy/grpc-client-certificate.sds.yaml", watched_directory: { path: "/etc/envoy" } } } },
            ],
            combined_validation_context: {
              default_validation_context: { match_typed_subject_alt_names: [{ san_type: "DNS", matcher: { exact: SERVICE_TLS_NAME } }] },
              validation_context_sds_secret_config: {
                name: "countersign_grpc_server_ca",
                sds_config: { path_config_source: { path: "/etc/envoy/grpc-server-ca.sds.yaml", watched_directory: { path: "/etc/envoy" } } },
              },
            },
          },
        },
      },
    });
    // Nothing inline: a certificate or CA named directly in the bootstrap would be read once, at start.
    expect(JSON.stringify(cluster)).not.toMatch(/"tls_certificates"|"trusted_ca"|"validation_context":/);
  });

  it("the SDS files name the grpc-client Secret's files and watch its folder (the kubelet's ..data swap)", () => {
    const resource = (name: string): Obj => {
      const doc = parsed(readFileSync(join(REPO, "envoy", name), "utf8"));
      const [only, ...rest] = doc["resources"] as Obj[];
      expect(rest).toEqual([]);
      return only as Obj;
    };
    expect(resource("grpc-client-certificate.sds.yaml")).toEqual({
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
      name: "countersign_grpc_client",
      tls_certificate: {
        certificate_chain: { filename: "/etc/countersign/grpc-client/tls.crt" },
        private_key: { filename: "/etc/countersign/grpc-client/tls.key" },
        watched_directory: { path: "/etc/countersign/grpc-client" },
      },
    });
    expect(resource("grpc-server-ca.sds.yaml")).toEqual({
      "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
      name: "countersign_grpc_server_ca",
      validation_context: { trusted_ca: { filename: "/etc/countersign/grpc-client/ca.crt" }, watched_directory: { path: "/etc/countersign/grpc-client" } },
    });
  });
});

describe("sharedServiceBootstrap", () => {
  it("keeps envoy.yaml's text outside the header and the countersign cluster, comments and anchors included", () => {
    const out = sharedServiceBootstrap(SIDECAR_TEXT);
    const body = (text: string): string => text.slice(text.indexOf("\nnode:"));
    const before = (text: string): string => body(text).slice(0, body(text).indexOf("\n  clusters:\n"));
    expect(before(out)).toBe(before(SIDECAR_TEXT));
    expect(out).toContain("http_filters: &signing_filters");
    expect(out.startsWith("# countersign as a shared service")).toBe(true);
  });

  it("refuses an envoy.yaml without exactly one countersign cluster, rather than write a bootstrap without mTLS", () => {
    const renamed = SIDECAR_TEXT.replace(/^ {4}- name: countersign$/m, "    - name: signer");
    expect(renamed).not.toBe(SIDECAR_TEXT);
    expect(() => sharedServiceBootstrap(renamed)).toThrow('envoy.yaml: expected one "countersign" cluster, found 0');
  });
});
