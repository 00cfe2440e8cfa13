import { describe, expect, it } from "vitest";
import { parseAuthorizationHeader, parsePresignedQuery } from "./parseClientAuth.js";

describe("parseAuthorizationHeader", () => {
  it("reads key id, scope and signed headers of a SigV4 header", () => {
    expect(
      parseAuthorizationHeader(
        "AWS4-HMAC-SHA256 Credential=AKIDPLACEHOLDER000/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
      ),
    ).toEqual({
      ok: true,
      auth: {
        kind: "header",
        algorithm: "AWS4-HMAC-SHA256",
        accessKeyId: "AKIDPLACEHOLDER000",
        date: "20150830",
        region: "us-east-1",
        service: "iam",
        signedHeaders: ["content-type", "host", "x-amz-date"],
      },
    });
  });

  it("accepts components without spaces after commas", () => {
    const a = parseAuthorizationHeader("AWS4-HMAC-SHA256 Credential=AK/20240101/eu-west-1/s3/aws4_request,SignedHeaders=host,Signature=ab");
    expect(a).toMatchObject({ ok: true, auth: { kind: "header", accessKeyId: "AK", region: "eu-west-1", service: "s3", signedHeaders: ["host"] } });
  });

  it("accepts :authority in SignedHeaders, which the JS SDK v3 signs in place of host over HTTP/2", () => {
    const a = parseAuthorizationHeader(
      "AWS4-HMAC-SHA256 Credential=AKIDPLACEHOLDER000/20240101/us-east-1/s3/aws4_request, SignedHeaders=:authority;amz-sdk-invocation-id;x-amz-content-sha256;x-amz-date, Signature=ab",
    );
    expect(a).toMatchObject({ ok: true, auth: { kind: "header", accessKeyId: "AKIDPLACEHOLDER000", signedHeaders: [":authority", "amz-sdk-invocation-id", "x-amz-content-sha256", "x-amz-date"] } });
  });

  it("reads a SigV4A scope, which has no region", () => {
    const a = parseAuthorizationHeader("AWS4-ECDSA-P256-SHA256 Credential=AK/20240101/s3/aws4_request, SignedHeaders=host, Signature=ab");
    expect(a).toMatchObject({ ok: true, auth: { kind: "header", algorithm: "AWS4-ECDSA-P256-SHA256", region: undefined, service: "s3" } });
  });

  it.each([
    ["Bearer abc", "is not AWS4-HMAC-SHA256"],
    ["AWS4-HMAC-SHA256", "no credential part"],
    ["AWS4-HMAC-SHA256 SignedHeaders=host, Signature=ab", "no Credential="],
    ["AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, Signature=ab", "no SignedHeaders="],
    ["AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, SignedHeaders=host", "no Signature="],
    ["AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3, SignedHeaders=host, Signature=ab", "Credential must be"],
    ["AWS4-HMAC-SHA256 Credential=AK/2024-01-01/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab", "not YYYYMMDD"],
    ["AWS4-HMAC-SHA256 Credential=A K/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab", "key id"],
    ["AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, SignedHeaders=Host;X-Amz-Date, Signature=ab", "lower-case"],
    ["AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, Credential=AK2/20240101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab", "appears twice"],
    ["AWS4-HMAC-SHA256 garbage, SignedHeaders=host", "not name=value"],
    ["AWS4-HMAC-SHA256 Credential=AK/20240101/us-east-1/s3/aws4_request, SignedHeaders=::authority;host, Signature=ab", "lower-case"],
  ])("refuses %s", (value, message) => {
    const a = parseAuthorizationHeader(value);
    expect(a.ok).toBe(false);
    expect(!a.ok && a.error).toContain(message);
  });
});

describe("parsePresignedQuery", () => {
  it("is none when the URL is not presigned", () => {
    expect(parsePresignedQuery(new Map([["prefix", "a"]]))).toEqual({ ok: true, auth: { kind: "none" } });
  });

  it("reads the credential of a presigned URL", () => {
    const q = new Map([
      ["X-Amz-Algorithm", "AWS4-HMAC-SHA256"],
      ["X-Amz-Credential", "AKIDPLACEHOLDER000/20240101/us-west-2/s3/aws4_request"],
      ["X-Amz-SignedHeaders", "host;x-amz-meta-a"],
    ]);
    expect(parsePresignedQuery(q)).toEqual({
      ok: true,
      auth: {
        kind: "query",
        algorithm: "AWS4-HMAC-SHA256",
        accessKeyId: "AKIDPLACEHOLDER000",
        date: "20240101",
        region: "us-west-2",
        service: "s3",
        signedHeaders: ["host", "x-amz-meta-a"],
      },
    });
  });

  it("refuses a presigned URL without a credential", () => {
    expect(parsePresignedQuery(new Map([["X-Amz-Algorithm", "AWS4-HMAC-SHA256"]]))).toEqual({ ok: false, error: "presigned URL has no X-Amz-Credential" });
  });
});
