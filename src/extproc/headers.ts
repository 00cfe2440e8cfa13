import { isAscii } from "node:buffer";
import type { HeaderMap__Output } from "../../protos/generated/envoy/config/core/v3/HeaderMap.js";
import { deny, type Denial } from "./denial.js";

/** A request head as Envoy described it, decoded once. */
export interface RequestHead {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly scheme: string;
  /** Lower-case names; repeated headers joined with "," in arrival order. No pseudo-headers. */
  readonly headers: ReadonlyMap<string, string>;
}

export interface HeaderLimits {
  /** Total bytes of names and values; Envoy's own default limit is 60 KiB. */
  readonly maxHeaderBytes: number;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const PSEUDO = new Set([":method", ":path", ":authority", ":scheme"]);
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads Envoy's HeaderMap. Values come in `raw_value` (bytes) since Envoy 1.27; older Envoys used
 * `value`. Bytes that could smuggle another header (CR, LF, NUL) or are not UTF-8 are refused.
 *
 * Anything Envoy itself never sends, and that could be read two ways, is refused rather than
 * guessed at: a missing :method, :path, :authority or :scheme, a pseudo-header given twice in any letter case (":authority" and ":Authority"), a
 * pseudo-header in another case than Envoy's, a missing :authority (a Host header alone is not
 * taken instead), a Host that names another authority, and `value` and `raw_value` that disagree.
 */
export function decodeRequestHead(map: HeaderMap__Output | null | undefined, limits: HeaderLimits): RequestHead | Denial {
  const pseudo = new Map<string, string>();
  const headers = new Map<string, string>();
  let bytes = 0;
  for (const h of map?.headers ?? []) {
    const name = h.key;
    const raw = h.raw_value && h.raw_value.length > 0 ? h.raw_value : undefined;
    bytes += name.length + (raw ? raw.length : h.value.length);
    if (bytes > limits.maxHeaderBytes) {
      return bad(`request headers exceed ${limits.maxHeaderBytes} bytes`);
    }
    const value = raw ? decodeValue(raw) : h.value;
    if (value === undefined) return bad(`header ${printable(name)} has bytes that are not UTF-8`);
    if (raw && h.value !== "" && h.value !== value) return bad(`header ${printable(name)} has a value and a raw_value that disagree`);
    if (/[\r\n\0]/.test(value)) return bad(`header ${printable(name)} contains CR, LF or NUL`);
    if (name.startsWith(":")) {
      const folded = name.toLowerCase();
      if (pseudo.has(folded)) return bad(`pseudo-header ${printable(folded)} appears twice`);
      if (folded !== name && PSEUDO.has(folded)) return bad(`pseudo-header ${printable(name)} is not lower-case`);
      pseudo.set(folded, value); // others, e.g. :protocol, are not part of what is signed
      continue;
    }
    if (!TOKEN.test(name)) return bad(`header name ${printable(name)} is not a lower-case HTTP token`);
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev},${value}`);
  }
  const method = pseudo.get(":method");
  const path = pseudo.get(":path");
  const authority = pseudo.get(":authority");
  const scheme = pseudo.get(":scheme");
  if (!method || !TOKEN.test(method.toLowerCase())) return bad("request has no valid :method");
  if (method === "CONNECT") return bad("CONNECT must be terminated by Envoy before ext_proc; check envoy.yaml");
  if (!path) return bad("request has no :path");
  if (!authority) return bad("request has no :authority");
  const host = headers.get("host");
  if (host !== undefined && host.toLowerCase() !== authority.toLowerCase()) return bad(`Host ${printable(host)} differs from :authority ${printable(authority)}`);
  if (scheme === undefined) return bad("request has no :scheme");
  if (scheme !== "https" && scheme !== "http") return bad(`:scheme ${printable(scheme)} is neither https nor http`);
  // Framing the upstream could read differently from what is signed: fail closed (RFC 9112 §6.3).
  const contentLength = headers.get("content-length");
  if (contentLength !== undefined) {
    if (!/^\d{1,15}$/.test(contentLength)) return bad(`content-length ${printable(contentLength)} is not a number`);
    if (headers.has("transfer-encoding")) return bad("request has both content-length and transfer-encoding; send only one");
  }
  return { method, path, authority, scheme, headers };
}

function decodeValue(raw: Buffer): string | undefined {
  // Fast path: ASCII is by far the common case (checked natively).
  if (isAscii(raw)) return raw.toString("latin1");
  try {
    return utf8.decode(raw);
  } catch {
    return undefined;
  }
}

function printable(s: string): string {
  const clipped = s.length > 40 ? `${s.slice(0, 40)}…` : s;
  return JSON.stringify(clipped);
}

function bad(message: string): Denial {
  return deny("malformed_head", message);
}

export function isDenial(x: unknown): x is Denial {
  return typeof x === "object" && x !== null && "reason" in x && "status" in x;
}
