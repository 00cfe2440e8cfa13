/**
 * Writes envoy/envoy-shared-service.yaml: the Envoy bootstrap for workloads that use countersign as
 * a shared service (k8s/shared-service). It is envoy/envoy.yaml, text for text, with two parts
 * replaced: the header comment, and the `countersign` cluster, which dials the countersign Service
 * over TLS with a client certificate instead of 127.0.0.1:50051 in plaintext. Every listener,
 * filter and other cluster comes from envoy.yaml unchanged, so the two cannot drift:
 * test/envoy-config/sharedService.spec.ts fails when the committed file differs from what this
 * script writes.
 *
 *   npm run gen:envoy      (after every change to envoy/envoy.yaml)
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { isMap, isSeq, parseDocument } from "yaml";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const SIDECAR_BOOTSTRAP = join(ROOT, "envoy", "envoy.yaml");
export const SHARED_SERVICE_BOOTSTRAP = join(ROOT, "envoy", "envoy-shared-service.yaml");

/** The Service name Envoy dials, and the name countersign's server certificate must carry. */
export const SERVICE_HOST = "countersign.countersign.svc.cluster.local";
export const SERVICE_TLS_NAME = "countersign.countersign.svc";

const HEADER = `# countersign as a shared service — Envoy bootstrap for the workload pods.
#
# GENERATED from envoy/envoy.yaml by scripts/gen-envoy-shared-service.ts (\`npm run gen:envoy\`):
# do not edit; edit envoy.yaml or the script and generate again (\`make test\` fails while the two
# disagree). Every listener, filter and cluster is envoy.yaml's, with the same behaviour and the
# same rules (read the comments there), except the \`countersign\` cluster: instead of a countersign
# beside Envoy on 127.0.0.1:50051 in plaintext, Envoy reaches the countersign Deployment of
# k8s/shared-service through its headless Service, ${SERVICE_HOST}:50051,
# over TLS with a client certificate (countersign runs with --tls-client-ca: mTLS).
#
# Files Envoy reads, besides envoy.yaml's (/etc/envoy/tls-certificate.sds.yaml and the listener
# certificate in /etc/countersign/tls/, the system CA bundle for AWS):
#   /etc/envoy/grpc-client-certificate.sds.yaml  (envoy/, in the same ConfigMap as this file)
#       names /etc/countersign/grpc-client/tls.crt and tls.key: the client certificate;
#   /etc/envoy/grpc-server-ca.sds.yaml           (envoy/, same ConfigMap)
#       names /etc/countersign/grpc-client/ca.crt: the CA that signed countersign's certificate.
# /etc/countersign/grpc-client/ is the Secret countersign-grpc-client (cert-manager renews it);
# Envoy re-reads all three files when the kubelet swaps the Secret, without a restart.
# k8s/README.md ("Shared service") shows the pod template that mounts them.
`;

/** The `countersign` cluster of the shared-service bootstrap, as it sits in static_resources.clusters. */
const SHARED_COUNTERSIGN_CLUSTER = `    # countersign's gRPC server: the shared service, reached over TLS with a client certificate.
    # ext_proc needs HTTP/2.
    - name: countersign
      # Every address the headless Service's name resolves to (one per ready replica) is an
      # endpoint; ext_proc streams are spread over them. Re-resolved every 5 s, so a replica that
      # leaves the Service (not ready, draining, deleted) stops getting new streams soon after.
      # (The DNS cluster extension is what Envoy 1.40 reads instead of the deprecated
      # type: STRICT_DNS + dns_refresh_rate; all_addresses_in_single_endpoint: false is STRICT_DNS.)
      cluster_type:
        name: envoy.clusters.dns
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.clusters.dns.v3.DnsCluster
          dns_refresh_rate: 5s
          dns_lookup_family: V4_PREFERRED
          all_addresses_in_single_endpoint: false
      # TCP connect and TLS handshake to a replica in the same cluster.
      connect_timeout: 2s
      load_assignment:
        cluster_name: countersign
        endpoints:
          - lb_endpoints:
              - endpoint:
                  address:
                    socket_address: { address: ${SERVICE_HOST}, port_value: 50051 }
      # A replica whose connections fail (refused, reset, TLS handshake failed) is taken out of
      # the rotation for 30 s, even before DNS drops it. At most half of the replicas at a time.
      outlier_detection:
        split_external_local_origin_errors: true
        consecutive_local_origin_failure: 3
        base_ejection_time: 30s
        max_ejection_percent: 50
      typed_extension_protocol_options:
        envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
          "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
          common_http_protocol_options:
            # Close connections unused for 10 minutes; busy ones stay open.
            idle_timeout: 600s
          explicit_http_config:
            http2_protocol_options:
              # A modest stream cap per connection spreads the streams of a busy Envoy over
              # several connections, and so over the replicas' --workers processes.
              max_concurrent_streams: 100
              # HTTP/2 PING every 30 s on an idle connection; no answer within 5 s closes it. A
              # replica that vanished without closing its connections (node lost, network
              # partition) is noticed before a request waits on it.
              connection_keepalive: { interval: 30s, timeout: 5s }
      transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext
          # The name countersign's server certificate carries (k8s/shared-service/grpc-tls.cert-manager.yaml).
          sni: ${SERVICE_TLS_NAME}
          common_tls_context:
            tls_params:
              tls_minimum_protocol_version: TLSv1_2
            # gRPC over TLS negotiates HTTP/2 with ALPN.
            alpn_protocols: ["h2"]
            # The client certificate (countersign's --tls-client-ca checks it), through file-based
            # SDS so that a renewed certificate is used without a restart.
            tls_certificate_sds_secret_configs:
              - name: countersign_grpc_client
                sds_config:
                  resource_api_version: V3
                  path_config_source:
                    path: /etc/envoy/grpc-client-certificate.sds.yaml
                    watched_directory: { path: /etc/envoy }
            # countersign's certificate must chain to the CA in grpc-server-ca.sds.yaml AND name
            # the Service: a certificate the same CA issued to anything else is refused.
            combined_validation_context:
              default_validation_context:
                match_typed_subject_alt_names:
                  - san_type: DNS
                    matcher: { exact: ${SERVICE_TLS_NAME} }
              validation_context_sds_secret_config:
                name: countersign_grpc_server_ca
                sds_config:
                  resource_api_version: V3
                  path_config_source:
                    path: /etc/envoy/grpc-server-ca.sds.yaml
                    watched_directory: { path: /etc/envoy }
      # Every in-flight AWS request holds one ext_proc stream. The default circuit breaker allows
      # 1024 concurrent streams (requests) to this cluster; raise max_requests for busier workloads.
`;

const indentOf = (line: string): number => line.length - line.trimStart().length;

/**
 * envoy.yaml's text with the header and the `countersign` cluster replaced (see the file comment).
 * Throws when envoy.yaml no longer has the shape this relies on.
 */
export function sharedServiceBootstrap(sidecarText: string): string {
  const doc = parseDocument(sidecarText);
  if (doc.errors.length > 0) throw new Error(`envoy.yaml does not parse: ${doc.errors[0]?.message ?? ""}`);
  const clusters = doc.getIn(["static_resources", "clusters"], true);
  if (!isSeq(clusters)) throw new Error("envoy.yaml: no static_resources.clusters list");
  const found = clusters.items.filter((c) => isMap(c) && c.get("name") === "countersign");
  const cluster = found[0];
  if (found.length !== 1 || !isMap(cluster) || !cluster.range) throw new Error(`envoy.yaml: expected one "countersign" cluster, found ${found.length}`);

  const lines = sidecarText.split("\n");
  const lineAt = (offset: number): number => sidecarText.slice(0, offset).split("\n").length - 1;
  // From the "- name: countersign" line, up over the comment lines just above it...
  let first = lineAt(cluster.range[0]);
  const itemIndent = indentOf(lines[first] ?? "");
  while (first > 0 && (lines[first - 1] ?? "").trimStart().startsWith("#") && indentOf(lines[first - 1] ?? "") === itemIndent) first--;
  // ...down to its last value line and the comment lines indented under it.
  let last = lineAt(cluster.range[1] - 1);
  while (last + 1 < lines.length && (lines[last + 1] ?? "").trimStart().startsWith("#") && indentOf(lines[last + 1] ?? "") > itemIndent) last++;
  if (itemIndent !== 4) throw new Error(`envoy.yaml: the "countersign" cluster is indented ${itemIndent} spaces; this script writes its replacement at 4`);

  // The header: the comment block before the first line of YAML.
  let body = 0;
  while (body < lines.length && ((lines[body] ?? "").startsWith("#") || (lines[body] ?? "").trim() === "")) body++;
  if (body >= first) throw new Error("envoy.yaml: no YAML before the countersign cluster");

  return [HEADER, ...lines.slice(body, first), ...SHARED_COUNTERSIGN_CLUSTER.trimEnd().split("\n"), ...lines.slice(last + 1)].join("\n");
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(SHARED_SERVICE_BOOTSTRAP, sharedServiceBootstrap(readFileSync(SIDECAR_BOOTSTRAP, "utf8")));
  console.log(`wrote ${SHARED_SERVICE_BOOTSTRAP}`);
}
