/**
 * The HTTP requests of the real-path benchmark, as an AWS SDK sends them to Envoy: signed by the
 * workload with a placeholder key (the signature is never checked by anyone: countersign replaces
 * it, Envoy's own filter overwrites it, the responder ignores it).
 *
 *   get        headers-only S3 GetObject
 *   put-hash   S3 PutObject, 4 KiB body, its SHA-256 (64 hex) in x-amz-content-sha256
 *   json-post  4 KiB JSON POST without x-amz-content-sha256: countersign asks for the body (BUFFERED)
 *   upload     64 MiB (BENCH_REAL_UPLOAD_MIB) chunk-signed upload (aws-chunked, STREAMING-AWS4-HMAC-SHA256-PAYLOAD)
 *   refused    a host the bench policy does not list (sts.amazonaws.com, proxy mode): countersign answers 403
 */
import { createHash } from "node:crypto";
import { AwsChunkedBody } from "../protocol.js";
import { CHUNK_SIZE, MESSAGE_SIZE, PLACEHOLDER_KEY_ID } from "../scenarios.js";

export const REAL_SCENARIOS = ["get", "put-hash", "json-post", "upload", "refused"] as const;
export type RealScenario = (typeof REAL_SCENARIOS)[number];

export const S3_HOST = "s3.us-east-1.amazonaws.com";
export const REFUSED_HOST = "sts.amazonaws.com";
export const REGION = "us-east-1";

const CLIENT_DATE = "20260101T000000Z";
const PLACEHOLDER_SIGNATURE = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export interface HttpRequestBytes {
  /** The request line and headers, ending with the blank line. */
  readonly head: Buffer;
  readonly body: Buffer;
  /** The host the request is for (CONNECT target in proxy mode). */
  readonly host: string;
  /** The status every answer must have. */
  readonly expectStatus: number;
}

function jsonBody(size: number): Buffer {
  const prefix = '{"TableName":"bench","Item":{"pk":{"S":"key-000123"},"blob":{"S":"';
  const suffix = '"}}}';
  return Buffer.from(prefix + "x".repeat(size - prefix.length - suffix.length) + suffix, "utf8");
}

function head(method: string, path: string, hostHeader: string, service: string, headers: ReadonlyArray<readonly [string, string]>): Buffer {
  const all: Array<readonly [string, string]> = [
    ["host", hostHeader],
    ["user-agent", "aws-sdk-js/3.700.0 ua/2.1 os/linux lang/js md/nodejs#20 api/s3#3.700.0"],
    ["x-amz-user-agent", "aws-sdk-js/3.700.0"],
    ["amz-sdk-invocation-id", "2c7a1f3e-8d4b-4e5f-a6b7-c8d9e0f1a2b3"],
    ["amz-sdk-request", "attempt=1; max=3"],
    ...headers,
    ["x-amz-date", CLIENT_DATE],
  ];
  const signed = all.map(([k]) => k).filter((k) => k !== "user-agent" && k !== "content-length").sort();
  all.push(["authorization", `AWS4-HMAC-SHA256 Credential=${PLACEHOLDER_KEY_ID}/${CLIENT_DATE.slice(0, 8)}/${REGION}/${service}/aws4_request, SignedHeaders=${signed.join(";")}, Signature=${PLACEHOLDER_SIGNATURE}`]);
  return Buffer.from(`${method} ${path} HTTP/1.1\r\n${all.map(([k, v]) => `${k}: ${v}\r\n`).join("")}\r\n`, "latin1");
}

/**
 * The bytes of one request of `scenario`. `hostHeader` is what the client puts in Host: the Envoy
 * listener's address in endpoint mode (endpoint_in rewrites it), the AWS host in proxy mode.
 */
export function requestFor(scenario: RealScenario, hostHeader: (awsHost: string) => string, uploadBytes: number): HttpRequestBytes {
  switch (scenario) {
    case "get":
      return { host: S3_HOST, expectStatus: 200, body: Buffer.alloc(0), head: head("GET", "/bench-bucket/key-000123.json?x-id=GetObject", hostHeader(S3_HOST), "s3", [["x-amz-content-sha256", EMPTY_SHA256]]) };
    case "put-hash": {
      const body = jsonBody(4096);
      const sha = createHash("sha256").update(body).digest("hex");
      return {
        host: S3_HOST,
        expectStatus: 200,
        body,
        head: head("PUT", "/bench-bucket/obj-000123.json?x-id=PutObject", hostHeader(S3_HOST), "s3", [
          ["content-length", String(body.length)],
          ["content-type", "application/json"],
          ["x-amz-content-sha256", sha],
        ]),
      };
    }
    case "json-post": {
      const body = jsonBody(4096);
      return {
        host: S3_HOST,
        expectStatus: 200,
        body,
        head: head("POST", "/bench-bucket/doc-000123.json", hostHeader(S3_HOST), "s3", [
          ["content-length", String(body.length)],
          ["content-type", "application/x-amz-json-1.0"],
        ]),
      };
    }
    case "upload": {
      const chunked = new AwsChunkedBody(uploadBytes, CHUNK_SIZE, MESSAGE_SIZE);
      const body = chunked.bytes();
      return {
        host: S3_HOST,
        expectStatus: 200,
        body,
        head: head("PUT", "/bench-bucket/upload-000123.bin?x-id=PutObject", hostHeader(S3_HOST), "s3", [
          ["content-encoding", "aws-chunked"],
          ["content-length", String(body.length)],
          ["content-type", "application/octet-stream"],
          ["x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"],
          ["x-amz-decoded-content-length", String(uploadBytes)],
        ]),
      };
    }
    case "refused": {
      const body = Buffer.from("Action=GetCallerIdentity&Version=2011-06-15", "latin1");
      return {
        host: REFUSED_HOST,
        expectStatus: 403,
        body,
        head: head("POST", "/", hostHeader(REFUSED_HOST), "sts", [
          ["content-length", String(body.length)],
          ["content-type", "application/x-www-form-urlencoded"],
          ["x-amz-content-sha256", createHash("sha256").update(body).digest("hex")],
        ]),
      };
    }
  }
}
