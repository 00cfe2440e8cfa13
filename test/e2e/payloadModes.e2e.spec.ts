/**
 * Every row of the README's "Payload modes" table through REAL Envoy (the shipped envoy.yaml) and
 * `countersign serve`, each checked by the three witnesses:
 *   - the fake AWS verified what arrived with the REAL key, in the payload mode the row names, with
 *     the content-length / transfer-encoding Envoy forwarded;
 *   - Envoy sent countersign as many ext_proc messages as the row's body mode implies (headers only:
 *     1; BUFFERED: headers + the whole body = 2; STREAMED: headers + at least one body message —
 *     a body that was all in before the headers answer goes as ONE message even in STREAMED);
 *   - countersign logged the payload mode it chose.
 * The JS SDK produces the hex (S3 and DynamoDB: it sends x-amz-content-sha256 for every service),
 * UNSIGNED-PAYLOAD and STREAMING-UNSIGNED-PAYLOAD-TRAILER rows; the others (chunk-signed uploads,
 * no hash at all as botocore sends to non-S3 services, SigV4A, event streams) are signed by hand
 * with @smithy/signature-v4 and the PLACEHOLDER key.
 *
 * Then BUFFERED bodies at limits.max_buffered_body_bytes (1 MiB, equal to Envoy's
 * per_connection_buffer_limit_bytes) and one byte over, with and without content-length.
 */
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dynamoClient, proxiedAgent, s3Client } from "./clients.js";
import { chunkedPut } from "./chunkSigningClient.js";
import { sendHandSigned } from "./handSigned.js";
import { REAL, startStack, type Stack } from "./harness.js";
import { decisionFor, extProcMessagesSent, forwardedSince, parseXmlError, requestIdOf, type Forwarded } from "./observations.js";

const MiB = 1024 * 1024;
const BUCKET = "e2e-bucket";
const BUCKET_HOST = `${BUCKET}.s3.eu-west-1.amazonaws.com`;
const EMPTY_SHA256 = createHash("sha256").digest("hex");
const sha256 = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

/** What the client saw. */
interface Outcome {
  status: number;
  body: string;
  headers?: Record<string, string | string[] | undefined>;
}

async function sdk(send: () => Promise<unknown>): Promise<Outcome> {
  try {
    await send();
    return { status: 200, body: "" };
  } catch (err) {
    const e = err as { $metadata?: { httpStatusCode?: number }; message?: string };
    return { status: e.$metadata?.httpStatusCode ?? -1, body: e.message ?? String(err) };
  }
}

/** How the body crossed gRPC: headers message only, headers + one whole body, headers + a stream of pieces. */
type BodyOverGrpc = "none" | "buffered" | "streamed";

interface ModeCase {
  /** The README row (client's x-amz-content-sha256). */
  row: string;
  client: "JS SDK" | "hand-signed";
  send(): Promise<Outcome>;
  /** payloadMode in countersign's decision log. */
  countersign: string;
  grpc: BodyOverGrpc;
  /** The one request that reaches AWS; absent for refusals. */
  forwarded?: Partial<Forwarded>;
  /** The object S3 stored: key and SHA-256. */
  stored?: { key: string; sha256: string };
  refusal?: { status: number; code: string; reason: string };
}

const HEX_BODY = "payload mode: 64-hex hash";
const UNSIGNED_BODY = Buffer.from("payload mode: UNSIGNED-PAYLOAD");
const TRAILER_BODY = Buffer.alloc(200 * 1024, "t");
const DYNAMODB_BODY = Buffer.from(JSON.stringify({ TableName: "modes", Item: { pk: { S: "absent hash" } } }));
const BUFFERED_S3_BODY = Buffer.from("payload mode: absent hash, body buffered and hashed by countersign");
const CHUNK = 64 * 1024;
const CHUNKED_SIZE = 200 * 1024;

function chunkSigned(trailer: boolean): () => Promise<Outcome> {
  return () =>
    chunkedPut({
      host: BUCKET_HOST,
      path: `/modes/chunk-signed-${trailer ? "trailer" : "payload"}.bin`,
      region: "eu-west-1",
      credentials: { accessKeyId: "AKIDPLACEHOLDER000", secretAccessKey: "placeholder-secret-not-real" },
      size: CHUNKED_SIZE,
      chunkSize: CHUNK,
      trailer,
      agent: proxiedAgent(stack),
      ca: stack.caPem,
    });
}

/** The framed length of CHUNKED_SIZE bytes in CHUNK chunks (what content-length says). */
function framed(trailer: boolean): number {
  const header = (n: number): number => n.toString(16).length + ";chunk-signature=".length + 64 + 2;
  let total = 0;
  for (let left = CHUNKED_SIZE; left > 0; left -= CHUNK) total += header(Math.min(CHUNK, left)) + Math.min(CHUNK, left) + 2;
  // Final chunk, then the CRC32 trailer (8 base64 chars) and its signature, or the closing CRLF.
  const trailerBytes = `x-amz-checksum-crc32:${"A".repeat(8)}\r\nx-amz-trailer-signature:${"0".repeat(64)}\r\n\r\n`.length;
  return total + header(0) + (trailer ? trailerBytes : 2);
}

const CASES: ModeCase[] = [
  {
    row: "64-hex hash",
    client: "JS SDK",
    send: () => sdk(() => s3Client(stack, { requestChecksumCalculation: "WHEN_REQUIRED" }).send(new PutObjectCommand({ Bucket: BUCKET, Key: "modes/hex.txt", Body: HEX_BODY }))),
    countersign: "client-hash",
    grpc: "none",
    forwarded: { payloadMode: "SHA256", contentSha256: sha256(HEX_BODY), contentLength: String(HEX_BODY.length), transferEncoding: undefined, operation: "PutObject" },
    stored: { key: "modes/hex.txt", sha256: sha256(HEX_BODY) },
  },
  {
    row: "UNSIGNED-PAYLOAD",
    client: "JS SDK",
    // A stream body without a flexible checksum: the SDK cannot hash it first.
    send: () =>
      sdk(() =>
        s3Client(stack, { requestChecksumCalculation: "WHEN_REQUIRED" }).send(
          new PutObjectCommand({ Bucket: BUCKET, Key: "modes/unsigned.txt", Body: Readable.from([UNSIGNED_BODY]), ContentLength: UNSIGNED_BODY.length }),
        ),
      ),
    countersign: "unsigned-payload",
    grpc: "none",
    forwarded: { payloadMode: "UNSIGNED-PAYLOAD", contentSha256: "UNSIGNED-PAYLOAD", contentLength: String(UNSIGNED_BODY.length), transferEncoding: undefined, operation: "PutObject" },
    stored: { key: "modes/unsigned.txt", sha256: sha256(UNSIGNED_BODY) },
  },
  {
    row: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    client: "JS SDK",
    // The SDK's default for a stream body: aws-chunked with a CRC32 trailer, sent chunked.
    send: () => sdk(() => s3Client(stack).send(new PutObjectCommand({ Bucket: BUCKET, Key: "modes/unsigned-trailer.bin", Body: Readable.from([TRAILER_BODY]), ContentLength: TRAILER_BODY.length }))),
    countersign: "streaming-unsigned-trailer",
    grpc: "none",
    forwarded: { payloadMode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", contentSha256: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", contentLength: undefined, transferEncoding: "chunked", bodyBytes: TRAILER_BODY.length, operation: "PutObject" },
    stored: { key: "modes/unsigned-trailer.bin", sha256: sha256(TRAILER_BODY) },
  },
  {
    row: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    client: "hand-signed",
    send: chunkSigned(false),
    countersign: "streaming-signed",
    grpc: "streamed",
    // Real Envoy keeps the client's content-length when STREAMED comes from mode_override.
    forwarded: { payloadMode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", contentLength: String(framed(false)), transferEncoding: undefined, wireBodyBytes: framed(false), bodyBytes: CHUNKED_SIZE, operation: "PutObject" },
  },
  {
    row: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
    client: "hand-signed",
    send: chunkSigned(true),
    countersign: "streaming-signed-trailer",
    grpc: "streamed",
    forwarded: { payloadMode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", contentLength: String(framed(true)), transferEncoding: undefined, wireBodyBytes: framed(true), bodyBytes: CHUNKED_SIZE, operation: "PutObject" },
  },
  {
    row: "absent, no body (end_of_stream)",
    client: "hand-signed",
    send: () => sendHandSigned(stack, { method: "GET", host: BUCKET_HOST, path: "/modes/hex.txt", service: "s3", region: "eu-west-1" }),
    countersign: "empty-body",
    grpc: "none",
    forwarded: { method: "GET", payloadMode: "SHA256", contentSha256: EMPTY_SHA256, contentLength: undefined, transferEncoding: undefined, operation: "GetObject" },
  },
  {
    row: "64-hex hash (DynamoDB JSON: the JS SDK hashes every body)",
    client: "JS SDK",
    send: () => sdk(() => dynamoClient(stack).send(new PutItemCommand({ TableName: "modes", Item: { pk: { S: "hashed by the SDK" } } }))),
    countersign: "client-hash",
    grpc: "none",
    forwarded: { method: "POST", payloadMode: "BODY-SHA256", transferEncoding: undefined, operation: "PutItem" },
  },
  {
    row: "absent, with a body (DynamoDB JSON, as botocore sends it)",
    client: "hand-signed",
    send: () =>
      sendHandSigned(stack, {
        method: "POST",
        host: "dynamodb.eu-west-1.amazonaws.com",
        path: "/",
        service: "dynamodb",
        region: "eu-west-1",
        headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": "DynamoDB_20120810.PutItem" },
        body: DYNAMODB_BODY,
      }),
    countersign: "buffered-body",
    grpc: "buffered",
    // countersign adds the hash it computed; BUFFERED keeps content-length.
    forwarded: { method: "POST", payloadMode: "BODY-SHA256", contentSha256: sha256(DYNAMODB_BODY), contentLength: String(DYNAMODB_BODY.length), transferEncoding: undefined, bodySha256: sha256(DYNAMODB_BODY), operation: "PutItem" },
  },
  {
    row: "absent, with a body (S3 PUT)",
    client: "hand-signed",
    send: () => sendHandSigned(stack, { method: "PUT", host: BUCKET_HOST, path: "/modes/buffered.txt", service: "s3", region: "eu-west-1", body: BUFFERED_S3_BODY }),
    countersign: "buffered-body",
    grpc: "buffered",
    // countersign sends the hash it computed; BUFFERED keeps content-length.
    forwarded: { payloadMode: "SHA256", contentSha256: sha256(BUFFERED_S3_BODY), contentLength: String(BUFFERED_S3_BODY.length), transferEncoding: undefined, operation: "PutObject" },
    stored: { key: "modes/buffered.txt", sha256: sha256(BUFFERED_S3_BODY) },
  },
  {
    row: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD (SigV4A)",
    client: "hand-signed",
    send: () =>
      sendHandSigned(stack, {
        method: "PUT",
        host: BUCKET_HOST,
        path: "/modes/sigv4a.bin",
        service: "s3",
        region: "eu-west-1",
        contentSha256: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        headers: { "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "5" },
        body: Buffer.from("0;chunk-signature=00\r\n\r\n"),
      }),
    countersign: "refused",
    grpc: "none",
    refusal: { status: 400, code: "SigV4aNotEnabled", reason: "algorithm_mismatch" },
  },
  {
    row: "STREAMING-AWS4-HMAC-SHA256-EVENTS",
    client: "hand-signed",
    send: () =>
      sendHandSigned(stack, { method: "PUT", host: BUCKET_HOST, path: "/modes/events.bin", service: "s3", region: "eu-west-1", contentSha256: "STREAMING-AWS4-HMAC-SHA256-EVENTS", body: Buffer.from("events") }),
    // Re-signed message by message (STREAMED); this body is no event-stream message, so 400. The
    // mode was chosen before the body was read, so the decision log names it.
    countersign: "streaming-events",
    grpc: "streamed",
    refusal: { status: 400, code: "BadRequestException", reason: "bad_event_framing" },
  },
];

function expectGrpcMessages(sent: number, grpc: BodyOverGrpc): void {
  if (grpc === "none") expect(sent).toBe(1);
  else if (grpc === "buffered") expect(sent).toBe(2);
  else expect(sent).toBeGreaterThanOrEqual(2);
}

describe("every payload mode of the README table, through real Envoy", () => {
  it.each(CASES.map((c) => [`${c.row} (${c.client})`, c] as const))("%s", async (_name, c) => {
    const start = stack.fake.requests.length;
    const msgs0 = await extProcMessagesSent(stack);
    const outcome = await c.send();
    const sent = (await extProcMessagesSent(stack)) - msgs0;
    const seen = forwardedSince(stack, start);

    if (c.refusal) {
      expect(outcome.status).toBe(c.refusal.status);
      const xml = parseXmlError(outcome.body);
      expect(xml?.code).toBe(c.refusal.code);
      expect(seen).toEqual([]);
      const decision = await decisionFor(stack, xml?.requestId ?? "");
      expect(decision).toMatchObject({ payloadMode: c.countersign, decision: "refused", reason: c.refusal.reason, status: c.refusal.status });
    } else {
      expect(outcome).toMatchObject({ status: 200 });
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({ verified: true, accessKeyId: REAL.accessKeyId, status: 200, ...c.forwarded });
      const record = stack.fake.requests[start];
      if (!record) throw new Error("no record");
      const decision = await decisionFor(stack, requestIdOf(record));
      expect(decision).toMatchObject({ payloadMode: c.countersign, decision: "signed" });
      if (c.stored) expect(stack.fake.s3.getObject(BUCKET, c.stored.key)?.sha256Hex).toBe(c.stored.sha256);
    }
    expectGrpcMessages(sent, c.grpc);
  });
});

// ===== BUFFERED bodies at the limit =============================================================

const LIMIT = MiB;

/** A JSON document of exactly `size` bytes. */
function jsonOfSize(size: number, shape: (pad: string) => unknown): Buffer {
  const base = Buffer.byteLength(JSON.stringify(shape("")));
  const out = Buffer.from(JSON.stringify(shape("x".repeat(size - base))));
  if (out.length !== size) throw new Error(`JSON of ${out.length} bytes, wanted ${size}`);
  return out;
}

type Target = "S3 PUT" | "DynamoDB PutItem" | "Bedrock InvokeModel (sigv4:body)";

function bufferedRequest(target: Target, size: number, chunked: boolean): Promise<Outcome> {
  switch (target) {
    case "S3 PUT":
      return sendHandSigned(stack, { method: "PUT", host: BUCKET_HOST, path: `/limits/${size}-${chunked ? "chunked" : "length"}.bin`, service: "s3", region: "eu-west-1", body: Buffer.alloc(size, "b"), chunked });
    case "DynamoDB PutItem":
      return sendHandSigned(stack, {
        method: "POST",
        host: "dynamodb.eu-west-1.amazonaws.com",
        path: "/",
        service: "dynamodb",
        region: "eu-west-1",
        headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": "DynamoDB_20120810.PutItem" },
        body: jsonOfSize(size, (pad) => ({ TableName: "limits", Item: { pk: { S: pad } } })),
        chunked,
      });
    case "Bedrock InvokeModel (sigv4:body)":
      return sendHandSigned(stack, {
        method: "POST",
        host: "bedrock-runtime.us-west-2.amazonaws.com",
        path: "/model/m1/invoke",
        service: "bedrock",
        region: "us-west-2",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: jsonOfSize(size, (pad) => ({ prompt: pad })),
        chunked,
      });
  }
}

describe("BUFFERED bodies (no x-amz-content-sha256) at limits.max_buffered_body_bytes = Envoy's buffer limit (1 MiB)", () => {
  const targets: Target[] = ["S3 PUT", "DynamoDB PutItem", "Bedrock InvokeModel (sigv4:body)"];

  it.each(targets.flatMap((t) => [[t, "content-length"] as const, [t, "transfer-encoding: chunked"] as const]))(
    "%s with %s: exactly 1 MiB is hashed, signed and verified; content-length is forwarded as sent",
    async (target, framing) => {
      const chunked = framing !== "content-length";
      const start = stack.fake.requests.length;
      const msgs0 = await extProcMessagesSent(stack);
      const res = await bufferedRequest(target, LIMIT, chunked);
      expect(res.status).toBe(200);
      expect((await extProcMessagesSent(stack)) - msgs0).toBe(2);
      const seen = forwardedSince(stack, start);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({
        verified: true,
        accessKeyId: REAL.accessKeyId,
        bodyBytes: LIMIT,
        wireBodyBytes: LIMIT,
        contentLength: chunked ? undefined : String(LIMIT),
        transferEncoding: chunked ? "chunked" : undefined,
      });
    },
  );

  it.each(targets)("%s with content-length 1 MiB + 1: countersign's 413 EntityTooLarge from the headers alone (the body is never asked for); nothing reaches AWS", async (target) => {
    const start = stack.fake.requests.length;
    const msgs0 = await extProcMessagesSent(stack);
    const res = await bufferedRequest(target, LIMIT + 1, false);
    expect(res.status).toBe(413);
    expect(res.headers?.["content-type"]).toBe("application/xml");
    expect(res.headers?.["x-countersign-denial"]).toBe("body_too_large");
    expect(parseXmlError(res.body)).toMatchObject({
      code: "EntityTooLarge",
      message: `the body (${LIMIT + 1} bytes) must be hashed to sign this request and is over the ${LIMIT}-byte limit; send x-amz-content-sha256 (a hex hash or UNSIGNED-PAYLOAD) from the client, or raise limits.max_buffered_body_bytes and Envoy&apos;s buffer limit together`,
    });
    expect((await extProcMessagesSent(stack)) - msgs0).toBe(1);
    expect(forwardedSince(stack, start)).toEqual([]);
  });

  // Without content-length countersign asks for BUFFERED_PARTIAL: Envoy sends the whole body when
  // it ends within the limit, or what it holds once past the limit (end_of_stream false), or —
  // when the whole body was in before the headers answer — the whole body. Every way, countersign
  // answers 413 with its XML. (In BUFFERED mode Envoy 1.40 stalls instead when the body passed its
  // limit before the headers answer, until the stream idle timeout: 408 after 5 minutes.)
  it.each(targets.flatMap((t) => [[t, LIMIT + 1] as const, [t, 8 * MiB] as const]))(
    "%s sent chunked, %i bytes: countersign's 413 EntityTooLarge at once, never a stall; nothing reaches AWS",
    async (target, size) => {
      const start = stack.fake.requests.length;
      const t0 = Date.now();
      const res = await bufferedRequest(target, size, true);
      const ms = Date.now() - t0;
      expect(res.status).toBe(413);
      expect(res.headers?.["content-type"]).toBe("application/xml");
      const xml = parseXmlError(res.body);
      expect(xml?.code).toBe("EntityTooLarge");
      expect(xml?.message).toMatch(new RegExp(`^the body \\((${LIMIT + 1} bytes|at least \\d+ bytes, sent without a content-length)\\) is over the ${LIMIT}-byte limit for hashing$`));
      expect(forwardedSince(stack, start)).toEqual([]);
      // The stall this guards against lasts 300 s; a busy box answers in well under 30.
      expect(ms).toBeLessThan(30_000);
    },
    60_000,
  );
});
