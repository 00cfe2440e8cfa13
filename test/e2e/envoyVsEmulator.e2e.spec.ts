/**
 * Real Envoy 1.40 and the Envoy emulator (test/emulator), each in front of its own
 * `countersign serve` and fake AWS, get the same requests; what reaches AWS must be the same:
 * method, path, query, host, signed header names, payload mode, verification, content-length /
 * transfer-encoding, the body's hash and size, the x-amz-content-sha256 sent, the header names;
 * and what the client sees (status; for a refusal countersign's error code and message). Whether
 * the body crossed gRPC is compared, not in how many messages: that depends on read sizes and
 * timing (both send a STREAMED body that was complete before the headers answer as ONE message).
 *
 * Every difference is either a failure here or listed in KNOWN_DIFFERENCES with its reason.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bedrockClient, dynamoClient, proxiedAgent, s3Client, stsClient } from "./clients.js";
import { chunkedPut } from "./chunkSigningClient.js";
import { sendHandSigned } from "./handSigned.js";
import { PLACEHOLDER, startStack, type Stack } from "./harness.js";
import { extProcMessagesSent, forwardedSince, parseXmlError, type Forwarded } from "./observations.js";

const MiB = 1024 * 1024;
const BUCKET = "e2e-bucket";
const BUCKET_HOST = `${BUCKET}.s3.eu-west-1.amazonaws.com`;

let envoy: Stack;
let emulator: Stack;
beforeAll(async () => {
  envoy = await startStack();
  emulator = await startStack({ proxy: "emulator" });
}, 120_000);
afterAll(async () => {
  await envoy?.close();
  await emulator?.close();
});

/** What the client saw, comparable across the two: refusals by code and message. */
interface ClientView {
  status: number;
  error?: { code: string; message: string };
}

async function viaSdk(send: () => Promise<unknown>): Promise<ClientView> {
  try {
    await send();
    return { status: 200 };
  } catch (err) {
    const e = err as { $metadata?: { httpStatusCode?: number }; name?: string; message?: string };
    return { status: e.$metadata?.httpStatusCode ?? -1, error: { code: e.name ?? "", message: e.message ?? "" } };
  }
}

async function viaHand(p: Promise<{ status: number; body: string }>): Promise<ClientView> {
  const res = await p;
  const xml = parseXmlError(res.body);
  return xml ? { status: res.status, error: { code: xml.code, message: xml.message } } : { status: res.status };
}

interface Case {
  name: string;
  run(stack: Stack): Promise<ClientView>;
  /** Normalises what legitimately depends on timing (not on the proxy). */
  normalise?(view: ClientView): ClientView;
}

const chunked = (trailer: boolean, contentLength: boolean) => (stack: Stack) =>
  viaHand(
    chunkedPut({
      host: BUCKET_HOST,
      path: `/cmp/chunk-signed-${trailer ? "t" : "p"}-${contentLength ? "cl" : "te"}.bin`,
      region: "eu-west-1",
      credentials: PLACEHOLDER,
      size: 300 * 1024,
      chunkSize: 64 * 1024,
      trailer,
      agent: proxiedAgent(stack),
      ca: stack.caPem,
      contentLength,
    }),
  );

const ddbHeaders = { "content-type": "application/x-amz-json-1.0", "x-amz-target": "DynamoDB_20120810.PutItem" };

const CASES: Case[] = [
  { name: "SDK S3 PutObject, 64-hex hash", run: (s) => viaSdk(() => s3Client(s, { requestChecksumCalculation: "WHEN_REQUIRED" }).send(new PutObjectCommand({ Bucket: BUCKET, Key: "cmp/hex.txt", Body: "hex" }))) },
  { name: "SDK S3 PutObject with CRC32 of a key that needs encoding", run: (s) => viaSdk(() => s3Client(s).send(new PutObjectCommand({ Bucket: BUCKET, Key: "cmp/dir with space/ü+!'()*~.txt", Body: "enc", ChecksumAlgorithm: "CRC32" }))) },
  { name: "SDK S3 GetObject", run: (s) => viaSdk(() => s3Client(s).send(new GetObjectCommand({ Bucket: BUCKET, Key: "cmp/hex.txt" })).then((o) => o.Body?.transformToString())) },
  { name: "SDK S3 ListObjectsV2 path-style (query)", run: (s) => viaSdk(() => s3Client(s, { forcePathStyle: true }).send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: "cmp/", Delimiter: "/" }))) },
  {
    name: "SDK S3 PutObject of a stream, UNSIGNED-PAYLOAD",
    run: (s) => viaSdk(() => s3Client(s, { requestChecksumCalculation: "WHEN_REQUIRED" }).send(new PutObjectCommand({ Bucket: BUCKET, Key: "cmp/unsigned.bin", Body: Readable.from([Buffer.alloc(4096, "u")]), ContentLength: 4096 }))),
  },
  {
    name: "SDK S3 PutObject of a stream, STREAMING-UNSIGNED-PAYLOAD-TRAILER (chunked)",
    run: (s) => viaSdk(() => s3Client(s).send(new PutObjectCommand({ Bucket: BUCKET, Key: "cmp/unsigned-trailer.bin", Body: Readable.from([Buffer.alloc(300 * 1024, "t")]), ContentLength: 300 * 1024 }))),
  },
  { name: "chunk-signed PAYLOAD, content-length (STREAMED)", run: chunked(false, true) },
  { name: "chunk-signed PAYLOAD-TRAILER, content-length (STREAMED)", run: chunked(true, true) },
  { name: "chunk-signed PAYLOAD-TRAILER, transfer-encoding: chunked (STREAMED)", run: chunked(true, false) },
  { name: "hand-signed S3 GET without a hash (empty body)", run: (s) => viaHand(sendHandSigned(s, { method: "GET", host: BUCKET_HOST, path: "/cmp/hex.txt", service: "s3", region: "eu-west-1" })) },
  { name: "hand-signed S3 PUT without a hash, content-length (BUFFERED)", run: (s) => viaHand(sendHandSigned(s, { method: "PUT", host: BUCKET_HOST, path: "/cmp/buffered.bin", service: "s3", region: "eu-west-1", body: Buffer.alloc(100_000, "b") })) },
  {
    name: "hand-signed S3 PUT without a hash, chunked (BUFFERED_PARTIAL)",
    run: (s) => viaHand(sendHandSigned(s, { method: "PUT", host: BUCKET_HOST, path: "/cmp/buffered-chunked.bin", service: "s3", region: "eu-west-1", body: Buffer.alloc(100_000, "c"), chunked: true })),
  },
  { name: "hand-signed S3 PUT without a hash, exactly 1 MiB (BUFFERED)", run: (s) => viaHand(sendHandSigned(s, { method: "PUT", host: BUCKET_HOST, path: "/cmp/limit.bin", service: "s3", region: "eu-west-1", body: Buffer.alloc(MiB, "l") })) },
  { name: "SDK DynamoDB PutItem (the SDK sends the hash)", run: (s) => viaSdk(() => dynamoClient(s).send(new PutItemCommand({ TableName: "cmp", Item: { pk: { S: "a b" } } }))) },
  {
    name: "hand-signed DynamoDB PutItem without a hash (BUFFERED)",
    run: (s) => viaHand(sendHandSigned(s, { method: "POST", host: "dynamodb.eu-west-1.amazonaws.com", path: "/", service: "dynamodb", region: "eu-west-1", headers: ddbHeaders, body: Buffer.from('{"TableName":"cmp","Item":{"pk":{"S":"x"}}}') })),
  },
  { name: "SDK STS GetCallerIdentity (form POST)", run: (s) => viaSdk(() => stsClient(s).send(new GetCallerIdentityCommand({}))) },
  {
    name: "SDK Bedrock InvokeModel (sigv4:body, BUFFERED)",
    run: (s) => viaSdk(() => bedrockClient(s).send(new InvokeModelCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", contentType: "application/json", body: JSON.stringify({ prompt: "hi" }) }))),
  },
  {
    name: "SDK S3 in endpoint mode (AWS_ENDPOINT_URL_S3, path-style)",
    run: (s) =>
      viaSdk(() =>
        new S3Client({ region: "us-east-1", endpoint: s.endpointUrl, forcePathStyle: true, credentials: PLACEHOLDER, requestHandler: new NodeHttpHandler({ requestTimeout: 60_000 }), maxAttempts: 1 }).send(
          new PutObjectCommand({ Bucket: "endpoint-bucket", Key: "cmp/endpoint.txt", Body: "endpoint mode" }),
        ),
      ),
  },
  // ---- refusals ----
  { name: "refused: host outside the policy (403)", run: (s) => viaHand(sendHandSigned(s, { method: "GET", host: "example.com", path: "/", service: "s3", region: "us-east-1", contentSha256: "UNSIGNED-PAYLOAD" })) },
  { name: "refused: content-length over the limit (413)", run: (s) => viaHand(sendHandSigned(s, { method: "PUT", host: BUCKET_HOST, path: "/cmp/big.bin", service: "s3", region: "eu-west-1", body: Buffer.alloc(MiB + 1, "o") })) },
  {
    name: "refused: chunked body without content-length over the limit (413)",
    run: (s) => viaHand(sendHandSigned(s, { method: "PUT", host: BUCKET_HOST, path: "/cmp/big-chunked.bin", service: "s3", region: "eu-west-1", body: Buffer.alloc(2 * MiB, "o"), chunked: true })),
    // How much Envoy holds when it gives up waiting (or whether the whole body was already in)
    // depends on read sizes and timing, not on the proxy being real or emulated.
    normalise: (v) => (v.error ? { ...v, error: { ...v.error, message: v.error.message.replace(/^the body \((at least )?\d+ bytes(, sent without a content-length)?\)/, "the body (N bytes)") } } : v),
  },
  {
    name: "refused: signed event stream whose body is no event-stream message (400)",
    run: (s) => viaHand(sendHandSigned(s, { method: "PUT", host: BUCKET_HOST, path: "/cmp/events", service: "s3", region: "eu-west-1", contentSha256: "STREAMING-AWS4-HMAC-SHA256-EVENTS", body: Buffer.from("e") })),
  },
];

/** What one case produced on one proxy. */
interface Observation {
  client: ClientView;
  grpc: "headers only" | "headers and body";
  forwarded: Forwarded[];
}

async function observe(stack: Stack, c: Case): Promise<Observation> {
  const start = stack.fake.requests.length;
  const msgs0 = await extProcMessagesSent(stack);
  const view = await c.run(stack);
  const sent = (await extProcMessagesSent(stack)) - msgs0;
  return {
    client: c.normalise ? c.normalise(view) : view,
    grpc: sent <= 1 ? "headers only" : "headers and body",
    forwarded: forwardedSince(stack, start),
  };
}

/**
 * Differences between real Envoy and the emulator that are known and harmless, each applied to
 * the emulator's observation to get what real Envoy does:
 * - the emulator's upstream client is Node's http module, which adds `Connection: keep-alive` to
 *   every upstream request (test/emulator/README.md, "It also differs from Envoy"); Envoy sends no
 *   connection header on its HTTP/1.1 upstream.
 */
function asRealEnvoyWould(o: Observation): Observation {
  return { ...o, forwarded: o.forwarded.map((f) => ({ ...f, headerNames: f.headerNames.filter((n) => n !== "connection") })) };
}

describe("real Envoy and the emulator forward the same requests to AWS", () => {
  it.each(CASES.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const real = await observe(envoy, c);
    const emulated = await observe(emulator, c);
    // Each proxy on its own: signed requests verified with the real key, refusals forward nothing.
    if (real.client.status === 200) {
      expect(real.forwarded.length).toBeGreaterThan(0);
      for (const f of real.forwarded) expect(f.verified).toBe(true);
    } else {
      expect(real.forwarded).toEqual([]);
    }
    expect(emulated.forwarded.map((f) => f.headerNames.includes("connection"))).toEqual(emulated.forwarded.map(() => true));
    expect(differences(real, asRealEnvoyWould(emulated))).toEqual([]);
  });
});

/** Every leaf where the two differ, as "path: real Envoy … / emulator …". */
function differences(real: unknown, emulated: unknown, path = ""): string[] {
  if (typeof real === "object" && real !== null && typeof emulated === "object" && emulated !== null) {
    const keys = new Set([...Object.keys(real), ...Object.keys(emulated)]);
    return [...keys].flatMap((k) => differences((real as Record<string, unknown>)[k], (emulated as Record<string, unknown>)[k], `${path}.${k}`));
  }
  return real === emulated ? [] : [`${path}: real Envoy ${JSON.stringify(real)} / emulator ${JSON.stringify(emulated)}`];
}

/** The body hash the fake recorded is the SHA-256 of what S3 stored (sanity of the comparison). */
describe("the comparison's body hashes", () => {
  it("are the SHA-256 of the decoded payload on both", () => {
    for (const s of [envoy, emulator]) {
      const obj = s.fake.s3.getObject(BUCKET, "cmp/buffered.bin");
      expect(obj?.sha256Hex).toBe(createHash("sha256").update(Buffer.alloc(100_000, "b")).digest("hex"));
      const rec = s.fake.requests.find((r) => r.path === "/cmp/buffered.bin");
      expect(rec?.bodySha256).toBe(obj?.sha256Hex);
    }
  });
});
