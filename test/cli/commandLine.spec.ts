/**
 * The built `countersign` executable (dist/src/cli.js) as a user runs it: the exit code the process
 * ends with, what goes to stdout and to stderr, and that `serve` rejects a bad command line before
 * it loads the policy or asks STS for anything.
 */
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../ops/support/files.js";
import { eventually } from "../support/eventually.js";
import { CLI, REPO } from "../support/startServe.js";

const VERSION = (JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")) as { version: string }).version;
const SOURCE_ENV = { CLI_SPEC_ID: "AKIACLISPECSOURCE001", CLI_SPEC_SECRET: "cli/spec/source/secret/000000000000001" };

interface Exit {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI to its end (SIGKILL after `timeoutMs`, which fails the test through a null code). */
function runToExit(args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<Exit> {
  const proc = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  proc.stdout.on("data", (b: Buffer) => (stdout += b.toString("utf8")));
  proc.stderr.on("data", (b: Buffer) => (stderr += b.toString("utf8")));
  const timer = setTimeout(() => proc.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve) => {
    proc.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Anything listening where the policy's STS endpoint points, counting the requests it gets (and failing them). */
let sts: Server;
let stsRequests = 0;
let stsUrl = "";
let policyFile = "";

beforeAll(async () => {
  sts = createServer((req, res) => {
    stsRequests += 1;
    req.resume();
    res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => sts.listen(0, "127.0.0.1", resolve));
  stsUrl = `http://127.0.0.1:${(sts.address() as AddressInfo).port}`;
  policyFile = join(tempDir("cli"), "policy.yaml");
  writeFileSync(
    policyFile,
    `version: 1
credentials:
  source:
    static:
      access_key_id_env: CLI_SPEC_ID
      secret_access_key_env: CLI_SPEC_SECRET
  role:
    assume_role:
      role_arn: arn:aws:iam::123456789012:role/countersign-cli-spec
      source: source
      sts_endpoint: ${stsUrl}
endpoints:
  - host: "bucket.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: role
`,
  );
});

afterAll(async () => {
  await new Promise<void>((resolve) => sts.close(() => resolve()));
});

describe("the countersign executable", () => {
  it("--version prints the package version on stdout and exits 0", async () => {
    expect(await runToExit(["--version"])).toEqual({ code: 0, stdout: `countersign ${VERSION}\n`, stderr: "" });
  });

  it.each(["serve", "validate", "certs"])("%s --help exits 0 with its usage on stdout", async (command) => {
    const r = await runToExit([command, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout.startsWith(`usage: countersign ${command} `)).toBe(true);
  });

  it("an unknown subcommand exits 2", async () => {
    const r = await runToExit(["sign"]);
    expect(r.code).toBe(2);
    expect(r.stderr.startsWith('countersign: unknown command "sign"')).toBe(true);
  });

  it("validate on an unreadable policy exits 1", async () => {
    const r = await runToExit(["validate", join(tempDir("cli"), "absent.yaml")]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("cannot read the policy file");
  });

  it("serve with an unknown flag and a missing policy file: exit 2 with the flag error, not the file's", async () => {
    const missing = join(tempDir("cli"), "absent.yaml");
    const r = await runToExit(["serve", "--policy", missing, "--drain-secs", "3"]);
    expect(r.code).toBe(2);
    expect(r.stderr.startsWith("countersign serve: Unknown option '--drain-secs'")).toBe(true);
    expect(r.stderr).not.toContain("absent.yaml");
  });

  it("serve with a bad --listen and an assume_role policy: exit 2 before any STS call", async () => {
    const before = stsRequests;
    const r = await runToExit(["serve", "--policy", policyFile, "--listen", "127.0.0.1", "--admin-listen", "127.0.0.1:0"], SOURCE_ENV);
    expect(r.code).toBe(2);
    expect(r.stderr.startsWith('countersign serve: --listen "127.0.0.1" is not host:port')).toBe(true);
    expect(stsRequests).toBe(before);
  });

  it("the same policy with good flags does call STS (so the test above can see a call)", async () => {
    const before = stsRequests;
    const proc = spawn(process.execPath, [CLI, "serve", "--policy", policyFile, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-level", "silent"], {
      env: { PATH: process.env.PATH, ...SOURCE_ENV },
      stdio: "ignore",
    });
    try {
      await eventually(() => (stsRequests > before ? true : undefined), "countersign's first AssumeRole call");
    } finally {
      proc.kill("SIGKILL");
    }
  });
});
