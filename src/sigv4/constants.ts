/** SigV4 literals, gathered in one place. */

export const ALGORITHM = "AWS4-HMAC-SHA256";
export const ALGORITHM_V4A = "AWS4-ECDSA-P256-SHA256";
export const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";
export const STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
export const STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
export const STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
export const STREAMING_SIGV4A_PREFIX = "STREAMING-AWS4-ECDSA-P256-SHA256-";
export const STREAMING_SIGNED_V4A = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
export const STREAMING_SIGNED_V4A_TRAILER = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER";
export const STREAMING_EVENTS = "STREAMING-AWS4-HMAC-SHA256-EVENTS";

export const H_AUTHORIZATION = "authorization";
export const H_AMZ_DATE = "x-amz-date";
export const H_SECURITY_TOKEN = "x-amz-security-token";
export const H_CONTENT_SHA256 = "x-amz-content-sha256";
export const H_CONTENT_LENGTH = "content-length";
export const H_DECODED_CONTENT_LENGTH = "x-amz-decoded-content-length";

/** Headers countersign replaces on every signed request. */
export const GENERATED_HEADERS: ReadonlySet<string> = new Set([
  H_AUTHORIZATION,
  H_AMZ_DATE,
  H_SECURITY_TOKEN,
  H_CONTENT_SHA256,
]);

/** Signed whenever present, besides host and every x-amz-* header. */
export const ALWAYS_SIGNED_HEADERS: ReadonlySet<string> = new Set(["content-type", "content-md5", "content-encoding"]);

/**
 * Never signed, even when the client signed them: hop-by-hop headers and headers that a proxy
 * (Envoy's router among them) adds or rewrites after ext_proc, which would break the signature.
 */
export const NEVER_SIGNED_HEADERS: ReadonlySet<string> = new Set([
  "authorization",
  "connection",
  "keep-alive",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
  "user-agent",
  "x-request-id",
  "x-amzn-trace-id",
]);
export const NEVER_SIGNED_PREFIXES: readonly string[] = ["proxy-", "x-forwarded-", "x-envoy-", ":"];

/** Query parameters of a presigned URL; stripped before re-signing with header auth. */
export const PRESIGN_QUERY_PARAMS: ReadonlySet<string> = new Set([
  "x-amz-algorithm",
  "x-amz-credential",
  "x-amz-date",
  "x-amz-expires",
  "x-amz-signedheaders",
  "x-amz-security-token",
  "x-amz-signature",
  "x-amz-region-set",
]);

/** Services that sign the path as sent: encoded once, not normalised. */
export const SINGLE_ENCODE_SERVICES: ReadonlySet<string> = new Set(["s3", "s3-outposts", "s3express"]);

/** SigV4A: the regions a signature is good for, signed as a header (`*` for all). */
export const H_REGION_SET = "x-amz-region-set";
