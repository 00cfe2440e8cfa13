import { createHash } from "node:crypto";
import * as http from "node:http";
import { Readable } from "node:stream";
import { BedrockRuntimeClient, ConverseCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import {
  CreateBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { AssumeRoleCommand, AssumeRoleWithWebIdentityCommand, GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { Upload } from "@aws-sdk/lib-storage";
import { Hash } from "@smithy/hash-node";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { SignatureV4a } from "@smithy/signature-v4a";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { checksumBase64 } from "./checksums.js";
import { awsHttpEndpoint, loopbackRequestHandler } from "./loopbackAgent.js";
import { startFakeAws, type FakeAws, type RecordedRequest } from "./server.js";

const REAL = { accessKeyId: "AKIAFAKEAWSREAL00001", secretAccessKey: "real/secret+key/for/the/fake/aws/0000001" };
const WRONG = { accessKeyId: REAL.accessKeyId, secretAccessKey: "not-the-real-secret-at-all-000000000000" };
const TEMP = { accessKeyId: "ASIAFAKEAWSTEMP00001", secretAccessKey: "temp-secret-0000000000000000000000000000", sessionToken: "temp-session-token-value" };
const EXPIRED = { accessKeyId: "ASIAFAKEAWSEXPIRED01", secretAccessKey: "expired-secret-000000000000000000000000", sessionToken: "expired-token-value" };
const WEB_TOKEN = "eyJhbGciOiJSUzI1NiJ9.fake.web-identity-token";
const S3_HOST = "s3.us-east-1.amazonaws.com";

let fake: FakeAws;
let clockOffsetMs = 0;

beforeAll(async () => {
  fake = await startFakeAws({
    accounts: [REAL, TEMP, { ...EXPIRED, expiration: new Date(Date.now() - 60_000) }],
    now: () => new Date(Date.now() + clockOffsetMs),
    webIdentityTokens: [WEB_TOKEN],
  });
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  clockOffsetMs = 0;
});

function s3(overrides: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    region: "us-east-1",
    endpoint: awsHttpEndpoint(S3_HOST),
    forcePathStyle: true,
    credentials: REAL,
    requestHandler: loopbackRequestHandler(fake.port),
    maxAttempts: 1,
    ...overrides,
  });
}

function sts(credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } = REAL, requestTimeout?: number): STSClient {
  return new STSClient({
    region: "us-east-1",
    endpoint: awsHttpEndpoint("sts.us-east-1.amazonaws.com"),
    credentials,
    requestHandler: loopbackRequestHandler(fake.port, requestTimeout !== undefined ? { requestTimeout, throwOnRequestTimeout: true } : {}),
    maxAttempts: 1,
  });
}

function last(): RecordedRequest {
  const r = fake.requests[fake.requests.length - 1];
  if (!r) throw new Error("no request recorded");
  return r;
}

async function errorOf(p: Promise<unknown>): Promise<{ name: string; status?: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { name: e.name, message: e.message, ...(e.$metadata?.httpStatusCode !== undefined ? { status: e.$metadata.httpStatusCode } : {}) };
  }
  throw new Error("expected the call to fail");
}

// -- raw requests, signed by @smithy/signature-v4 (an implementation independent of the fake) --

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function sendRaw(method: string, host: string, path: string, headers: Record<string, string>, body: Buffer[] = []): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: fake.port, method, path, headers: { host, ...headers }, setHost: false, agent: false });
    req.on("error", reject);
    req.on("response", (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString("utf8") }));
    });
    for (const piece of body) req.write(piece);
    req.end();
  });
}

function signer(service: string, credentials = REAL): SignatureV4 {
  return new SignatureV4({
    service,
    region: "us-east-1",
    credentials,
    sha256: Hash.bind(null, "sha256"),
    uriEscapePath: service !== "s3",
    applyChecksum: false,
  });
}

async function signHeaders(opts: {
  method: string;
  host: string;
  path: string;
  headers: Record<string, string>;
  service?: string;
  date?: Date;
  credentials?: typeof REAL;
}): Promise<Record<string, string>> {
  const request = new HttpRequest({ method: opts.method, protocol: "http:", hostname: opts.host, path: opts.path, headers: { host: opts.host, ...opts.headers } });
  const signed = await signer(opts.service ?? "s3", opts.credentials).sign(request, { signingDate: opts.date ?? new Date() });
  const out = { ...signed.headers };
  delete out.host;
  return out;
}

const errorCode = (xml: string): string | undefined => /<Code>([^<]*)<\/Code>/.exec(xml)?.[1];

// ---------------------------------------------------------------------------------------------

describe("S3 through the real AWS SDK v3, signed with the real key", () => {
  const awkwardKeys = ["plain.txt", "dir with space/a+b%c.txt", "ünïcødé/ключ ☃.txt", "a//double//slash", "./dot", "x/../up", "semi;colon=eq&amp?q#h", "~tilde*star'(paren)!"];

  it.each(awkwardKeys)("round-trips key %j path-style, and the fake verified the request with the real key", async (key) => {
    const client = s3();
    await client.send(new PutObjectCommand({ Bucket: "awkward", Key: key, Body: `body of ${key}`, ContentType: "text/plain", Metadata: { origin: "test" } }));
    const put = last();
    expect(put).toMatchObject({ service: "s3", region: "us-east-1", method: "PUT", verified: true, accessKeyId: REAL.accessKeyId, status: 200, operation: "PutObject" });
    const got = await client.send(new GetObjectCommand({ Bucket: "awkward", Key: key }));
    expect(await got.Body?.transformToString()).toBe(`body of ${key}`);
    expect(got.Metadata).toEqual({ origin: "test" });
    expect(got.ContentType).toBe("text/plain");
    expect(fake.s3.getObject("awkward", key)?.size).toBe(Buffer.byteLength(`body of ${key}`));
  });

  it("round-trips an awkward key virtual-hosted style (bucket in the Host)", async () => {
    const client = s3({ forcePathStyle: false });
    const key = "v host/sp ace+plus%pct/../x";
    await client.send(new PutObjectCommand({ Bucket: "vhost-bucket", Key: key, Body: "v" }));
    expect(last()).toMatchObject({ host: `vhost-bucket.${S3_HOST}`, verified: true, operation: "PutObject" });
    const head = await client.send(new HeadObjectCommand({ Bucket: "vhost-bucket", Key: key }));
    expect(head.ContentLength).toBe(1);
    expect(fake.s3.listKeys("vhost-bucket")).toEqual([key]);
  });

  it("lists with prefix and delimiter, and deletes", async () => {
    const client = s3();
    await client.send(new CreateBucketCommand({ Bucket: "listing" }));
    for (const key of ["a/1", "a/2", "a/b/3", "c"]) await client.send(new PutObjectCommand({ Bucket: "listing", Key: key, Body: key }));
    const listed = await client.send(new ListObjectsV2Command({ Bucket: "listing", Prefix: "a/", Delimiter: "/" }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual(["a/1", "a/2"]);
    expect(listed.CommonPrefixes?.map((p) => p.Prefix)).toEqual(["a/b/"]);
    const paged = await client.send(new ListObjectsV2Command({ Bucket: "listing", MaxKeys: 3 }));
    expect([paged.IsTruncated, paged.KeyCount]).toEqual([true, 3]);
    const rest = await client.send(new ListObjectsV2Command({ Bucket: "listing", ContinuationToken: paged.NextContinuationToken }));
    expect(rest.Contents?.map((c) => c.Key)).toEqual(["c"]);
    await client.send(new DeleteObjectCommand({ Bucket: "listing", Key: "c" }));
    expect(fake.s3.listKeys("listing")).toEqual(["a/1", "a/2", "a/b/3"]);
  });

  it("verifies a streamed PutObject sent as STREAMING-UNSIGNED-PAYLOAD-TRAILER with a CRC32 trailer", async () => {
    const data = Buffer.alloc(300_000, 7);
    await s3().send(new PutObjectCommand({ Bucket: "stream", Key: "s.bin", Body: Readable.from([data.subarray(0, 100_000), data.subarray(100_000)]), ContentLength: data.length }));
    expect(last()).toMatchObject({
      payloadMode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
      verified: true,
      bodyBytes: 300_000,
      checksumsVerified: ["x-amz-checksum-crc32"],
      trailers: { "x-amz-checksum-crc32": checksumBase64("crc32", data) },
    });
    expect(fake.s3.getObject("stream", "s.bin")?.body?.equals(data)).toBe(true);
  });

  it("uploads 20 MiB with lib-storage in 5 MiB parts, every part verified", async () => {
    const data = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data[i] = i % 251;
    const before = fake.requests.length;
    const upload = new Upload({ client: s3(), params: { Bucket: "big", Key: "twenty.bin", Body: data }, partSize: 5 * 1024 * 1024, queueSize: 2 });
    const out = await upload.done();
    const mine = fake.requests.slice(before);
    expect(mine.map((r) => r.operation).sort()).toEqual(["CompleteMultipartUpload", "CreateMultipartUpload", "UploadPart", "UploadPart", "UploadPart", "UploadPart"]);
    expect(mine.every((r) => r.verified && r.status === 200)).toBe(true);
    expect(out.ETag).toMatch(/-4"$/);
    const stored = fake.s3.getObject("big", "twenty.bin");
    expect(stored?.size).toBe(data.length);
    expect(stored?.sha256Hex).toBe(createHash("sha256").update(data).digest("hex"));
  });
});

describe("S3 refusals, as strict as AWS", () => {
  it("answers a wrong secret with 403 SignatureDoesNotMatch carrying the canonical request and string to sign", async () => {
    const err = await errorOf(s3({ credentials: WRONG }).send(new PutObjectCommand({ Bucket: "b", Key: "k", Body: "x" })));
    expect(err).toMatchObject({ name: "SignatureDoesNotMatch", status: 403 });
    const rec = last();
    expect(rec).toMatchObject({ verified: false, errorCode: "SignatureDoesNotMatch", failure: "signature", accessKeyId: REAL.accessKeyId });
    expect(rec.canonicalRequest?.split("\n").slice(0, 2)).toEqual(["PUT", "/b/k"]);
    expect(rec.stringToSign?.split("\n")[0]).toBe("AWS4-HMAC-SHA256");
  });

  it("puts the canonical request and string to sign in the 403 body, as S3 does", async () => {
    const headers = await signHeaders({ method: "GET", host: S3_HOST, path: "/b/k", headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, credentials: WRONG });
    const res = await sendRaw("GET", S3_HOST, "/b/k", headers);
    expect(res.status).toBe(403);
    expect(errorCode(res.body)).toBe("SignatureDoesNotMatch");
    expect(res.body).toContain("<CanonicalRequest>GET\n/b/k\n");
    expect(res.body).toContain("<StringToSign>AWS4-HMAC-SHA256\n");
    expect(res.body).not.toContain(WRONG.secretAccessKey);
  });

  it("answers an unknown access key with 403 InvalidAccessKeyId", async () => {
    const err = await errorOf(s3({ credentials: { accessKeyId: "AKIAUNKNOWN000000000", secretAccessKey: "x" } }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(err).toMatchObject({ name: "InvalidAccessKeyId", status: 403 });
    expect(last()).toMatchObject({ failure: "unknown-key", accessKeyId: "AKIAUNKNOWN000000000" });
  });

  it("refuses an x-amz-meta-* header that is present but not signed with 403 AccessDenied / HeadersNotSigned", async () => {
    const body = Buffer.from("hello");
    const headers = await signHeaders({ method: "PUT", host: S3_HOST, path: "/b/unsigned-meta", headers: { "x-amz-content-sha256": createHash("sha256").update(body).digest("hex"), "content-length": "5" } });
    const res = await sendRaw("PUT", S3_HOST, "/b/unsigned-meta", { ...headers, "x-amz-meta-sneaky": "1" }, [body]);
    expect(res.status).toBe(403);
    expect(errorCode(res.body)).toBe("AccessDenied");
    expect(res.body).toContain("There were headers present in the request which were not signed");
    expect(res.body).toContain("<HeadersNotSigned>x-amz-meta-sneaky</HeadersNotSigned>");
    expect(last()).toMatchObject({ failure: "headers-not-signed", verified: false });
    expect(fake.s3.getObject("b", "unsigned-meta")).toBeUndefined();
  });

  it("refuses a request whose SignedHeaders leave out host", async () => {
    const headers = await signHeaders({ method: "GET", host: S3_HOST, path: "/b/k", headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } });
    headers.authorization = (headers.authorization ?? "").replace("SignedHeaders=host;", "SignedHeaders=");
    const res = await sendRaw("GET", S3_HOST, "/b/k", headers);
    expect(res.status).toBe(403);
    expect(last().failure).toBe("host-not-signed");
  });

  it("answers a signed S3 request without x-amz-content-sha256 with 400", async () => {
    const headers = await signHeaders({ method: "GET", host: S3_HOST, path: "/b/k", headers: {} });
    const res = await sendRaw("GET", S3_HOST, "/b/k", headers);
    expect([res.status, errorCode(res.body), last().failure]).toEqual([400, "InvalidRequest", "missing-content-sha256"]);
  });

  it("answers a body that does not match its hex x-amz-content-sha256 with 400 XAmzContentSHA256Mismatch", async () => {
    const headers = await signHeaders({ method: "PUT", host: S3_HOST, path: "/b/mismatch", headers: { "x-amz-content-sha256": createHash("sha256").update("hello").digest("hex"), "content-length": "5" } });
    const res = await sendRaw("PUT", S3_HOST, "/b/mismatch", headers, [Buffer.from("hellO")]);
    expect([res.status, errorCode(res.body)]).toEqual([400, "XAmzContentSHA256Mismatch"]);
    expect(last()).toMatchObject({ failure: "payload-hash", verified: false, bodyBytes: 5 });
    expect(fake.s3.getObject("b", "mismatch")).toBeUndefined();
  });

  it("answers a request 20 minutes off the fake's clock with 403 RequestTimeTooSkewed", async () => {
    clockOffsetMs = 20 * 60 * 1000;
    const err = await errorOf(s3().send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(err).toMatchObject({ name: "RequestTimeTooSkewed", status: 403 });
    expect(last().failure).toBe("skew");
  });

  it("accepts 14 minutes of skew on S3 (the limit is 15)", async () => {
    clockOffsetMs = 14 * 60 * 1000;
    await s3().send(new PutObjectCommand({ Bucket: "skew", Key: "ok", Body: "x" }));
    expect(last().verified).toBe(true);
  });

  it("sends its own clock in Date, so an SDK with retries corrects the skew and succeeds", async () => {
    clockOffsetMs = 20 * 60 * 1000;
    const before = fake.requests.length;
    await s3({ maxAttempts: 3 }).send(new PutObjectCommand({ Bucket: "skew", Key: "corrected", Body: "x" }));
    expect(fake.requests.slice(before).map((r) => [r.status, r.failure ?? "none"])).toEqual([
      [403, "skew"],
      [200, "none"],
    ]);
  });

  it("answers expired temporary credentials with ExpiredToken and a missing token with InvalidToken", async () => {
    expect(await errorOf(s3({ credentials: EXPIRED }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })))).toMatchObject({ name: "ExpiredToken", status: 403 });
    const noToken = { accessKeyId: TEMP.accessKeyId, secretAccessKey: TEMP.secretAccessKey };
    expect(await errorOf(s3({ credentials: noToken }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })))).toMatchObject({ name: "InvalidToken", status: 403 });
    await s3({ credentials: TEMP }).send(new PutObjectCommand({ Bucket: "temp", Key: "k", Body: "x" }));
    expect(last()).toMatchObject({ verified: true, accessKeyId: TEMP.accessKeyId });
  });

  it("answers a credential scope for another region with 403 and AWS's message", async () => {
    const err = await errorOf(s3({ region: "eu-west-1" }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(err.status).toBe(403);
    expect(last()).toMatchObject({ failure: "scope", errorCode: "SignatureDoesNotMatch" });
    expect(last().errorMessage).toContain("Credential should be scoped to a valid region");
  });

  it("answers an unsigned request with 403 AccessDenied", async () => {
    const res = await sendRaw("GET", S3_HOST, "/b/k", {});
    expect([res.status, errorCode(res.body), last().authKind, last().failure]).toEqual([403, "AccessDenied", "none", "missing-auth"]);
  });

  it("refuses a bad signature sent with Expect: 100-continue before the body is sent", async () => {
    const headers = await signHeaders({ method: "PUT", host: S3_HOST, path: "/b/expect", headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-length": "4" }, credentials: WRONG });
    const res = await new Promise<{ status: number; continued: boolean }>((resolve, reject) => {
      let continued = false;
      const req = http.request({ host: "127.0.0.1", port: fake.port, method: "PUT", path: "/b/expect", headers: { host: S3_HOST, expect: "100-continue", ...headers }, setHost: false, agent: false });
      req.on("continue", () => {
        continued = true;
        req.end("data");
      });
      req.on("response", (r) => {
        r.resume();
        r.on("end", () => resolve({ status: r.statusCode ?? 0, continued }));
      });
      req.on("error", reject);
      req.flushHeaders();
    });
    expect(res).toEqual({ status: 403, continued: false });
  });

  it("verifies a presigned GET URL and refuses it once expired", async () => {
    await s3().send(new PutObjectCommand({ Bucket: "presign", Key: "p q.txt", Body: "presigned" }));
    // As @aws-sdk/s3-request-presigner does: the payload is UNSIGNED-PAYLOAD.
    const request = new HttpRequest({ method: "GET", protocol: "http:", hostname: S3_HOST, path: "/presign/p%20q.txt", headers: { host: S3_HOST, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } });
    const presigned = await signer("s3").presign(request, { expiresIn: 60 });
    const query = Object.entries(presigned.query ?? {})
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
      .join("&");
    const ok = await sendRaw("GET", S3_HOST, `/presign/p%20q.txt?${query}`, {});
    expect([ok.status, ok.body, last().authKind, last().verified]).toEqual([200, "presigned", "query", true]);
    clockOffsetMs = 120_000;
    const expired = await sendRaw("GET", S3_HOST, `/presign/p%20q.txt?${query}`, {});
    expect([expired.status, last().failure]).toEqual([403, "expired-presign"]);
  });
});

describe("hand-built aws-chunked uploads, signed chunk by chunk", () => {
  const host = S3_HOST;
  const path = "/chunks/object.bin";
  const payload = Buffer.alloc(70_000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) % 256;
  const sizes = [65_536, payload.length - 65_536];

  async function build(opts: { corruptChunk?: number; corruptTrailer?: boolean } = {}): Promise<{ headers: Record<string, string>; body: Buffer }> {
    const date = new Date();
    const amzDate = date.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
    const scope = `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`;
    const crc = checksumBase64("crc32", payload);
    const trailerLines = `x-amz-checksum-crc32:${crc}\n`;
    const frameLength =
      sizes.reduce((n, s) => n + s.toString(16).length + ";chunk-signature=".length + 64 + 2 + s + 2, 0) +
      "0;chunk-signature=".length + 64 + 2 + `x-amz-checksum-crc32:${crc}\r\n`.length + "x-amz-trailer-signature:".length + 64 + 2 + 2;
    const headers = await signHeaders({
      method: "PUT",
      host,
      path,
      date,
      headers: {
        "content-encoding": "aws-chunked",
        "content-length": String(frameLength),
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
        "x-amz-decoded-content-length": String(payload.length),
        "x-amz-trailer": "x-amz-checksum-crc32",
      },
    });
    const seed = /Signature=([0-9a-f]{64})/.exec(headers.authorization ?? "")?.[1] ?? "";
    const sign = (s: string): Promise<string> => signer("s3").sign(s, { signingDate: date });
    const sha = (b: Buffer | string): string => createHash("sha256").update(b).digest("hex");
    const parts: Buffer[] = [];
    let prev = seed;
    let offset = 0;
    for (const [i, size] of [...sizes, 0].entries()) {
      const data = payload.subarray(offset, offset + size);
      offset += size;
      let sig = await sign(["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scope, prev, sha(""), sha(data)].join("\n"));
      prev = sig;
      if (opts.corruptChunk === i) sig = sig.replace(/^./, (c) => (c === "a" ? "b" : "a"));
      parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${sig}\r\n`), data);
      if (size > 0) parts.push(Buffer.from("\r\n"));
    }
    let trailerSig = await sign(["AWS4-HMAC-SHA256-TRAILER", amzDate, scope, prev, sha(trailerLines)].join("\n"));
    if (opts.corruptTrailer) trailerSig = trailerSig.replace(/^./, (c) => (c === "a" ? "b" : "a"));
    parts.push(Buffer.from(`x-amz-checksum-crc32:${crc}\r\nx-amz-trailer-signature:${trailerSig}\r\n\r\n`));
    const body = Buffer.concat(parts);
    expect(body.length).toBe(frameLength);
    return { headers, body };
  }

  /** Writes the body in uneven pieces so chunk headers straddle TCP writes. */
  function pieces(body: Buffer): Buffer[] {
    const out: Buffer[] = [];
    for (let i = 0, step = 1; i < body.length; i += step, step = (step * 7 + 13) % 9000 + 1) out.push(body.subarray(i, i + step));
    return out;
  }

  it("verifies the seed, every chunk and the trailer signature, and stores the decoded object", async () => {
    const { headers, body } = await build();
    const res = await sendRaw("PUT", host, path, headers, pieces(body));
    expect(res.status).toBe(200);
    expect(last()).toMatchObject({
      payloadMode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
      verified: true,
      chunksVerified: 3,
      trailerVerified: true,
      checksumsVerified: ["x-amz-checksum-crc32"],
      bodyBytes: payload.length,
      wireBodyBytes: body.length,
    });
    expect(fake.s3.getObject("chunks", "object.bin")?.body?.equals(payload)).toBe(true);
    expect(fake.s3.getObject("chunks", "object.bin")?.otherHeaders["content-encoding"]).toBeUndefined();
  });

  it("rejects a corrupted second chunk signature with 403 SignatureDoesNotMatch and stores nothing", async () => {
    const { headers, body } = await build({ corruptChunk: 1 });
    const before = fake.s3.getObject("chunks", "object.bin");
    const res = await sendRaw("PUT", host, "/chunks/object.bin", headers, pieces(body));
    expect([res.status, errorCode(res.body)]).toEqual([403, "SignatureDoesNotMatch"]);
    expect(last()).toMatchObject({ verified: false, failure: "chunk-signature", chunksVerified: 1 });
    expect(last().stringToSign?.split("\n")[0]).toBe("AWS4-HMAC-SHA256-PAYLOAD");
    expect(fake.s3.getObject("chunks", "object.bin")).toBe(before);
  });

  it("rejects a corrupted trailer signature", async () => {
    const { headers, body } = await build({ corruptTrailer: true });
    const res = await sendRaw("PUT", host, path, headers, [body]);
    expect(res.status).toBe(403);
    expect(last()).toMatchObject({ failure: "trailer-signature", chunksVerified: 3 });
  });
});

describe("STS (query protocol) with test switches", () => {
  it("AssumeRole returns temporary credentials honouring DurationSeconds, which the fake then accepts", async () => {
    const out = await sts().send(new AssumeRoleCommand({ RoleArn: "arn:aws:iam::123456789012:role/demo", RoleSessionName: "s1", DurationSeconds: 900 }));
    const c = out.Credentials;
    expect(c?.AccessKeyId).toMatch(/^ASIA/);
    const lifetime = (c?.Expiration?.getTime() ?? 0) - Date.now();
    expect(lifetime).toBeGreaterThan(890_000);
    expect(lifetime).toBeLessThanOrEqual(900_000);
    expect(out.AssumedRoleUser?.Arn).toBe("arn:aws:sts::123456789012:assumed-role/demo/s1");
    expect(last()).toMatchObject({ service: "sts", operation: "AssumeRole", verified: true, accessKeyId: REAL.accessKeyId });
    const temp = { accessKeyId: c?.AccessKeyId ?? "", secretAccessKey: c?.SecretAccessKey ?? "", sessionToken: c?.SessionToken ?? "" };
    await s3({ credentials: temp }).send(new PutObjectCommand({ Bucket: "assumed", Key: "k", Body: "x" }));
    expect(last()).toMatchObject({ verified: true, accessKeyId: temp.accessKeyId });
    const who = await sts(temp).send(new GetCallerIdentityCommand({}));
    expect(who.Arn).toBe("arn:aws:sts::123456789012:assumed-role/demo/s1");
  });

  it("rejects DurationSeconds under 900 with ValidationError", async () => {
    const err = await errorOf(sts().send(new AssumeRoleCommand({ RoleArn: "arn:aws:iam::123456789012:role/demo", RoleSessionName: "s1", DurationSeconds: 60 })));
    expect(err).toMatchObject({ name: "ValidationError", status: 400 });
  });

  it("failNext(1, 'throttle') answers 400 Throttling once, then works", async () => {
    fake.sts.failNext(1, "throttle");
    const err = await errorOf(sts().send(new GetCallerIdentityCommand({})));
    expect(err).toMatchObject({ name: "Throttling", status: 400 });
    const ok = await sts().send(new GetCallerIdentityCommand({}));
    expect(ok.Account).toBe("123456789012");
  });

  it("failNext(1, '500') answers 500 InternalFailure", async () => {
    fake.sts.failNext(1, "500");
    expect(await errorOf(sts().send(new GetCallerIdentityCommand({})))).toMatchObject({ status: 500, name: "InternalFailure" });
  });

  it("failNext(1, 'timeout') never answers, so the client's own timeout fires", async () => {
    fake.sts.failNext(1, "timeout");
    const started = Date.now();
    const err = await errorOf(sts(REAL, 300).send(new GetCallerIdentityCommand({})));
    expect(err.name).toBe("TimeoutError");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(last().status).toBe(0);
  });

  it("failNext(1, 'expired') issues credentials whose Expiration is already past and which S3 refuses", async () => {
    fake.sts.failNext(1, "expired");
    const out = await sts().send(new AssumeRoleCommand({ RoleArn: "arn:aws:iam::123456789012:role/demo", RoleSessionName: "old" }));
    expect(out.Credentials?.Expiration?.getTime()).toBeLessThan(Date.now());
    const c = out.Credentials;
    const err = await errorOf(s3({ credentials: { accessKeyId: c?.AccessKeyId ?? "", secretAccessKey: c?.SecretAccessKey ?? "", sessionToken: c?.SessionToken ?? "" } }).send(new GetObjectCommand({ Bucket: "b", Key: "k" })));
    expect(err.name).toBe("ExpiredToken");
  });

  it("setDelayMs delays answers and calls counts per action", async () => {
    const before = fake.sts.calls.GetCallerIdentity ?? 0;
    fake.sts.setDelayMs(150);
    const started = Date.now();
    await sts().send(new GetCallerIdentityCommand({}));
    fake.sts.setDelayMs(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(fake.sts.calls.GetCallerIdentity).toBe(before + 1);
  });

  it("AssumeRoleWithWebIdentity works unsigned with an accepted token and refuses an unknown one", async () => {
    const anonymous = new STSClient({
      region: "us-east-1",
      endpoint: awsHttpEndpoint("sts.us-east-1.amazonaws.com"),
      requestHandler: loopbackRequestHandler(fake.port),
      maxAttempts: 1,
    });
    const out = await anonymous.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: "arn:aws:iam::123456789012:role/irsa", RoleSessionName: "pod", WebIdentityToken: WEB_TOKEN }));
    expect(out.Credentials?.AccessKeyId).toMatch(/^ASIA/);
    expect(last()).toMatchObject({ authKind: "none", verified: false, status: 200, operation: "AssumeRoleWithWebIdentity" });
    const err = await errorOf(anonymous.send(new AssumeRoleWithWebIdentityCommand({ RoleArn: "arn:aws:iam::123456789012:role/irsa", RoleSessionName: "pod", WebIdentityToken: "nope" })));
    expect(err).toMatchObject({ name: "InvalidIdentityTokenException", status: 400 });
  });

  it("answers a wrong secret with SignatureDoesNotMatch and an unsigned GetCallerIdentity with MissingAuthenticationToken", async () => {
    expect(await errorOf(sts(WRONG).send(new GetCallerIdentityCommand({})))).toMatchObject({ name: "SignatureDoesNotMatch", status: 403 });
    const res = await sendRaw("POST", "sts.amazonaws.com", "/", { "content-type": "application/x-www-form-urlencoded" }, [Buffer.from("Action=GetCallerIdentity&Version=2011-06-15")]);
    expect([res.status, errorCode(res.body)]).toEqual([403, "MissingAuthenticationToken"]);
    expect(res.body).toContain("<ErrorResponse");
  });

  it("applies a 5-minute skew limit to STS", async () => {
    clockOffsetMs = 6 * 60 * 1000;
    expect(await errorOf(sts().send(new GetCallerIdentityCommand({})))).toMatchObject({ status: 403 });
    expect(last().failure).toBe("skew");
  });
});

describe("JSON services", () => {
  it("Bedrock InvokeModel echoes the body and the model id (double-encoded path verified)", async () => {
    const client = new BedrockRuntimeClient({
      region: "us-west-2",
      endpoint: awsHttpEndpoint("bedrock-runtime.us-west-2.amazonaws.com"),
      credentials: REAL,
      requestHandler: loopbackRequestHandler(fake.port),
      maxAttempts: 1,
    });
    const out = await client.send(new InvokeModelCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", contentType: "application/json", body: JSON.stringify({ prompt: "hi" }) }));
    expect(JSON.parse(Buffer.from(out.body).toString("utf8"))).toEqual({ echo: { prompt: "hi" }, modelId: "anthropic.claude-3-haiku-20240307-v1:0" });
    expect(last()).toMatchObject({ service: "bedrock", region: "us-west-2", verified: true, operation: "InvokeModel" });
    expect(last().canonicalRequest?.split("\n")[1]).toBe("/model/anthropic.claude-3-haiku-20240307-v1%253A0/invoke");
    const conv = await client.send(new ConverseCommand({ modelId: "m", messages: [{ role: "user", content: [{ text: "hello" }] }] }));
    expect(conv.output?.message?.content?.[0]?.text).toContain("hello");
  });

  it("DynamoDB echoes the operation and refuses a wrong secret with InvalidSignatureException as JSON", async () => {
    const make = (credentials: typeof REAL): DynamoDBClient =>
      new DynamoDBClient({
        region: "eu-central-1",
        endpoint: awsHttpEndpoint("dynamodb.eu-central-1.amazonaws.com"),
        credentials,
        requestHandler: loopbackRequestHandler(fake.port),
        maxAttempts: 1,
      });
    await make(REAL).send(new PutItemCommand({ TableName: "t", Item: { pk: { S: "1" } } }));
    expect(last()).toMatchObject({ service: "dynamodb", verified: true, operation: "PutItem" });
    const err = await errorOf(make(WRONG).send(new PutItemCommand({ TableName: "t", Item: { pk: { S: "1" } } })));
    expect(err).toMatchObject({ name: "InvalidSignatureException", status: 403 });
  });
});

describe("large uploads with discardBodies", () => {
  it("streams a 48 MiB PutObject through the verifier keeping only size and digests", async () => {
    const big = await startFakeAws({ accounts: [REAL], discardBodies: true });
    try {
      const piece = Buffer.alloc(1024 * 1024, 0x5a);
      const count = 48;
      const body = Readable.from((function* () {
        for (let i = 0; i < count; i++) yield piece;
      })());
      const client = s3({ requestHandler: loopbackRequestHandler(big.port) });
      await client.send(new PutObjectCommand({ Bucket: "huge", Key: "h.bin", Body: body, ContentLength: piece.length * count }));
      const rec = big.requests[big.requests.length - 1];
      expect(rec).toMatchObject({ verified: true, bodyBytes: piece.length * count, checksumsVerified: ["x-amz-checksum-crc32"] });
      const stored = big.s3.getObject("huge", "h.bin");
      const expected = createHash("sha256");
      for (let i = 0; i < count; i++) expected.update(piece);
      expect([stored?.size, stored?.sha256Hex, stored?.body]).toEqual([piece.length * count, expected.digest("hex"), undefined]);
    } finally {
      await big.close();
    }
  });
});

describe("hygiene", () => {
  it("answers a host it does not serve with 400 UnknownEndpoint", async () => {
    const res = await sendRaw("GET", "example.com", "/", {});
    expect([res.status, last().failure]).toEqual([400, "unknown-host"]);
  });

  it("never records secrets or session tokens", () => {
    const dump = JSON.stringify(fake.requests);
    for (const secret of [REAL.secretAccessKey, WRONG.secretAccessKey, TEMP.secretAccessKey, TEMP.sessionToken, EXPIRED.sessionToken]) {
      expect(dump).not.toContain(secret);
    }
    for (const issued of fake.sts.issued) {
      expect(dump).not.toContain(issued.secretAccessKey);
      expect(dump).not.toContain(issued.sessionToken);
    }
  });
});

describe("SigV4A on S3 Multi-Region Access Points (signed by @smithy/signature-v4a, verified from the spec)", () => {
  const MRAP = "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com";

  async function v4aHeaders(opts: { method: string; path: string; headers: Record<string, string>; regionSet?: string; credentials?: typeof REAL }): Promise<Record<string, string>> {
    const v4a = new SignatureV4a({ service: "s3", region: opts.regionSet ?? "*", credentials: opts.credentials ?? REAL, sha256: Hash.bind(null, "sha256"), uriEscapePath: false, applyChecksum: false });
    const request = new HttpRequest({ method: opts.method, protocol: "http:", hostname: MRAP, path: opts.path, headers: { host: MRAP, ...opts.headers } });
    const signed = (await v4a.sign(request, {})) as { headers: Record<string, string> };
    const out = { ...signed.headers };
    delete out.host;
    return out;
  }

  const put = async (path: string, body: string, over: { regionSet?: string; credentials?: typeof REAL; after?: Record<string, string> } = {}): Promise<RawResponse> => {
    const headers = await v4aHeaders({ method: "PUT", path, headers: { "x-amz-content-sha256": createHash("sha256").update(body).digest("hex"), "content-length": String(Buffer.byteLength(body)) }, ...over });
    return sendRaw("PUT", MRAP, path, { ...headers, ...over.after }, [Buffer.from(body)]);
  };

  beforeAll(() => {
    fake.s3.createBucket("mfzwi23gnjvgw");
  });

  it("verifies a SigV4A PutObject signed with the real key, stores it under the alias, and records the algorithm", async () => {
    const res = await put("/v4a/ok.txt", "sigv4a body");
    expect(res.status).toBe(200);
    expect(fake.requests.at(-1)).toMatchObject({ verified: true, algorithm: "AWS4-ECDSA-P256-SHA256", accessKeyId: REAL.accessKeyId, operation: "PutObject" });
    expect(fake.s3.getObject("mfzwi23gnjvgw", "v4a/ok.txt")?.sha256Hex).toBe(createHash("sha256").update("sigv4a body").digest("hex"));
  });

  it("refuses a SigV4A signature made with the wrong secret: 403 SignatureDoesNotMatch, with the string to sign", async () => {
    const res = await put("/v4a/wrong.txt", "x", { credentials: WRONG });
    expect(res.status).toBe(403);
    expect(res.body).toContain("<Code>SignatureDoesNotMatch</Code>");
    expect(res.body).toContain("<StringToSign>AWS4-ECDSA-P256-SHA256\n");
    expect(fake.requests.at(-1)).toMatchObject({ verified: false, errorCode: "SignatureDoesNotMatch" });
  });

  it("refuses a signed header changed after signing (the region set)", async () => {
    const res = await put("/v4a/tampered.txt", "x", { after: { "x-amz-region-set": "us-east-1" } });
    expect(res.status).toBe(403);
    expect(fake.requests.at(-1)).toMatchObject({ verified: false, errorCode: "SignatureDoesNotMatch" });
  });

  it("refuses a region set that does not cover the serving region", async () => {
    const res = await put("/v4a/elsewhere.txt", "x", { regionSet: "eu-west-1" });
    expect(res.status).toBe(403);
    expect(fake.requests.at(-1)?.errorMessage).toBe("The region set 'eu-west-1' does not include the region 'us-east-1' that serves this request.");
  });

  it("refuses SigV4 on a Multi-Region Access Point: 400 InvalidRequest", async () => {
    const headers = await signHeaders({ method: "GET", host: MRAP, path: "/v4a/ok.txt", headers: { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" } });
    const res = await sendRaw("GET", MRAP, "/v4a/ok.txt", headers);
    expect(res.status).toBe(400);
    expect(res.body).toContain("<Code>InvalidRequest</Code>");
    expect(res.body).toContain("Please use AWS4-ECDSA-P256-SHA256");
  });
});
