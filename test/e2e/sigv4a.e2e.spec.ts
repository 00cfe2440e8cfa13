/**
 * SigV4A through REAL Envoy (the shipped envoy.yaml) and `countersign serve`: S3 Multi-Region
 * Access Points, which accept SigV4A only. The AWS SDK for JavaScript v3 signs with its JS SigV4A
 * signer (`@aws-sdk/signature-v4a`, what it loads for MRAP ARNs without the native CRT) and the
 * PLACEHOLDER key; countersign re-signs with SigV4A and the REAL key; the fake AWS verifies the
 * ECDSA signature with the public key it derives from the real secret (test/fakeaws/sigv4a.ts).
 * Then each row of the README's SigV4A payload-mode table, and the refusals.
 */
import "@aws-sdk/signature-v4a";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { s3Client } from "./clients.js";
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
    row: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD[-TRAILER]",
    send: () =>
      v4a({
        method: "PUT",
        path: "/rows/chunked.bin",
        contentSha256: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        headers: { "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "5" },
        body: Buffer.from("0;chunk-signature=00\r\n\r\n"),
      }),
    countersign: "refused",
    grpcMessages: 1,
    refusal: { status: 400, code: "SigV4aNotSupported", reason: "bad_payload_mode", message: /is a SigV4A chunk-signed upload, whose chunk signatures countersign does not re-sign yet/ },
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

describe("every row of the README's SigV4A payload-mode table, through real Envoy", () => {
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
