import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { runCertsCommand } from "./command.js";

const POLICY = `version: 1
credentials:
  main:
    static: { access_key_id_env: COUNTERSIGN_TEST_KEY_ID, secret_access_key_env: COUNTERSIGN_TEST_SECRET }
endpoints:
  - { host: "*.s3.*.amazonaws.com", credential_signing: sigv4, signing_service: s3, credentials: main }
  - { host: "sts.amazonaws.com", credential_signing: sigv4, signing_service: sts, credentials: main }
`;

class Capture {
  text = "";
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
}

let dir: string;
let policyPath: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "countersign-certs-"));
  policyPath = join(dir, "policy.yaml");
  writeFileSync(policyPath, POLICY);
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = new Capture();
  const err = new Capture();
  const code = await runCertsCommand(args, out, err);
  return { code, out: out.text, err: err.text };
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

describe("countersign certs", () => {
  it("creates a CA and a leaf for the policy's hosts, keys mode 0600, and says what it wrote", async () => {
    const outDir = join(dir, "tls");
    const result = await run(["--policy", policyPath, "--out", outDir]);
    expect(result.err).toBe("");
    expect(result.code).toBe(0);
    expect(mode(join(outDir, "ca.key"))).toBe(0o600);
    expect(mode(join(outDir, "tls.key"))).toBe(0o600);
    expect(mode(join(outDir, "ca.crt"))).toBe(0o644);
    expect(mode(join(outDir, "tls.crt"))).toBe(0o644);
    const leaf = new X509Certificate(readFileSync(join(outDir, "tls.crt")));
    expect(leaf.verify(new X509Certificate(readFileSync(join(outDir, "ca.crt"))).publicKey)).toBe(true);
    expect(leaf.checkHost("my-bucket.s3.eu-west-1.amazonaws.com")).toBe("*.s3.eu-west-1.amazonaws.com");
    expect(leaf.checkHost("sqs.us-east-1.amazonaws.com")).toBeUndefined();
    const lines = result.out.trimEnd().split("\n");
    expect(lines[0]).toBe(`wrote ${join(outDir, "ca.crt")} (new CA; give it to the workload, e.g. AWS_CA_BUNDLE / NODE_EXTRA_CA_CERTS)`);
    expect(lines[1]).toBe(`wrote ${join(outDir, "ca.key")} (mode 0600; keep it away from the workload)`);
    expect(lines[2]).toMatch(new RegExp(`^wrote ${join(outDir, "tls.crt")} \\(39 SANs, \\d+ bytes, valid until \\S+\\)$`));
    expect(lines[3]).toBe(`wrote ${join(outDir, "tls.key")} (mode 0600)`);
    expect(lines).toHaveLength(4);
    expect(result.out).not.toContain("PRIVATE KEY");
  });

  it("keeps the CA already in the output directory when run again", async () => {
    await run(["--policy", policyPath, "--out", dir]);
    const caBefore = readFileSync(join(dir, "ca.crt"), "utf8");
    const leafBefore = readFileSync(join(dir, "tls.crt"), "utf8");
    const again = await run(["--policy", policyPath, "--out", dir, "--days", "30"]);
    expect(again.code).toBe(0);
    expect(again.out.split("\n")[0]).toBe(`using the existing CA ${join(dir, "ca.crt")}`);
    expect(readFileSync(join(dir, "ca.crt"), "utf8")).toBe(caBefore);
    const leaf = readFileSync(join(dir, "tls.crt"), "utf8");
    expect(leaf).not.toBe(leafBefore);
    expect(new X509Certificate(leaf).verify(new X509Certificate(caBefore).publicKey)).toBe(true);
  });

  it("uses a given CA and writes no CA files of its own", async () => {
    const caDir = join(dir, "ca");
    await run(["--policy", policyPath, "--out", caDir]);
    const outDir = join(dir, "out");
    const result = await run([
      "--policy", policyPath, "--out", outDir,
      "--ca-cert", join(caDir, "ca.crt"), "--ca-key", join(caDir, "ca.key"),
    ]);
    expect(result.code).toBe(0);
    expect(result.out.split("\n")[0]).toBe(`using the given CA ${join(caDir, "ca.crt")}`);
    expect(existsSync(join(outDir, "ca.crt"))).toBe(false);
    expect(existsSync(join(outDir, "ca.key"))).toBe(false);
    const leaf = new X509Certificate(readFileSync(join(outDir, "tls.crt")));
    expect(leaf.verify(new X509Certificate(readFileSync(join(caDir, "ca.crt"))).publicKey)).toBe(true);
  });

  it("prints only the SANs with --print-sans, one per line, and writes nothing", async () => {
    const result = await run(["--policy", policyPath, "--print-sans"]);
    expect(result.code).toBe(0);
    const lines = result.out.trimEnd().split("\n");
    expect(lines).toHaveLength(39);
    expect(lines).toContain("*.s3.eu-west-1.amazonaws.com");
    expect(lines[lines.length - 1]).toBe("sts.amazonaws.com");
    expect(result.err).toBe("");
    expect(existsSync(join(dir, "tls.crt"))).toBe(false);
  });

  it.each([
    [["--out", "x"], "--policy FILE is required"],
    [["--policy", "p", "--print-sans", "--out", "x"], "--print-sans writes no files; drop --out"],
    [["--policy", "p"], "--out DIR is required"],
    [["--policy", "p", "--out", "x", "--ca-cert", "c"], "--ca-cert and --ca-key go together"],
    [["--policy", "p", "--out", "x", "--days", "0"], "--days must be a whole number from 1 to 3650"],
    [["--policy", "p", "--out", "x", "--days", "1.5"], "--days must be a whole number from 1 to 3650"],
  ])("exits 2 on bad arguments %j", async (args, message) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.err.split("\n")[0]).toBe(`countersign certs: ${message}`);
    expect(result.out).toBe("");
  });

  it("exits 1 with the policy's FILE:LINE:COL errors and writes nothing", async () => {
    writeFileSync(policyPath, POLICY.replace("version: 1", "version: 2"));
    const outDir = join(dir, "never");
    const result = await run(["--policy", policyPath, "--out", outDir]);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(new RegExp(`^${policyPath}:1:\\d+: `));
    expect(existsSync(outDir)).toBe(false);
  });

  it("exits 1 when the given CA key does not match its certificate", async () => {
    const a = join(dir, "a");
    const b = join(dir, "b");
    await run(["--policy", policyPath, "--out", a]);
    await run(["--policy", policyPath, "--out", b]);
    const result = await run(["--policy", policyPath, "--out", join(dir, "out"), "--ca-cert", join(a, "ca.crt"), "--ca-key", join(b, "ca.key")]);
    expect(result.code).toBe(1);
    expect(result.err).toBe(
      `countersign certs: cannot use the CA ${join(a, "ca.crt")} / ${join(b, "ca.key")}: the CA key does not belong to the CA certificate\n`,
    );
  });
});
