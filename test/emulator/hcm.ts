/**
 * What Envoy's HTTP/1 codec, connection manager (HCM) and router do to a request's headers
 * around the ext_proc filter. Pure functions over HeaderMap.
 *
 * Before ext_proc (codec + `ConnectionManagerUtility::mutateRequestHeaders`, defaults:
 * use_remote_address false, generate_request_id true, proxy_100_continue false):
 * - `Host` becomes `:authority` (an absolute-form URL supplies it instead); `:method`, `:path`;
 *   `:scheme` from the downstream transport (https inside TLS, http otherwise);
 * - names lower-cased; `connection`, `keep-alive`, `proxy-connection`, `transfer-encoding`,
 *   `upgrade` removed; `te` kept only as "trailers";
 * - `expect: 100-continue` answered by the HCM itself and removed;
 * - `x-forwarded-proto` and `x-request-id` added when absent.
 * After ext_proc (router, suppress_envoy_headers false): `x-envoy-expected-rq-timeout-ms` set to
 * the route timeout (none when it is 0). On the wire the HTTP/1 codec writes `:authority` as
 * `Host`, and frames the body: content-length if present, else chunked, else (no body)
 * `content-length: 0` for methods that may carry a body.
 */
import { randomUUID } from "node:crypto";
import { HeaderMap } from "./headerMap.js";

const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"]);
/** `HeaderUtility::requestShouldHaveNoBody`. */
const BODILESS_METHODS = new Set(["GET", "HEAD", "DELETE", "TRACE", "CONNECT"]);

export interface RequestLine {
  method: string;
  /** request-target as received (origin-form or absolute-form). */
  target: string;
  /** node's `rawHeaders` pairs, names as sent. */
  rawHeaders: readonly [string, string][];
}

export type DownstreamScheme = "http" | "https";

/** Splits node's flat `rawHeaders` into pairs. */
export function pairsOf(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] ?? "", raw[i + 1] ?? ""]);
  return out;
}

/** `http://host:port/path?q` → authority and path, without any normalisation of the path. */
export function splitAbsoluteForm(target: string): { scheme: string; authority: string; path: string } | null {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/.exec(target);
  if (!m) return null;
  const rest = m[3] ?? "";
  return { scheme: (m[1] ?? "").toLowerCase(), authority: m[2] ?? "", path: rest === "" ? "/" : rest };
}

/** The request header map as the ext_proc filter first sees it (codec + HCM). */
export function downstreamHeaderMap(line: RequestLine, scheme: DownstreamScheme): HeaderMap {
  const absolute = splitAbsoluteForm(line.target);
  const hostHeader = line.rawHeaders.find(([k]) => k.toLowerCase() === "host")?.[1] ?? "";
  const headers = new HeaderMap();
  headers.add(":method", line.method);
  headers.add(":path", absolute ? absolute.path : line.target);
  headers.add(":authority", absolute ? absolute.authority : hostHeader);
  headers.add(":scheme", scheme);
  for (const [name, value] of line.rawHeaders) {
    const key = name.toLowerCase();
    if (key === "host" || HOP_BY_HOP.has(key)) continue;
    if (key === "expect" && value.toLowerCase() === "100-continue") continue;
    headers.add(key, value);
  }
  sanitizeTe(headers);
  headers.setIfAbsent("x-forwarded-proto", scheme);
  headers.setIfAbsent("x-request-id", randomUUID());
  return headers;
}

function sanitizeTe(headers: HeaderMap): void {
  const te = headers.get("te");
  if (te.length === 0) return;
  const keepsTrailers = te.some((v) => v.split(",").some((t) => t.trim().toLowerCase() === "trailers"));
  if (keepsTrailers) headers.set("te", "trailers");
  else headers.remove("te");
}

/** HCM `strip_any_host_port`: `host:port` → `host` (not for CONNECT), before any filter. */
export function stripAnyHostPort(headers: HeaderMap): void {
  if ((headers.first(":method") ?? "").toUpperCase() === "CONNECT") return;
  const authority = headers.first(":authority");
  if (authority === undefined) return;
  const { host, port } = parseAuthority(authority);
  if (port === null) return;
  headers.set(":authority", host.includes(":") ? `[${host}]` : host);
}

/** An outer route's `host_rewrite_literal` (and `append_x_forwarded_host`). */
export function rewriteHost(headers: HeaderMap, literal: string, appendXForwardedHost: boolean): void {
  const original = headers.first(":authority") ?? "";
  headers.set(":authority", literal);
  if (appendXForwardedHost && original !== "") headers.add("x-forwarded-host", original);
}

/** The router's own header before the request leaves. */
export function addRouterHeaders(headers: HeaderMap, routeTimeoutMs: number, suppressEnvoyHeaders: boolean): void {
  if (!suppressEnvoyHeaders && routeTimeoutMs > 0) headers.set("x-envoy-expected-rq-timeout-ms", String(routeTimeoutMs));
}

/** Header lines the HTTP/1 upstream codec writes, `Host` first. */
export function upstreamHeaderLines(headers: HeaderMap, endStream: boolean): [string, string][] {
  const lines: [string, string][] = [["host", headers.first(":authority") ?? ""]];
  for (const [k, v] of headers.pairs()) if (!k.startsWith(":")) lines.push([k, v]);
  if (!headers.has("content-length")) {
    if (!endStream) lines.push(["transfer-encoding", "chunked"]);
    else if (!BODILESS_METHODS.has((headers.first(":method") ?? "").toUpperCase())) lines.push(["content-length", "0"]);
  }
  return lines;
}

/** `host[:port]` or `[v6][:port]`. */
export function parseAuthority(authority: string): { host: string; port: number | null } {
  const v6 = /^\[([^\]]*)\](?::(\d+))?$/.exec(authority);
  if (v6) return { host: v6[1] ?? "", port: v6[2] ? Number(v6[2]) : null };
  const m = /^([^:]*)(?::(\d+))?$/.exec(authority);
  if (m) return { host: m[1] ?? "", port: m[2] ? Number(m[2]) : null };
  return { host: authority, port: null };
}

/** Response headers Envoy does not pass back over HTTP/1 (framing is re-done). */
export function downstreamResponseLines(raw: readonly string[], upstreamMs: number): [string, string][] {
  const lines = pairsOf(raw).filter(([k]) => {
    const key = k.toLowerCase();
    return !HOP_BY_HOP.has(key) && key !== "server";
  });
  lines.push(["x-envoy-upstream-service-time", String(upstreamMs)], ["server", "envoy"]);
  return lines;
}
