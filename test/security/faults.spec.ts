/**
 * Faults around a running (or starting) `countersign serve`: its credentials file vanishing or
 * caught half-written, its policy file corrupted, deleted or emptied during a reload, and its
 * ports already taken at start. Each must end in a clear error or the last good state, with
 * nothing signed with garbage: every request that is signed is verified by the fake AWS.
 * STS faults (down, slow, throttling, expired credentials) are in src/credentials/refresher.spec.ts,
 * src/credentials/assumeRoleFetch.spec.ts and test/ops/credentials.spec.ts.
 */
import { closeSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { startFakeAws, type FakeAws } from "../fakeaws/server.js";
import { exchange, type ExchangeResult } from "../support/extProcClient.js";
import { sleep, startServe, type ServeProcess, type LogRecord } from "../support/startServe.js";
import { replaceAtomically, tempDir } from "../ops/support/files.js";
import { connectOwnChannel, forwardToFake, s3Put, signedKeyId } from "../ops/support/requests.js";
import { metricValue, scrapeMetrics } from "./support/admin.js";
import { canBind, holdPort, runServeToExit } from "./support/startFailing.js";

const FILE_1 = { accessKeyId: "AKIASECFAULTFILE0001", secretAccessKey: "sec/faults/file-1/secret/000000000000001" };
const FILE_2 = { accessKeyId: "AKIASECFAULTFILE0002", secretAccessKey: "sec/faults/file-2/secret/000000000000002" };
const STATIC = { accessKeyId: "AKIASECFAULTSTATIC01", secretAccessKey: "sec/faults/static/secret/0000000000000001" };
const STATIC_ENV = { SEC_F_ID: STATIC.accessKeyId, SEC_F_SECRET: STATIC.secretAccessKey };

const FROM_FILE = "from-file.s3.eu-west-1.amazonaws.com";
const ONE = "one.s3.eu-west-1.amazonaws.com";
const TWO = "two.s3.eu-west-1.amazonaws.com";

function ini(key: { accessKeyId: string; secretAccessKey: string }): string {
  return `[faults]\naws_access_key_id = ${key.accessKeyId}\naws_secret_access_key = ${key.secretAccessKey}\n`;
}

function filePolicy(credentialsFile: string): string {
  return `version: 1
credentials:
  rotating:
    file:
      path: ${credentialsFile}
      profile: faults
endpoints:
  - host: "${FROM_FILE}"
    credential_signing: sigv4
    signing_service: s3
    credentials: rotating
`;
}

function staticPolicy(hosts: readonly string[]): string {
  return `version: 1
credentials:
  main:
    static:
      access_key_id_env: SEC_F_ID
      secret_access_key_env: SEC_F_SECRET
endpoints:
${hosts.map((h) => `  - host: "${h}"\n    credential_signing: sigv4\n    signing_service: s3\n    credentials: main\n`).join("")}`;
}

let fake: FakeAws;
const running: ServeProcess[] = [];
const clients: ExternalProcessorClient[] = [];
let n = 0;

beforeAll(async () => {
  fake = await startFakeAws({ accounts: [FILE_1, FILE_2, STATIC] });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(running.splice(0).map((cs) => cs.stop()));
});

afterAll(async () => {
  await fake?.close();
});

async function start(policy: string, env: NodeJS.ProcessEnv = {}): Promise<{ cs: ServeProcess; client: ExternalProcessorClient; dir: string; policyFile: string }> {
  const dir = tempDir("sec-faults");
  const policyFile = join(dir, "policy.yaml");
  writeFileSync(policyFile, policy);
  const cs = await startServe({ shutdownGraceSeconds: 2, policyFile, env });
  running.push(cs);
  const client = connectOwnChannel(cs.grpcAddress);
  clients.push(client);
  return { cs, client, dir, policyFile };
}

/**
 * One PutObject through countersign; a signed one is sent on to the fake AWS, which must verify it
 * with the key it names (a request signed with a garbage secret fails there). "A"/"B": FILE_1/FILE_2.
 */
async function putVerified(client: ExternalProcessorClient, host: string): Promise<string | number> {
  const r: ExchangeResult = await exchange(client, s3Put(host, `fault-${++n}.txt`, Buffer.from(`object ${n}`)));
  if (r.kind === "refused") return r.status;
  const status = await forwardToFake(fake.port, r.request);
  const rec = fake.requests.at(-1);
  if (status !== 200 || rec?.verified !== true) return `signed but rejected by AWS: ${status} ${rec?.errorCode ?? ""}`;
  const id = signedKeyId(r);
  return id === FILE_1.accessKeyId ? "A" : id === FILE_2.accessKeyId ? "B" : id === STATIC.accessKeyId ? "static" : `unknown key ${id}`;
}

const refreshFailed = (r: LogRecord): boolean => r.msg === "credential refresh failed" && r.profile === "rotating";

describe("the credentials file of a file: profile", () => {
  it("starts and signs from a file without a final newline (as `kubectl create secret --from-literal` writes it), and later takes a rotated one without a newline after it settles", async () => {
    const credentialsFile = join(tempDir("sec-creds"), "credentials");
    writeFileSync(credentialsFile, ini(FILE_1).trimEnd());
    const { cs, client } = await start(filePolicy(credentialsFile));
    expect(cs.proc.exitCode).toBeNull();
    expect(await putVerified(client, FROM_FILE)).toBe("A");
    const tmp = `${credentialsFile}.tmp`;
    writeFileSync(tmp, ini(FILE_2).trimEnd());
    renameSync(tmp, credentialsFile);
    await cs.waitForRecord((r) => r.msg === "credential refresh succeeded" && r.keyIdSuffix === FILE_2.accessKeyId.slice(-4), 15_000);
    expect(await putVerified(client, FROM_FILE)).toBe("B");
  });

  it("vanishes: requests stay signed with the last good key (verified by AWS), the failure is logged and counted, /readyz stays 200; a new file is picked up", async () => {
    const credentialsFile = join(tempDir("sec-creds"), "credentials");
    writeFileSync(credentialsFile, ini(FILE_1));
    const { cs, client } = await start(filePolicy(credentialsFile));
    expect(await putVerified(client, FROM_FILE)).toBe("A");

    rmSync(credentialsFile);
    const failed = await cs.waitForRecord(refreshFailed);
    expect(failed.level).toBe("warn");
    expect(failed.error).toBe(`${credentialsFile}: file not found (ENOENT); keeping the last good credentials`);
    expect([await putVerified(client, FROM_FILE), await putVerified(client, FROM_FILE)]).toEqual(["A", "A"]);
    const m = await scrapeMetrics(cs.adminUrl);
    expect(metricValue(m, "countersign_credential_refreshes_total", { profile: "rotating", result: "failure" })).toBe(1);
    expect(metricValue(m, "countersign_credentials_usable", { profile: "rotating", source: "file" })).toBe(1);
    expect((await fetch(`${cs.adminUrl}/readyz`)).status).toBe(200);

    writeFileSync(credentialsFile, ini(FILE_2));
    await cs.waitForRecord((r) => r.msg === "credential refresh succeeded" && r.keyIdSuffix === FILE_2.accessKeyId.slice(-4));
    expect(await putVerified(client, FROM_FILE)).toBe("B");
  });

  it("caught half-written (the writer stalls after the key id, before the secret): the incomplete profile is refused and the last good key kept; the completed file is used", async () => {
    const credentialsFile = join(tempDir("sec-creds"), "credentials");
    writeFileSync(credentialsFile, ini(FILE_1));
    const { cs, client } = await start(filePolicy(credentialsFile));
    expect(await putVerified(client, FROM_FILE)).toBe("A");

    const full = ini(FILE_2);
    const cut = full.indexOf("aws_secret_access_key");
    const fd = openSync(credentialsFile, "w");
    try {
      writeSync(fd, full.slice(0, cut));
      const failed = await cs.waitForRecord(refreshFailed);
      expect(failed.error).toBe(`${credentialsFile}: profile [faults] has no aws_secret_access_key; keeping the last good credentials`);
      expect(await putVerified(client, FROM_FILE)).toBe("A");
      writeSync(fd, full.slice(cut));
    } finally {
      closeSync(fd);
    }
    await cs.waitForRecord((r) => r.msg === "credential refresh succeeded" && r.keyIdSuffix === FILE_2.accessKeyId.slice(-4));
    expect(await putVerified(client, FROM_FILE)).toBe("B");
    expect(metricValue(await scrapeMetrics(cs.adminUrl), "countersign_credential_refreshes_total", { profile: "rotating", result: "failure" })).toBe(1);
    expect(cs.lines.join("\n")).not.toContain(FILE_2.secretAccessKey);
  });

  it("cut in the middle of the secret and completed 100 ms later: the truncated secret is never used — every signed request verifies at AWS", async () => {
    const credentialsFile = join(tempDir("sec-creds"), "credentials");
    writeFileSync(credentialsFile, ini(FILE_1));
    const { cs, client } = await start(filePolicy(credentialsFile));
    const full = ini(FILE_2);
    const cut = full.indexOf(FILE_2.secretAccessKey) + 10;
    const seen: Array<string | number> = [];
    let writing = true;
    const load = (async () => {
      while (writing) seen.push(await putVerified(client, FROM_FILE));
    })();
    const fd = openSync(credentialsFile, "w");
    writeSync(fd, full.slice(0, cut));
    await sleep(100); // under the 300 ms the file must stay unchanged before it is used (src/files/constants.ts)
    writeSync(fd, full.slice(cut));
    closeSync(fd);
    await cs.waitForRecord((r) => r.msg === "credential refresh succeeded" && r.keyIdSuffix === FILE_2.accessKeyId.slice(-4));
    seen.push(await putVerified(client, FROM_FILE));
    writing = false;
    await load;
    expect(seen.filter((s) => s !== "A" && s !== "B")).toEqual([]);
    expect(seen.at(-1)).toBe("B");
    expect(cs.logRecords().filter(refreshFailed)).toEqual([]);
  });

  // A changed file must read the same twice 300 ms apart; one that does not end in a newline (a
  // writer may have stalled mid-value) must also stay the same for 2 s before it is used.
  it("never installs a secret cut mid-line by a writer that stalls 900 ms", async () => {
    const credentialsFile = join(tempDir("sec-creds"), "credentials");
    writeFileSync(credentialsFile, ini(FILE_1));
    const { cs, client } = await start(filePolicy(credentialsFile));
    const full = ini(FILE_2).trimEnd();
    const cut = full.indexOf(FILE_2.secretAccessKey) + 10;
    const fd = openSync(credentialsFile, "w");
    try {
      writeSync(fd, full.slice(0, cut));
      await sleep(900);
      // Whatever countersign installed by now, it must verify at AWS (or still be FILE_1).
      expect(["A", "B"]).toContain(await putVerified(client, FROM_FILE));
      writeSync(fd, `${full.slice(cut)}\n`);
    } finally {
      closeSync(fd);
    }
    await cs.waitForRecord((r) => r.msg === "credential refresh succeeded" && r.keyIdSuffix === FILE_2.accessKeyId.slice(-4));
  });
});

describe("the policy file corrupted during a reload (beyond test/ops/reload.spec.ts)", () => {
  const refused = (r: LogRecord): boolean => typeof r.msg === "string" && r.msg.startsWith("policy reload refused");

  async function expectOldPolicyServing(cs: ServeProcess, client: ExternalProcessorClient): Promise<void> {
    expect([await putVerified(client, ONE), await putVerified(client, TWO)]).toEqual(["static", 403]);
    expect((await fetch(`${cs.adminUrl}/readyz`)).status).toBe(200);
  }

  it("binary garbage (NUL, invalid UTF-8, random bytes) is refused with an error; the old policy keeps serving", async () => {
    const { cs, client, policyFile } = await start(staticPolicy([ONE]), STATIC_ENV);
    const garbage = Buffer.from([0x00, 0xff, 0xfe, 0x7b, 0x0a, 0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0xc3, 0x28, 0x0a, 0x3a, 0x3a, 0x2d, 0x20, 0x5b]);
    writeFileSync(policyFile, Buffer.concat([garbage, garbage, garbage]));
    const line = await cs.waitForRecord(refused);
    expect(line).toMatchObject({ level: "error", trigger: "file change" });
    expect((line.errors as string[])[0]).toMatch(new RegExp(`^${policyFile.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:\\d+:\\d+: `));
    await expectOldPolicyServing(cs, client);
    expect(metricValue(await scrapeMetrics(cs.adminUrl), "countersign_policy_reloads_total", { result: "invalid" })).toBe(1);
  });

  it("an empty file (truncated by a failed write) is refused; the old policy keeps serving", async () => {
    const { cs, client, policyFile } = await start(staticPolicy([ONE]), STATIC_ENV);
    writeFileSync(policyFile, "");
    const line = await cs.waitForRecord(refused);
    expect(line.errors).toEqual([expect.stringContaining(`${policyFile}:1:1: `)]);
    await expectOldPolicyServing(cs, client);
    expect(metricValue(await scrapeMetrics(cs.adminUrl), "countersign_policy_reloads_total", { result: "invalid" })).toBe(1);
  });

  it("a deleted file is ignored by the watcher, refused as unreadable on SIGHUP (old policy kept), and a new file is loaded", async () => {
    const { cs, client, policyFile } = await start(staticPolicy([ONE]), STATIC_ENV);
    rmSync(policyFile);
    await sleep(800); // the watcher sees the directory change and finds no file: nothing to reload
    expect(cs.logRecords().filter(refused)).toEqual([]);
    await expectOldPolicyServing(cs, client);

    cs.signal("SIGHUP");
    const line = await cs.waitForRecord(refused);
    expect(line).toMatchObject({ trigger: "SIGHUP", errors: [expect.stringMatching(/^.*:1:1: cannot read the policy file: ENOENT/)] });
    expect(metricValue(await scrapeMetrics(cs.adminUrl), "countersign_policy_reloads_total", { result: "unreadable" })).toBe(1);
    await expectOldPolicyServing(cs, client);
    expect(cs.proc.exitCode).toBeNull();

    replaceAtomically(policyFile, staticPolicy([ONE, TWO]));
    await cs.waitForRecord((r) => r.msg === "policy reloaded");
    expect(await putVerified(client, TWO)).toBe("static");
  });
});

describe("ports taken at start", () => {
  it("the admin port taken: exits non-zero naming --admin-listen and the port, and releases the gRPC port it had bound", async () => {
    const taken = await holdPort();
    const grpc = await holdPort();
    await grpc.release();
    try {
      const dir = tempDir("sec-ports");
      const policyFile = join(dir, "policy.yaml");
      writeFileSync(policyFile, staticPolicy([ONE]));
      const { code, output } = await runServeToExit(
        ["--policy", policyFile, "--listen", `127.0.0.1:${grpc.port}`, "--admin-listen", `127.0.0.1:${taken.port}`, "--log-level", "warn"],
        STATIC_ENV,
      );
      expect(code).toBe(1);
      expect(output).toContain(`cannot listen on --admin-listen 127.0.0.1:${taken.port}`);
      expect(output).toContain("EADDRINUSE");
      expect(output).not.toContain(STATIC.secretAccessKey);
      expect(await canBind(grpc.port)).toBe(true);
    } finally {
      await taken.release();
    }
  });

  it("the gRPC port taken: exits non-zero naming --listen and the port, and never binds the admin port", async () => {
    const taken = await holdPort();
    const admin = await holdPort();
    await admin.release();
    try {
      const dir = tempDir("sec-ports");
      const policyFile = join(dir, "policy.yaml");
      writeFileSync(policyFile, staticPolicy([ONE]));
      const { code, output } = await runServeToExit(
        ["--policy", policyFile, "--listen", `127.0.0.1:${taken.port}`, "--admin-listen", `127.0.0.1:${admin.port}`, "--log-level", "warn"],
        STATIC_ENV,
      );
      expect(code).toBe(1);
      expect(output).toContain(`cannot listen on --listen 127.0.0.1:${taken.port}`);
      expect(await canBind(admin.port)).toBe(true);
    } finally {
      await taken.release();
    }
  });

  it("a policy file that does not exist at start: exits non-zero with the path and the reason", async () => {
    const missing = join(tempDir("sec-ports"), "absent.yaml");
    const { code, output } = await runServeToExit(["--policy", missing, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"], STATIC_ENV);
    expect(code).toBe(1);
    expect(output).toContain(`${missing}:1:1: cannot read the policy file`);
  });
});
