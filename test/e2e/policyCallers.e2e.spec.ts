/**
 * Per-caller credentials through REAL Envoy with the AWS SDK for JavaScript v3 (README "Callers"):
 * one endpoint serves two tenants, each workload holding its own placeholder key id; countersign
 * signs each with its tenant's profile (a static key and a credentials file), so the fake AWS sees
 * two different real key ids, and STS reports two different identities. A key id the endpoint does
 * not list is refused with 403 AccessDenied before anything reaches AWS.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand, STSClient } from "@aws-sdk/client-sts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { proxiedHandler, s3Client } from "./clients.js";
import { runBoto3Policy } from "./boto3Policy.js";
import { REAL, startStack, type Stack } from "./harness.js";

const TENANT_A = { accessKeyId: "AKIDTENANTA0000000000", secretAccessKey: "placeholder-a" };
const TENANT_B = { accessKeyId: "AKIDTENANTB0000000000", secretAccessKey: "placeholder-b" };
const STRANGER = { accessKeyId: "AKIDSTRANGER000000000", secretAccessKey: "placeholder-c" };
/** Tenant B's real key: only countersign (from its credentials file) and the fake AWS know it. */
const REAL_B = { accessKeyId: "AKIAREALKEYTENANTB01", secretAccessKey: "real/tenant-b/secret/000000000000000000001", arn: "arn:aws:sts::123456789012:assumed-role/tenant-b/countersign" };
const ARN_A = "arn:aws:sts::123456789012:assumed-role/tenant-a/countersign";

const credentialsDir = mkdtempSync(join(tmpdir(), "countersign-callers-"));
const credentialsFile = join(credentialsDir, "tenant-b");
writeFileSync(credentialsFile, `[default]\naws_access_key_id = ${REAL_B.accessKeyId}\naws_secret_access_key = ${REAL_B.secretAccessKey}\n`);

const POLICY = `version: 1
credentials:
  tenant-a:
    static:
      access_key_id_env: COUNTERSIGN_AWS_ACCESS_KEY_ID
      secret_access_key_env: COUNTERSIGN_AWS_SECRET_ACCESS_KEY
  tenant-b:
    file: { path: ${credentialsFile} }
endpoints:
  - host: "*.s3.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    callers:
      ${TENANT_A.accessKeyId}: tenant-a
      ${TENANT_B.accessKeyId}: tenant-b
  - host: "sts.amazonaws.com"
    credential_signing: sigv4
    signing_service: sts
    callers:
      ${TENANT_A.accessKeyId}: tenant-a
      ${TENANT_B.accessKeyId}: tenant-b
`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ policy: POLICY, fakeOptions: { accounts: [{ ...REAL, arn: ARN_A }, REAL_B] } });
});
afterAll(async () => {
  await stack?.close();
  rmSync(credentialsDir, { recursive: true, force: true });
});

function sts(credentials: typeof TENANT_A): STSClient {
  return new STSClient({ region: "us-east-1", credentials, requestHandler: proxiedHandler(stack), maxAttempts: 1, endpoint: "https://sts.amazonaws.com" });
}

describe("callers through real Envoy", () => {
  it("signs each tenant's requests with its own profile: AWS sees two real key ids and two identities", async () => {
    const start = stack.fake.requests.length;
    const a = s3Client(stack, { credentials: TENANT_A });
    const b = s3Client(stack, { credentials: TENANT_B });
    await a.send(new CreateBucketCommand({ Bucket: "tenant-a-data" }));
    await b.send(new CreateBucketCommand({ Bucket: "tenant-b-data" }));
    await a.send(new PutObjectCommand({ Bucket: "tenant-a-data", Key: "k", Body: "from a" }));
    await b.send(new PutObjectCommand({ Bucket: "tenant-b-data", Key: "k", Body: "from b" }));
    expect(await (await b.send(new GetObjectCommand({ Bucket: "tenant-b-data", Key: "k" }))).Body?.transformToString()).toBe("from b");
    expect(stack.fake.requests.slice(start).map((r) => [r.operation, r.verified, r.accessKeyId])).toEqual([
      ["CreateBucket", true, REAL.accessKeyId],
      ["CreateBucket", true, REAL_B.accessKeyId],
      ["PutObject", true, REAL.accessKeyId],
      ["PutObject", true, REAL_B.accessKeyId],
      ["GetObject", true, REAL_B.accessKeyId],
    ]);
    expect((await sts(TENANT_A).send(new GetCallerIdentityCommand({}))).Arn).toBe(ARN_A);
    expect((await sts(TENANT_B).send(new GetCallerIdentityCommand({}))).Arn).toBe(REAL_B.arn);
  });

  it("refuses a placeholder key id that is not a caller (the endpoints have no default credentials): 403, nothing reaches AWS", async () => {
    const start = stack.fake.requests.length;
    let refusal: { status: number | undefined; name: string; message: string } | undefined;
    try {
      await s3Client(stack, { credentials: STRANGER }).send(new GetObjectCommand({ Bucket: "tenant-a-data", Key: "k" }));
    } catch (err) {
      if (!(err instanceof S3ServiceException)) throw err;
      refusal = { status: err.$metadata.httpStatusCode, name: err.name, message: err.message };
    }
    expect(refusal).toEqual({
      status: 403,
      name: "AccessDenied",
      message: "placeholder key id AKID…0000 is not one of the callers of endpoints[0] (*.s3.*.amazonaws.com), which has no default credentials",
    });
    expect(stack.fake.requests.length).toBe(start);
    const line = await stack.serve.waitForLine((l) => l.includes('"reason":"caller"'));
    expect(JSON.parse(line)).toMatchObject({ decision: "refused", reason: "caller", status: 403, clientKeyId: "AKID…0000" });
  });
});

describe("callers with boto3 through real Envoy", () => {
  it("two boto3 workloads with two placeholder key ids get two identities and two real key ids", async () => {
    const start = stack.fake.requests.length;
    expect(await runBoto3Policy(stack, ["whoami", "tenant-a-data"], TENANT_A)).toEqual({ arn: ARN_A });
    expect(await runBoto3Policy(stack, ["whoami", "tenant-b-data"], TENANT_B)).toEqual({ arn: REAL_B.arn });
    expect(stack.fake.requests.slice(start).map((r) => [r.operation, r.verified, r.accessKeyId])).toEqual([
      ["GetCallerIdentity", true, REAL.accessKeyId],
      ["PutObject", true, REAL.accessKeyId],
      ["GetCallerIdentity", true, REAL_B.accessKeyId],
      ["PutObject", true, REAL_B.accessKeyId],
    ]);
  }, 120_000);
});
