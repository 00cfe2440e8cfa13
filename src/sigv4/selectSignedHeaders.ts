import {
  ALWAYS_SIGNED_HEADERS,
  GENERATED_HEADERS,
  H_CONTENT_LENGTH,
  NEVER_SIGNED_HEADERS,
  NEVER_SIGNED_PREFIXES,
} from "./constants.js";

/**
 * Chooses which of the request's headers go into the signature:
 *   host, every x-amz-* header, content-type / content-md5 / content-encoding, content-length when
 *   Envoy keeps it, and any other header the client itself signed —
 * never hop-by-hop or proxy-mutated headers, and never the headers countersign generates (those
 * are added by the signer itself).
 *
 * `headers` holds lower-case names, repeated headers already joined with ",".
 * Returns a fresh object: name → value, ready for the signer.
 */
export function selectSignedHeaders(
  headers: ReadonlyMap<string, string>,
  host: string,
  clientSigned: readonly string[],
  signContentLength: boolean,
): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  out.host = host;
  for (const [name, value] of headers) {
    if (name === "host" || GENERATED_HEADERS.has(name) || isNeverSigned(name)) continue;
    if (name === H_CONTENT_LENGTH) {
      if (signContentLength) out[name] = value;
      continue;
    }
    if (name.startsWith("x-amz-") || ALWAYS_SIGNED_HEADERS.has(name) || clientSigned.includes(name)) {
      out[name] = value;
    }
  }
  return out;
}

export function isNeverSigned(name: string): boolean {
  if (NEVER_SIGNED_HEADERS.has(name)) return true;
  for (const p of NEVER_SIGNED_PREFIXES) if (name.startsWith(p)) return true;
  return false;
}
