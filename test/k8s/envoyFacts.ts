/**
 * The facts about an Envoy bootstrap that Kubernetes manifests must agree with: listener
 * addresses, where ext_proc sends its gRPC stream, the TLS files, the admin address and the body
 * buffer limit of the signing listeners.
 */
import { isDoc, type Doc } from "./kustomize.js";

export interface SocketAddress {
  readonly address: string;
  readonly port: number;
}

export interface ListenerFact {
  readonly name: string;
  /** Undefined for internal listeners (no socket). */
  readonly socket?: SocketAddress;
}

const EXT_PROC_TYPE = "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor";

function get(node: unknown, ...path: (string | number)[]): unknown {
  let current = node;
  for (const key of path) {
    if (typeof key === "number") current = Array.isArray(current) ? current[key] : undefined;
    else current = isDoc(current) ? current[key] : undefined;
  }
  return current;
}

function list(node: unknown): unknown[] {
  return Array.isArray(node) ? node : [];
}

/** Every mapping in the tree (depth first) for which `test` holds. */
export function findAll(node: unknown, test: (value: Doc) => boolean): Doc[] {
  const found: Doc[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (isDoc(value)) {
      if (test(value)) found.push(value);
      Object.values(value).forEach(visit);
    }
  };
  visit(node);
  return found;
}

export function socketAddress(node: unknown): SocketAddress | undefined {
  const address = get(node, "socket_address", "address");
  const port = get(node, "socket_address", "port_value");
  return typeof address === "string" && typeof port === "number" ? { address, port } : undefined;
}

export function listeners(bootstrap: unknown): ListenerFact[] {
  return list(get(bootstrap, "static_resources", "listeners")).map((l) => {
    const socket = socketAddress(get(l, "address"));
    return { name: String(get(l, "name")), ...(socket ? { socket } : {}) };
  });
}

export function isLoopback(address: string): boolean {
  return address === "::1" || address.startsWith("127.");
}

/** Endpoints of a static cluster, by cluster name. */
export function clusterAddresses(bootstrap: unknown, clusterName: string): SocketAddress[] {
  const cluster = list(get(bootstrap, "static_resources", "clusters")).find((c) => get(c, "name") === clusterName);
  return list(get(cluster, "load_assignment", "endpoints"))
    .flatMap((e) => list(get(e, "lb_endpoints")))
    .map((lb) => socketAddress(get(lb, "endpoint", "address")))
    .filter((a): a is SocketAddress => a !== undefined);
}

/** The cluster names every ext_proc filter streams to (envoy_grpc). */
export function extProcClusters(bootstrap: unknown): string[] {
  const filters = findAll(bootstrap, (d) => d["@type"] === EXT_PROC_TYPE);
  return [...new Set(filters.map((f) => String(get(f, "grpc_service", "envoy_grpc", "cluster_name"))))];
}

/** The file-based SDS secret files a bootstrap names (path_config_source.path), with their watched folders. */
export function sdsSecretFiles(bootstrap: unknown): { path: string; watchedDirectory: string | undefined }[] {
  return findAll(bootstrap, (d) => get(d, "sds_config", "path_config_source") !== undefined).map((d) => ({
    path: String(get(d, "sds_config", "path_config_source", "path")),
    watchedDirectory: get(d, "sds_config", "path_config_source", "watched_directory", "path") as string | undefined,
  }));
}

/**
 * Files of every downstream certificate: certificate_chain and private_key filenames, inline
 * (tls_certificates) or in the file-based SDS secrets the bootstrap names, which `readSds` loads
 * (by their path in the container).
 */
export function tlsCertificateFiles(bootstrap: unknown, readSds: (path: string) => unknown): { certificate: string; key: string; watchedDirectory?: string }[] {
  const inline = findAll(bootstrap, (d) => Array.isArray(d["tls_certificates"])).flatMap((d) => list(d["tls_certificates"]));
  const viaSds = sdsSecretFiles(bootstrap).flatMap(({ path }) =>
    list(get(readSds(path), "resources"))
      .map((r) => get(r, "tls_certificate"))
      .filter((c) => c !== undefined),
  );
  return [...inline, ...viaSds].map((c) => ({
    certificate: String(get(c, "certificate_chain", "filename")),
    key: String(get(c, "private_key", "filename")),
    ...(get(c, "watched_directory", "path") === undefined ? {} : { watchedDirectory: String(get(c, "watched_directory", "path")) }),
  }));
}

export function adminAddress(bootstrap: unknown): SocketAddress | undefined {
  return socketAddress(get(bootstrap, "admin", "address"));
}

/** per_connection_buffer_limit_bytes of every listener whose filters include ext_proc. */
export function signingBufferLimits(bootstrap: unknown): number[] {
  return list(get(bootstrap, "static_resources", "listeners"))
    .filter((l) => findAll(l, (d) => d["@type"] === EXT_PROC_TYPE).length > 0)
    .map((l) => Number(get(l, "per_connection_buffer_limit_bytes")));
}

/**
 * What Envoy does with --config-yaml on top of --config-path: a protobuf merge, in which mappings
 * merge key by key, lists are appended and scalars are replaced.
 */
export function mergeBootstrap(base: unknown, overlay: unknown): unknown {
  if (Array.isArray(base) && Array.isArray(overlay)) return [...base, ...overlay];
  if (isDoc(base) && isDoc(overlay)) {
    const merged: Doc = { ...base };
    for (const [key, value] of Object.entries(overlay)) merged[key] = key in base ? mergeBootstrap(base[key], value) : value;
    return merged;
  }
  return overlay;
}
