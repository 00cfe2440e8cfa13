import { describe, expect, it } from "vitest";
import { selectSignedHeaders } from "./selectSignedHeaders.js";

const headers = new Map([
  ["host", "ignored.example"],
  ["x-amz-meta-owner", "me"],
  ["x-amz-date", "20240101T000000Z"],
  ["x-amz-security-token", "old"],
  ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"],
  ["authorization", "AWS4-HMAC-SHA256 ..."],
  ["content-type", "text/plain"],
  ["content-md5", "abc=="],
  ["content-encoding", "gzip"],
  ["content-length", "5"],
  ["range", "bytes=0-1"],
  ["accept", "*/*"],
  ["user-agent", "aws-sdk-js"],
  ["x-forwarded-proto", "https"],
  ["x-request-id", "r1"],
  ["x-envoy-expected-rq-timeout-ms", "15000"],
  ["transfer-encoding", "chunked"],
  ["expect", "100-continue"],
  ["proxy-authorization", "x"],
  ["amz-sdk-invocation-id", "abc"],
]);

describe("selectSignedHeaders", () => {
  it("signs host, x-amz-*, content-* and what the client signed; never hop-by-hop, proxy or generated headers", () => {
    const out = selectSignedHeaders(headers, "b.s3.amazonaws.com", ["host", "range", "user-agent", "x-forwarded-proto", "amz-sdk-invocation-id"], true);
    expect({ ...out }).toEqual({
      host: "b.s3.amazonaws.com",
      "x-amz-meta-owner": "me",
      "content-type": "text/plain",
      "content-md5": "abc==",
      "content-encoding": "gzip",
      "content-length": "5",
      range: "bytes=0-1",
      "amz-sdk-invocation-id": "abc",
    });
  });

  it("leaves content-length out on the streamed path", () => {
    const out = selectSignedHeaders(headers, "h", [], false);
    expect(Object.keys(out)).not.toContain("content-length");
  });

  it("takes host from :authority, not from a Host header", () => {
    expect(selectSignedHeaders(headers, "real.amazonaws.com", [], true).host).toBe("real.amazonaws.com");
  });
});
