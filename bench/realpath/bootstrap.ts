/**
 * The Envoy bootstraps of the real-path benchmark (bench/realpath/run.ts), made from the shipped
 * envoy/envoy.yaml so that the bench measures the file users run:
 *
 *   1. test/e2e/realEnvoy.ts's envoyE2eConfig rewrites it for loopback (ports, certificate files,
 *      the DNS cache's resolver, the upstream trust bundle, the countersign cluster's address);
 *   2. `benchEnvoyConfig` then changes only the first HTTP filter of the two signing listeners
 *      (tls_decap, plain_sign), the ext_proc filter, per configuration:
 *        F   no signing filter at all (the floor: Envoy, TLS, routing, the upstream);
 *        N   Envoy's own envoy.filters.http.aws_request_signing, static credentials, payload hashed
 *            by Envoy (it buffers the body);
 *        Nu  the same with use_unsigned_payload (what a 64 MiB chunk-signed upload needs: no buffer);
 *        C   ext_proc to `countersign serve` (the shipped file as it is);
 *        X   ext_proc to the bench's no-op ext_proc server (same gRPC stack as countersign).
 *      Everything else (the access log, the dynamic forward proxy, upstream TLS, the buffer limits,
 *      local replies) is left as shipped, in every configuration.
 *
 * `responderConfig` is the upstream: a second Envoy that answers every request with a small 200
 * from a direct_response route after reading the whole body (buffer filter), over TLS on port 443 of
 * the loopback address the bench's DNS server hands out for *.amazonaws.com.
 */
import { envoyE2eConfig, assertLoopbackOnly, type E2eConfigOptions } from "../../test/e2e/realEnvoy.js";

export type BenchConfigName = "F" | "N" | "Nu" | "C" | "X";
export const BENCH_CONFIGS: readonly BenchConfigName[] = ["F", "N", "Nu", "C", "X"];

type Node = Record<string, unknown>;

const EXT_PROC = "envoy.filters.http.ext_proc";
const AWS_SIGNING = "envoy.filters.http.aws_request_signing";
const AWS_SIGNING_TYPE = "type.googleapis.com/envoy.extensions.filters.http.aws_request_signing.v3.AwsRequestSigning";
const SIGNING_LISTENERS = ["tls_decap", "plain_sign"];

export interface BenchConfigOptions extends Omit<E2eConfigOptions, "extProcAddress"> {
  readonly config: BenchConfigName;
  /** C and X: the ext_proc server's host:port. F, N and Nu: unused (the cluster stays, pointing at a closed port). */
  readonly extProcAddress?: string;
  /** N and Nu: the static credentials Envoy signs with, the signing region and service. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly region: string;
  readonly service: string;
}

function isNode(v: unknown): v is Node {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The HCM typed_config of every filter chain of a listener. */
function connectionManagers(listener: Node): Node[] {
  const out: Node[] = [];
  for (const chain of Array.isArray(listener.filter_chains) ? (listener.filter_chains as unknown[]) : []) {
    if (!isNode(chain) || !Array.isArray(chain.filters)) continue;
    for (const f of chain.filters as unknown[]) {
      if (isNode(f) && f.name === "envoy.filters.network.http_connection_manager" && isNode(f.typed_config)) out.push(f.typed_config);
    }
  }
  return out;
}

function signingFilter(opts: BenchConfigOptions, unsignedPayload: boolean): Node {
  return {
    name: AWS_SIGNING,
    typed_config: {
      "@type": AWS_SIGNING_TYPE,
      service_name: opts.service,
      region: opts.region,
      use_unsigned_payload: unsignedPayload,
      credential_provider: {
        inline_credential: { access_key_id: opts.credentials.accessKeyId, secret_access_key: opts.credentials.secretAccessKey },
      },
    },
  };
}

/** The shipped bootstrap as configuration `opts.config` of the bench runs it (see the file comment). Pure. */
export function benchEnvoyConfig(shipped: unknown, opts: BenchConfigOptions): Node {
  // F, N and Nu never talk to an ext_proc server; the cluster keeps a loopback address nothing serves.
  const doc = envoyE2eConfig(shipped, { ...opts, extProcAddress: opts.extProcAddress ?? "127.0.0.1:9" });
  const statics = doc.static_resources as Node;
  let replaced = 0;
  for (const l of statics.listeners as unknown[]) {
    if (!isNode(l) || !SIGNING_LISTENERS.includes(String(l.name))) continue;
    for (const hcm of connectionManagers(l)) {
      const filters = hcm.http_filters;
      if (!Array.isArray(filters) || !isNode(filters[0]) || filters[0].name !== EXT_PROC) {
        throw new Error(`envoy.yaml: listener "${String(l.name)}" does not start its HTTP filters with ${EXT_PROC}; bench/realpath/bootstrap.ts replaces that filter`);
      }
      if (opts.config === "F") filters.splice(0, 1);
      else if (opts.config === "N" || opts.config === "Nu") filters.splice(0, 1, signingFilter(opts, opts.config === "Nu"));
      replaced++;
    }
  }
  if (replaced !== SIGNING_LISTENERS.length) throw new Error(`envoy.yaml: expected the ${SIGNING_LISTENERS.join(" and ")} listeners with one HTTP connection manager each, found ${replaced}`);
  if ((opts.config === "C" || opts.config === "X") && opts.extProcAddress === undefined) throw new Error(`configuration ${opts.config} needs extProcAddress`);
  assertLoopbackOnly(doc);
  return doc;
}

export interface ResponderOptions {
  /** The loopback address (127.x.y.z) the DNS server answers for every *.amazonaws.com name. */
  readonly ip: string;
  readonly port: number;
  readonly certFile: string;
  readonly keyFile: string;
  /** Largest request body the responder reads before it answers (the 64 MiB upload and then some). */
  readonly maxBodyBytes: number;
}

/** The near-free upstream: reads the request (buffer filter), answers 200 with a 2-byte body. */
export function responderConfig(opts: ResponderOptions): Node {
  const doc: Node = {
    admin: { address: { socket_address: { address: "127.0.0.1", port_value: 0 } } },
    static_resources: {
      listeners: [
        {
          name: "responder",
          address: { socket_address: { address: opts.ip, port_value: opts.port } },
          per_connection_buffer_limit_bytes: 1048576,
          filter_chains: [
            {
              transport_socket: {
                name: "envoy.transport_sockets.tls",
                typed_config: {
                  "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                  common_tls_context: {
                    alpn_protocols: ["h2", "http/1.1"],
                    tls_certificates: [{ certificate_chain: { filename: opts.certFile }, private_key: { filename: opts.keyFile } }],
                  },
                },
              },
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    stat_prefix: "responder",
                    codec_type: "AUTO",
                    route_config: {
                      name: "responder",
                      virtual_hosts: [{ name: "all", domains: ["*"], routes: [{ match: { prefix: "/" }, direct_response: { status: 200, body: { inline_string: "ok" } } }] }],
                    },
                    http_filters: [
                      {
                        name: "envoy.filters.http.buffer",
                        typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer", max_request_bytes: opts.maxBodyBytes },
                      },
                      { name: "envoy.filters.http.router", typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router", suppress_envoy_headers: true } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
    },
  };
  assertLoopbackOnly(doc);
  return doc;
}
