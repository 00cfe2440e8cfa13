import type { Result } from "../result.js";
import { PRESIGN_QUERY_PARAMS } from "./constants.js";
import { decodeOnce } from "../decodeOnce.js";

/** Query values in the shape the signer wants: percent-decoded, repeated keys as arrays. */
export type DecodedQuery = Record<string, string | string[]>;

export type SplitPath = Result<{
  /** The path part of `:path`, exactly as sent (still percent-encoded). */
  readonly path: string;
  /** Decoded query for signing, without presigned-URL parameters. */
  readonly query: DecodedQuery;
  /** Decoded presigned-URL parameters (`X-Amz-Credential`, …) the client sent, by their sent name. */
  readonly presign: ReadonlyMap<string, string>;
  /** The `:path` to forward when presign parameters were removed; undefined when unchanged. */
  readonly rewrittenPath: string | undefined;
}>;

/**
 * Splits Envoy's `:path` into the path and the canonical-query input. Only `%XX` escapes are decoded
 * (a literal `+` stays `+`, as AWS signs it). Presigned-URL parameters are taken out so the request
 * can be signed again with header auth; the rest of the query is forwarded byte for byte.
 */
export function splitPath(rawPath: string): SplitPath {
  if (rawPath === "" || (rawPath[0] !== "/" && rawPath !== "*")) {
    return { ok: false, error: `:path "${clip(rawPath)}" does not start with "/"` };
  }
  if (rawPath.includes("#")) return { ok: false, error: ":path must not contain a fragment (#)" };
  const q = rawPath.indexOf("?");
  const path = q < 0 ? rawPath : rawPath.slice(0, q);
  const presign = new Map<string, string>();
  if (q < 0) return { ok: true, path, query: {}, presign, rewrittenPath: undefined };

  // Collected in a Map, then made an object with own properties only (any key, "__proto__" and
  // "constructor" included): far cheaper than writing arbitrary keys into a null-prototype object.
  const params = new Map<string, string | string[]>();
  const kept: string[] = [];
  for (const pair of rawPath.slice(q + 1).split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const rawKey = eq < 0 ? pair : pair.slice(0, eq);
    const rawValue = eq < 0 ? "" : pair.slice(eq + 1);
    const key = decodeOnce(rawKey);
    const value = decodeOnce(rawValue);
    if (key === undefined || value === undefined) {
      return { ok: false, error: `query parameter "${clip(pair)}" has a malformed percent-escape or bytes that are not UTF-8` };
    }
    if (PRESIGN_QUERY_PARAMS.has(key.toLowerCase())) {
      presign.set(key, value);
      continue;
    }
    kept.push(pair);
    const prev = params.get(key);
    if (prev === undefined) params.set(key, value);
    else if (Array.isArray(prev)) prev.push(value);
    else params.set(key, [prev, value]);
  }
  const query: DecodedQuery = Object.fromEntries(params);
  const rewrittenPath = presign.size === 0 ? undefined : kept.length === 0 ? path : `${path}?${kept.join("&")}`;
  return { ok: true, path, query, presign, rewrittenPath };
}

function clip(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}
