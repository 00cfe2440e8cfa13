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

export interface EndpointListenerSettings {
  address: string | null;
  port: number | null;
  hostRewriteLiteral: string | null;
  appendXForwardedHost: boolean;
  /** The outer route's timeout: its router adds x-envoy-expected-rq-timeout-ms (0 → none). */
  routeTimeoutMs: number;
  suppressEnvoyHeaders: boolean;
}

export interface EmulatorConfig {
  source: string;
  extProc: ExtProcSettings;
  /** per_connection_buffer_limit_bytes of the listener running ext_proc (413 above it). */
  bufferLimitBytes: number;
  maxRequestHeadersKb: number;
  maxHeadersCount: number;
  /** The ext_proc listener's route timeout → x-envoy-expected-rq-timeout-ms (0 → not added). */
  routeTimeoutMs: number;
  suppressEnvoyHeaders: boolean;
  connectListener: { address: string | null; port: number | null } | null;
  endpointListener: EndpointListenerSettings | null;
  warnings: string[];
}

type Obj = Record<string, unknown>;

const EXT_PROC_TYPE = "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor";
const ROUTER_TYPE = "envoy.extensions.filters.http.router.v3.Router";
const HCM_TYPE = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";

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
  const extProcListener = listeners.find((l) => contains(l, extProcRaw));
  const hcm = findAll(extProcListener ?? root, (o) => typeIs(o, HCM_TYPE)).find((h) => contains(h, extProcRaw));
  const bufferLimits = listeners
    .filter((l) => extProcConfigs.some((c) => contains(l, c)))
    .map((l) => toNumber(l["per_connection_buffer_limit_bytes"]) ?? ENVOY_DEFAULTS.bufferLimitBytes);
  if (new Set(bufferLimits).size > 1) warnings.push("ext_proc listeners have different buffer limits; using the first");

  const endpoint = listeners.find((l) => findAll(l, (o) => "host_rewrite_literal" in o).length > 0);
  const connect = listeners.find(
    (l) => findAll(l, (o) => String(o["upgrade_type"] ?? "").toUpperCase() === "CONNECT").length > 0,
  );

  return {
    source,
    extProc: readExtProc(extProcRaw, source),
    bufferLimitBytes: bufferLimits[0] ?? ENVOY_DEFAULTS.bufferLimitBytes,
    maxRequestHeadersKb: toNumber(hcm?.["max_request_headers_kb"]) ?? ENVOY_DEFAULTS.maxRequestHeadersKb,
    maxHeadersCount:
      toNumber(asObj(hcm?.["common_http_protocol_options"])?.["max_headers_count"]) ?? ENVOY_DEFAULTS.maxHeadersCount,
    routeTimeoutMs: firstRouteTimeoutMs(hcm ?? extProcListener ?? {}, source),
    suppressEnvoyHeaders: routerSuppressesEnvoyHeaders(hcm ?? extProcListener ?? {}),
    connectListener: connect ? socketAddress(connect) : null,
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
  bufferLimitBytes?: number;
  maxRequestHeadersKb?: number;
  maxHeadersCount?: number;
  routeTimeoutMs?: number;
  suppressEnvoyHeaders?: boolean;
  endpointListener?: Partial<EndpointListenerSettings>;
}

export function withOverrides(config: EmulatorConfig, overrides: EmulatorConfigOverrides): EmulatorConfig {
  const { extProc, endpointListener, ...top } = overrides;
  const { processingMode, mutationRules, ...extProcRest } = extProc ?? {};
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
    ...top,
    extProc: {
      ...config.extProc,
      ...extProcRest,
      processingMode: { ...config.extProc.processingMode, ...processingMode },
      mutationRules: { ...config.extProc.mutationRules, ...mutationRules },
    },
    endpointListener: endpointListener ? { ...baseEndpoint, ...endpointListener } : config.endpointListener,
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

function readEndpoint(listener: Obj, source: string): EndpointListenerSettings {
  const route = findAll(listener, (o) => "host_rewrite_literal" in o)[0] ?? {};
  const timeout = durationMs(route["timeout"], source, "route timeout");
  return {
    ...socketAddress(listener),
    hostRewriteLiteral: stringOf(route["host_rewrite_literal"]) ?? null,
    appendXForwardedHost: toBool(route["append_x_forwarded_host"]),
    routeTimeoutMs: timeout ?? ENVOY_DEFAULTS.routeTimeoutMs,
    suppressEnvoyHeaders: routerSuppressesEnvoyHeaders(listener),
  };
}

function socketAddress(listener: Obj): { address: string | null; port: number | null } {
  const sa = asObj(asObj(listener["address"])?.["socket_address"]);
  return { address: stringOf(sa?.["address"]) ?? null, port: toNumber(sa?.["port_value"]) ?? null };
}

/** The first route action (an object with `cluster`/`cluster_header`) and its `timeout`. */
function firstRouteTimeoutMs(scope: Obj, source: string): number {
  const action = findAll(scope, (o) => "cluster" in o || "cluster_header" in o || "weighted_clusters" in o)[0];
  return durationMs(action?.["timeout"], source, "route timeout") ?? ENVOY_DEFAULTS.routeTimeoutMs;
}

function routerSuppressesEnvoyHeaders(scope: Obj): boolean {
  const router = findAll(scope, (o) => typeIs(o, ROUTER_TYPE))[0];
  return toBool(router?.["suppress_envoy_headers"]);
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
