/**
 * Checks on an Envoy bootstrap that Envoy cannot make: the guarantees countersign relies on
 * (ext_proc fails closed, sees only headers unless it asks for the body, nothing after it
 * changes what it signed, and nothing beyond loopback reaches a signing listener:
 * listenerExposure.ts), and names that must refer to something where Envoy does not check it
 * (`envoy --mode validate` accepts an ext_proc grpc_service naming an undefined cluster, an
 * internal address naming a listener that is not internal, two listeners of one name).
 *
 * Works on the plain YAML document. Envoy (envoyValidate.ts) rejects what is malformed; where
 * Envoy's parser is lenient these rules are strict instead, so that they never read a document
 * differently from Envoy: a single value where a list belongs (Envoy reads a list of one),
 * camelCase field names (Envoy accepts the JSON names), a type URL with another prefix than
 * type.googleapis.com/ (Envoy reads the name after the last "/"), and a string where a boolean
 * they check belongs (Envoy reads "true", "yes" and YAML's unquoted on/yes as true) are reported.
 */
import { type ConfigProblem, isPlainObject, problem, type YamlPath } from "./configProblem.js";
import { exposureProblems } from "./listenerExposure.js";

export const TYPES = {
  hcm: "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  extProc: "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
  extProcPerRoute: "envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute",
  routeFilterConfig: "envoy.config.route.v3.FilterConfig",
  dfpFilter: "envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
  dfpPerRoute: "envoy.extensions.filters.http.dynamic_forward_proxy.v3.PerRouteConfig",
  dfpCluster: "envoy.extensions.clusters.dynamic_forward_proxy.v3.ClusterConfig",
  router: "envoy.extensions.filters.http.router.v3.Router",
  internalListenerBootstrap: "envoy.extensions.bootstrap.internal_listener.v3.InternalListener",
  httpProtocolOptions: "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
} as const;

/** Request body buffer limit countersign's policy assumes by default (limits.max_buffered_body_bytes). */
export const EXPECTED_BUFFER_LIMIT_BYTES = 1_048_576;

/** Route fields that change the host or the path after routing, i.e. after ext_proc signed. */
const REWRITING_ROUTE_FIELDS = [
  "host_rewrite_literal",
  "host_rewrite_header",
  "host_rewrite_path_regex",
  "auto_host_rewrite",
  "prefix_rewrite",
  "regex_rewrite",
  "path_rewrite_policy",
] as const;

/**
 * Repeated fields these rules walk. Envoy reads a single value written there as a list of one;
 * these rules would not look into it.
 */
const LISTS_WALKED = new Set([
  "bootstrap_extensions",
  "listeners",
  "clusters",
  "filter_chains",
  "filters",
  "http_filters",
  "virtual_hosts",
  "routes",
  "request_headers_to_add",
  "request_headers_to_remove",
]);

/** A protobuf JSON name (lowerCamelCase), which Envoy accepts as well as the proto field name. */
const JSON_FIELD_NAME = /^[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)+$/;

/** Request headers the router must not add or remove on a signing HCM (they are signed). */
const SIGNED_HEADER = /^(host|:authority|:path|:method|authorization|x-amz-.*)$/i;

interface Named {
  readonly value: Record<string, unknown>;
  readonly path: YamlPath;
}

export function checkSemantics(doc: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!isPlainObject(doc)) return [problem([], "the bootstrap must be a mapping")];
  checkWrittenAsTheseRulesReadIt(doc, problems);
  const clusters = namedEntries(doc, ["static_resources", "clusters"], "cluster", problems);
  const listeners = namedEntries(doc, ["static_resources", "listeners"], "listener", problems);
  checkReferences(doc, clusters, listeners, problems);
  checkInternalListeners(doc, listeners, problems);
  problems.push(...exposureProblems(doc));
  for (const [name, listener] of listeners) {
    forEachHcm(listener, (hcm) => {
      const filters = httpFilters(hcm.value);
      if (filters.some((f) => typeOf(f.value["typed_config"]) === TYPES.extProc)) {
        checkSigningHcm(name, listener, hcm, clusters, problems);
      }
    });
  }
  return unique(problems);
}

/** Each finding once (a rule reached from two listeners reports a shared cluster once). */
function unique(problems: readonly ConfigProblem[]): ConfigProblem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\n${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** What Envoy would read one way and these rules another (see the file comment). */
function checkWrittenAsTheseRulesReadIt(doc: Record<string, unknown>, problems: ConfigProblem[]): void {
  for (const { value, path } of walk(doc, [])) {
    for (const [key, child] of Object.entries(value)) {
      if (LISTS_WALKED.has(key) && child !== null && !Array.isArray(child)) {
        problems.push(problem([...path, key], `expected a list, got ${describe(child)}: Envoy reads it as a list of one, which countersign's rules do not check; write a list`));
      }
      if (JSON_FIELD_NAME.test(key)) {
        const protoName = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
        problems.push(problem([...path, key], `"${key}" is a JSON field name: Envoy accepts it, but countersign's rules read proto field names; write "${protoName}"`));
      }
    }
  }
}

function describe(value: unknown): string {
  if (isPlainObject(value)) return "a mapping";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${JSON.stringify(value)}`;
}

// ---------------------------------------------------------------------------------------------
// Navigation helpers

function get(value: unknown, ...keys: readonly (string | number)[]): unknown {
  let current = value;
  for (const key of keys) {
    if (typeof key === "number") current = Array.isArray(current) ? current[key] : undefined;
    else current = isPlainObject(current) ? current[key] : undefined;
  }
  return current;
}

function objectsIn(value: unknown, path: YamlPath): Named[] {
  if (!Array.isArray(value)) return [];
  return value.flatMap((item, i) => (isPlainObject(item) ? [{ value: item, path: [...path, i] }] : []));
}

/** The message name of an Any value's "@type" (as Envoy reads it: what follows the last "/"), or undefined. */
function typeOf(any: unknown): string | undefined {
  const url = get(any, "@type");
  return typeof url === "string" ? url.slice(url.lastIndexOf("/") + 1) : undefined;
}

function namedEntries(
  doc: Record<string, unknown>,
  keys: readonly string[],
  kind: string,
  problems: ConfigProblem[],
): Map<string, Named> {
  const byName = new Map<string, Named>();
  for (const entry of objectsIn(get(doc, ...keys), keys)) {
    const name = entry.value["name"];
    if (typeof name !== "string") continue;
    if (byName.has(name)) problems.push(problem([...entry.path, "name"], `${kind} "${name}" is defined twice`));
    else byName.set(name, entry);
  }
  return byName;
}

/** Every mapping in the document with its path (shared YAML aliases are visited at each place). */
function* walk(value: unknown, path: YamlPath, ancestors: Set<unknown> = new Set()): Generator<Named> {
  if (ancestors.has(value)) return;
  if (Array.isArray(value)) {
    ancestors.add(value);
    for (const [i, item] of value.entries()) yield* walk(item, [...path, i], ancestors);
    ancestors.delete(value);
  } else if (isPlainObject(value)) {
    yield { value, path };
    ancestors.add(value);
    for (const [key, child] of Object.entries(value)) yield* walk(child, [...path, key], ancestors);
    ancestors.delete(value);
  }
}

function forEachHcm(listener: Named, visit: (hcm: Named) => void): void {
  for (const chain of objectsIn(listener.value["filter_chains"], [...listener.path, "filter_chains"])) {
    for (const filter of objectsIn(chain.value["filters"], [...chain.path, "filters"])) {
      const config = filter.value["typed_config"];
      if (typeOf(config) === TYPES.hcm && isPlainObject(config)) {
        visit({ value: config, path: [...filter.path, "typed_config"] });
      }
    }
  }
}

function httpFilters(hcm: Record<string, unknown>): Named[] {
  return objectsIn(hcm["http_filters"], ["http_filters"]);
}

function routesOf(hcm: Named): Named[] {
  const vhosts = objectsIn(get(hcm.value, "route_config", "virtual_hosts"), [...hcm.path, "route_config", "virtual_hosts"]);
  return vhosts.flatMap((vhost) => objectsIn(vhost.value["routes"], [...vhost.path, "routes"]));
}

// ---------------------------------------------------------------------------------------------
// References between names

function checkReferences(
  doc: Record<string, unknown>,
  clusters: ReadonlyMap<string, Named>,
  listeners: ReadonlyMap<string, Named>,
  problems: ConfigProblem[],
): void {
  const needCluster = (name: unknown, path: YamlPath, what: string): void => {
    if (typeof name === "string" && !clusters.has(name)) {
      problems.push(problem(path, `${what} names cluster "${name}", which is not defined in static_resources.clusters`));
    }
  };
  for (const { value, path } of walk(doc, [])) {
    const envoyGrpc = value["envoy_grpc"];
    if (isPlainObject(envoyGrpc)) needCluster(envoyGrpc["cluster_name"], [...path, "envoy_grpc", "cluster_name"], "grpc_service");
    const internal = value["envoy_internal_address"];
    if (isPlainObject(internal)) {
      const target = internal["server_listener_name"];
      const listener = typeof target === "string" ? listeners.get(target) : undefined;
      if (typeof target === "string" && (listener === undefined || !("internal_listener" in listener.value))) {
        problems.push(
          problem(
            [...path, "envoy_internal_address", "server_listener_name"],
            `"${target}" is not an internal listener (a listener with internal_listener: {})`,
          ),
        );
      }
    }
  }
  for (const listener of listeners.values()) {
    forEachHcm(listener, (hcm) => {
      for (const route of routesOf(hcm)) {
        const action = route.value["route"];
        if (!isPlainObject(action)) continue;
        needCluster(action["cluster"], [...route.path, "route", "cluster"], "route");
        for (const weighted of objectsIn(get(action, "weighted_clusters", "clusters"), [...route.path, "route", "weighted_clusters", "clusters"])) {
          needCluster(weighted.value["name"], [...weighted.path, "name"], "weighted cluster");
        }
      }
    });
  }
}

function checkInternalListeners(doc: Record<string, unknown>, listeners: ReadonlyMap<string, Named>, problems: ConfigProblem[]): void {
  const internal = [...listeners.values()].filter((l) => "internal_listener" in l.value);
  if (internal.length === 0) return;
  const extensions = objectsIn(doc["bootstrap_extensions"], ["bootstrap_extensions"]);
  if (!extensions.some((e) => typeOf(e.value["typed_config"]) === TYPES.internalListenerBootstrap)) {
    problems.push(
      problem(["bootstrap_extensions"], "internal listeners need the envoy.bootstrap.internal_listener bootstrap extension"),
    );
  }
  for (const listener of internal) {
    if ("address" in listener.value) {
      problems.push(problem([...listener.path, "address"], "an internal listener must not have an address"));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The HCMs that sign (contain ext_proc)

function checkSigningHcm(
  listenerName: string,
  listener: Named,
  hcm: Named,
  clusters: ReadonlyMap<string, Named>,
  problems: ConfigProblem[],
): void {
  const at = (path: YamlPath): YamlPath => [...hcm.path, ...path];
  const filters = httpFilters(hcm.value).map((f) => ({ ...f, path: at(f.path) }));
  const kinds = filters.map((f) => typeOf(f.value["typed_config"]));
  const extProcIndex = kinds.indexOf(TYPES.extProc);
  const routerIndex = kinds.indexOf(TYPES.router);
  const dfpIndex = kinds.indexOf(TYPES.dfpFilter);
  const where = `listener "${listenerName}"`;

  filters.forEach((filter, i) => {
    if (kinds[i] !== TYPES.extProc) return;
    checkExtProcConfig(filter, clusters, problems);
    const disabled = filter.value["disabled"];
    if (disabled !== undefined && disabled !== false) {
      problems.push(problem([...filter.path, "disabled"], `${where}: ext_proc must not be disabled (got ${JSON.stringify(disabled)}): requests would leave with the placeholder signature`));
    }
  });
  if (routerIndex !== filters.length - 1) {
    problems.push(problem(at(["http_filters"]), `${where}: the router must be the last HTTP filter`));
  }
  if (dfpIndex !== -1 && dfpIndex < extProcIndex) {
    problems.push(problem(at(["http_filters"]), `${where}: ext_proc must come before dynamic_forward_proxy`));
  }
  filters.slice(extProcIndex + 1).forEach((filter, offset) => {
    const kind = kinds[extProcIndex + 1 + offset];
    if (kind !== TYPES.dfpFilter && kind !== TYPES.router && kind !== TYPES.extProc) {
      problems.push(
        problem(filter.path, `${where}: filter "${String(filter.value["name"])}" runs after ext_proc and may change the signed request; only dynamic_forward_proxy and router may follow it`),
      );
    }
  });

  if (!isPlainObject(hcm.value["route_config"])) {
    problems.push(problem(at([]), `${where}: a signing HCM needs an inline route_config (so rewrites can be ruled out)`));
  }
  checkSigningRoutes(hcm, where, problems);
  if (dfpIndex !== -1) checkDfpPairing(hcm, filters[dfpIndex], where, clusters, problems);

  const limit = listener.value["per_connection_buffer_limit_bytes"];
  if (limit !== EXPECTED_BUFFER_LIMIT_BYTES) {
    problems.push(
      problem(
        [...listener.path, "per_connection_buffer_limit_bytes"],
        `${where}: the request body buffer limit must be ${EXPECTED_BUFFER_LIMIT_BYTES} (countersign's limits.max_buffered_body_bytes), got ${limit === undefined ? "nothing (set it explicitly)" : JSON.stringify(limit)}`,
      ),
    );
  }
}

function checkExtProcConfig(filter: Named, clusters: ReadonlyMap<string, Named>, problems: ConfigProblem[]): void {
  const config = filter.value["typed_config"];
  if (!isPlainObject(config)) return;
  const at = (...keys: string[]): YamlPath => [...filter.path, "typed_config", ...keys];
  const fail = (path: YamlPath, message: string): void => {
    problems.push(problem(path, `ext_proc: ${message}`));
  };
  /** Absent or the boolean false; anything else Envoy might read as true. */
  const mustBeOff = (key: string, why: string): void => {
    const value = config[key];
    if (value === undefined || value === false) return;
    fail(at(key), value === true ? `${key} must not be true: ${why}` : `${key} must be false or absent, got ${describe(value)}, which Envoy may read as true: ${why}`);
  };
  mustBeOff("failure_mode_allow", "a countersign failure would let the request out with the placeholder signature");
  mustBeOff("observability_mode", "Envoy would ignore countersign's answers");
  mustBeOff("disable_immediate_response", "countersign refuses requests with immediate responses");
  if (config["allow_mode_override"] !== true) {
    fail(at("allow_mode_override"), "allow_mode_override must be true: countersign asks for the body with mode_override when it must hash it");
  }
  if (!("message_timeout" in config)) fail(at(), "message_timeout must be set (the 200 ms default is too short to hash a buffered body)");

  const mode = config["processing_mode"];
  const modeOf = (key: string): unknown => (isPlainObject(mode) ? mode[key] : undefined);
  const expect = (key: string, allowed: readonly unknown[], why: string): void => {
    const value = modeOf(key);
    if (!allowed.includes(value)) {
      fail(at("processing_mode", key), `${key} must be ${allowed.filter((a) => a !== undefined).join(" or ")} (${why}), got ${value === undefined ? "the default" : String(value)}`);
    }
  };
  expect("request_header_mode", ["SEND"], "countersign signs from the request headers");
  expect("request_body_mode", ["NONE", undefined], "bodies are sent only when countersign asks; BUFFERED by default would send every body");
  expect("response_header_mode", ["SKIP"], "countersign does not look at responses");
  expect("response_body_mode", ["NONE", undefined], "countersign does not look at responses");
  expect("request_trailer_mode", ["SKIP", "DEFAULT", undefined], "countersign does not use trailers");
  expect("response_trailer_mode", ["SKIP", "DEFAULT", undefined], "countersign does not use trailers");

  const clusterName = get(config, "grpc_service", "envoy_grpc", "cluster_name");
  const cluster = typeof clusterName === "string" ? clusters.get(clusterName) : undefined;
  if (cluster !== undefined && !speaksHttp2(cluster.value)) {
    problems.push(problem([...cluster.path], `cluster "${String(clusterName)}" serves ext_proc (gRPC) and must use HTTP/2 (explicit_http_config.http2_protocol_options)`));
  }
}

function speaksHttp2(cluster: Record<string, unknown>): boolean {
  const options = get(cluster, "typed_extension_protocol_options", TYPES.httpProtocolOptions);
  return (
    isPlainObject(get(options, "explicit_http_config", "http2_protocol_options")) ||
    isPlainObject(cluster["http2_protocol_options"])
  );
}

/** Nothing on the routes of a signing HCM may change the request after ext_proc signed it, or turn ext_proc off. */
function checkSigningRoutes(hcm: Named, where: string, problems: ConfigProblem[]): void {
  for (const route of routesOf(hcm)) {
    const action = route.value["route"];
    if (isPlainObject(action)) {
      for (const key of REWRITING_ROUTE_FIELDS) {
        if (key in action && !(key === "auto_host_rewrite" && action[key] === false)) {
          problems.push(problem([...route.path, "route", key], `${where}: ${key} changes the request after ext_proc signed it (AWS would answer SignatureDoesNotMatch)`));
        }
      }
    }
  }
  for (const { value, path } of walk(hcm.value["route_config"], [...hcm.path, "route_config"])) {
    for (const header of objectsIn(value["request_headers_to_add"], [...path, "request_headers_to_add"])) {
      const key = get(header.value, "header", "key");
      if (typeof key === "string" && SIGNED_HEADER.test(key)) {
        problems.push(problem(header.path, `${where}: adding "${key}" after ext_proc changes a signed header`));
      }
    }
    const removed = value["request_headers_to_remove"];
    if (Array.isArray(removed)) {
      removed.forEach((key, i) => {
        if (typeof key === "string" && SIGNED_HEADER.test(key)) {
          problems.push(problem([...path, "request_headers_to_remove", i], `${where}: removing "${key}" after ext_proc changes a signed header`));
        }
      });
    }
    const perFilter = value["typed_per_filter_config"];
    if (isPlainObject(perFilter)) {
      for (const [filterName, config] of Object.entries(perFilter)) {
        const kind = typeOf(config);
        if (kind === TYPES.dfpPerRoute && (get(config, "host_rewrite_literal") !== undefined || get(config, "host_rewrite_header") !== undefined)) {
          problems.push(problem([...path, "typed_per_filter_config", filterName], `${where}: a dynamic_forward_proxy host rewrite changes the host after ext_proc signed it`));
        }
        if (kind === TYPES.extProcPerRoute || kind === TYPES.routeFilterConfig) {
          problems.push(problem([...path, "typed_per_filter_config", filterName], `${where}: per-route filter settings (${kind}) can turn ext_proc off or change what it is sent; countersign must see every request the same way`));
        }
      }
    }
  }
}

/** The DFP filter and the clusters it routes to must use one DNS cache, configured identically. */
function checkDfpPairing(
  hcm: Named,
  dfpFilter: Named | undefined,
  where: string,
  clusters: ReadonlyMap<string, Named>,
  problems: ConfigProblem[],
): void {
  const filterCache = get(dfpFilter?.value, "typed_config", "dns_cache_config");
  for (const route of routesOf(hcm)) {
    const name = get(route.value, "route", "cluster");
    const cluster = typeof name === "string" ? clusters.get(name) : undefined;
    if (cluster === undefined) continue;
    const clusterType = get(cluster.value, "cluster_type", "typed_config");
    if (typeOf(clusterType) !== TYPES.dfpCluster) {
      problems.push(problem([...route.path, "route", "cluster"], `${where}: routes to "${String(name)}", which is not a dynamic_forward_proxy cluster`));
      continue;
    }
    if (JSON.stringify(get(clusterType, "dns_cache_config")) !== JSON.stringify(filterCache)) {
      problems.push(problem([...cluster.path, "cluster_type"], `cluster "${String(name)}": dns_cache_config differs from the dynamic_forward_proxy filter's in ${where}`));
    }
  }
}
