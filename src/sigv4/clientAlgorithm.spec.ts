import { describe, expect, it } from "vitest";
import { checkClientAlgorithm, clientAlgorithms } from "./clientAlgorithm.js";
import type { Result } from "../result.js";
import { type ClientAuth, parseAuthorizationHeader, parsePresignedQuery } from "./parseClientAuth.js";

/** The parsed signature (these fixtures are well formed). */
function auth(parsed: Result<{ readonly auth: ClientAuth }>): ClientAuth {
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.auth;
}

const V4 = auth(parseAuthorizationHeader(`AWS4-HMAC-SHA256 Credential=AKID/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=${"a".repeat(64)}`));
const V4A = auth(parseAuthorizationHeader(`AWS4-ECDSA-P256-SHA256 Credential=AKID/20240101/s3/aws4_request, SignedHeaders=host;x-amz-region-set, Signature=${"a".repeat(142)}`));
const V4A_QUERY = auth(parsePresignedQuery(new Map([["X-Amz-Algorithm", "AWS4-ECDSA-P256-SHA256"], ["X-Amz-Credential", "AKID/20240101/s3/aws4_request"]])));
const NONE = auth(parsePresignedQuery(new Map()));

describe("clientAlgorithms: what the request says its client signed with", () => {
  it("reads the Authorization header, the presigned URL and the chunk-signing literal, each where it is", () => {
    expect(clientAlgorithms(V4A, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER")).toEqual([
      { algorithm: "AWS4-ECDSA-P256-SHA256", where: "its Authorization header" },
      { algorithm: "AWS4-ECDSA-P256-SHA256", where: "x-amz-content-sha256 STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER" },
    ]);
    expect(clientAlgorithms(V4A_QUERY, undefined)).toEqual([{ algorithm: "AWS4-ECDSA-P256-SHA256", where: "its presigned URL (X-Amz-Algorithm)" }]);
    expect(clientAlgorithms(NONE, "STREAMING-AWS4-HMAC-SHA256-EVENTS")).toEqual([{ algorithm: "AWS4-HMAC-SHA256", where: "x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-EVENTS" }]);
  });
  it.each([undefined, "UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"])(
    "finds no algorithm in an unsigned request whose x-amz-content-sha256 is %s",
    (value) => {
      expect(clientAlgorithms(NONE, value)).toEqual([]);
    },
  );
});

describe("checkClientAlgorithm: a request is re-signed only with the algorithm its endpoint calls for", () => {
  it("lets through a client that used the endpoint's algorithm, or none", () => {
    expect(checkClientAlgorithm("AWS4-HMAC-SHA256", "h", V4, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")).toEqual({ ok: true });
    expect(checkClientAlgorithm("AWS4-ECDSA-P256-SHA256", "h", V4A, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD")).toEqual({ ok: true });
    expect(checkClientAlgorithm("AWS4-HMAC-SHA256", "h", NONE, undefined)).toEqual({ ok: true });
    expect(checkClientAlgorithm("AWS4-ECDSA-P256-SHA256", "h", NONE, "UNSIGNED-PAYLOAD")).toEqual({ ok: true });
  });
  it("refuses a SigV4A client on a SigV4 endpoint as sigv4a_not_enabled, naming the endpoint and the setting", () => {
    const r = checkClientAlgorithm("AWS4-HMAC-SHA256", "*.s3.*.amazonaws.com", V4A, "UNSIGNED-PAYLOAD");
    expect(r).toEqual({
      ok: false,
      reason: "sigv4a_not_enabled",
      message:
        "the client signed with SigV4A (AWS4-ECDSA-P256-SHA256, in its Authorization header), and SigV4A is not enabled for endpoint *.s3.*.amazonaws.com, which re-signs with SigV4 only; set credential_signing: sigv4a on an endpoint for this host to re-sign SigV4A requests",
    });
  });
  it("refuses a SigV4 Authorization that announces a SigV4A chunk-signed body on a SigV4 endpoint", () => {
    expect(checkClientAlgorithm("AWS4-HMAC-SHA256", "h", V4, "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD")).toMatchObject({ ok: false, reason: "sigv4a_not_enabled" });
  });
  it("refuses a SigV4 client, or a SigV4 chunk-signed body, on a SigV4A endpoint as sigv4a_required", () => {
    expect(checkClientAlgorithm("AWS4-ECDSA-P256-SHA256", "*.mrap.accesspoint.s3-global.amazonaws.com", V4, undefined)).toEqual({
      ok: false,
      reason: "sigv4a_required",
      message:
        "endpoint *.mrap.accesspoint.s3-global.amazonaws.com re-signs with SigV4A only (credential_signing: sigv4a), and the client signed with SigV4 (AWS4-HMAC-SHA256, in its Authorization header); configure the client to sign with SigV4A (the AWS SDKs do for S3 Multi-Region Access Points), or use credential_signing: sigv4 for this host",
    });
    expect(checkClientAlgorithm("AWS4-ECDSA-P256-SHA256", "h", V4A, "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")).toMatchObject({ ok: false, reason: "sigv4a_required" });
  });
});
