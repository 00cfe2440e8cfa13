/**
 * An independent AWS Signature Version 4 verifier, written from the AWS documentation
 * ("Create a signed AWS API request", the S3 "Authenticating Requests (AWS Signature Version 4)"
 * pages and the S3 chunked-upload/trailer pages). It shares no code with `src/sigv4` on purpose:
 * it is the judge of that code. Only node:crypto is used for the cryptography.
 *
 * Everything here is pure. The request is described as it arrived on the wire: method, the raw
 * path (still percent-encoded), the raw query string, and the header list in arrival order.
 *
 * Reading order for a 3 a.m. SignatureDoesNotMatch:
 *   parseAuthorizationHeader → canonicalUri / canonicalQueryString / canonicalHeaders
 *   → buildCanonicalRequest → buildStringToSign → deriveSigningKey → checkSignature.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

export { AwsChunkedDecoder } from "./awsChunked.js";
export type { AwsChunkedOptions, ChunkedFailure, ChunkedOutcome, ChunkSigning } from "./awsChunked.js";

export const SIGV4_ALGORITHM = "AWS4-HMAC-SHA256";
/** SigV4A's algorithm name (its cryptography is in sigv4a.ts). */
export const SIGV4A_ALGORITHM_NAME = "AWS4-ECDSA-P256-SHA256";
export const SCOPE_TERMINATOR = "aws4_request";
/** Hex SHA-256 of the empty string: the payload hash of a bodiless request. */
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
export const STREAMING_SIGNED_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
export const STREAMING_SIGNED_PAYLOAD_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
export const STREAMING_UNSIGNED_PAYLOAD_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
export const CHUNK_STRING_TO_SIGN_PREFIX = "AWS4-HMAC-SHA256-PAYLOAD";
export const TRAILER_STRING_TO_SIGN_PREFIX = "AWS4-HMAC-SHA256-TRAILER";

/** Header list as received: names as sent (any case), values as sent, duplicates kept in order. */
export type HeaderList = ReadonlyArray<readonly [name: string, value: string]>;

export interface WireRequest {
  method: string;
  /** Path exactly as on the request line, without the query, e.g. `/my%20bucket/a%2Bb`. */
  rawPath: string;
  /** Everything after the first `?`, without it; `""` when there is none. */
  rawQuery: string;
  headers: HeaderList;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Result<T> => ({ ok: true, value });
const fail = <T>(error: string): Result<T> => ({ ok: false, error });

// ---------------------------------------------------------------------------------------------
// Hashing primitives

export function sha256Hex(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

export function hmac(key: string | Uint8Array, data: string): Buffer {
  return createHmac("sha256", key).update(data, "utf8").digest();
}

export function hmacHex(key: string | Uint8Array, data: string): string {
  return createHmac("sha256", key).update(data, "utf8").digest("hex");
}

/** Compares two signatures in constant time (for equal lengths); never throws. */
export function signaturesEqual(expected: string, provided: string): boolean {
  const a = Buffer.from(expected, "utf8");
  const b = Buffer.from(provided, "utf8");
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

// ---------------------------------------------------------------------------------------------
// Credential scope and signing key

/** `20150830/us-east-1/service/aws4_request` */
export function credentialScope(date: string, region: string, service: string): string {
  return `${date}/${region}/${service}/${SCOPE_TERMINATOR}`;
}

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request") */
export function deriveSigningKey(secretAccessKey: string, date: string, region: string, service: string): Buffer {
  const kDate = hmac(`AWS4${secretAccessKey}`, date);
  const kRegion = hmac(kDate, region);
  const kService = hmac(kRegion, service);
  return hmac(kService, SCOPE_TERMINATOR);
}

// ---------------------------------------------------------------------------------------------
// Authorization header and presigned query

export interface ParsedAuthorization {
  algorithm: string;
  accessKeyId: string;
  /** YYYYMMDD from the credential scope. */
  scopeDate: string;
  /** The scope's region; `""` for SigV4A, whose scope has none. */
  region: string;
  service: string;
  /** Lowercase names in the order the client listed them. */
  signedHeaders: string[];
  signature: string;
}

function parseCredential(credential: string, algorithm = SIGV4_ALGORITHM): Result<Omit<ParsedAuthorization, "algorithm" | "signedHeaders" | "signature">> {
  const parts = credential.split("/");
  if (algorithm === SIGV4A_ALGORITHM_NAME) {
    if (parts.length !== 4) return fail(`SigV4A Credential must be AKID/date/service/aws4_request, got ${parts.length} parts`);
    const [accessKeyId, scopeDate, service, terminator] = parts as [string, string, string, string];
    if (accessKeyId === "") return fail("Credential has an empty access key id");
    if (!/^\d{8}$/.test(scopeDate)) return fail(`Credential date '${scopeDate}' is not YYYYMMDD`);
    if (service === "") return fail("Credential scope has an empty service");
    if (terminator !== SCOPE_TERMINATOR) return fail(`Credential scope must end with '${SCOPE_TERMINATOR}', not '${terminator}'`);
    return ok({ accessKeyId, scopeDate, region: "", service });
  }
  if (parts.length !== 5) return fail(`Credential must be AKID/date/region/service/aws4_request, got ${parts.length} parts`);
  const [accessKeyId, scopeDate, region, service, terminator] = parts as [string, string, string, string, string];
  if (accessKeyId === "") return fail("Credential has an empty access key id");
  if (!/^\d{8}$/.test(scopeDate)) return fail(`Credential date '${scopeDate}' is not YYYYMMDD`);
  if (region === "" || service === "") return fail("Credential scope has an empty region or service");
  if (terminator !== SCOPE_TERMINATOR) return fail(`Credential scope must end with '${SCOPE_TERMINATOR}', not '${terminator}'`);
  return ok({ accessKeyId, scopeDate, region, service });
}

function parseSignedHeadersList(list: string): Result<string[]> {
  const names = list.split(";");
  if (names.some((n) => n === "")) return fail("SignedHeaders has an empty entry");
  return ok(names.map((n) => n.toLowerCase()));
}

/**
 * Parses `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/service/aws4_request,
 * SignedHeaders=host;x-amz-date, Signature=<64 hex>`.
 */
export function parseAuthorizationHeader(value: string): Result<ParsedAuthorization> {
  const trimmed = value.trim();
  const space = trimmed.indexOf(" ");
  if (space < 0) return fail("Authorization header has no components after the algorithm");
  const algorithm = trimmed.slice(0, space);
  if (algorithm !== SIGV4_ALGORITHM && algorithm !== SIGV4A_ALGORITHM_NAME) return fail(`Unsupported authorization algorithm '${algorithm}'`);
  const fields = new Map<string, string>();
  for (const piece of trimmed.slice(space + 1).split(",")) {
    const item = piece.trim();
    if (item === "") continue;
    const eq = item.indexOf("=");
    if (eq < 0) return fail(`Authorization component '${item}' is not key=value`);
    const key = item.slice(0, eq).trim();
    if (fields.has(key)) return fail(`Authorization component '${key}' appears twice`);
    fields.set(key, item.slice(eq + 1).trim());
  }
  const credential = fields.get("Credential");
  const signedHeaders = fields.get("SignedHeaders");
  const signature = fields.get("Signature");
  if (credential === undefined) return fail("Authorization header requires a 'Credential' parameter");
  if (signedHeaders === undefined) return fail("Authorization header requires a 'SignedHeaders' parameter");
  if (signature === undefined) return fail("Authorization header requires a 'Signature' parameter");
  if (algorithm === SIGV4_ALGORITHM && !/^[0-9a-f]{64}$/.test(signature)) return fail("Signature must be 64 lowercase hex characters");
  if (algorithm === SIGV4A_ALGORITHM_NAME && !/^([0-9a-f]{2}){8,80}$/.test(signature)) return fail("SigV4A Signature must be a hex DER ECDSA signature");
  const cred = parseCredential(credential, algorithm);
  if (!cred.ok) return cred;
  const names = parseSignedHeadersList(signedHeaders);
  if (!names.ok) return names;
  return ok({ algorithm, ...cred.value, signedHeaders: names.value, signature });
}

export interface PresignedAuthorization extends ParsedAuthorization {
  amzDate: string;
  expiresSeconds: number;
  securityToken?: string;
}

/** Query parameters a presigned request carries; the signature itself is left out of the canonical query. */
export const PRESIGNED_SIGNATURE_PARAM = "X-Amz-Signature";

/** True when the query carries presigned (query-string) authentication. */
export function hasPresignedAuth(rawQuery: string): boolean {
  return parseQueryPairs(rawQuery).some(([k]) => k === "X-Amz-Algorithm" || k === PRESIGNED_SIGNATURE_PARAM);
}

/** Parses the `X-Amz-*` query parameters of a presigned URL. */
export function parsePresignedQuery(rawQuery: string): Result<PresignedAuthorization> {
  const params = new Map<string, string>();
  for (const [k, v] of parseQueryPairs(rawQuery)) if (k.startsWith("X-Amz-")) params.set(k, v);
  const need = (name: string): Result<string> => {
    const v = params.get(name);
    return v === undefined ? fail(`Query-string authentication requires the ${name} parameter`) : ok(v);
  };
  const algorithm = need("X-Amz-Algorithm");
  if (!algorithm.ok) return algorithm;
  if (algorithm.value !== SIGV4_ALGORITHM) return fail(`Unsupported X-Amz-Algorithm '${algorithm.value}'`);
  const credential = need("X-Amz-Credential");
  if (!credential.ok) return credential;
  const amzDate = need("X-Amz-Date");
  if (!amzDate.ok) return amzDate;
  const expires = need("X-Amz-Expires");
  if (!expires.ok) return expires;
  const signedHeaders = need("X-Amz-SignedHeaders");
  if (!signedHeaders.ok) return signedHeaders;
  const signature = need(PRESIGNED_SIGNATURE_PARAM);
  if (!signature.ok) return signature;
  if (!/^[0-9a-f]{64}$/.test(signature.value)) return fail("X-Amz-Signature must be 64 lowercase hex characters");
  if (!/^\d+$/.test(expires.value)) return fail("X-Amz-Expires must be a non-negative integer");
  const cred = parseCredential(credential.value);
  if (!cred.ok) return cred;
  const names = parseSignedHeadersList(signedHeaders.value);
  if (!names.ok) return names;
  const token = params.get("X-Amz-Security-Token");
  return ok({
    algorithm: algorithm.value,
    ...cred.value,
    signedHeaders: names.value,
    signature: signature.value,
    amzDate: amzDate.value,
    expiresSeconds: Number(expires.value),
    ...(token !== undefined ? { securityToken: token } : {}),
  });
}

// ---------------------------------------------------------------------------------------------
// URI encoding

const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/** RFC 3986 encoding as SigV4 wants it: every byte outside A-Z a-z 0-9 - . _ ~ as %XX, uppercase. */
export function uriEncode(value: string): string {
  return uriEncodeBytes(Buffer.from(value, "utf8"));
}

function uriEncodeBytes(bytes: Uint8Array): string {
  let out = "";
  for (const byte of bytes) {
    const ch = String.fromCharCode(byte);
    out += byte < 0x80 && UNRESERVED.test(ch) ? ch : `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Decodes %XX escapes to bytes (UTF-8), leaving a malformed `%` and `+` as they are. */
export function percentDecode(value: string): string {
  if (!value.includes("%")) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const ch = value[i] as string;
    if (ch === "%" && /^[0-9A-Fa-f]{2}$/.test(value.slice(i + 1, i + 3))) {
      bytes.push(parseInt(value.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      for (const b of Buffer.from(ch, "utf8")) bytes.push(b);
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

// ---------------------------------------------------------------------------------------------
// Canonical URI

/** S3 and its variants sign the path as sent: encoded once, never normalised. */
export function usesS3PathRules(service: string): boolean {
  return service === "s3" || service === "s3-outposts" || service === "s3express";
}

/**
 * Removes `.` segments, resolves `..`, collapses empty segments (`//`), keeps a trailing slash
 * when the path ended with a real segment followed by `/`. Always starts with `/`.
 */
export function normalizePath(rawPath: string): string {
  const input = rawPath === "" ? "/" : rawPath;
  const out: string[] = [];
  const segments = input.split("/");
  for (const segment of segments) {
    if (segment === "" || segment === ".") continue;
    if (segment === "..") out.pop();
    else out.push(segment);
  }
  const last = segments[segments.length - 1];
  const trailingSlash = last === "" && out.length > 0;
  return `/${out.join("/")}${trailingSlash ? "/" : ""}`;
}

/** How the canonical URI is derived from the wire path. */
export type PathRules = "s3-single-encoding" | "normalize-and-double-encode";

export function pathRulesFor(service: string): PathRules {
  return usesS3PathRules(service) ? "s3-single-encoding" : "normalize-and-double-encode";
}

/**
 * The canonical URI, computed from the path exactly as it was on the wire.
 * S3 rules: the wire path verbatim (`/` for an empty path). Other services: normalised, then
 * every segment URI-encoded again, so `%20` on the wire becomes `%2520` in the canonical request.
 */
export function canonicalUri(rawPath: string, rules: PathRules): string {
  if (rules === "s3-single-encoding") return rawPath === "" ? "/" : rawPath;
  return normalizePath(rawPath)
    .split("/")
    .map((segment) => uriEncode(segment))
    .join("/");
}

// ---------------------------------------------------------------------------------------------
// Canonical query string

/** Splits a raw query into decoded (key, value) pairs, in order; a key without `=` gets `""`. */
export function parseQueryPairs(rawQuery: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  if (rawQuery === "") return pairs;
  for (const part of rawQuery.split("&")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? "" : part.slice(eq + 1);
    pairs.push([percentDecode(key), percentDecode(value)]);
  }
  return pairs;
}

function compareAscii(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Decodes each parameter, re-encodes key and value with the unreserved set, sorts by encoded key
 * then encoded value and joins `k=v` with `&` (`k=` for a valueless key). Parameters named in
 * `omit` (e.g. `X-Amz-Signature` for presigned URLs) are left out.
 */
export function canonicalQueryString(rawQuery: string, omit: readonly string[] = []): string {
  return parseQueryPairs(rawQuery)
    .filter(([k]) => !omit.includes(k))
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => compareAscii(a[0], b[0]) || compareAscii(a[1], b[1]))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

// ---------------------------------------------------------------------------------------------
// Canonical headers

/** Trims and collapses every run of spaces/tabs/line breaks into one space. */
export function canonicalHeaderValue(value: string): string {
  return value.replace(/[ \t\r\n]+/g, " ").replace(/^ | $/g, "");
}

/** All values of a header (case-insensitive), in arrival order. */
export function headerValues(headers: HeaderList, name: string): string[] {
  const lower = name.toLowerCase();
  return headers.filter(([n]) => n.toLowerCase() === lower).map(([, v]) => v);
}

/** The single value of a header, or the comma-joined values when it is repeated. */
export function headerValue(headers: HeaderList, name: string): string | undefined {
  const values = headerValues(headers, name);
  return values.length === 0 ? undefined : values.join(",");
}

/** Lowercase names of every header present. */
export function headerNames(headers: HeaderList): Set<string> {
  return new Set(headers.map(([n]) => n.toLowerCase()));
}

/** Sorted, lowercase, de-duplicated signed header names joined by `;`. */
export function signedHeadersLine(signedHeaders: readonly string[]): string {
  return [...new Set(signedHeaders.map((h) => h.toLowerCase()))].sort(compareAscii).join(";");
}

/**
 * `name:value\n` for each signed header, sorted by name; repeated headers are joined with `,`
 * after each value is trimmed. A signed header that is absent contributes `name:` (and so will
 * not verify).
 */
export function canonicalHeaders(headers: HeaderList, signedHeaders: readonly string[]): string {
  return signedHeadersLine(signedHeaders)
    .split(";")
    .map((name) => `${name}:${headerValues(headers, name).map(canonicalHeaderValue).join(",")}\n`)
    .join("");
}

// ---------------------------------------------------------------------------------------------
// Canonical request and string to sign

export interface CanonicalRequestInput {
  request: WireRequest;
  service: string;
  signedHeaders: readonly string[];
  payloadHash: string;
  /** Query parameters left out of the canonical query (presigned: X-Amz-Signature). */
  omitQueryParams?: readonly string[];
  /** Overrides the path rules implied by `service` (the official test suite needs this). */
  pathRules?: PathRules;
}

/**
 * METHOD \n canonical URI \n canonical query \n canonical headers \n signed headers \n payload hash
 * (the canonical headers block ends with its own newline, hence the blank line).
 */
export function buildCanonicalRequest(input: CanonicalRequestInput): string {
  const { request } = input;
  return [
    request.method.toUpperCase(),
    canonicalUri(request.rawPath, input.pathRules ?? pathRulesFor(input.service)),
    canonicalQueryString(request.rawQuery, input.omitQueryParams ?? []),
    canonicalHeaders(request.headers, input.signedHeaders),
    signedHeadersLine(input.signedHeaders),
    input.payloadHash,
  ].join("\n");
}

/** AWS4-HMAC-SHA256 \n x-amz-date \n scope \n hex(sha256(canonical request)) */
export function buildStringToSign(amzDate: string, scope: string, canonicalRequest: string): string {
  return [SIGV4_ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
}

/** AWS4-HMAC-SHA256-PAYLOAD \n date \n scope \n previous signature \n sha256("") \n sha256(chunk) */
export function chunkStringToSign(amzDate: string, scope: string, previousSignature: string, chunkSha256Hex: string): string {
  return [CHUNK_STRING_TO_SIGN_PREFIX, amzDate, scope, previousSignature, EMPTY_SHA256, chunkSha256Hex].join("\n");
}

/** Canonical trailer text that is hashed for the trailer signature: `name:value\n`, sorted by name. */
export function canonicalTrailerText(trailers: ReadonlyArray<readonly [string, string]>): string {
  return [...trailers]
    .map(([n, v]) => [n.toLowerCase(), canonicalHeaderValue(v)] as const)
    .sort((a, b) => compareAscii(a[0], b[0]))
    .map(([n, v]) => `${n}:${v}\n`)
    .join("");
}

/** AWS4-HMAC-SHA256-TRAILER \n date \n scope \n final chunk signature \n sha256(trailer text) */
export function trailerStringToSign(amzDate: string, scope: string, previousSignature: string, trailerTextSha256Hex: string): string {
  return [TRAILER_STRING_TO_SIGN_PREFIX, amzDate, scope, previousSignature, trailerTextSha256Hex].join("\n");
}

export interface SignatureCheckInput extends CanonicalRequestInput {
  amzDate: string;
  scope: string;
  signingKey: Uint8Array;
  providedSignature: string;
}

export interface SignatureCheck {
  matches: boolean;
  canonicalRequest: string;
  stringToSign: string;
  expectedSignature: string;
  providedSignature: string;
}

/** Recomputes the signature of a request and compares it with the one the client sent. */
export function checkSignature(input: SignatureCheckInput): SignatureCheck {
  const canonicalRequest = buildCanonicalRequest(input);
  const stringToSign = buildStringToSign(input.amzDate, input.scope, canonicalRequest);
  const expectedSignature = hmacHex(input.signingKey, stringToSign);
  return {
    matches: signaturesEqual(expectedSignature, input.providedSignature),
    canonicalRequest,
    stringToSign,
    expectedSignature,
    providedSignature: input.providedSignature,
  };
}

// ---------------------------------------------------------------------------------------------
// Dates

/** Parses `20150830T123600Z`; undefined when malformed. */
export function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return date.getUTCMonth() === mo - 1 && date.getUTCDate() === d ? date : undefined;
}

/** Formats a Date as `20150830T123600Z`. */
export function formatAmzDate(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}
