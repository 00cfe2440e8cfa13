/**
 * Policy access levels through REAL Envoy with the AWS SDK for JavaScript v3 (README "Access
 * rules"): a read-only S3 endpoint lets GetObject, HeadObject and ListObjectsV2 through, signed
 * with the real key, and refuses PutObject and DeleteObject with 403 AccessDenied before anything
 * reaches AWS; the same endpoint in audit mode signs the PutObject and says, in its log line and
 * a counter, that read-only would have refused it. A key-prefix rule lets one prefix of a bucket
 * be written and read, refuses the rest and a denied sub-prefix, and allows listing by path.
 */
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { s3Client } from "./clients.js";
import { runBoto3Policy } from "./boto3Policy.js";
import { REAL, startStack, type Stack } from "./harness.js";

const POLICY = `version: 1
credentials:
  workload:
    static:
      access_key_id_env: COUNTERSIGN_AWS_ACCESS_KEY_ID
      secret_access_key_env: COUNTERSIGN_AWS_SECRET_ACCESS_KEY
endpoints:
  - host: "datasets.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: workload
    access: read-only
  - host: "trial.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: workload
    access: read-only
    enforcement: audit
  - host: "team.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: workload
    rules:
      - { effect: deny, s3: { key: "team-a/secret/**" } }
      - { effect: allow, methods: [GET, HEAD, PUT], s3: { bucket: team, key: "team-a/**" } }
      - { effect: allow, methods: [GET], paths: ["/"] }
  # Path style, full access: only the test's setup uses it, to create the buckets and seed an object.
  - host: "s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: workload
`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ policy: POLICY });
  const setup = s3Client(stack, { forcePathStyle: true });
  for (const bucket of ["datasets", "trial", "team"]) await setup.send(new CreateBucketCommand({ Bucket: bucket }));
  await setup.send(new PutObjectCommand({ Bucket: "datasets", Key: "public/a.txt", Body: "dataset a" }));
});
afterAll(async () => {
  await stack?.close();
});

/** What reached the fake AWS since `start`: operation, verified, key id. */
function reachedSince(start: number): Array<[string | undefined, boolean, string | undefined]> {
  return stack.fake.requests.slice(start).map((r) => [r.operation, r.verified, r.accessKeyId]);
}

async function refusalOf(send: Promise<unknown>): Promise<{ status: number | undefined; name: string; message: string }> {
  try {
    await send;
  } catch (err) {
    if (!(err instanceof S3ServiceException)) throw err;
    return { status: err.$metadata.httpStatusCode, name: err.name, message: err.message };
  }
  throw new Error("the request was not refused");
}

describe("access: read-only through real Envoy", () => {
  it("lets GetObject, HeadObject and ListObjectsV2 through, each signed with the real key and verified by AWS", async () => {
    const s3 = s3Client(stack);
    const start = stack.fake.requests.length;
    const got = await s3.send(new GetObjectCommand({ Bucket: "datasets", Key: "public/a.txt" }));
    expect(await got.Body?.transformToString()).toBe("dataset a");
    const head = await s3.send(new HeadObjectCommand({ Bucket: "datasets", Key: "public/a.txt" }));
    expect(head.ContentLength).toBe(9);
    const list = await s3.send(new ListObjectsV2Command({ Bucket: "datasets" }));
    expect(list.Contents?.map((o) => o.Key)).toEqual(["public/a.txt"]);
    expect(reachedSince(start)).toEqual([
      ["GetObject", true, REAL.accessKeyId],
      ["HeadObject", true, REAL.accessKeyId],
      ["ListObjectsV2", true, REAL.accessKeyId],
    ]);
  });

  it.each([
    ["PutObject", "PUT", () => new PutObjectCommand({ Bucket: "datasets", Key: "public/b.txt", Body: "no" })],
    ["DeleteObject", "DELETE", () => new DeleteObjectCommand({ Bucket: "datasets", Key: "public/a.txt" })],
  ] as const)("refuses %s with 403 AccessDenied naming the endpoint; nothing reaches AWS", async (_op, method, command) => {
    const start = stack.fake.requests.length;
    const logStart = stack.serve.lines.length;
    expect(await refusalOf(s3Client(stack).send(command()))).toEqual({
      status: 403,
      name: "AccessDenied",
      message: `endpoints[0] (datasets.s3.eu-west-1.amazonaws.com) is read-only (GET, HEAD, OPTIONS): ${method} is not allowed`,
    });
    expect(reachedSince(start)).toEqual([]);
    const line = await stack.serve.waitForLine((l) => stack.serve.lines.indexOf(l) >= logStart && l.includes('"decision":"refused"'));
    expect(JSON.parse(line)).toMatchObject({ method, host: "datasets.s3.eu-west-1.amazonaws.com", decision: "refused", reason: "access", status: 403 });
    expect(stack.fake.s3.listKeys("datasets")).toEqual(["public/a.txt"]);
  });
});

describe("enforcement: audit through real Envoy", () => {
  it("signs a PutObject that read-only would refuse, logs which check would have refused it, and counts it", async () => {
    const start = stack.fake.requests.length;
    await s3Client(stack).send(new PutObjectCommand({ Bucket: "trial", Key: "k", Body: "audited" }));
    expect(reachedSince(start)).toEqual([["PutObject", true, REAL.accessKeyId]]);
    expect(stack.fake.s3.listKeys("trial")).toEqual(["k"]);
    const line = await stack.serve.waitForLine((l) => l.includes('"wouldRefuse"'));
    expect(JSON.parse(line)).toMatchObject({
      method: "PUT",
      host: "trial.s3.eu-west-1.amazonaws.com",
      decision: "signed",
      reason: "signed",
      status: 200,
      wouldRefuse: "access",
      wouldRefuseMessage: "endpoints[1] (trial.s3.eu-west-1.amazonaws.com) is read-only (GET, HEAD, OPTIONS): PUT is not allowed",
    });
    const metrics = await (await fetch(`${stack.serve.adminUrl}/metrics`)).text();
    expect(metrics.split("\n").filter((l) => l.startsWith("countersign_audit_would_refuse_total"))).toEqual(['countersign_audit_would_refuse_total{reason="access",endpoint="1",rule="none"} 1']);
  });
});

describe("rules: a key prefix through real Envoy", () => {
  const keys = ["team-a/x.txt", "team-a/dir with space/ü+plus 🦄.txt", "team-a/a//b/../c"];

  it.each(keys)("PutObject, HeadObject and GetObject of %j under the allowed prefix are signed and verified", async (key) => {
    const s3 = s3Client(stack);
    const start = stack.fake.requests.length;
    await s3.send(new PutObjectCommand({ Bucket: "team", Key: key, Body: `body of ${key}` }));
    await s3.send(new HeadObjectCommand({ Bucket: "team", Key: key }));
    expect(await (await s3.send(new GetObjectCommand({ Bucket: "team", Key: key }))).Body?.transformToString()).toBe(`body of ${key}`);
    expect(reachedSince(start)).toEqual([
      ["PutObject", true, REAL.accessKeyId],
      ["HeadObject", true, REAL.accessKeyId],
      ["GetObject", true, REAL.accessKeyId],
    ]);
  });

  it("ListObjectsV2 is allowed by the paths rule", async () => {
    const list = await s3Client(stack).send(new ListObjectsV2Command({ Bucket: "team" }));
    expect(list.Contents?.map((o) => o.Key).sort()).toEqual([...keys].sort());
  });

  it.each([
    ["another prefix", () => new PutObjectCommand({ Bucket: "team", Key: "team-b/x.txt", Body: "no" }), "endpoints[2] (team.s3.eu-west-1.amazonaws.com): no rule allows this request (PUT); rules are tried in order and the first match decides"],
    ["the prefix's look-alike", () => new PutObjectCommand({ Bucket: "team", Key: "team-a%2Fx", Body: "no" }), "endpoints[2] (team.s3.eu-west-1.amazonaws.com): no rule allows this request (PUT); rules are tried in order and the first match decides"],
    ["a denied sub-prefix", () => new GetObjectCommand({ Bucket: "team", Key: "team-a/secret/k" }), "endpoints[2] (team.s3.eu-west-1.amazonaws.com): rules[0] (deny) refuses this request"],
    ["DeleteObject under the prefix (no rule allows DELETE)", () => new DeleteObjectCommand({ Bucket: "team", Key: "team-a/x.txt" }), "endpoints[2] (team.s3.eu-west-1.amazonaws.com): no rule allows this request (DELETE); rules are tried in order and the first match decides"],
  ] as const)("refuses %s with 403 AccessDenied; nothing reaches AWS", async (_name, command, message) => {
    const start = stack.fake.requests.length;
    expect(await refusalOf(s3Client(stack).send(command()))).toEqual({ status: 403, name: "AccessDenied", message });
    expect(reachedSince(start)).toEqual([]);
  });
});

describe("access: read-only with boto3 through real Envoy", () => {
  it("get, head and list are signed; put and delete are refused with 403 AccessDenied and reach nothing", async () => {
    const start = stack.fake.requests.length;
    const out = await runBoto3Policy(stack, "read-only");
    const refusal = { status: 403, code: "AccessDenied", errortype: "AccessDenied" };
    expect(out).toEqual({ get: "dataset a", head: 9, listed: ["public/a.txt"], put: refusal, delete: refusal });
    expect(reachedSince(start)).toEqual([
      ["GetObject", true, REAL.accessKeyId],
      ["HeadObject", true, REAL.accessKeyId],
      ["ListObjectsV2", true, REAL.accessKeyId],
    ]);
  }, 120_000);
});

describe("rules and audit with boto3 through real Envoy", () => {
  it("the key-prefix rule and the audited bucket behave for boto3 as for the JavaScript SDK", async () => {
    const start = stack.fake.requests.length;
    const out = await runBoto3Policy(stack, "rules");
    const refusal = { status: 403, code: "AccessDenied", errortype: "AccessDenied" };
    expect(out).toEqual({ get: "from boto3", listed: true, other_prefix: refusal, denied_prefix: refusal, audited: true });
    expect(reachedSince(start)).toEqual([
      ["PutObject", true, REAL.accessKeyId],
      ["GetObject", true, REAL.accessKeyId],
      ["ListObjectsV2", true, REAL.accessKeyId],
      ["PutObject", true, REAL.accessKeyId],
    ]);
    expect(stack.fake.s3.listKeys("trial")).toContain("boto3-audited");
  }, 120_000);
});
