/**
 * countersign serve, as a separate process, driven over ext_proc the way Envoy drives it, for
 * requests made by the AWS SDK for JavaScript v3 with placeholder credentials. Every signed
 * request is checked by the fake AWS, whose SigV4 verifier shares no code with src/sigv4, with
 * the real key; refusals must reach nothing.
 */
import { writeFileSync, mkdtempSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BedrockRuntimeClient, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeAws, type FakeAws } from "../fakeaws/server.js";
import { connectExtProc, exchange } from "../support/extProcClient.js";
import { ExtProcSdkHandler } from "../support/extProcSdkHandler.js";
import { startServe, type ServeProcess } from "../support/startServe.js";

const REAL = { accessKeyId: "AKIAREALKEY000000001", secretAccessKey: "real/secret/key/0000000000000000000000001" };
const PLACEHOLDER = { accessKeyId: "AKIDPLACEHOLDER000", secretAccessKey: "placeholder-secret" };

const POLICY = `version: 1
credentials:
  workload:
    static:
      access_key_id_env: COUNTERSIGN_AWS_ACCESS_KEY_ID
      secret_access_key_env: COUNTERSIGN_AWS_SECRET_ACCESS_KEY
      session_token_env: COUNTERSIGN_AWS_SESSION_TOKEN
endpoints:
  - host: "*.s3.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: workload
    client_access_key_ids: [${PLACEHOLDER.accessKeyId}]
  - host: "s3.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: workload
    client_access_key_ids: [${PLACEHOLDER.accessKeyId}]
  - host: "**.amazonaws.com"
    credential_signing: sigv4
    signing_service: auto
    credentials: workload
`;

let fake: FakeAws;
let serve: ServeProcess;
let handler: ExtProcSdkHandler;

beforeAll(async () => {
  fake = await startFakeAws({ accounts: [REAL] });
  const dir = mkdtempSync(join(tmpdir(), "countersign-it-"));
  const policyFile = join(dir, "policy.yaml");
  writeFileSync(policyFile, POLICY);
  serve = await startServe({
    policyFile,
    args: ["--log-level", "info"],
    env: { COUNTERSIGN_AWS_ACCESS_KEY_ID: REAL.accessKeyId, COUNTERSIGN_AWS_SECRET_ACCESS_KEY: REAL.secretAccessKey },
  });
  handler = new ExtProcSdkHandler(connectExtProc(serve.grpcAddress), fake.port);
});

afterAll(async () => {
  handler?.destroy();
  await serve?.stop();
  await fake?.close();
});

const s3 = (forcePathStyle: boolean): S3Client =>
  new S3Client({ region: "eu-west-1", credentials: PLACEHOLDER, requestHandler: handler, forcePathStyle, maxAttempts: 1 });

/** Sends an ext_proc-forwarded request to the fake AWS as Envoy's router would. */
function forwardToFake(req: { method: string; authority: string; path: string; headers: Array<[string, string]>; body: Buffer }): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: req.authority };
    for (const [k, v] of req.headers) headers[k] = v;
    const c = http.request({ host: "127.0.0.1", port: fake.port, method: req.method, path: req.path, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    c.on("error", reject);
    c.end(req.body);
  });
}

function lastVerified(): { verified: boolean; accessKeyId?: string; errorCode?: string; operation?: string } {
  const r = fake.requests.at(-1);
  if (!r) throw new Error("nothing reached the fake AWS");
  return r;
}

describe("countersign serve re-signs AWS SDK v3 requests", () => {
  const keys = ["plain.txt", "with space/and+plus", "percent%25and%20literal", "ünïcødé/🦄.bin", "double//slash/./dot/../x", "tilde~star*paren()"];

  it.each(keys)("S3 PutObject, GetObject and DeleteObject round-trip key %j with metadata (virtual-hosted)", async (key) => {
    const client = s3(false);
    await client.send(
      new PutObjectCommand({
        Bucket: "countersign-test",
        Key: key,
        Body: `hello ${key}`,
        ContentType: "text/plain",
        Metadata: { owner: "team-a", "trace-id": "abc 123" },
      }),
    );
    expect(lastVerified()).toMatchObject({ verified: true, accessKeyId: REAL.accessKeyId, operation: "PutObject" });
    const got = await client.send(new GetObjectCommand({ Bucket: "countersign-test", Key: key }));
    expect(await got.Body?.transformToString()).toBe(`hello ${key}`);
    expect(got.Metadata).toEqual({ owner: "team-a", "trace-id": "abc 123" });
    expect(lastVerified()).toMatchObject({ verified: true, accessKeyId: REAL.accessKeyId, operation: "GetObject" });
    await client.send(new DeleteObjectCommand({ Bucket: "countersign-test", Key: key }));
    expect(lastVerified()).toMatchObject({ verified: true, operation: "DeleteObject" });
  });

  it("S3 ListObjectsV2 with a prefix and delimiter (path-style)", async () => {
    const client = s3(true);
    await client.send(new PutObjectCommand({ Bucket: "listing", Key: "a/b c/1.txt", Body: "1" }));
    await client.send(new PutObjectCommand({ Bucket: "listing", Key: "a/b c/2.txt", Body: "2" }));
    const listed = await client.send(new ListObjectsV2Command({ Bucket: "listing", Prefix: "a/b c/", Delimiter: "/" }));
    expect(listed.Contents?.map((c) => c.Key)).toEqual(["a/b c/1.txt", "a/b c/2.txt"]);
    expect(lastVerified()).toMatchObject({ verified: true, accessKeyId: REAL.accessKeyId, operation: "ListObjectsV2" });
  });

  it("Bedrock InvokeModel (JSON body, signing_service auto → bedrock)", async () => {
    const client = new BedrockRuntimeClient({ region: "us-west-2", credentials: PLACEHOLDER, requestHandler: handler, maxAttempts: 1 });
    const out = await client.send(
      new InvokeModelCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", contentType: "application/json", body: JSON.stringify({ prompt: "hi" }) }),
    );
    const echoed = JSON.parse(Buffer.from(out.body).toString("utf8")) as { echo: unknown };
    expect(echoed.echo).toEqual({ prompt: "hi" });
    expect(lastVerified()).toMatchObject({ verified: true, accessKeyId: REAL.accessKeyId });
    expect(fake.requests.at(-1)?.service).toBe("bedrock");
  });

  it("STS GetCallerIdentity", async () => {
    const client = new STSClient({ region: "us-east-1", credentials: PLACEHOLDER, requestHandler: handler, maxAttempts: 1 });
    const id = await client.send(new GetCallerIdentityCommand({}));
    expect(id.Account).toBe("123456789012");
    expect(lastVerified()).toMatchObject({ verified: true, accessKeyId: REAL.accessKeyId, operation: "GetCallerIdentity" });
  });

  it("a form POST without x-amz-content-sha256 (as botocore sends to STS): body buffered, hashed and signed in the body response", async () => {
    const body = Buffer.from("Action=GetCallerIdentity&Version=2011-06-15");
    const r = await exchange(connectExtProc(serve.grpcAddress), {
      method: "POST",
      authority: "sts.amazonaws.com",
      path: "/",
      headers: [
        ["content-type", "application/x-www-form-urlencoded; charset=utf-8"],
        ["content-length", String(body.length)],
        ["authorization", `AWS4-HMAC-SHA256 Credential=${PLACEHOLDER.accessKeyId}/20240101/us-east-1/sts/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=${"0".repeat(64)}`],
        ["x-amz-date", "20240101T000000Z"],
      ],
      body,
    });
    expect(r.kind === "forwarded" && r.bodyMode).toBe("BUFFERED");
    if (r.kind !== "forwarded") return;
    // The headers response removed the placeholder signature; the body response signed.
    expect(r.responses[0]?.request_headers?.response?.header_mutation?.remove_headers).toEqual(["authorization", "x-amz-date", "x-amz-security-token"]);
    const status = await forwardToFake(r.request);
    expect(status).toBe(200);
    expect(lastVerified()).toMatchObject({ verified: true, accessKeyId: REAL.accessKeyId, operation: "GetCallerIdentity" });
  });

  it("never forwards the placeholder key, signature or token", () => {
    for (const r of handler.results) {
      if (r.kind !== "forwarded") continue;
      const auth = r.request.headers.find(([k]) => k === "authorization")?.[1] ?? "";
      expect(auth).toContain(`Credential=${REAL.accessKeyId}/`);
      expect(auth).not.toContain(PLACEHOLDER.accessKeyId);
    }
  });
});

describe("countersign serve refuses", () => {
  it("a host outside the policy with 403 and an AWS-style XML error; nothing reaches AWS", async () => {
    const before = fake.requests.length;
    const r = await exchange(connectExtProc(serve.grpcAddress), { method: "GET", authority: "example.com", path: "/", headers: [] });
    expect(r.kind).toBe("refused");
    if (r.kind !== "refused") return;
    expect(r.status).toBe(403);
    expect(r.body).toMatch(/<Error><Code>AccessDenied<\/Code><Message>countersign policy has no endpoint for host &quot;example.com&quot;/);
    expect(r.body).toMatch(/<RequestId>[^<]+<\/RequestId><\/Error>/);
    expect(r.headers).toContainEqual(["content-type", "application/xml"]);
    expect(fake.requests.length).toBe(before);
  });

  it("an S3 request made with a placeholder key id not bound to the endpoint (403 InvalidAccessKeyId)", async () => {
    const before = fake.requests.length;
    const client = new S3Client({
      region: "eu-west-1",
      credentials: { accessKeyId: "AKIDSOMEONEELSE0000", secretAccessKey: "x" },
      requestHandler: handler,
      maxAttempts: 1,
    });
    await expect(client.send(new GetObjectCommand({ Bucket: "countersign-test", Key: "plain.txt" }))).rejects.toMatchObject({
      $metadata: { httpStatusCode: 403 },
    });
    expect(fake.requests.length).toBe(before);
    const last = handler.results.at(-1);
    expect(last?.kind === "refused" && last.body).toContain("is not in client_access_key_ids");
    expect(last?.kind === "refused" && last.body).not.toContain("AKIDSOMEONEELSE0000");
  });

  it("a broken Authorization header where a key id binding is set (400)", async () => {
    const r = await exchange(connectExtProc(serve.grpcAddress), {
      method: "GET",
      authority: "b.s3.eu-west-1.amazonaws.com",
      path: "/k",
      headers: [["authorization", "AWS4-HMAC-SHA256 Credential=broken"], ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"]],
    });
    expect(r.kind === "refused" && r.status).toBe(400);
    expect(r.kind === "refused" && r.body).toContain("AuthorizationHeaderMalformed");
  });

  it("a body over the buffered limit from content-length, before asking for it (413)", async () => {
    const r = await exchange(connectExtProc(serve.grpcAddress), {
      method: "POST",
      authority: "sts.amazonaws.com",
      path: "/",
      headers: [
        ["authorization", `AWS4-HMAC-SHA256 Credential=${PLACEHOLDER.accessKeyId}/20240101/us-east-1/sts/aws4_request, SignedHeaders=host, Signature=${"0".repeat(64)}`],
        ["content-length", String(2 * 1024 * 1024)],
      ],
      body: Buffer.alloc(16),
    });
    expect(r.kind === "refused" && r.status).toBe(413);
    expect(r.responses).toHaveLength(1);
  });

  it("a SigV4A streaming upload with a clear 400", async () => {
    const r = await exchange(connectExtProc(serve.grpcAddress), {
      method: "PUT",
      authority: "b.s3.eu-west-1.amazonaws.com",
      path: "/k",
      headers: [
        ["authorization", `AWS4-HMAC-SHA256 Credential=${PLACEHOLDER.accessKeyId}/20240101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=${"0".repeat(64)}`],
        ["x-amz-content-sha256", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"],
      ],
      body: Buffer.from("x"),
    });
    expect(r.kind === "refused" && r.status).toBe(400);
    expect(r.kind === "refused" && r.body).toContain("SigV4A");
  });

  it("exposes what it did on /metrics and stays ready", async () => {
    const metrics = await (await fetch(`${serve.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(/countersign_requests_total\{decision="signed",reason="signed",payload_mode="client-hash",service="s3"\} \d+/);
    expect(metrics).toMatch(/countersign_requests_total\{decision="refused",reason="no_endpoint",payload_mode="none",service="none"\} 1/);
    expect(metrics).toMatch(/countersign_requests_total\{decision="refused",reason="key_id_not_allowed"/);
    expect((await fetch(`${serve.adminUrl}/readyz`)).status).toBe(200);
    expect((await fetch(`${serve.adminUrl}/healthz`)).status).toBe(200);
  });

  it("answers a method other than GET or HEAD on its admin port with 405 and Allow: GET, HEAD", async () => {
    for (const path of ["/healthz", "/readyz", "/metrics"]) {
      const res = await fetch(`${serve.adminUrl}${path}`, { method: "POST" });
      expect({ path, status: res.status, allow: res.headers.get("allow"), body: await res.text() }).toEqual({ path, status: 405, allow: "GET, HEAD", body: "" });
    }
  });

  it("never logs a secret, a signature or a full key id", () => {
    const all = serve.lines.join("\n");
    expect(all).not.toContain(REAL.secretAccessKey);
    expect(all).not.toContain(REAL.accessKeyId);
    expect(all).not.toMatch(/Signature=[0-9a-f]{64}/);
    expect(all).toContain('"decision":"signed"');
  });
});
