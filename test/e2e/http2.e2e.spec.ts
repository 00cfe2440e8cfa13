/**
 * HTTP/2 from the workload to real Envoy, with the AWS SDK for JavaScript v3's NodeHttp2Handler:
 * h2c with prior knowledge in endpoint mode, and h2 over TLS (ALPN) inside a CONNECT tunnel in
 * proxy mode. Envoy's own counters prove it spoke HTTP/2 with the client; the fake AWS proves every
 * request arrived signed with the real key.
 *
 * Over HTTP/2 the SDK signs `:authority` in place of `host` (SignedHeaders=:authority;…).
 * Uploads of streams cannot go over HTTP/2 with this SDK at all: for their aws-chunked body it sets
 * transfer-encoding, which Node's http2 refuses (ERR_HTTP2_INVALID_CONNECTION_HEADERS) before sending.
 */
import { BedrockRuntimeClient, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { endpointS3Client, s3Client } from "./clients.js";
import { expectAllVerifiedSince } from "./expectVerified.js";
import { PLACEHOLDER, startStack, type Stack } from "./harness.js";
import { http2EndpointHandler, http2ProxiedHandler } from "./http2Clients.js";

/**
 * S3 bound to the placeholder key id, everything else with `signing_service: auto` (as in
 * policies/aws.yaml): both read the client's own Authorization, which over HTTP/2 signs `:authority`.
 */
const POLICY = `version: 1
credentials:
  workload:
    static:
      access_key_id_env: COUNTERSIGN_AWS_ACCESS_KEY_ID
      secret_access_key_env: COUNTERSIGN_AWS_SECRET_ACCESS_KEY
endpoints:
  - host: "s3.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: workload
    client_access_key_ids: [${PLACEHOLDER.accessKeyId}]
  - host: "*.s3.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: workload
    client_access_key_ids: [${PLACEHOLDER.accessKeyId}]
  - host: "**.amazonaws.com"
    credential_signing: sigv4
    signing_service: auto
    credentials: workload
`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ policy: POLICY });
});
afterAll(async () => {
  await stack?.close();
});

async function counters(): Promise<Record<string, number>> {
  if (!stack.envoy) throw new Error("these tests need real Envoy");
  return stack.envoy.stats();
}

/** Envoy's JSON access log lines so far (flushed first: see RealEnvoy.accessLog). */
async function accessLog(): Promise<Record<string, unknown>[]> {
  if (!stack.envoy) throw new Error("these tests need real Envoy");
  return stack.envoy.accessLog();
}

/** How much each named counter grew between two snapshots. */
function grew(before: Record<string, number>, after: Record<string, number>, names: string[]): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, (after[n] ?? 0) - (before[n] ?? 0)]));
}

async function putHeadGetListDelete(s3: S3Client, bucket: string, key: string): Promise<void> {
  await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: `over HTTP/2: ${key}`, ContentType: "text/plain", Metadata: { proto: "h2" } }));
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  expect(head.Metadata?.proto).toBe("h2");
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  expect(await got.Body?.transformToString()).toBe(`over HTTP/2: ${key}`);
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  expect(listed.Contents?.map((c) => c.Key)).toEqual([key]);
  await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
}

const S3_OPS = ["PutObject", "HeadObject", "GetObject", "ListObjectsV2", "DeleteObject"];

describe("the JS SDK's NodeHttp2Handler through real Envoy", () => {
  it("endpoint mode: S3 put/head/get/list/delete over h2c (prior knowledge) to endpoint_in, each request signed with the real key", async () => {
    const s3 = endpointS3Client(stack, { requestHandler: http2EndpointHandler() });
    const before = await counters();
    const start = stack.fake.requests.length;
    try {
      await putHeadGetListDelete(s3, "h2c-bucket", "dir/h2c key+1.txt");
    } finally {
      s3.destroy();
    }
    expect(expectAllVerifiedSince(stack, start)).toEqual(S3_OPS);
    for (const r of stack.fake.requests.slice(start)) expect(r.host).toBe("s3.us-east-1.amazonaws.com");
    // The client signed :authority (not host); countersign signed host, as AWS expects over HTTP/1.1.
    for (const r of stack.fake.requests.slice(start)) expect(r.signedHeaders).toContain("host");
    const delta = grew(before, await counters(), [
      "http.endpoint_in.downstream_cx_http2_total",
      "http.endpoint_in.downstream_rq_http2_total",
      "http.endpoint_in.downstream_rq_http1_total",
    ]);
    expect(delta).toEqual({
      "http.endpoint_in.downstream_cx_http2_total": 1,
      "http.endpoint_in.downstream_rq_http2_total": S3_OPS.length,
      "http.endpoint_in.downstream_rq_http1_total": 0,
    });
  });

  it("proxy mode: S3 and Bedrock InvokeModel over h2 (ALPN) inside CONNECT tunnels, each request signed with the real key", async () => {
    const h2s3 = http2ProxiedHandler(stack);
    const h2bedrock = http2ProxiedHandler(stack);
    const s3 = s3Client(stack, { requestHandler: h2s3.handler });
    const bedrock = new BedrockRuntimeClient({ region: "us-west-2", credentials: PLACEHOLDER, requestHandler: h2bedrock.handler, maxAttempts: 1 });
    const before = await counters();
    const start = stack.fake.requests.length;
    try {
      await putHeadGetListDelete(s3, "h2-tls-bucket", "h2 key+1.txt");
      const out = await bedrock.send(new InvokeModelCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", contentType: "application/json", body: JSON.stringify({ prompt: "h2" }) }));
      expect(JSON.parse(Buffer.from(out.body).toString()).echo).toEqual({ prompt: "h2" });
    } finally {
      s3.destroy();
      bedrock.destroy();
    }
    expect(expectAllVerifiedSince(stack, start)).toEqual([...S3_OPS, "InvokeModel"]);
    // signing_service auto read "bedrock" from the client's scope; the InvokeModel body (no
    // x-amz-content-sha256 from the client) was buffered from the HTTP/2 stream and hashed.
    expect(stack.fake.requests.at(-1)).toMatchObject({ service: "bedrock", payloadMode: "BODY-SHA256" });
    expect([...h2s3.sockets, ...h2bedrock.sockets].map((s) => s.alpnProtocol)).toEqual(["h2", "h2"]);
    const delta = grew(before, await counters(), [
      "http.connect_in.downstream_rq_http1_total",
      "http.tls_decap.downstream_cx_http2_total",
      "http.tls_decap.downstream_rq_http2_total",
      "http.tls_decap.downstream_rq_http1_total",
    ]);
    expect(delta).toEqual({
      // One CONNECT (HTTP/1.1) per HTTP/2 session; every request rides inside them as h2.
      "http.connect_in.downstream_rq_http1_total": 2,
      "http.tls_decap.downstream_cx_http2_total": 2,
      "http.tls_decap.downstream_rq_http2_total": S3_OPS.length + 1,
      "http.tls_decap.downstream_rq_http1_total": 0,
    });
    // tls_decap's access log names the protocol of each request.
    const invoke = async (): Promise<Record<string, unknown> | undefined> =>
      (await accessLog()).find((l) => l["listener"] === "tls_decap" && l["method"] === "POST" && /^\/model\/[^ ]+\/invoke$/.test(String(l["path"])));
    await expect.poll(invoke, { timeout: 15_000, interval: 200 }).toMatchObject({ protocol: "HTTP/2", response_code: 200 });
  });

  it("proxy mode over h2: a host outside the policy gets countersign's 403 on the HTTP/2 stream, and nothing reaches AWS", async () => {
    const h2 = http2ProxiedHandler(stack);
    const s3 = s3Client(stack, { requestHandler: h2.handler, endpoint: "https://example.com", forcePathStyle: true, region: "us-east-1" });
    const start = stack.fake.requests.length;
    try {
      await expect(s3.send(new GetObjectCommand({ Bucket: "b", Key: "k" }))).rejects.toMatchObject({ name: "AccessDenied", $metadata: { httpStatusCode: 403 } });
    } finally {
      s3.destroy();
    }
    expect(h2.sockets.map((s) => s.alpnProtocol)).toEqual(["h2"]);
    expect(stack.fake.requests.length).toBe(start);
  });
});
