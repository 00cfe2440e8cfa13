/**
 * AWS SDK for JavaScript v3 → Envoy (emulator, or real envoy with make e2e-envoy) → countersign
 * → fake AWS. The client holds placeholder keys only; every request must arrive signed with the
 * real key and verified by the fake AWS's independent verifier.
 */
import { Readable } from "node:stream";
import { InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { PutItemCommand } from "@aws-sdk/client-dynamodb";
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { Upload } from "@aws-sdk/lib-storage";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bedrockClient, dynamoClient, endpointS3Client, s3Client, stsClient } from "./clients.js";
import { expectAllVerifiedSince } from "./expectVerified.js";
import { PLACEHOLDER, REAL, startStack, type Stack } from "./harness.js";

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

function last(): (typeof stack.fake.requests)[number] {
  const r = stack.fake.requests.at(-1);
  if (!r) throw new Error("nothing reached the fake AWS");
  return r;
}

describe("AWS SDK for JavaScript v3 through Envoy and countersign", () => {
  const keys = ["hello.txt", "dir with space/file+plus.txt", "100%25 sure/ünïcødé 🦄", "a//b/./c/../d", "!'()*~"];

  it.each(keys)("S3 put/head/get/delete of key %j with metadata and a CRC32 checksum", async (key) => {
    const s3 = s3Client(stack);
    const start = stack.fake.requests.length;
    await s3.send(
      new PutObjectCommand({
        Bucket: "e2e-bucket",
        Key: key,
        Body: `content of ${key}`,
        ContentType: "text/plain; charset=utf-8",
        Metadata: { team: "ml", note: "with spaces  and   runs" },
        ChecksumAlgorithm: "CRC32",
      }),
    );
    const head = await s3.send(new HeadObjectCommand({ Bucket: "e2e-bucket", Key: key }));
    expect(head.Metadata?.team).toBe("ml");
    const got = await s3.send(new GetObjectCommand({ Bucket: "e2e-bucket", Key: key }));
    expect(await got.Body?.transformToString()).toBe(`content of ${key}`);
    await s3.send(new DeleteObjectCommand({ Bucket: "e2e-bucket", Key: key }));
    expect(expectAllVerifiedSince(stack, start)).toEqual(["PutObject", "HeadObject", "GetObject", "DeleteObject"]);
  });

  it("S3 ListObjectsV2 path-style", async () => {
    const s3 = s3Client(stack, { forcePathStyle: true });
    await s3.send(new PutObjectCommand({ Bucket: "listing", Key: "p/1", Body: "1" }));
    await s3.send(new PutObjectCommand({ Bucket: "listing", Key: "p/2", Body: "2" }));
    const start = stack.fake.requests.length;
    const out = await s3.send(new ListObjectsV2Command({ Bucket: "listing", Prefix: "p/" }));
    expect(out.Contents?.map((c) => c.Key)).toEqual(["p/1", "p/2"]);
    expect(expectAllVerifiedSince(stack, start)).toEqual(["ListObjectsV2"]);
  });

  it("S3 PutObject of a stream with the SDK's default checksum (STREAMING-UNSIGNED-PAYLOAD-TRAILER) stays zero-copy", async () => {
    const s3 = s3Client(stack);
    const body = Buffer.alloc(300 * 1024, "z");
    const start = stack.fake.requests.length;
    const emuBefore = stack.emulator?.stats.stream_msgs_sent ?? 0;
    await s3.send(new PutObjectCommand({ Bucket: "e2e-bucket", Key: "streamed.bin", Body: Readable.from([body]), ContentLength: body.length }));
    const r = last();
    expect(r).toMatchObject({ verified: true, accessKeyId: REAL.accessKeyId, payloadMode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", operation: "PutObject" });
    expect(r.checksumsVerified?.length ?? 0).toBeGreaterThan(0);
    expectAllVerifiedSince(stack, start);
    // Zero-copy: only the headers crossed gRPC (one message), never the body.
    if (stack.emulator) expect(stack.emulator.stats.stream_msgs_sent - emuBefore).toBe(1);
    const got = await s3.send(new GetObjectCommand({ Bucket: "e2e-bucket", Key: "streamed.bin" }));
    expect(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(body)).toBe(true);
  });

  it("a 20 MiB multipart upload with @aws-sdk/lib-storage", async () => {
    const s3 = s3Client(stack);
    const start = stack.fake.requests.length;
    const body = Buffer.alloc(20 * 1024 * 1024);
    for (let i = 0; i < body.length; i += 4096) body.writeUInt32BE(i, i);
    await new Upload({ client: s3, params: { Bucket: "e2e-bucket", Key: "big/multipart.bin", Body: body }, partSize: 5 * 1024 * 1024, queueSize: 2 }).done();
    const ops = stack.fake.requests.slice(start).map((r) => r.operation);
    expect(ops.filter((o) => o === "UploadPart")).toHaveLength(4);
    expect(ops).toContain("CreateMultipartUpload");
    expect(ops).toContain("CompleteMultipartUpload");
    expectAllVerifiedSince(stack, start);
    const stored = stack.fake.s3.getObject("e2e-bucket", "big/multipart.bin");
    expect(stored?.size).toBe(body.length);
  });

  it("Bedrock InvokeModel (sigv4:body: the JSON body is buffered and hashed)", async () => {
    const start = stack.fake.requests.length;
    const out = await bedrockClient(stack).send(
      new InvokeModelCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", contentType: "application/json", body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }) }),
    );
    expect(JSON.parse(Buffer.from(out.body).toString()).echo).toEqual({ messages: [{ role: "user", content: "hi" }] });
    expect(expectAllVerifiedSince(stack, start)).toEqual(["InvokeModel"]);
  });

  it("STS GetCallerIdentity (global endpoint)", async () => {
    const start = stack.fake.requests.length;
    const id = await stsClient(stack).send(new GetCallerIdentityCommand({}));
    expect(id.Account).toBe("123456789012");
    expect(expectAllVerifiedSince(stack, start)).toEqual(["GetCallerIdentity"]);
  });

  it("DynamoDB PutItem (JSON 1.0 protocol)", async () => {
    const start = stack.fake.requests.length;
    await dynamoClient(stack).send(new PutItemCommand({ TableName: "t", Item: { pk: { S: "a b" } } }));
    expectAllVerifiedSince(stack, start);
    expect(last().service).toBe("dynamodb");
  });
});

describe("endpoint mode (AWS_ENDPOINT_URL_S3=stack.endpointUrl): plain HTTP/1.1 to endpoint_in, host rewritten to s3.us-east-1.amazonaws.com", () => {
  it.each(["hello.txt", "dir with space/file+plus.txt", "100%25 sure/ünïcødé 🦄"])("S3 put/head/get/list/delete of key %j, path-style, the payload hash signed by the client", async (key) => {
    const s3 = endpointS3Client(stack);
    const bucket = "endpoint-bucket";
    const start = stack.fake.requests.length;
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `endpoint mode: ${key}`, ContentType: "text/plain", Metadata: { mode: "endpoint" } }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    expect(head.Metadata?.mode).toBe("endpoint");
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(await got.Body?.transformToString()).toBe(`endpoint mode: ${key}`);
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual([key]);
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    expect(expectAllVerifiedSince(stack, start)).toEqual(["PutObject", "HeadObject", "GetObject", "ListObjectsV2", "DeleteObject"]);
    const seen = stack.fake.requests.slice(start);
    for (const r of seen) expect({ host: r.host, path: r.path.split("/")[1] }).toEqual({ host: "s3.us-east-1.amazonaws.com", path: bucket });
    // Over plain HTTP the SDK hashes every payload itself: no body crosses gRPC.
    expect(seen.map((r) => r.payloadMode)).toEqual(["SHA256", "SHA256", "SHA256", "SHA256", "SHA256"]);
  });

  it("S3 PutObject of a stream: aws-chunked with a CRC32 trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER) even over plain HTTP", async () => {
    const s3 = endpointS3Client(stack);
    const body = Buffer.alloc(256 * 1024, "e");
    const start = stack.fake.requests.length;
    await s3.send(new PutObjectCommand({ Bucket: "endpoint-streams", Key: "streamed.bin", Body: Readable.from([body]), ContentLength: body.length }));
    expect(expectAllVerifiedSince(stack, start)).toEqual(["PutObject"]);
    expect(last()).toMatchObject({ host: "s3.us-east-1.amazonaws.com", payloadMode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", checksumsVerified: ["x-amz-checksum-crc32"], bodyBytes: body.length });
    const got = await s3.send(new GetObjectCommand({ Bucket: "endpoint-streams", Key: "streamed.bin" }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
  });
});

describe("refusals through Envoy: nothing reaches AWS", () => {
  it("a host outside the policy gets countersign's 403 AccessDenied", async () => {
    const start = stack.fake.requests.length;
    const s3 = new S3Client({ region: "us-east-1", credentials: PLACEHOLDER, requestHandler: (await import("./clients.js")).proxiedHandler(stack), endpoint: "https://example.com", forcePathStyle: true, maxAttempts: 1 });
    await expect(s3.send(new GetObjectCommand({ Bucket: "b", Key: "k" }))).rejects.toMatchObject({ name: "AccessDenied", $metadata: { httpStatusCode: 403 } });
    expect(stack.fake.requests.length).toBe(start);
  });

  it("a placeholder key id the endpoint does not accept gets 403 InvalidAccessKeyId", async () => {
    const start = stack.fake.requests.length;
    const s3 = s3Client(stack, { credentials: { accessKeyId: "AKIDOTHERWORKLOAD00", secretAccessKey: "x" } });
    await expect(s3.send(new GetObjectCommand({ Bucket: "e2e-bucket", Key: "hello.txt" }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    expect(stack.fake.requests.length).toBe(start);
  });

  it("logs no secret, signature or full key id during the whole run", () => {
    const all = stack.serve.lines.join("\n");
    expect(all).not.toContain(REAL.secretAccessKey);
    expect(all).not.toContain(REAL.accessKeyId);
    expect(all).not.toMatch(/[0-9a-f]{64}/);
    expect(all).toContain('"decision":"signed"');
  });
});
