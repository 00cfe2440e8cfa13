/**
 * SigV4A through REAL Envoy (the shipped envoy.yaml) and `countersign serve`: S3 Multi-Region
 * Access Points, which accept SigV4A only. The AWS SDK for JavaScript v3 signs with its JS SigV4A
 * signer (`@aws-sdk/signature-v4a`, what it loads for MRAP ARNs without the native CRT) and the
 * PLACEHOLDER key; countersign re-signs with SigV4A and the REAL key; the fake AWS verifies the
 * ECDSA signature with the public key it derives from the real secret (test/fakeaws/sigv4a.ts).
 * Then each row of the README's SigV4A payload-mode table, and the refusals.
 */
import "@aws-sdk/signature-v4a";
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { Readable } from "node:stream";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chunkedPut } from "./chunkSigningClient.js";
import { proxiedAgent, s3Client } from "./clients.js";
import { sendHandSigned, type HandSigned } from "./handSigned.js";
import { E2E_POLICY, PLACEHOLDER, REAL, startStack, type Stack } from "./harness.js";
import { decisionFor, extProcMessagesSent, forwardedSince, parseXmlError, requestIdOf } from "./observations.js";

const ALIAS = "mfzwi23gnjvgw";
const MRAP_ARN = `arn:aws:s3::123456789012:accesspoint/${ALIAS}.mrap`;
const MRAP_HOST = `${ALIAS}.mrap.accesspoint.s3-global.amazonaws.com`;
/** An endpoint whose policy pins the region set to "*" whatever the client sent. */
const PINNED_ALIAS = "pinnedalias";
const PINNED_HOST = `${PINNED_ALIAS}.accesspoint.s3-global.amazonaws.com`;
const ECDSA = "AWS4-ECDSA-P256-SHA256";
const sha256 = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");

const POLICY = `${E2E_POLICY}  - host: "*.mrap.accesspoint.s3-global.amazonaws.com"
    credential_signing: sigv4a
    signing_service: s3
    credentials: workload
    client_access_key_ids: [${PLACEHOLDER.accessKeyId}]
  - host: "*.accesspoint.s3-global.amazonaws.com"
    credential_signing: sigv4a
    signing_service: s3
    region_set: ["*"]
    credentials: workload
`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ policy: POLICY });
  stack.fake.s3.createBucket(ALIAS);
  stack.fake.s3.createBucket(PINNED_ALIAS);
});
afterAll(async () => {
  await stack?.close();
});

function header(index: number, name: string): string | undefined {
  return stack.fake.requests[index]?.headers.find(([n]) => n.toLowerCase() === name)?.[1];
}

describe("S3 Multi-Region Access Point through real Envoy with the JS SDK v3", () => {
  it("PutObject and GetObject by MRAP ARN: both re-signed with SigV4A and the real key, verified by the fake AWS", async () => {
    const s3 = s3Client(stack, { region: "us-east-1" });
    const body = "stored through a Multi-Region Access Point";
    const start = stack.fake.requests.length;
    await s3.send(new PutObjectCommand({ Bucket: MRAP_ARN, Key: "mrap/hello.txt", Body: body }));
    const got = await s3.send(new GetObjectCommand({ Bucket: MRAP_ARN, Key: "mrap/hello.txt" }));
    expect(await got.Body?.transformToString()).toBe(body);

    const seen = forwardedSince(stack, start);
    expect(seen.map((r) => ({ host: r.host, operation: r.operation, verified: r.verified, accessKeyId: r.accessKeyId, status: r.status }))).toEqual([
      { host: MRAP_HOST, operation: "PutObject", verified: true, accessKeyId: REAL.accessKeyId, status: 200 },
      { host: MRAP_HOST, operation: "GetObject", verified: true, accessKeyId: REAL.accessKeyId, status: 200 },
    ]);
    for (const i of [start, start + 1]) {
      expect(stack.fake.requests[i]?.algorithm).toBe(ECDSA);
      expect(header(i, "authorization")).toMatch(new RegExp(`^${ECDSA} Credential=${REAL.accessKeyId}/\\d{8}/s3/aws4_request, SignedHeaders=[a-z0-9;-]*x-amz-region-set[a-z0-9;-]*, Signature=30[0-9a-f]+$`));
      expect(header(i, "x-amz-region-set")).toBe("*");
    }
    expect(stack.fake.s3.getObject(ALIAS, "mrap/hello.txt")?.sha256Hex).toBe(sha256(body));
    const put = await decisionFor(stack, requestIdOf(stack.fake.requests[start] as never));
    expect(put).toMatchObject({ decision: "signed", payloadMode: "client-hash", service: "s3", region: "*" });
  });
});

// ===== every row of the README's SigV4A payload-mode table ======================================

interface Row {
  row: string;
  send(): Promise<{ status: number; body: string }>;
  /** payloadMode in countersign's decision log. */
  countersign: string;
  /** ext_proc messages Envoy sent: 1 headers only, 2 headers + the buffered body. */
  grpcMessages: number;
  /** What reached the fake AWS (absent: refused, nothing forwarded). */
  forwarded?: { payloadMode: string; contentSha256: string; key: string; body: Buffer };
  refusal?: { status: number; code: string; reason: string; message: RegExp };
}

const v4a = (r: Partial<HandSigned> & Pick<HandSigned, "method" | "path">): Promise<{ status: number; body: string }> =>
  sendHandSigned(stack, { host: MRAP_HOST, service: "s3", region: "us-east-1", regionSet: "*", ...r });

const HEX_BODY = Buffer.from("sigv4a row: 64-hex hash");
const UNSIGNED_BODY = Buffer.from("sigv4a row: UNSIGNED-PAYLOAD");
const TRAILER_BODY = Buffer.alloc(70 * 1024, "t");
const BUFFERED_BODY = Buffer.from("sigv4a row: no hash, so countersign hashes the body");

const ROWS: Row[] = [
  {
    row: "64-hex hash",
    send: () => v4a({ method: "PUT", path: "/rows/hex.txt", contentSha256: sha256(HEX_BODY), body: HEX_BODY }),
    countersign: "client-hash",
    grpcMessages: 1,
    forwarded: { payloadMode: "SHA256", contentSha256: sha256(HEX_BODY), key: "rows/hex.txt", body: HEX_BODY },
  },
  {
    row: "UNSIGNED-PAYLOAD",
    send: () => v4a({ method: "PUT", path: "/rows/unsigned.txt", contentSha256: "UNSIGNED-PAYLOAD", body: UNSIGNED_BODY }),
    countersign: "unsigned-payload",
    grpcMessages: 1,
    forwarded: { payloadMode: "UNSIGNED-PAYLOAD", contentSha256: "UNSIGNED-PAYLOAD", key: "rows/unsigned.txt", body: UNSIGNED_BODY },
  },
  {
    row: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    // The JS SDK's own aws-chunked upload with a CRC32 trailer, to the MRAP ARN.
    send: async () => {
      try {
        await s3Client(stack, { region: "us-east-1" }).send(new PutObjectCommand({ Bucket: MRAP_ARN, Key: "rows/trailer.bin", Body: Readable.from([TRAILER_BODY]), ContentLength: TRAILER_BODY.length }));
        return { status: 200, body: "" };
      } catch (err) {
        return { status: (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1, body: String(err) };
      }
    },
    countersign: "streaming-unsigned-trailer",
    grpcMessages: 1,
    forwarded: { payloadMode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", contentSha256: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", key: "rows/trailer.bin", body: TRAILER_BODY },
  },
  {
    row: "STREAMING-AWS4-HMAC-SHA256-* (SigV4)",
    send: () =>
      sendHandSigned(stack, {
        method: "PUT",
        host: MRAP_HOST,
        path: "/rows/hmac.bin",
        service: "s3",
        region: "us-east-1",
        contentSha256: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        headers: { "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "5" },
        body: Buffer.from(`0;chunk-signature=${"0".repeat(64)}\r\n\r\n`),
      }),
    countersign: "refused",
    grpcMessages: 1,
    refusal: {
      status: 400,
      code: "SigV4aRequired",
      reason: "algorithm_mismatch",
      message: /^endpoint \*\.mrap\.accesspoint\.s3-global\.amazonaws\.com re-signs with SigV4A only \(credential_signing: sigv4a\), and the client signed with SigV4 \(AWS4-HMAC-SHA256, in its Authorization header\)/,
    },
  },
  {
    row: "absent, no body (end_of_stream)",
    send: () => v4a({ method: "GET", path: "/rows/hex.txt" }),
    countersign: "empty-body",
    grpcMessages: 1,
    forwarded: { payloadMode: "SHA256", contentSha256: sha256(""), key: "rows/hex.txt", body: HEX_BODY },
  },
  {
    row: "absent, with a body",
    send: () => v4a({ method: "PUT", path: "/rows/buffered.txt", body: BUFFERED_BODY }),
    countersign: "buffered-body",
    grpcMessages: 2,
    forwarded: { payloadMode: "SHA256", contentSha256: sha256(BUFFERED_BODY), key: "rows/buffered.txt", body: BUFFERED_BODY },
  },
];

describe("every row of the README's SigV4A payload-mode table, through real Envoy (the chunk-signed row: next block)", () => {
  it.each(ROWS.map((r) => [r.row, r] as const))("%s", async (_name, r) => {
    const start = stack.fake.requests.length;
    const msgs0 = await extProcMessagesSent(stack);
    const outcome = await r.send();
    expect((await extProcMessagesSent(stack)) - msgs0).toBe(r.grpcMessages);
    const seen = forwardedSince(stack, start);
    if (r.refusal) {
      expect(outcome.status).toBe(r.refusal.status);
      const xml = parseXmlError(outcome.body);
      expect(xml?.code).toBe(r.refusal.code);
      expect(xml?.message.replace(/&apos;/g, "'").replace(/&quot;/g, '"')).toMatch(r.refusal.message);
      expect(seen).toEqual([]);
      expect(await decisionFor(stack, xml?.requestId ?? "")).toMatchObject({ payloadMode: r.countersign, decision: "refused", reason: r.refusal.reason, status: r.refusal.status });
      return;
    }
    const want = r.forwarded;
    if (!want) throw new Error("a row either forwards or refuses");
    expect(outcome.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ verified: true, accessKeyId: REAL.accessKeyId, status: 200, payloadMode: want.payloadMode, contentSha256: want.contentSha256 });
    expect(stack.fake.requests[start]?.algorithm).toBe(ECDSA);
    expect(stack.fake.s3.getObject(ALIAS, want.key)?.sha256Hex).toBe(sha256(want.body));
    expect(await decisionFor(stack, requestIdOf(stack.fake.requests[start] as never))).toMatchObject({ payloadMode: r.countersign, decision: "signed" });
  });
});

// ===== the STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD[-TRAILER] row ==================================

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;

describe("SigV4A chunk-signed uploads (STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD[-TRAILER]) through real Envoy: re-signed chunk by chunk", () => {
  it.each([
    ["1 byte", 1, false],
    ["4 MiB in 64 KiB chunks", 4 * MiB, false],
    ["4 MiB in 64 KiB chunks with a signed trailer", 4 * MiB, true],
  ])("%s: every chunk signature verified by the fake AWS under the real key; the content-length Envoy forwards is the body length the fake got", async (_name, size, trailer) => {
    const start = stack.fake.requests.length;
    const msgs0 = await extProcMessagesSent(stack);
    const key = `chunked-v4a/${size}-${trailer ? "t" : "p"}.bin`;
    const res = await chunkedPut({ host: MRAP_HOST, path: `/${key}`, region: "us-east-1", regionSet: "*", credentials: PLACEHOLDER, size, chunkSize: CHUNK, trailer, agent: proxiedAgent(stack), ca: stack.caPem });
    expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: "" });
    const literal = trailer ? "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
    const seen = stack.fake.requests.slice(start);
    expect(seen).toHaveLength(1);
    expect(header(start, "x-amz-content-sha256")).toBe(literal);
    expect(seen[0]).toMatchObject({
      host: MRAP_HOST,
      verified: true,
      algorithm: ECDSA,
      accessKeyId: REAL.accessKeyId,
      payloadMode: literal,
      chunksVerified: res.chunks,
      trailerVerified: trailer,
      bodyBytes: size,
      // The body the client framed with 144-character signature fields, byte for byte as long.
      wireBodyBytes: res.framedLength,
    });
    // Exactly what left Envoy: the client's content-length, unchanged and signed, no transfer-encoding.
    expect({ contentLength: seen[0]?.contentLength, transferEncoding: seen[0]?.transferEncoding }).toEqual({ contentLength: String(res.framedLength), transferEncoding: undefined });
    expect(seen[0]?.signedHeaders).toEqual(expect.arrayContaining(["content-length", "x-amz-decoded-content-length", "x-amz-region-set"]));
    expect(header(start, "x-amz-decoded-content-length")).toBe(String(size));
    expect(stack.fake.s3.getObject(ALIAS, key)?.size).toBe(size);
    if (trailer) expect(seen[0]?.checksumsVerified).toContain("x-amz-checksum-crc32");
    expect((await extProcMessagesSent(stack)) - msgs0).toBeGreaterThanOrEqual(2);
    expect(await decisionFor(stack, requestIdOf(stack.fake.requests[start] as never))).toMatchObject({
      decision: "signed",
      payloadMode: trailer ? "streaming-signed-trailer" : "streaming-signed",
      region: "*",
    });
  }, 120_000);

  it("a chunk whose signature field is not the padded 144-character form is refused with 400 IncompleteBody, and the object is never stored", async () => {
    const start = stack.fake.requests.length;
    const res = await chunkedPut({ host: MRAP_HOST, path: "/chunked-v4a/unpadded.bin", region: "us-east-1", regionSet: "*", credentials: PLACEHOLDER, size: 4 * CHUNK, chunkSize: CHUNK, trailer: false, agent: proxiedAgent(stack), ca: stack.caPem, unpadChunk: 2 });
    expect(res.status).toBe(400);
    const xml = parseXmlError(res.body);
    expect(xml?.code).toBe("IncompleteBody");
    expect(xml?.message.replace(/&quot;/g, '"')).toBe('aws-chunked body is malformed: chunk-signature is not 144 characters: a hex DER ECDSA signature padded with "*" (as aws-c-auth writes it); nothing more was forwarded');
    for (const r of stack.fake.requests.slice(start)) expect(r.verified).toBe(false);
    expect(stack.fake.s3.getObject(ALIAS, "chunked-v4a/unpadded.bin")).toBeUndefined();
    expect(await decisionFor(stack, xml?.requestId ?? "")).toMatchObject({ decision: "refused", reason: "bad_chunk_framing", status: 400 });
  }, 60_000);
});

// ===== presigned SigV4A URLs ======================================================================

const PYTHON = "/usr/bin/python3";

/**
 * A GET presigned with SigV4A by aws-c-auth itself, through python3-awscrt (Debian's, installed by
 * scripts/install-system-deps.sh; the AWS CLI v2 package depends on it): `awscrt_presign.py`. The
 * JS SDK cannot make one without the native CRT (`SignatureV4MultiRegion.presign` throws for
 * signingRegion "*" with the JS SigV4A signer). Returns the presigned path and query, as sent.
 */
async function awscrtPresignedPath(path: string, keyId: string): Promise<string> {
  if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run scripts/install-system-deps.sh (apt-get install python3-awscrt)`);
  const { stdout } = await promisify(execFile)(PYTHON, [join(import.meta.dirname, "awscrt_presign.py"), MRAP_HOST, path, "us-east-1", "300"], {
    env: { PATH: process.env["PATH"] ?? "/usr/bin:/bin", AWS_ACCESS_KEY_ID: keyId, AWS_SECRET_ACCESS_KEY: PLACEHOLDER.secretAccessKey },
    timeout: 60_000,
  });
  return stdout.trim();
}

describe("presigned SigV4A URLs (X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256) through real Envoy", () => {
  it("a GET presigned by aws-c-auth (python3-awscrt) is re-signed in headers with SigV4A, the real key and the URL's region set; its X-Amz-* parameters never reach AWS", async () => {
    const body = Buffer.from("read through a presigned SigV4A URL");
    expect((await v4a({ method: "PUT", path: "/presigned/v4a.txt", contentSha256: sha256(body), body })).status).toBe(200);
    const start = stack.fake.requests.length;
    const presigned = await awscrtPresignedPath("/presigned/v4a.txt?x-id=GetObject", PLACEHOLDER.accessKeyId);
    expect(presigned).toMatch(new RegExp(`^/presigned/v4a\\.txt\\?x-id=GetObject&X-Amz-Algorithm=${ECDSA}&X-Amz-Credential=${PLACEHOLDER.accessKeyId}%2F\\d{8}%2Fs3%2Faws4_request&.*X-Amz-Region-Set=us-east-1&X-Amz-Signature=30[0-9a-f]+$`));
    const res = await sendHandSigned(stack, { method: "GET", host: MRAP_HOST, path: presigned, service: "s3", region: "us-east-1", sign: false });
    expect({ status: res.status, body: res.body }).toEqual({ status: 200, body: body.toString() });
    const seen = stack.fake.requests.slice(start);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ verified: true, algorithm: ECDSA, authKind: "header", accessKeyId: REAL.accessKeyId, operation: "GetObject", query: "x-id=GetObject" });
    expect(header(start, "authorization")).toMatch(new RegExp(`^${ECDSA} Credential=${REAL.accessKeyId}/\\d{8}/s3/aws4_request, SignedHeaders=[a-z0-9;-]*x-amz-region-set[a-z0-9;-]*, Signature=30[0-9a-f]+$`));
    expect(header(start, "x-amz-region-set")).toBe("us-east-1");
    expect(await decisionFor(stack, requestIdOf(seen[0] as never))).toMatchObject({ decision: "signed", payloadMode: "empty-body", region: "us-east-1", clientKeyId: expect.stringMatching(/^AKID/) as unknown });
  });

  it("a presigned SigV4A URL with a placeholder key id the endpoint does not allow is refused 403 before anything is forwarded", async () => {
    const start = stack.fake.requests.length;
    const presigned = await awscrtPresignedPath("/presigned/v4a.txt", "AKIDNOTALLOWED000001");
    const res = await sendHandSigned(stack, { method: "GET", host: MRAP_HOST, path: presigned, service: "s3", region: "us-east-1", sign: false });
    expect(res.status).toBe(403);
    expect(parseXmlError(res.body)?.code).toBe("InvalidAccessKeyId");
    expect(stack.fake.requests.slice(start)).toEqual([]);
  });
});

describe("region sets", () => {
  it("signs for the endpoint's region_set, overriding the client's: a set that would not cover the serving region is replaced by *", async () => {
    const start = stack.fake.requests.length;
    const body = Buffer.from("pinned region set");
    const res = await sendHandSigned(stack, { method: "PUT", host: PINNED_HOST, path: "/pinned.txt", service: "s3", region: "us-east-1", regionSet: "ap-southeast-2", contentSha256: "UNSIGNED-PAYLOAD", body });
    expect(res.status).toBe(200);
    expect(forwardedSince(stack, start)).toMatchObject([{ verified: true, accessKeyId: REAL.accessKeyId }]);
    expect(header(start, "x-amz-region-set")).toBe("*");
    expect(stack.fake.s3.getObject(PINNED_ALIAS, "pinned.txt")?.sha256Hex).toBe(sha256(body));
  });

  it("keeps the client's region set where the policy has none: the fake refuses one that does not cover its serving region (us-east-1)", async () => {
    const start = stack.fake.requests.length;
    const res = await v4a({ method: "GET", path: "/rows/hex.txt", regionSet: "eu-west-1,ap-southeast-2" });
    expect(res.status).toBe(403);
    expect(forwardedSince(stack, start)).toMatchObject([{ verified: false, errorCode: "SignatureDoesNotMatch" }]);
    expect(header(start, "x-amz-region-set")).toBe("eu-west-1,ap-southeast-2");
    expect(stack.fake.requests[start]?.errorMessage).toMatch(/region set 'eu-west-1,ap-southeast-2' does not include the region 'us-east-1'/);
  });
});
