import { createHash, createHmac } from "node:crypto";
import {
  ALGORITHM,
  EMPTY_SHA256,
  H_AMZ_DATE,
  H_AUTHORIZATION,
  H_CONTENT_SHA256,
  H_SECURITY_TOKEN,
  SINGLE_ENCODE_SERVICES,
} from "./constants.js";
import { selectSignedHeaders } from "./selectSignedHeaders.js";
import { signingKeyFor } from "./signingKey.js";
import type { DecodedQuery } from "./splitPath.js";
import type { Credentials } from "./types.js";

const H_DATE = "date";

export interface SignInput {
  readonly method: string;
  /** The Host header value AWS will receive (Envoy forwards `:authority` as Host). */
  readonly host: string;
  /** The path part of `:path` as sent (percent-encoded once). */
  readonly path: string;
  readonly query: DecodedQuery;
  /** Request headers: lower-case names, repeated headers joined with ",". Pseudo-headers excluded. */
  readonly headers: ReadonlyMap<string, string>;
  /** Header names the client's own signature covered. */
  readonly clientSignedHeaders: readonly string[];
  /** Sign content-length (only while Envoy keeps it; never on the streamed path). */
  readonly signContentLength: boolean;
  readonly payloadHash: string;
  /**
   * Send and sign `x-amz-content-sha256` (default true; countersign always does). False exists only
   * so AWS's official test suite, whose requests carry no such header, runs through this function.
   */
  readonly sendContentSha256?: boolean;
  readonly service: string;
  /**
   * Path rules: true signs the path as sent (S3: encoded once, not normalised); false normalises it
   * and encodes each segment again. Default: true exactly for s3, s3-outposts and s3express.
   */
  readonly singleEncodePath?: boolean;
  readonly region: string;
  readonly credentials: Credentials;
  readonly now: Date;
}

export interface SignOutput {
  /** Headers to set on the forwarded request (overwriting). */
  readonly setHeaders: ReadonlyArray<readonly [string, string]>;
  /** Headers to remove from the forwarded request. */
  readonly removeHeaders: readonly string[];
  readonly signature: string;
  /** `x-amz-date` value, reused by every chunk string-to-sign. */
  readonly amzDate: string;
  /** `<date>/<region>/<service>/aws4_request`. */
  readonly scope: string;
  readonly signedHeaderNames: string;
}

/**
 * Signs one request head with real credentials: SigV4 (AWS4-HMAC-SHA256, header auth) computed
 * directly with node:crypto, synchronously, with the derived signing key cached per credential set
 * and date/region/service (signingKey.ts). The canonical request is built exactly as
 * @smithy/signature-v4 builds it (its header value folding, query encoding and path rules); AWS's
 * official test suite and a differential test against that library check that the two agree.
 * Pure apart from the key cache.
 */
export function signRequestSync(input: SignInput): SignOutput {
  const s3Style = input.singleEncodePath ?? SINGLE_ENCODE_SERVICES.has(input.service);
  const headers = selectSignedHeaders(input.headers, input.host, input.clientSignedHeaders, input.signContentLength);
  const sendContentSha256 = input.sendContentSha256 ?? true;
  if (sendContentSha256) headers[H_CONTENT_SHA256] = input.payloadHash;
  // Without x-amz-content-sha256 (test suite only) the signature covers the empty-payload hash, so
  // nothing else may be asked for.
  if (!sendContentSha256 && input.payloadHash !== EMPTY_SHA256) {
    throw new Error("a payload hash other than the empty one needs x-amz-content-sha256");
  }
  // The Date header is never signed (the signer generates x-amz-date instead), as in smithy.
  delete headers[H_DATE];
  const amzDate = formatAmzDate(input.now);
  const shortDate = amzDate.slice(0, 8);
  headers[H_AMZ_DATE] = amzDate;
  const sessionToken = input.credentials.sessionToken;
  if (sessionToken) headers[H_SECURITY_TOKEN] = sessionToken;

  const names = Object.keys(headers).sort();
  let canonicalHeaders = "";
  for (const name of names) canonicalHeaders += `${name}:${foldHeaderValue(headers[name] as string)}\n`;
  const signedHeaderNames = names.join(";");
  const canonicalRequest =
    `${input.method}\n${s3Style ? input.path : normalisedPath(input.path)}\n${canonicalQuery(input.query)}\n` +
    `${canonicalHeaders}\n${signedHeaderNames}\n${input.payloadHash}`;

  const scope = `${shortDate}/${input.region}/${input.service}/aws4_request`;
  const stringToSign = `${ALGORITHM}\n${amzDate}\n${scope}\n${createHash("sha256").update(canonicalRequest, "utf8").digest("hex")}`;
  const key = signingKeyFor(input.credentials, shortDate, input.region, input.service);
  const signature = createHmac("sha256", key).update(stringToSign, "utf8").digest("hex");
  const auth = `${ALGORITHM} Credential=${input.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaderNames}, Signature=${signature}`;

  const setHeaders: Array<readonly [string, string]> = [
    [H_AUTHORIZATION, auth],
    [H_AMZ_DATE, amzDate],
  ];
  if (sendContentSha256) setHeaders.push([H_CONTENT_SHA256, input.payloadHash]);
  const removeHeaders: string[] = [];
  if (sessionToken) setHeaders.push([H_SECURITY_TOKEN, sessionToken]);
  else if (input.headers.has(H_SECURITY_TOKEN)) removeHeaders.push(H_SECURITY_TOKEN);

  return { setHeaders, removeHeaders, signature, amzDate, scope, signedHeaderNames };
}

/** {@link signRequestSync} behind a promise, for callers that await it. */
export function signRequest(input: SignInput): Promise<SignOutput> {
  try {
    return Promise.resolve(signRequestSync(input));
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/** Header value folding of the canonical request: CR/LF to space, runs of space/tab to one, one space trimmed at each end. */
function foldHeaderValue(value: string): string {
  if (!FOLD_NEEDED.test(value)) return value;
  return value.replace(/[\r\n]/g, " ").replace(/[ \t]+/g, " ").replace(/^ | $/g, "");
}
/** Anything the folding would change: CR, LF, tab, two spaces, or a space at either end. */
const FOLD_NEEDED = /[\r\n\t]| {2}|^ | $/;

/** x-amz-date (YYYYMMDD'T'HHMMSS'Z') for `now`, computed once per second. */
let lastSecond = Number.NaN;
let lastAmzDate = "";
function formatAmzDate(now: Date): string {
  const second = Math.floor(now.getTime() / 1000);
  if (second !== lastSecond) {
    // toISOString throws for an invalid date, as the library does.
    lastAmzDate = now.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
    lastSecond = second;
  }
  return lastAmzDate;
}

/** Every service but S3: drop empty, "." and ".." segments, then percent-encode the path again. */
function normalisedPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split("/")) {
    if (segment.length === 0 || segment === ".") continue;
    if (segment === "..") segments.pop();
    else segments.push(segment);
  }
  const normal = `${path.startsWith("/") ? "/" : ""}${segments.join("/")}${segments.length > 0 && path.endsWith("/") ? "/" : ""}`;
  return escapeUri(normal).replace(/%2F/g, "/");
}

/** Sorted by encoded key; repeated keys sorted by their encoded pair; X-Amz-Signature left out. */
function canonicalQuery(query: DecodedQuery): string {
  const keys: string[] = [];
  const pairs = new Map<string, string>();
  for (const key in query) {
    if (!Object.prototype.hasOwnProperty.call(query, key)) continue;
    if (key.toLowerCase() === "x-amz-signature") continue;
    const encodedKey = escapeUri(key);
    keys.push(encodedKey);
    const value = query[key];
    if (typeof value === "string") pairs.set(encodedKey, `${encodedKey}=${escapeUri(value)}`);
    else if (Array.isArray(value)) pairs.set(encodedKey, value.map((v) => `${encodedKey}=${escapeUri(v)}`).sort().join("&"));
  }
  if (keys.length === 0) return "";
  const out: string[] = [];
  for (const key of keys.sort()) {
    const pair = pairs.get(key);
    if (pair) out.push(pair);
  }
  return out.join("&");
}

/** RFC 3986 unreserved characters stay; everything else is %XX (upper-case hex). */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
