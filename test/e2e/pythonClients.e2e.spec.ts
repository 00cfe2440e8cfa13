/**
 * boto3 and the AWS CLI (both from Debian: python3-boto3, awscli) as real workloads holding
 * placeholder keys, through real Envoy, in both modes:
 *   proxy mode     HTTPS_PROXY pointing at Envoy, AWS_CA_BUNDLE trusting countersign's CA;
 *   endpoint mode  AWS_ENDPOINT_URL_S3 = Envoy's endpoint_in (plain HTTP, path-style, region
 *                  us-east-1). Debian 12's boto3 1.26 / botocore 1.29 and AWS CLI 2.9 predate
 *                  AWS_ENDPOINT_URL_*: they ignore it, so the endpoint is also passed as
 *                  endpoint_url / --endpoint-url, as their users must.
 * Each request must reach the fake AWS signed with the real key. Missing clients FAIL these tests
 * (they never skip): .ci/run and `make test` install them (scripts/install-system-deps.sh, as root).
 */
import { execFile } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenOnLoopback } from "../support/freePort.js";
import { expectAllVerifiedSince } from "./expectVerified.js";
import { pythonWorkloadEnv, startStack, type Stack } from "./harness.js";

const run = promisify(execFile);
const PYTHON = "/usr/bin/python3";
const AWS_CLI = "/usr/bin/aws";
// Each CLI run is a Python interpreter loading awscli (about 1 s of CPU by itself): on a busy 2-core
// box a test of five runs took 45 s, against vitest's 60 s default.
const CLI_TEST_TIMEOUT_MS = 240_000;
const BOTO3_TEST_TIMEOUT_MS = 120_000;

async function missingClients(): Promise<string[]> {
  const missing: string[] = [];
  const boto3 = existsSync(PYTHON) && (await run(PYTHON, ["-c", "import boto3"]).then(() => true, () => false));
  if (!boto3) missing.push(`boto3 (${PYTHON} cannot import it: apt-get install python3-boto3)`);
  if (!existsSync(AWS_CLI)) missing.push(`the AWS CLI (${AWS_CLI} is missing: apt-get install awscli)`);
  return missing;
}

/**
 * A proxy that must never be used: endpoint-mode runs set HTTPS_PROXY/HTTP_PROXY to it (and
 * NO_PROXY to the endpoint), so a client that ignored the endpoint would fail here, on loopback,
 * instead of reaching for the real AWS. It counts the connections it refused.
 */
interface Tripwire {
  readonly url: string;
  connections: number;
  close(): Promise<void>;
}

async function startTripwire(): Promise<Tripwire> {
  const server: Server = createServer((socket) => {
    trip.connections++;
    socket.destroy();
  });
  const trip: Tripwire = {
    url: `http://127.0.0.1:${await listenOnLoopback(server)}`,
    connections: 0,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
  return trip;
}

let stack: Stack;
let tripwire: Tripwire;
beforeAll(async () => {
  const missing = await missingClients();
  if (missing.length > 0) {
    throw new Error(`the boto3 / AWS CLI end-to-end tests need ${missing.join(" and ")}; run scripts/install-system-deps.sh as root (.ci/run does)`);
  }
  tripwire = await startTripwire();
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
  await tripwire?.close();
});

function workloadEnv(): NodeJS.ProcessEnv {
  return pythonWorkloadEnv(stack);
}

/**
 * Endpoint mode: what a user sets (AWS_ENDPOINT_URL_S3, us-east-1; no CA, the endpoint is plain
 * HTTP). The proxy variables point at the tripwire and NO_PROXY exempts the endpoint.
 */
function endpointEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...workloadEnv(),
    AWS_ENDPOINT_URL_S3: stack.endpointUrl,
    AWS_DEFAULT_REGION: "us-east-1",
    HTTPS_PROXY: tripwire.url,
    HTTP_PROXY: tripwire.url,
    NO_PROXY: "127.0.0.1",
  };
  delete env.AWS_CA_BUNDLE;
  return env;
}

/** The payload modes of the PUTs since `start` whose raw path ends with `pathSuffix`. */
function putModes(start: number, pathSuffix: string): string[] {
  return stack.fake.requests
    .slice(start)
    .filter((r) => r.method === "PUT" && r.path.endsWith(pathSuffix))
    .map((r) => r.payloadMode);
}

async function runBoto3(mode: string, env: NodeJS.ProcessEnv): Promise<Record<string, unknown>> {
  const { stdout } = await run(PYTHON, [join(import.meta.dirname, "boto3_client.py"), mode], { env, timeout: 120_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1) as string) as Record<string, unknown>;
}

const BOTO3_S3_OPS = ["PutObject", "GetObject", "ListObjectsV2", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "HeadObject", "DeleteObject"];

describe("boto3 through Envoy and countersign", () => {
  it.each(["virtual", "path"])("proxy mode: put/get/list/head/delete, a multipart upload and STS with %s addressing", async (style) => {
    const start = stack.fake.requests.length;
    const out = await runBoto3(style, workloadEnv());
    expect(out).toMatchObject({ get: "from boto3", metadata: { origin: "boto3" }, multipart_size: 10 * 1024 * 1024, account: "123456789012" });
    expect(out.listed).toContain("boto3/key with space+plus/ünï.txt");
    const ops = expectAllVerifiedSince(stack, start);
    expect(ops).toEqual(expect.arrayContaining([...BOTO3_S3_OPS, "GetCallerIdentity"]));
    // Over HTTPS botocore 1.29 leaves the payload unsigned, and sends a flexible checksum as an
    // aws-chunked trailer: both go through with the body untouched.
    expect(putModes(start, "/%C3%BCn%C3%AF.txt")).toEqual(["UNSIGNED-PAYLOAD"]);
    expect(putModes(start, "/crc32.txt")).toEqual(["STREAMING-UNSIGNED-PAYLOAD-TRAILER"]);
    expect(stack.fake.requests.slice(start).find((r) => r.path.endsWith("/crc32.txt"))?.checksumsVerified).toEqual(["x-amz-checksum-crc32"]);
  }, BOTO3_TEST_TIMEOUT_MS);

  it("endpoint mode (AWS_ENDPOINT_URL_S3, plain HTTP): put/get/list/head/delete and a multipart upload, host rewritten to s3.us-east-1.amazonaws.com", async () => {
    const start = stack.fake.requests.length;
    const trips = tripwire.connections;
    const out = await runBoto3("endpoint", endpointEnv());
    expect(out).toMatchObject({ endpoint_url: stack.endpointUrl, get: "from boto3", metadata: { origin: "boto3" }, multipart_size: 10 * 1024 * 1024 });
    expect(out.listed).toContain("boto3/key with space+plus/ünï.txt");
    expect(tripwire.connections - trips).toBe(0);
    const ops = expectAllVerifiedSince(stack, start);
    expect(ops).toEqual(expect.arrayContaining(BOTO3_S3_OPS));
    const seen = stack.fake.requests.slice(start);
    for (const r of seen) expect({ host: r.host, bucket: r.path.split("/")[1] }).toEqual({ host: "s3.us-east-1.amazonaws.com", bucket: "py-bucket" });
    // Over plain HTTP botocore hashes every payload itself (no aws-chunked, no trailer): the
    // flexible checksum travels as a header, and no body crosses gRPC.
    expect(new Set(seen.map((r) => r.payloadMode))).toEqual(new Set(["SHA256"]));
    const crc = seen.find((r) => r.method === "PUT" && r.path.endsWith("/crc32.txt"));
    expect(crc?.headers.find(([k]) => k === "x-amz-checksum-crc32")).toBeDefined();
    expect(crc?.headers.find(([k]) => k === "content-encoding")).toBeUndefined();
  }, BOTO3_TEST_TIMEOUT_MS);
});

describe("the AWS CLI through Envoy and countersign", () => {
  it("proxy mode: aws s3 cp (up and down), aws s3 ls, aws sts get-caller-identity", async () => {
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
    const ops = expectAllVerifiedSince(stack, start);
    expect(ops).toEqual(expect.arrayContaining(["PutObject", "ListObjectsV2", "GetObject", "GetCallerIdentity"]));
  }, CLI_TEST_TIMEOUT_MS);

  it("endpoint mode: aws --endpoint-url \"$AWS_ENDPOINT_URL_S3\" s3 cp (up and down), s3 ls, s3api head-object, s3 rm", async () => {
    const env = endpointEnv();
    const endpoint = ["--endpoint-url", stack.endpointUrl]; // AWS CLI 2.9 ignores AWS_ENDPOINT_URL_S3
    const src = join(stack.dir, "cli-endpoint-upload.txt");
    writeFileSync(src, "uploaded by the aws cli in endpoint mode\n".repeat(1000));
    const start = stack.fake.requests.length;
    const trips = tripwire.connections;
    const url = "s3://cli-endpoint/dir with space/file+1.txt";
    await run(AWS_CLI, [...endpoint, "s3", "cp", src, url], { env, timeout: 120_000 });
    const ls = await run(AWS_CLI, [...endpoint, "s3", "ls", "s3://cli-endpoint/dir with space/"], { env, timeout: 60_000 });
    expect(ls.stdout).toContain("file+1.txt");
    const head = await run(AWS_CLI, [...endpoint, "s3api", "head-object", "--bucket", "cli-endpoint", "--key", "dir with space/file+1.txt", "--output", "json"], { env, timeout: 60_000 });
    expect(JSON.parse(head.stdout).ContentLength).toBe(41 * 1000);
    const dst = join(stack.dir, "cli-endpoint-download.txt");
    await run(AWS_CLI, [...endpoint, "s3", "cp", url, dst], { env, timeout: 60_000 });
    await run(AWS_CLI, [...endpoint, "s3", "rm", url], { env, timeout: 60_000 });
    expect(tripwire.connections - trips).toBe(0);
    const ops = expectAllVerifiedSince(stack, start);
    expect(ops).toEqual(expect.arrayContaining(["PutObject", "ListObjectsV2", "HeadObject", "GetObject", "DeleteObject"]));
    const seen = stack.fake.requests.slice(start);
    // Path-style by itself (the endpoint is an IP address), and every payload hashed by the CLI.
    for (const r of seen) expect({ host: r.host, bucket: r.path.split("/")[1], mode: r.payloadMode }).toEqual({ host: "s3.us-east-1.amazonaws.com", bucket: "cli-endpoint", mode: "SHA256" });
  }, CLI_TEST_TIMEOUT_MS);

  it("a refused request surfaces countersign's AccessDenied message to the CLI user", async () => {
    const env = { ...workloadEnv(), AWS_ACCESS_KEY_ID: "AKIDNOTALLOWED00000" };
    const start = stack.fake.requests.length;
    const err = await run(AWS_CLI, ["s3", "ls", "s3://cli-bucket/", "--region", "eu-west-1"], { env, timeout: 60_000 }).catch((e: { stderr: string }) => e);
    expect((err as { stderr: string }).stderr).toMatch(/InvalidAccessKeyId|not in client_access_key_ids/);
    expect(stack.fake.requests.length).toBe(start);
  });
});
