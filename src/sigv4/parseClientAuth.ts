import type { Result } from "../result.js";
import { ALGORITHM, ALGORITHM_V4A } from "./constants.js";

/**
 * What the client's own (placeholder) signature says about itself: which key id it used, and its
 * credential scope. Nothing here is trusted for security except as a binding check against the
 * policy's `client_access_key_ids`; the signature itself is never verified (countersign does not
 * know the placeholder secret and does not need to).
 */
export interface ClientSignature {
  readonly kind: "header" | "query";
  readonly algorithm: typeof ALGORITHM | typeof ALGORITHM_V4A;
  readonly accessKeyId: string;
  readonly date: string;
  /** Absent for SigV4A, whose scope has no region. */
  readonly region?: string;
  readonly service: string;
  /** Lower-case names the client signed (header auth and query auth). */
  readonly signedHeaders: readonly string[];
}

/** A request's own authentication: none at all, or a SigV4 signature. */
export type ClientAuth = { readonly kind: "none" } | ClientSignature;

/** The client's authentication, or, as `error`, why it is malformed. */
export type ClientAuthResult = Result<{ readonly auth: ClientAuth }>;

const KEY_ID = /^[A-Za-z0-9]{1,128}$/;
const SCOPE_PART = /^[A-Za-z0-9._-]{1,64}$/;
// A lower-case token, or a pseudo-header name: over HTTP/2 the JS SDK v3 (NodeHttp2Handler) signs
// `:authority` in place of `host`. countersign signs `host` from `:authority` itself, and pseudo-headers
// are never in the header map, so such a name selects nothing extra.
const SIGNED_HEADER = /^:?[a-z0-9!#$%&'*+.^_`|~-]+$/;

/** Parses an `Authorization` header value (any case of the algorithm prefix is refused, as AWS does). */
export function parseAuthorizationHeader(value: string): Result<{ readonly auth: ClientSignature }> {
  const space = value.indexOf(" ");
  if (space < 0) return malformed("Authorization header has no credential part");
  const algorithm = value.slice(0, space);
  if (algorithm !== ALGORITHM && algorithm !== ALGORITHM_V4A) {
    return malformed(`Authorization algorithm "${short(algorithm)}" is not ${ALGORITHM}`);
  }
  const fields = new Map<string, string>();
  for (const part of value.slice(space + 1).split(",")) {
    const trimmed = part.trim();
    if (trimmed === "") continue;
    const eq = trimmed.indexOf("=");
    if (eq <= 0) return malformed(`Authorization component "${short(trimmed)}" is not name=value`);
    const name = trimmed.slice(0, eq);
    if (fields.has(name)) return malformed(`Authorization component ${name} appears twice`);
    fields.set(name, trimmed.slice(eq + 1));
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  if (credential === undefined) return malformed("Authorization header has no Credential=");
  if (signedHeaders === undefined) return malformed("Authorization header has no SignedHeaders=");
  if (fields.get("Signature") === undefined) return malformed("Authorization header has no Signature=");
  return fromParts("header", algorithm, credential, signedHeaders);
}

/** Parses presigned-URL query parameters (already percent-decoded, keys as sent). */
export function parsePresignedQuery(params: ReadonlyMap<string, string>): ClientAuthResult {
  const algorithm = params.get("X-Amz-Algorithm");
  const credential = params.get("X-Amz-Credential");
  if (algorithm === undefined && credential === undefined) return { ok: true, auth: { kind: "none" } };
  if (algorithm !== ALGORITHM && algorithm !== ALGORITHM_V4A) {
    return malformed(`X-Amz-Algorithm "${short(algorithm ?? "")}" is not ${ALGORITHM}`);
  }
  if (credential === undefined) return malformed("presigned URL has no X-Amz-Credential");
  return fromParts("query", algorithm, credential, params.get("X-Amz-SignedHeaders") ?? "host");
}

function fromParts(
  kind: "header" | "query",
  algorithm: typeof ALGORITHM | typeof ALGORITHM_V4A,
  credential: string,
  signedHeaders: string,
): Result<{ readonly auth: ClientSignature }> {
  const parts = credential.split("/");
  const v4a = algorithm === ALGORITHM_V4A;
  const expected = v4a ? 4 : 5;
  if (parts.length !== expected || parts[expected - 1] !== "aws4_request") {
    return malformed(
      v4a
        ? "Credential must be <key id>/<date>/<service>/aws4_request"
        : "Credential must be <key id>/<date>/<region>/<service>/aws4_request",
    );
  }
  const [accessKeyId, date] = parts as [string, string];
  if (!KEY_ID.test(accessKeyId)) return malformed("Credential key id is empty or has characters a key id cannot have");
  if (!/^\d{8}$/.test(date)) return malformed("Credential date is not YYYYMMDD");
  const region = v4a ? undefined : (parts[2] as string);
  const service = parts[v4a ? 2 : 3] as string;
  if ((region !== undefined && !SCOPE_PART.test(region)) || !SCOPE_PART.test(service)) {
    return malformed("Credential scope region or service is malformed");
  }
  const names = signedHeaders.split(";");
  for (const n of names) {
    if (!SIGNED_HEADER.test(n)) return malformed("SignedHeaders must be lower-case header names separated by ';'");
  }
  return { ok: true, auth: { kind, algorithm, accessKeyId, date, region, service, signedHeaders: names } };
}

function malformed(message: string): { readonly ok: false; readonly error: string } {
  return { ok: false, error: message };
}

function short(s: string): string {
  return s.length > 40 ? `${s.slice(0, 40)}…` : s;
}
