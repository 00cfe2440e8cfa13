/**
 * The requests the benchmark sends, as Envoy would describe them to an ext_proc server: header
 * values in raw_value, pseudo-headers first, the headers an AWS SDK v3 call carries (signed by the
 * workload with a placeholder key), and bodies only where countersign asks for them.
 */
import type { ProcessingRequest } from "../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { ProcessingRequest__Output } from "../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import { loadExtProcProtos } from "../src/extproc/protos.js";
import { AwsChunkedBody } from "./protocol.js";

/** The fake "real" credentials bench/run.ts gives the server (never valid anywhere). */
export const BENCH_ACCESS_KEY_ID = "AKIDBENCHREALKEY0001";
export const BENCH_SECRET_ACCESS_KEY = "benchSecretAccessKeyThatIsNotReal0000001";
/** The workload's placeholder key id, as in its own Authorization header. */
export const PLACEHOLDER_KEY_ID = "AKIDPLACEHOLDER00001";

export const CHUNK_SIZE = 64 * 1024;
export const MESSAGE_SIZE = 64 * 1024;

export interface RequestHead {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  /** Lower-case names, in order, pseudo-headers excluded. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
}

export type ScenarioBody =
  | { readonly kind: "none" }
  /** One request_body message with end_of_stream, after a BUFFERED mode_override. */
  | { readonly kind: "buffered"; readonly bytes: Buffer }
  /** request_body messages of MESSAGE_SIZE after a STREAMED mode_override, one answer each. */
  | { readonly kind: "streamed"; readonly body: AwsChunkedBody };

export interface Scenario {
  readonly name: string;
  readonly title: string;
  readonly head: RequestHead;
  /** end_of_stream on request_headers (true: the request has no body at all). */
  readonly headersEndOfStream: boolean;
  readonly body: ScenarioBody;
  readonly expect: "signed" | "refused";
  /** Streams kept busy at once by default (BENCH_CONCURRENCY overrides). */
  readonly defaultConcurrency: number;
  /** Request body bytes that cross gRPC per exchange (for MB/s). */
  readonly bodyBytes: number;
}

const CLIENT_DATE = "20260101T000000Z";
const PLACEHOLDER_SIGNATURE = "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7";
const SDK_USER_AGENT = "aws-sdk-js/3.700.0 ua/2.1 os/linux#6.1 lang/js md/nodejs#20.20.2 api/s3#3.700.0 m/E,N";

function sdkHeaders(service: string, region: string, contentSha256: string | undefined, extra: ReadonlyArray<readonly [string, string]>): Array<readonly [string, string]> {
  const signed = ["amz-sdk-invocation-id", "amz-sdk-request", "host", ...extra.map(([k]) => k), ...(contentSha256 ? ["x-amz-content-sha256"] : []), "x-amz-date", "x-amz-user-agent"].sort();
  const headers: Array<readonly [string, string]> = [
    ["x-forwarded-proto", "https"],
    ["x-request-id", "9f0c6b7e-3f49-4d6e-9b1b-3a2f5c7d8e90"],
    ["user-agent", SDK_USER_AGENT],
    ["x-amz-user-agent", "aws-sdk-js/3.700.0"],
    ["amz-sdk-invocation-id", "2c7a1f3e-8d4b-4e5f-a6b7-c8d9e0f1a2b3"],
    ["amz-sdk-request", "attempt=1; max=3"],
    ...extra,
    ...(contentSha256 ? ([["x-amz-content-sha256", contentSha256]] as const) : []),
    ["x-amz-date", CLIENT_DATE],
    [
      "authorization",
      `AWS4-HMAC-SHA256 Credential=${PLACEHOLDER_KEY_ID}/${CLIENT_DATE.slice(0, 8)}/${region}/${service}/aws4_request, SignedHeaders=${signed.join(";")}, Signature=${PLACEHOLDER_SIGNATURE}`,
    ],
    ["x-envoy-expected-rq-timeout-ms", "15000"],
  ];
  return headers;
}

function jsonBody(size: number): Buffer {
  const prefix = '{"TableName":"bench","Item":{"pk":{"S":"key-000123"},"blob":{"S":"';
  const suffix = '"}}}';
  return Buffer.from(prefix + "x".repeat(size - prefix.length - suffix.length) + suffix, "utf8");
}

const S3_HOST = "bench-bucket.s3.eu-west-1.amazonaws.com";

export function chunkedUploadScenario(name: string, title: string, decodedBytes: number, concurrency: number): Scenario {
  const body = new AwsChunkedBody(decodedBytes, CHUNK_SIZE, MESSAGE_SIZE);
  return {
    name,
    title,
    head: {
      method: "PUT",
      path: "/objects/upload-000123.bin?x-id=PutObject",
      authority: S3_HOST,
      headers: sdkHeaders("s3", "eu-west-1", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", [
        ["content-encoding", "aws-chunked"],
        ["content-length", String(body.encodedLength)],
        ["content-type", "application/octet-stream"],
        ["x-amz-decoded-content-length", String(decodedBytes)],
      ]),
    },
    headersEndOfStream: false,
    body: { kind: "streamed", body },
    expect: "signed",
    defaultConcurrency: concurrency,
    bodyBytes: body.encodedLength,
  };
}

function buildScenarios(): Scenario[] {
  const json4k = jsonBody(4096);
  const json1m = jsonBody(1024 * 1024);
  return [
    {
      name: "headers-unsigned",
      title: "headers only, x-amz-content-sha256: UNSIGNED-PAYLOAD (S3 GetObject)",
      head: { method: "GET", path: "/objects/key-000123.json?x-id=GetObject", authority: S3_HOST, headers: sdkHeaders("s3", "eu-west-1", "UNSIGNED-PAYLOAD", []) },
      headersEndOfStream: true,
      body: { kind: "none" },
      expect: "signed",
      defaultConcurrency: 64,
      bodyBytes: 0,
    },
    {
      name: "headers-hash",
      title: "headers only, client hex x-amz-content-sha256 (S3 PutObject, body goes straight upstream)",
      head: {
        method: "PUT",
        path: "/objects/key-000123.json?x-id=PutObject",
        authority: S3_HOST,
        headers: sdkHeaders("s3", "eu-west-1", "a591a6d40bf420404a011733cfb7b190d62c65bf0bcda32b57b277d9ad9f146e", [
          ["content-length", "1024"],
          ["content-type", "application/json"],
        ]),
      },
      headersEndOfStream: false,
      body: { kind: "none" },
      expect: "signed",
      defaultConcurrency: 64,
      bodyBytes: 0,
    },
    {
      name: "refused",
      title: "host outside the policy (sts.amazonaws.com) -> immediate_response 403",
      head: { method: "POST", path: "/", authority: "sts.amazonaws.com", headers: sdkHeaders("sts", "us-east-1", undefined, [["content-type", "application/x-www-form-urlencoded"]]) },
      headersEndOfStream: true,
      body: { kind: "none" },
      expect: "refused",
      defaultConcurrency: 64,
      bodyBytes: 0,
    },
    {
      name: "json-4k",
      title: "4 KiB JSON body, no x-amz-content-sha256 (DynamoDB PutItem): BUFFERED, hashed, signed",
      head: {
        method: "POST",
        path: "/",
        authority: "dynamodb.eu-west-1.amazonaws.com",
        headers: sdkHeaders("dynamodb", "eu-west-1", undefined, [
          ["content-length", String(json4k.length)],
          ["content-type", "application/x-amz-json-1.0"],
          ["x-amz-target", "DynamoDB_20120810.PutItem"],
        ]),
      },
      headersEndOfStream: false,
      body: { kind: "buffered", bytes: json4k },
      expect: "signed",
      defaultConcurrency: 64,
      bodyBytes: json4k.length,
    },
    {
      name: "json-1m",
      title: "1 MiB JSON body, no x-amz-content-sha256 (Bedrock InvokeModel): BUFFERED, hashed, signed",
      head: {
        method: "POST",
        path: "/model/anthropic.claude-bench-v1/invoke",
        authority: "bedrock-runtime.eu-west-1.amazonaws.com",
        headers: sdkHeaders("bedrock", "eu-west-1", undefined, [
          ["accept", "application/json"],
          ["content-length", String(json1m.length)],
          ["content-type", "application/json"],
        ]),
      },
      headersEndOfStream: false,
      body: { kind: "buffered", bytes: json1m },
      expect: "signed",
      defaultConcurrency: 8,
      bodyBytes: json1m.length,
    },
    chunkedUploadScenario("chunked-1m", "1 MiB aws-chunked upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD): STREAMED, 16 chunks re-signed", 1024 * 1024, 8),
  ];
}

let cached: Scenario[] | undefined;

export function allScenarios(): Scenario[] {
  cached ??= buildScenarios();
  return cached;
}

export function scenarioByName(name: string): Scenario {
  const s = allScenarios().find((x) => x.name === name);
  if (!s) throw new Error(`unknown scenario "${name}" (known: ${allScenarios().map((x) => x.name).join(", ")})`);
  return s;
}

/** ProcessingRequest{request_headers} as Envoy builds it: pseudo-headers first, raw_value only. */
export function headersRequest(head: RequestHead, endOfStream: boolean): ProcessingRequest {
  const all: Array<readonly [string, string]> = [[":authority", head.authority], [":path", head.path], [":method", head.method], [":scheme", "https"], ...head.headers];
  return {
    request_headers: {
      headers: { headers: all.map(([key, v]) => ({ key, raw_value: Buffer.from(v, "utf8") })) },
      end_of_stream: endOfStream,
    },
  };
}

function processMethod() {
  return loadExtProcProtos().envoy.service.ext_proc.v3.ExternalProcessor.service.Process;
}

export function encodeRequest(msg: ProcessingRequest): Buffer {
  return processMethod().requestSerialize(msg);
}

/** Decodes a request exactly as the server's gRPC stack does (for in-process benchmarks). */
export function decodeRequest(bytes: Buffer): ProcessingRequest__Output {
  return processMethod().requestDeserialize(bytes);
}

export function decodeResponse(bytes: Buffer) {
  return processMethod().responseDeserialize(bytes);
}
