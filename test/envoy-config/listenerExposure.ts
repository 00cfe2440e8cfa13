/**
 * Which listeners of an Envoy bootstrap are reachable beyond loopback, and whether that is safe.
 *
 * In a pod every container shares one network namespace: the workload reaches Envoy on 127.0.0.1.
 * A listener bound to 0.0.0.0 or the pod IP is reachable by every pod that can reach that IP, and
 * if it leads to countersign or AWS, each of those pods gets its requests signed with this pod's
 * AWS role. So a listener may bind beyond loopback only when it provably leads nowhere but to
 * Envoy's read-only admin paths: GET /ready and GET /stats/prometheus (the probe and scrape port,
 * envoy_stats). Anything else bound beyond loopback is reported: a CONNECT or HTTP proxy, a route
 * to any other cluster, another filter, a tcp_proxy, a prefix or regex match, a rewrite.
 *
 * The check fails closed: a listener counts as leading to signing unless every part of it is
 * understood (one HTTP connection manager with an inline route table and the router alone; routes
 * that are exact-path GET matches on the two paths to a STATIC cluster whose every endpoint is the
 * admin address, or direct responses).
 */
import { type ConfigProblem, isPlainObject, problem, type YamlPath } from "./configProblem.js";

/** The admin paths a listener bound beyond loopback may forward, GET only. */
export const EXPOSED_ADMIN_PATHS = ["/ready", "/stats/prometheus"] as const;

const HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "envoy.extensions.filters.http.router.v3.Router";

type Obj = Record<string, unknown>;

/** 127.0.0.0/8 or ::1. */
export function isLoopbackAddress(address: string): boolean {
  return address === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address);
}

function typeOf(any: unknown): string | undefined {
  const url = isPlainObject(any) ? any["@type"] : undefined;
  return typeof url === "string" ? url.slice(url.lastIndexOf("/") + 1) : undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function socketAddressOf(value: unknown): { address: string; port: unknown } | undefined {
  const sa = isPlainObject(value) ? value["socket_address"] : undefined;
  return isPlainObject(sa) ? { address: String(sa["address"]), port: sa["port_value"] } : undefined;
}

/** Every endpoint address of a cluster's load_assignment. */
function endpointAddresses(cluster: Obj): unknown[] {
  const endpoints = isPlainObject(cluster["load_assignment"]) ? list(cluster["load_assignment"]["endpoints"]) : [];
  return endpoints.flatMap((e) => (isPlainObject(e) ? list(e["lb_endpoints"]) : [])).map((lb) => (isPlainObject(lb) && isPlainObject(lb["endpoint"]) ? lb["endpoint"]["address"] : undefined));
}

/** Why `cluster` is not just the admin API (undefined: it is). */
function notAdminCluster(cluster: Obj | undefined, admin: { address: string; port: unknown } | undefined): string | undefined {
  if (cluster === undefined) return "routes to a cluster that is not defined";
  if (admin === undefined) return "routes to a cluster, but the bootstrap has no admin socket address to compare it with";
  if (cluster["cluster_type"] !== undefined || (cluster["type"] ?? "STATIC") !== "STATIC") return `routes to cluster "${String(cluster["name"])}", which is not STATIC`;
  const addresses = endpointAddresses(cluster);
  if (addresses.length === 0) return `routes to cluster "${String(cluster["name"])}", which has no endpoints`;
  for (const a of addresses) {
    const sa = socketAddressOf(a);
    if (!sa || sa.address !== admin.address || sa.port !== admin.port) {
      return `routes to cluster "${String(cluster["name"])}", whose endpoints are not only the admin API (${admin.address}:${String(admin.port)})`;
    }
  }
  return undefined;
}

/** Why a route is more than an exact-path GET to the admin API or a direct response (undefined: it is not). */
function notAdminReadRoute(route: Obj, clusters: ReadonlyMap<string, Obj>, admin: { address: string; port: unknown } | undefined): string | undefined {
  if (isPlainObject(route["direct_response"])) return undefined;
  const action = route["route"];
  if (!isPlainObject(action)) return "has a route that is neither a route to the admin API nor a direct response";
  const extra = Object.keys(action).filter((k) => k !== "cluster" && k !== "timeout");
  if (extra.length > 0) return `has a route with ${extra.join(", ")} (only cluster and timeout are understood here)`;
  const match = route["match"];
  if (!isPlainObject(match)) return "has a route without a match";
  const keys = Object.keys(match).filter((k) => k !== "path" && k !== "headers");
  if (keys.length > 0 || typeof match["path"] !== "string") return "forwards a route that does not match one whole path (path:)";
  if (!(EXPOSED_ADMIN_PATHS as readonly string[]).includes(match["path"])) return `forwards ${match["path"]}; only ${EXPOSED_ADMIN_PATHS.join(" and ")} may leave loopback`;
  const getOnly = list(match["headers"]).some(
    (h) => isPlainObject(h) && h["name"] === ":method" && isPlainObject(h["string_match"]) && h["string_match"]["exact"] === "GET" && h["invert_match"] !== true && h["treat_missing_header_as_empty"] === undefined,
  );
  if (!getOnly) return `forwards ${match["path"]} for any method; match :method exactly GET`;
  return notAdminCluster(typeof action["cluster"] === "string" ? clusters.get(action["cluster"]) : undefined, admin);
}

/** The admin API's socket address, if the bootstrap has one. */
export function adminAddressOf(doc: unknown): { address: string; port: unknown } | undefined {
  return isPlainObject(doc) && isPlainObject(doc["admin"]) ? socketAddressOf(doc["admin"]["address"]) : undefined;
}

/** Why a listener leads to more than the admin API's read-only paths (undefined: it does not). */
export function leadsBeyondAdminReads(listener: Obj, clusters: ReadonlyMap<string, Obj>, admin: { address: string; port: unknown } | undefined): string | undefined {
  if (listener["listener_filters"] !== undefined || listener["use_original_dst"] !== undefined) return "has listener filters or use_original_dst";
  if (listener["default_filter_chain"] !== undefined) return "has a default_filter_chain";
  const chains = list(listener["filter_chains"]);
  if (chains.length === 0) return "has no filter chains";
  for (const chain of chains) {
    const filters = isPlainObject(chain) ? list(chain["filters"]) : [];
    if (filters.length !== 1) return "has a filter chain with other network filters than one HTTP connection manager";
    const hcm = isPlainObject(filters[0]) ? filters[0]["typed_config"] : undefined;
    if (typeOf(hcm) !== HCM || !isPlainObject(hcm)) return "has a network filter that is not an HTTP connection manager (a tcp_proxy, …)";
    if (hcm["upgrade_configs"] !== undefined) return "accepts upgrades (CONNECT, websocket)";
    const filterTypes = list(hcm["http_filters"]).map((f) => (isPlainObject(f) ? typeOf(f["typed_config"]) : undefined));
    if (filterTypes.length !== 1 || filterTypes[0] !== ROUTER) return "runs other HTTP filters than the router (ext_proc, …)";
    const routeConfig = hcm["route_config"];
    if (!isPlainObject(routeConfig)) return "takes its routes from elsewhere (rds, scoped routes): they cannot be checked";
    for (const vhost of list(routeConfig["virtual_hosts"])) {
      for (const route of isPlainObject(vhost) ? list(vhost["routes"]) : []) {
        const why = isPlainObject(route) ? notAdminReadRoute(route, clusters, admin) : "has a route that is not a mapping";
        if (why !== undefined) return why;
      }
    }
  }
  return undefined;
}

/**
 * A problem for each listener bound beyond loopback that leads to anything but GET /ready and
 * GET /stats/prometheus on the admin API, and for an admin API bound beyond loopback.
 */
export function exposureProblems(doc: unknown): ConfigProblem[] {
  if (!isPlainObject(doc)) return [];
  const problems: ConfigProblem[] = [];
  const admin = adminAddressOf(doc);
  if (admin && !isLoopbackAddress(admin.address)) {
    problems.push(problem(["admin", "address", "socket_address", "address"], `the admin API binds ${admin.address}, beyond loopback: anyone who reaches it can stop Envoy, drain its listeners and read its config`));
  }
  const statics = isPlainObject(doc["static_resources"]) ? doc["static_resources"] : {};
  const clusters = new Map<string, Obj>();
  for (const c of list(statics["clusters"])) if (isPlainObject(c) && typeof c["name"] === "string") clusters.set(c["name"], c);
  list(statics["listeners"]).forEach((listener, i) => {
    if (!isPlainObject(listener)) return;
    // Its address and any additional_addresses: the first one beyond loopback, if any.
    const bound: { sa: { address: string; port: unknown } | undefined; path: YamlPath }[] = [
      { sa: socketAddressOf(listener["address"]), path: ["static_resources", "listeners", i, "address", "socket_address", "address"] },
      ...list(listener["additional_addresses"]).map((a, j) => ({
        sa: socketAddressOf(isPlainObject(a) ? a["address"] : undefined),
        path: ["static_resources", "listeners", i, "additional_addresses", j, "address", "socket_address", "address"] as YamlPath,
      })),
    ];
    const exposed = bound.find((b) => b.sa !== undefined && !isLoopbackAddress(b.sa.address));
    if (exposed?.sa === undefined) return;
    const { sa, path } = exposed;
    const why = leadsBeyondAdminReads(listener, clusters, admin);
    if (why === undefined) return;
    problems.push(
      problem(
        path,
        `listener "${String(listener["name"])}" binds ${sa.address}:${String(sa.port)}, beyond loopback, and ${why}: any pod that can reach this pod's IP could have requests signed with its AWS role; bind 127.0.0.1`,
      ),
    );
  });
  return problems;
}
