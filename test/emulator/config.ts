/**
 * Reads the settings the Envoy emulator needs from the shipped `envoy/envoy.yaml`, so that the
 * configuration under test is the one that ships. The YAML is searched generically (by `@type`
 * and by field name), not by fixed paths; anything absent takes Envoy's default.
 *
 * Defaults (Envoy API protos): message_timeout 200 ms, max_message_timeout 0 (overrides
 * disabled), failure_mode_allow false, status_on_error 500, processing_mode fields DEFAULT/NONE
 * (headers are then SENT, bodies not, trailers not), per_connection_buffer_limit_bytes 1 MiB,
 * max_request_headers_kb 60, max_headers_count 100, route timeout 15 s.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { statusCodeNumber } from "./httpStatus.js";
import { DEFAULT_MUTATION_RULES, type MutationRules } from "./mutationRules.js";
import { type ProcessingMode, toProcessingMode } from "./processingMode.js";

export interface StringMatcher {
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
  regex?: string;
  ignoreCase: boolean;
}

export interface ExtProcSettings {
  processingMode: ProcessingMode;
  allowModeOverride: boolean;
  allowedOverrideModes: ProcessingMode[];
  failureModeAllow: boolean;
  messageTimeoutMs: number;
  maxMessageTimeoutMs: number;
  statusOnError: number;
  disableImmediateResponse: boolean;
  sendBodyWithoutWaitingForHeaderResponse: boolean;
  observabilityMode: boolean;
  mutationRules: MutationRules;
  forwardRules: { allowedHeaders: StringMatcher[]; disallowedHeaders: StringMatcher[] };
  /** `grpc_service.envoy_grpc.cluster_name` or `google_grpc.target_uri`, for information. */
  grpcService: string | null;
}

/** An internal listener whose HCM runs ext_proc (tls_decap, plain_sign). */
export interface SigningListenerSettings {
  name: string | null;
  /** per_connection_buffer_limit_bytes: a BUFFERED body above it gets 413. */
  bufferLimitBytes: number;
  maxRequestHeadersKb: number;
  maxHeadersCount: number;
  /** The route timeout → x-envoy-expected-rq-timeout-ms (0 → not added). */
  routeTimeoutMs: number;
  /** The router's suppress_envoy_headers. */
  suppressEnvoyHeaders: boolean;
  /** HCM strip_any_host_port: the port leaves :authority before any filter runs. */
  stripAnyHostPort: boolean;
}

/** The router of a listener that forwards to a signing listener (connect_in, endpoint_in). */
export interface ForwardingRoute {
  routeTimeoutMs: number;
  suppressEnvoyHeaders: boolean;
}

export interface EndpointListenerSettings extends ForwardingRoute {
  address: string | null;
  port: number | null;
  hostRewriteLiteral: string | null;
  appendXForwardedHost: boolean;
}

export interface ConnectListenerSettings {
  address: string | null;
  port: number | null;
  /** The route plain-HTTP proxy requests (absolute-form) take, or null: they get 404. */
  absoluteForm: ForwardingRoute | null;
}

export interface EmulatorConfig {
  source: string;
  extProc: ExtProcSettings;
  /** The signing listener behind CONNECT (terminates TLS). */
  tunnel: SigningListenerSettings;
  /** The plaintext signing listener (endpoint mode, absolute-form proxy requests). */
  plain: SigningListenerSettings;
  connectListener: ConnectListenerSettings | null;
  endpointListener: EndpointListenerSettings | null;
  warnings: string[];
}

type Obj = Record<string, unknown>;

const EXT_PROC_TYPE = "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor";
const ROUTER_TYPE = "envoy.extensions.filters.http.router.v3.Router";
const HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const DOWNSTREAM_TLS_TYPE = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

export const ENVOY_DEFAULTS = Object.freeze({
  messageTimeoutMs: 200,
  statusOnError: 500,
  bufferLimitBytes: 1024 * 1024,
  maxRequestHeadersKb: 60,
  maxHeadersCount: 100,
  routeTimeoutMs: 15_000,
});

export function loadEmulatorConfig(envoyYamlPath: string): EmulatorConfig {
  return parseEmulatorConfig(readFileSync(envoyYamlPath, "utf8"), envoyYamlPath);
}

export function parseEmulatorConfig(yamlText: string, source = "<inline>"): EmulatorConfig {
  const root: unknown = parse(yamlText);
  const warnings: string[] = [];
  const extProcConfigs = findAll(root, (o) => typeIs(o, EXT_PROC_TYPE));
  const extProcRaw = extProcConfigs[0];
  if (!extProcRaw) throw new Error(`${source}: no typed_config with @type ${EXT_PROC_TYPE}`);
  if (extProcConfigs.slice(1).some((c) => JSON.stringify(c) !== JSON.stringify(extProcRaw))) {
    warnings.push("several ext_proc filters with different settings; the first one is emulated");
  }

  const listeners = findAll(root, (o) => Array.isArray(o["filter_chains"]));
  const signing = listeners.filter((l) => extProcConfigs.some((c) => contains(l, c)));
  const terminatesTls = (l: Obj): boolean => findAll(l, (o) => typeIs(o, DOWNSTREAM_TLS_TYPE)).length > 0;
  const tunnelRaw = signing.find(terminatesTls) ?? signing[0];
  const plainRaw = signing.find((l) => !terminatesTls(l)) ?? signing[0];
  if (!signing.some(terminatesTls)) warnings.push("no ext_proc listener terminates TLS; CONNECT tunnels use the plain one");
  if (!signing.some((l) => !terminatesTls(l))) warnings.push("no plaintext ext_proc listener; the TLS one's settings are used");

  const endpoint = listeners.find((l) => findAll(l, (o) => "host_rewrite_literal" in o).length > 0);
  const connect = listeners.find(
    (l) => findAll(l, (o) => String(o["upgrade_type"] ?? "").toUpperCase() === "CONNECT").length > 0,
  );

  return {
    source,
    extProc: readExtProc(extProcRaw, source),
    tunnel: readSigningListener(tunnelRaw ?? {}, source),
    plain: readSigningListener(plainRaw ?? {}, source),
    connectListener: connect ? readConnect(connect, source) : null,
    endpointListener: endpoint ? readEndpoint(endpoint, source) : null,
    warnings,
  };
}

/** Partial settings applied on top of a loaded config (tests change one thing at a time). */
export interface EmulatorConfigOverrides {
  extProc?: Partial<Omit<ExtProcSettings, "processingMode" | "mutationRules">> & {
    processingMode?: Partial<ProcessingMode>;
    mutationRules?: Partial<MutationRules>;
  };
  /** Applied to both signing listeners. */
  bufferLimitBytes?: number;
  tunnel?: Partial<SigningListenerSettings>;
  plain?: Partial<SigningListenerSettings>;
  endpointListener?: Partial<EndpointListenerSettings>;
}

export function withOverrides(config: EmulatorConfig, overrides: EmulatorConfigOverrides): EmulatorConfig {
  const { processingMode, mutationRules, ...extProcRest } = overrides.extProc ?? {};
  const limit = overrides.bufferLimitBytes === undefined ? {} : { bufferLimitBytes: overrides.bufferLimitBytes };
  const baseEndpoint: EndpointListenerSettings = config.endpointListener ?? {
    address: "127.0.0.1",
    port: null,
    hostRewriteLiteral: null,
    appendXForwardedHost: false,
    routeTimeoutMs: ENVOY_DEFAULTS.routeTimeoutMs,
    suppressEnvoyHeaders: false,
  };
  return {
    ...config,
    extProc: {
      ...config.extProc,
      ...extProcRest,
      processingMode: { ...config.extProc.processingMode, ...processingMode },
      mutationRules: { ...config.extProc.mutationRules, ...mutationRules },
    },
    tunnel: { ...config.tunnel, ...limit, ...overrides.tunnel },
    plain: { ...config.plain, ...limit, ...overrides.plain },
    endpointListener: overrides.endpointListener ? { ...baseEndpoint, ...overrides.endpointListener } : config.endpointListener,
    warnings: [...config.warnings],
  };
}

// --- ext_proc typed_config ------------------------------------------------------------------

function readExtProc(raw: Obj, source: string): ExtProcSettings {
  const rules = asObj(raw["mutation_rules"]) ?? {};
  const forward = asObj(raw["forward_rules"]) ?? {};
  const grpc = asObj(raw["grpc_service"]) ?? {};
  const statusOnError = asObj(raw["status_on_error"])?.["code"];
  const statusCode = statusOnError === undefined ? 0 : statusCodeNumber(statusOnError);
  return {
    processingMode: toProcessingMode(raw["processing_mode"]),
    allowModeOverride: toBool(raw["allow_mode_override"]),
    allowedOverrideModes: asArray(raw["allowed_override_modes"]).map(toProcessingMode),
    failureModeAllow: toBool(raw["failure_mode_allow"]),
    messageTimeoutMs: durationMs(raw["message_timeout"], source, "message_timeout") ?? ENVOY_DEFAULTS.messageTimeoutMs,
    maxMessageTimeoutMs: durationMs(raw["max_message_timeout"], source, "max_message_timeout") ?? 0,
    // toErrorCode(): an unset/invalid code means 500.
    statusOnError: statusCode >= 200 && statusCode < 600 ? statusCode : ENVOY_DEFAULTS.statusOnError,
    disableImmediateResponse: toBool(raw["disable_immediate_response"]),
    sendBodyWithoutWaitingForHeaderResponse: toBool(raw["send_body_without_waiting_for_header_response"]),
    observabilityMode: toBool(raw["observability_mode"]),
    mutationRules: {
      ...DEFAULT_MUTATION_RULES,
      allowAllRouting: toBool(rules["allow_all_routing"]),
      allowEnvoy: toBool(rules["allow_envoy"]),
      disallowSystem: toBool(rules["disallow_system"]),
      disallowAll: toBool(rules["disallow_all"]),
      disallowIsError: toBool(rules["disallow_is_error"]),
      allowExpression: regexOf(rules["allow_expression"]),
      disallowExpression: regexOf(rules["disallow_expression"]),
    },
    forwardRules: {
      allowedHeaders: matchersOf(forward["allowed_headers"]),
      disallowedHeaders: matchersOf(forward["disallowed_headers"]),
    },
    grpcService:
      stringOf(asObj(grpc["envoy_grpc"])?.["cluster_name"]) ?? stringOf(asObj(grpc["google_grpc"])?.["target_uri"]) ?? null,
  };
}

function readSigningListener(listener: Obj, source: string): SigningListenerSettings {
  const hcm = findAll(listener, (o) => typeIs(o, HCM_TYPE))[0] ?? {};
  return {
    name: stringOf(listener["name"]) ?? null,
    bufferLimitBytes: toNumber(listener["per_connection_buffer_limit_bytes"]) ?? ENVOY_DEFAULTS.bufferLimitBytes,
    maxRequestHeadersKb: toNumber(hcm["max_request_headers_kb"]) ?? ENVOY_DEFAULTS.maxRequestHeadersKb,
    maxHeadersCount:
      toNumber(asObj(hcm["common_http_protocol_options"])?.["max_headers_count"]) ?? ENVOY_DEFAULTS.maxHeadersCount,
    ...forwardingRoute(hcm, (o) => isRouteAction(o), source),
    stripAnyHostPort: toBool(hcm["strip_any_host_port"]),
  };
}

function readEndpoint(listener: Obj, source: string): EndpointListenerSettings {
  const route = findAll(listener, (o) => "host_rewrite_literal" in o)[0] ?? {};
  return {
    ...socketAddress(listener),
    hostRewriteLiteral: stringOf(route["host_rewrite_literal"]) ?? null,
    appendXForwardedHost: toBool(route["append_x_forwarded_host"]),
    ...forwardingRoute(listener, (o) => o === route, source),
  };
}

/** connect_in: CONNECT goes to the tunnel; a route matching by prefix/path takes absolute-form. */
function readConnect(listener: Obj, source: string): ConnectListenerSettings {
  const plainRoute = findAll(listener, (o) => {
    const match = asObj(o["match"]);
    return asObj(o["route"]) !== undefined && match !== undefined && !("connect_matcher" in match);
  })[0];
  const action = asObj(plainRoute?.["route"]);
  return {
    ...socketAddress(listener),
    absoluteForm: action ? forwardingRoute(listener, (o) => o === action, source) : null,
  };
}

/** The router settings of `scope` and the `timeout` of the first route action `isAction` picks. */
function forwardingRoute(scope: Obj, isAction: (o: Obj) => boolean, source: string): ForwardingRoute {
  const action = findAll(scope, isAction)[0];
  const router = findAll(scope, (o) => typeIs(o, ROUTER_TYPE))[0];
  return {
    routeTimeoutMs: durationMs(action?.["timeout"], source, "route timeout") ?? ENVOY_DEFAULTS.routeTimeoutMs,
    suppressEnvoyHeaders: toBool(router?.["suppress_envoy_headers"]),
  };
}

function isRouteAction(o: Obj): boolean {
  return "cluster" in o || "cluster_header" in o || "weighted_clusters" in o;
}

function socketAddress(listener: Obj): { address: string | null; port: number | null } {
  const sa = asObj(asObj(listener["address"])?.["socket_address"]);
  return { address: stringOf(sa?.["address"]) ?? null, port: toNumber(sa?.["port_value"]) ?? null };
}

function matchersOf(list: unknown): StringMatcher[] {
  return asArray(asObj(list)?.["patterns"]).map((m) => ({
    exact: stringOf(m["exact"]),
    prefix: stringOf(m["prefix"]),
    suffix: stringOf(m["suffix"]),
    contains: stringOf(m["contains"]),
    regex: stringOf(asObj(m["safe_regex"])?.["regex"]),
    ignoreCase: toBool(m["ignore_case"]),
  }));
}

function regexOf(v: unknown): string | null {
  return stringOf(asObj(v)?.["regex"]) ?? null;
}

// --- generic YAML helpers -------------------------------------------------------------------

function findAll(node: unknown, predicate: (o: Obj) => boolean): Obj[] {
  const found: Obj[] = [];
  const visit = (n: unknown): void => {
    if (Array.isArray(n)) {
      n.forEach(visit);
    } else if (typeof n === "object" && n !== null) {
      const o = n as Obj;
      if (predicate(o)) found.push(o);
      Object.values(o).forEach(visit);
    }
  };
  visit(node);
  return found;
}

function contains(scope: unknown, target: Obj): boolean {
  return findAll(scope, (o) => o === target).length > 0;
}

function typeIs(o: Obj, fullName: string): boolean {
  const t = o["@type"];
  return typeof t === "string" && (t === fullName || t.endsWith(`/${fullName}`));
}

function asObj(v: unknown): Obj | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

function asArray(v: unknown): Obj[] {
  return Array.isArray(v) ? v.map((x) => asObj(x) ?? {}) : [];
}

function stringOf(v: unknown): string | undefined {
  return typeof v === "string" ? v : undefined;
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && /^\d+$/.test(v)) return Number(v);
  return undefined;
}

function toBool(v: unknown): boolean {
  if (typeof v === "boolean") return v;
  // BoolValue wrappers may be written as {value: true}.
  return asObj(v)?.["value"] === true;
}

/** google.protobuf.Duration in proto3 JSON ("2s", "0.250s") or as {seconds, nanos}. */
export function durationMs(v: unknown, source: string, field: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") {
    const m = /^(\d+)(?:\.(\d{1,9}))?s$/.exec(v.trim());
    if (!m) throw new Error(`${source}: ${field} "${v}" is not a protobuf Duration (e.g. "2s", "0.250s")`);
    const fraction = (m[2] ?? "").padEnd(9, "0");
    return Number(m[1]) * 1000 + Math.floor(Number(fraction) / 1e6);
  }
  const o = asObj(v);
  if (o) return (toNumber(o["seconds"]) ?? 0) * 1000 + Math.floor((toNumber(o["nanos"]) ?? 0) / 1e6);
  throw new Error(`${source}: ${field} has an unexpected form`);
}
