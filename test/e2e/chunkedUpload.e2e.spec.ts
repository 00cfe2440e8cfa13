/**
 * Signed streaming uploads (aws-chunked with per-chunk signatures) through Envoy and countersign:
 * countersign re-signs the seed, every chunk and the trailer in flight (STREAMED body mode); the
 * fake AWS verifies every signature with the real key. Sizes: 1 byte, exactly one chunk, 8 MiB,
 * 100 MiB.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { proxiedAgent } from "./clients.js";
import { chunkedPut } from "./chunkSigningClient.js";
import { PLACEHOLDER, REAL, startStack, type Stack } from "./harness.js";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ fakeOptions: { discardBodies: true } });
});
afterAll(async () => {
  await stack?.close();
});

const CHUNK = 64 * 1024;

describe("chunk-signed uploads are re-signed chunk by chunk", () => {
  it.each([
    ["1 byte", 1, false],
    ["exactly one chunk", CHUNK, false],
    ["8 MiB", 8 * 1024 * 1024, false],
    ["8 MiB with a signed trailer", 8 * 1024 * 1024, true],
    ["1 byte with a signed trailer", 1, true],
    ["100 MiB", 100 * 1024 * 1024, true],
  ])("%s", async (_name, size, trailer) => {
    const start = stack.fake.requests.length;
    const key = `chunked/${size}-${trailer ? "t" : "p"}.bin`;
    const res = await chunkedPut({
      host: "e2e-bucket.s3.eu-west-1.amazonaws.com",
      path: `/${key}`,
      region: "eu-west-1",
      credentials: PLACEHOLDER,
      size,
      chunkSize: CHUNK,
      trailer,
      agent: proxiedAgent(stack),
      ca: stack.caPem,
    });
    expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: "" });
    const seen = stack.fake.requests.slice(start);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      verified: true,
      accessKeyId: REAL.accessKeyId,
      payloadMode: trailer ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      chunksVerified: res.chunks,
      trailerVerified: trailer,
    });
    const stored = stack.fake.s3.getObject("e2e-bucket", key);
    expect(stored?.size).toBe(size);
    if (trailer) expect(seen[0]?.checksumsVerified).toContain("x-amz-checksum-crc32");
  }, 300_000);

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
