import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { HttpRequest } from "@smithy/types";
import {
  EMPTY_SHA256,
  H_AMZ_DATE,
  H_AUTHORIZATION,
  H_CONTENT_SHA256,
  H_SECURITY_TOKEN,
  SINGLE_ENCODE_SERVICES,
} from "./constants.js";
import { selectSignedHeaders } from "./selectSignedHeaders.js";
import type { DecodedQuery } from "./splitPath.js";
import type { Credentials } from "./types.js";

const Sha256 = Hash.bind(null, "sha256");

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
  /** Sign content-length when present (countersign always does: Envoy keeps it on every path it uses). */
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
 * Signs one request head with real credentials. Pure apart from the signing-key cache inside
 * @smithy/signature-v4 (module-wide, keyed by credentials, date, region and service); all SigV4
 * math is that library's. A SignatureV4 costs nothing to construct, so one is made per request.
 */
export async function signRequest(input: SignInput): Promise<SignOutput> {
  const s3Style = input.singleEncodePath ?? SINGLE_ENCODE_SERVICES.has(input.service);
  const signer = new SignatureV4({
    service: input.service,
    region: input.region,
    credentials: input.credentials,
    sha256: Sha256,
    uriEscapePath: !s3Style,
    applyChecksum: false,
  });
  const headers = selectSignedHeaders(input.headers, input.host, input.clientSignedHeaders, input.signContentLength);
  const sendContentSha256 = input.sendContentSha256 ?? true;
  if (sendContentSha256) headers[H_CONTENT_SHA256] = input.payloadHash;

  // The signer takes the payload hash from x-amz-content-sha256; without that header (test suite
  // only) it signs the empty-payload hash, so nothing else may be asked for.
  if (!sendContentSha256 && input.payloadHash !== EMPTY_SHA256) {
    throw new Error("a payload hash other than the empty one needs x-amz-content-sha256");
  }
  const request: HttpRequest = {
    method: input.method,
    protocol: "https:",
    hostname: input.host,
    path: input.path,
    query: input.query,
    headers,
  };
  const signed = await signer.sign(request, {
    signingDate: input.now,
    // Override the library's built-in unsignable list only for headers we chose on purpose.
    signableHeaders: new Set(Object.keys(headers)),
  });

  const auth = signed.headers[H_AUTHORIZATION] as string;
  const amzDate = signed.headers[H_AMZ_DATE] as string;
  const match = /Credential=[^/]+\/([^,]+), SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(auth);
  if (!match) throw new Error("signer produced an unexpected Authorization header");

  const setHeaders: Array<readonly [string, string]> = [
    [H_AUTHORIZATION, auth],
    [H_AMZ_DATE, amzDate],
  ];
  if (sendContentSha256) setHeaders.push([H_CONTENT_SHA256, input.payloadHash]);
  const removeHeaders: string[] = [];
  if (input.credentials.sessionToken) setHeaders.push([H_SECURITY_TOKEN, input.credentials.sessionToken]);
  else if (input.headers.has(H_SECURITY_TOKEN)) removeHeaders.push(H_SECURITY_TOKEN);

  return {
    setHeaders,
    removeHeaders,
    signature: match[3] as string,
    amzDate,
    scope: match[1] as string,
    signedHeaderNames: match[2] as string,
  };
}
