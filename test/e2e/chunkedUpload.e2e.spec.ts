/**
 * Signed streaming uploads (aws-chunked with per-chunk signatures) through real Envoy and
 * countersign: countersign re-signs the seed, every chunk and the trailer in flight (STREAMED body
 * mode); the fake AWS verifies every signature with the real key. Sizes: 1 byte, exactly one
 * chunk, 8 MiB and 1 GiB, each chunk-signed (PAYLOAD) and with a signed trailer (PAYLOAD-TRAILER).
 * 1 GiB streams end to end: the client generates each chunk as it goes, the fake keeps only
 * hashes (discardBodies), and the test checks the test process never holds anything near 1 GiB.
 *
 * What real Envoy 1.40 forwards on this path (STREAMED reached through mode_override): the
 * client's content-length, unchanged (the re-signed body has exactly its length), and no
 * transfer-encoding; a client that sends the body chunked (no content-length) is forwarded
 * chunked.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { proxiedAgent } from "./clients.js";
import { chunkedPut } from "./chunkSigningClient.js";
import { PLACEHOLDER, REAL, startStack, type Stack } from "./harness.js";
import { extProcMessagesSent } from "./observations.js";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ fakeOptions: { discardBodies: true } });
});
afterAll(async () => {
  await stack?.close();
});

const CHUNK = 64 * 1024;
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Samples this process's RSS while `run` runs; resolves with its result and the peak growth. */
async function withPeakRss<T>(run: () => Promise<T>): Promise<{ result: T; peakGrowth: number }> {
  const base = process.memoryUsage.rss();
  let peak = base;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, 50);
  try {
    const result = await run();
    peak = Math.max(peak, process.memoryUsage.rss());
    return { result, peakGrowth: peak - base };
  } finally {
    clearInterval(timer);
  }
}

describe("chunk-signed uploads are re-signed chunk by chunk", () => {
  it.each([
    ["1 byte", 1, false],
    ["1 byte with a signed trailer", 1, true],
    ["exactly one chunk", CHUNK, false],
    ["exactly one chunk with a signed trailer", CHUNK, true],
    ["8 MiB", 8 * MiB, false],
    ["8 MiB with a signed trailer", 8 * MiB, true],
    ["1 GiB", GiB, false],
    ["1 GiB with a signed trailer", GiB, true],
  ])("%s: verified with the real key; Envoy forwards the client's content-length unchanged and no transfer-encoding", async (_name, size, trailer) => {
    const start = stack.fake.requests.length;
    const msgs0 = await extProcMessagesSent(stack);
    const key = `chunked/${size}-${trailer ? "t" : "p"}.bin`;
    const { result: res, peakGrowth } = await withPeakRss(() =>
      chunkedPut({
        host: "e2e-bucket.s3.eu-west-1.amazonaws.com",
        path: `/${key}`,
        region: "eu-west-1",
        credentials: PLACEHOLDER,
        size,
        chunkSize: CHUNK,
        trailer,
        agent: proxiedAgent(stack),
        ca: stack.caPem,
      }).catch((err: unknown) => {
        // Envoy 1.40.0 has been seen to die with SIGSEGV on the ext_proc stream's closing trailers
        // at the end of ~1 GiB uploads on a heavily loaded box: say so instead of "socket hang up".
        const crash = /Caught Segmentation fault[^\n]*/.exec(stack.envoy?.output() ?? "");
        throw crash ? new Error(`Envoy crashed during the upload: ${crash[0]}\n${stack.envoy?.output().slice(-3000) ?? ""}`, { cause: err }) : err;
      }),
    );
    expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: "" });
    const seen = stack.fake.requests.slice(start);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      verified: true,
      accessKeyId: REAL.accessKeyId,
      payloadMode: trailer ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      chunksVerified: res.chunks,
      trailerVerified: trailer,
      bodyBytes: size,
      wireBodyBytes: res.framedLength,
    });
    // Exactly what left Envoy on the STREAMED path.
    expect({ contentLength: seen[0]?.contentLength, transferEncoding: seen[0]?.transferEncoding }).toEqual({ contentLength: String(res.framedLength), transferEncoding: undefined });
    // …and countersign's seed signature covers it, binding the framing AWS reads.
    expect(seen[0]?.signedHeaders).toContain("content-length");
    const stored = stack.fake.s3.getObject("e2e-bucket", key);
    expect(stored?.size).toBe(size);
    if (trailer) expect(seen[0]?.checksumsVerified).toContain("x-amz-checksum-crc32");
    // STREAMED: the headers message and then the body in pieces (more than one even for 1 byte:
    // Envoy sends the data, then an empty end_of_stream message, or both in one).
    expect((await extProcMessagesSent(stack)) - msgs0).toBeGreaterThanOrEqual(2);
    // The 1 GiB never sits in this process (client and fake AWS both stream).
    expect(peakGrowth).toBeLessThan(256 * MiB);
  }, 600_000);

  it("a chunk-signed upload sent with transfer-encoding: chunked (no content-length) is forwarded chunked and verified", async () => {
    const start = stack.fake.requests.length;
    const res = await chunkedPut({
      host: "e2e-bucket.s3.eu-west-1.amazonaws.com",
      path: "/chunked/no-content-length.bin",
      region: "eu-west-1",
      credentials: PLACEHOLDER,
      size: 8 * MiB,
      chunkSize: CHUNK,
      trailer: true,
      agent: proxiedAgent(stack),
      ca: stack.caPem,
      contentLength: false,
    });
    expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: "" });
    const seen = stack.fake.requests.slice(start);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ verified: true, accessKeyId: REAL.accessKeyId, trailerVerified: true, bodyBytes: 8 * MiB, wireBodyBytes: res.framedLength });
    expect({ contentLength: seen[0]?.contentLength, transferEncoding: seen[0]?.transferEncoding }).toEqual({ contentLength: undefined, transferEncoding: "chunked" });
  }, 120_000);

  it("broken chunk framing (a non-hex chunk size) is refused with 400 IncompleteBody and the object is never stored", async () => {
    const start = stack.fake.requests.length;
    const bad = await corruptUpload();
    expect(bad.status).toBe(400);
    expect(bad.body).toContain("<Code>IncompleteBody</Code>");
    expect(bad.body).toContain("is not a hex number");
    for (const r of stack.fake.requests.slice(start)) expect(r.verified).toBe(false);
    expect(stack.fake.s3.getObject("e2e-bucket", "chunked/corrupt2.bin")).toBeUndefined();
  });
});

/** A chunk header with a non-hex size, sent by hand through the proxy. */
async function corruptUpload(): Promise<{ status: number; body: string }> {
  const https = await import("node:https");
  const { SignatureV4 } = await import("@smithy/signature-v4");
  const { Hash } = await import("@smithy/hash-node");
  const host = "e2e-bucket.s3.eu-west-1.amazonaws.com";
  const body = Buffer.from(`zz;chunk-signature=${"0".repeat(64)}\r\nhello\r\n0;chunk-signature=${"0".repeat(64)}\r\n\r\n`);
  const headers: Record<string, string> = {
    host,
    "content-encoding": "aws-chunked",
    "content-length": String(body.length),
    "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    "x-amz-decoded-content-length": "5",
  };
  const signer = new SignatureV4({ service: "s3", region: "eu-west-1", credentials: PLACEHOLDER, sha256: Hash.bind(null, "sha256"), uriEscapePath: false, applyChecksum: false });
  const signed = await signer.sign({ method: "PUT", protocol: "https:", hostname: host, path: "/chunked/corrupt2.bin", query: {}, headers });
  return new Promise((resolve, reject) => {
    const req = https.request({ host, port: 443, method: "PUT", path: "/chunked/corrupt2.bin", headers: signed.headers as Record<string, string>, agent: proxiedAgent(stack), ca: stack.caPem, servername: host }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
    });
    req.on("error", reject);
    req.end(body);
  });
}
