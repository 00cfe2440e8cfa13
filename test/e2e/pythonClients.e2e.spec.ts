/**
 * boto3 and the AWS CLI (both from Debian: python3-boto3, awscli) as real workloads: placeholder
 * keys, HTTPS_PROXY pointing at Envoy, AWS_CA_BUNDLE trusting countersign's CA. Each request must
 * reach the fake AWS signed with the real key. Skipped, with the reason printed, where the Debian
 * packages are missing (.ci/run installs them).
 */
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PLACEHOLDER, REAL, startStack, type Stack } from "./harness.js";

const run = promisify(execFile);
const PYTHON = "/usr/bin/python3";
const AWS_CLI = "/usr/bin/aws";

async function hasBoto3(): Promise<boolean> {
  if (!existsSync(PYTHON)) return false;
  try {
    await run(PYTHON, ["-c", "import boto3"]);
    return true;
  } catch {
    return false;
  }
}
const boto3Present = await hasBoto3();
const cliPresent = existsSync(AWS_CLI);
if (!boto3Present) console.warn("boto3 e2e skipped: /usr/bin/python3 cannot import boto3 (apt-get install python3-boto3)");
if (!cliPresent) console.warn("AWS CLI e2e skipped: /usr/bin/aws is missing (apt-get install awscli)");

let stack: Stack;
beforeAll(async () => {
  if (boto3Present || cliPresent) stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

function workloadEnv(): NodeJS.ProcessEnv {
  return {
    PATH: "/usr/bin:/bin",
    HOME: stack.dir,
    HTTPS_PROXY: stack.proxyUrl,
    HTTP_PROXY: stack.proxyUrl,
    NO_PROXY: "",
    AWS_CA_BUNDLE: stack.caFile,
    AWS_ACCESS_KEY_ID: PLACEHOLDER.accessKeyId,
    AWS_SECRET_ACCESS_KEY: PLACEHOLDER.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: join(stack.dir, "no-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(stack.dir, "no-credentials"),
    AWS_PAGER: "",
  };
}

function expectAllVerifiedSince(start: number): string[] {
  const seen = stack.fake.requests.slice(start);
  expect(seen.length).toBeGreaterThan(0);
  for (const r of seen) {
    expect({ op: r.operation, verified: r.verified, key: r.accessKeyId, error: r.errorCode, msg: r.errorMessage }).toEqual({
      op: r.operation,
      verified: true,
      key: REAL.accessKeyId,
      error: undefined,
      msg: undefined,
    });
  }
  return seen.map((r) => r.operation ?? "");
}

describe.skipIf(!boto3Present)("boto3 through Envoy and countersign", () => {
  it.each(["virtual", "path"])("put/get/list, a multipart upload and STS with %s addressing", async (style) => {
    const start = stack.fake.requests.length;
    const { stdout } = await run(PYTHON, [join(import.meta.dirname, "boto3_client.py"), style], { env: workloadEnv(), timeout: 120_000 });
    const out = JSON.parse(stdout.trim().split("\n").at(-1) as string) as Record<string, unknown>;
    expect(out).toMatchObject({ get: "from boto3", metadata: { origin: "boto3" }, multipart_size: 10 * 1024 * 1024, account: "123456789012" });
    expect(out.listed).toContain("boto3/key with space+plus/ünï.txt");
    const ops = expectAllVerifiedSince(start);
    expect(ops).toEqual(expect.arrayContaining(["PutObject", "GetObject", "ListObjectsV2", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "HeadObject", "GetCallerIdentity"]));
  });
});

describe.skipIf(!cliPresent)("the AWS CLI through Envoy and countersign", () => {
  it("aws s3 cp (up and down), aws s3 ls, aws sts get-caller-identity", async () => {
    const env = workloadEnv();
    const src = join(stack.dir, "cli-upload.txt");
    writeFileSync(src, "uploaded by the aws cli\n".repeat(1000));
    const start = stack.fake.requests.length;
    await run(AWS_CLI, ["s3", "cp", src, "s3://cli-bucket/dir with space/file.txt", "--region", "eu-west-1"], { env, timeout: 120_000 });
    const ls = await run(AWS_CLI, ["s3", "ls", "s3://cli-bucket/dir with space/", "--region", "eu-west-1"], { env, timeout: 60_000 });
    expect(ls.stdout).toContain("file.txt");
    const dst = join(stack.dir, "cli-download.txt");
    await run(AWS_CLI, ["s3", "cp", "s3://cli-bucket/dir with space/file.txt", dst, "--region", "eu-west-1"], { env, timeout: 60_000 });
    const who = await run(AWS_CLI, ["sts", "get-caller-identity", "--region", "us-east-1", "--output", "json"], { env, timeout: 60_000 });
    expect(JSON.parse(who.stdout).Account).toBe("123456789012");
    const ops = expectAllVerifiedSince(start);
    expect(ops).toEqual(expect.arrayContaining(["PutObject", "ListObjectsV2", "GetObject", "GetCallerIdentity"]));
  });

  it("a refused request surfaces countersign's AccessDenied message to the CLI user", async () => {
    const env = { ...workloadEnv(), AWS_ACCESS_KEY_ID: "AKIDNOTALLOWED00000" };
    const start = stack.fake.requests.length;
    const err = await run(AWS_CLI, ["s3", "ls", "s3://cli-bucket/", "--region", "eu-west-1"], { env, timeout: 60_000 }).catch((e: { stderr: string }) => e);
    expect((err as { stderr: string }).stderr).toMatch(/InvalidAccessKeyId|not in client_access_key_ids/);
    expect(stack.fake.requests.length).toBe(start);
  });
});
