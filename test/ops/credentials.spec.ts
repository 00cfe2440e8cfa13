/**
 * Credential profiles end to end through `countersign serve`: endpoints bound to different
 * profiles are signed with different real keys (each verified by the fake AWS with its own key), a
 * `file:` profile follows its file when it is replaced on disk, and an `assume_role` profile signs
 * with the temporary credentials STS issued to it, session token included. A second process
 * starts while STS throttles: not ready, 503 naming the refresh error, then ready and signing
 * once STS answers, with every refresh outcome counted, timed and logged.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { startFakeAws, type FakeAws } from "../fakeaws/server.js";
import { exchange, type ExchangeResult } from "../support/extProcClient.js";
import { eventually } from "../support/eventually.js";
import { startServe, type ServeProcess } from "../support/startServe.js";
import { replaceAtomically, tempDir } from "./support/files.js";
import { scrape, samplesOf, valueOf } from "./support/metrics.js";
import { envFor, s3Endpoint, staticCredentials, type StaticKey } from "./support/policyText.js";
import { connectOwnChannel, forwardToFake, headerOf, s3Put, signedKeyId } from "./support/requests.js";
import { startStsGateway, type StsGateway } from "./support/stsGateway.js";

const TEAM_A: StaticKey = { accessKeyId: "AKIAOPSTEAMA00000001", secretAccessKey: "ops/creds/team-a/00000000000000000001" };
const TEAM_B: StaticKey = { accessKeyId: "AKIAOPSTEAMB00000002", secretAccessKey: "ops/creds/team-b/00000000000000000002" };
const FILE_1: StaticKey = { accessKeyId: "AKIAOPSFILE100000003", secretAccessKey: "ops/creds/file-1/00000000000000000003" };
const FILE_2: StaticKey = { accessKeyId: "AKIAOPSFILE200000004", secretAccessKey: "ops/creds/file-2/00000000000000000004" };
const ROLE_SOURCE: StaticKey = { accessKeyId: "AKIAOPSROLESRC000005", secretAccessKey: "ops/creds/role-src/000000000000000005" };

const HOST = {
  teamA: "team-a.s3.eu-west-1.amazonaws.com",
  teamB: "team-b.s3.eu-west-1.amazonaws.com",
  rotating: "rotating.s3.eu-west-1.amazonaws.com",
  role: "role.s3.eu-west-1.amazonaws.com",
} as const;

function iniFor(key: StaticKey): string {
  return `# written by the ops test\n[default]\naws_access_key_id = AKIAUNUSEDDEFAULT000\naws_secret_access_key = unused\n\n[ops]\naws_access_key_id = ${key.accessKeyId}\naws_secret_access_key = ${key.secretAccessKey}\n`;
}

function policy(credentialsFile: string, stsUrl: string): string {
  return `version: 1
credentials:
${staticCredentials({ "team-a": "OPS_CA", "team-b": "OPS_CB", "role-source": "OPS_CS" })}  rotating:
    file:
      path: ${credentialsFile}
      profile: ops
  role:
    assume_role:
      role_arn: arn:aws:iam::123456789012:role/countersign-ops
      session_name: countersign-ops-test
      source: role-source
      sts_endpoint: ${stsUrl}
endpoints:
${s3Endpoint(HOST.teamA, "team-a")}${s3Endpoint(HOST.teamB, "team-b")}${s3Endpoint(HOST.rotating, "rotating")}${s3Endpoint(HOST.role, "role")}`;
}

let fake: FakeAws;
let gateway: StsGateway;
let cs: ServeProcess;
let client: ExternalProcessorClient;
let credentialsFile: string;
let n = 0;

/** One PutObject to `host` through countersign, then to the fake AWS. */
async function putVia(host: string): Promise<ExchangeResult> {
  const r = await exchange(client, s3Put(host, `obj-${++n}.txt`, Buffer.from(`object ${n}`)));
  if (r.kind === "forwarded") await forwardToFake(fake.port, r.request);
  return r;
}

beforeAll(async () => {
  // The fake knows every real key, both generations of the file's key included.
  fake = await startFakeAws({ accounts: [TEAM_A, TEAM_B, FILE_1, FILE_2, ROLE_SOURCE] });
  gateway = await startStsGateway({ fakePort: fake.port, accounts: [ROLE_SOURCE] });
  const dir = tempDir("credentials");
  credentialsFile = join(dir, "credentials");
  writeFileSync(credentialsFile, iniFor(FILE_1));
  const policyFile = join(dir, "policy.yaml");
  writeFileSync(policyFile, policy(credentialsFile, gateway.url));
  cs = await startServe({
    shutdownGraceSeconds: 2,
    policyFile,
    env: { ...envFor("OPS_CA", TEAM_A), ...envFor("OPS_CB", TEAM_B), ...envFor("OPS_CS", ROLE_SOURCE) },
  });
  client = connectOwnChannel(cs.grpcAddress);
});

afterAll(async () => {
  client?.close();
  await cs?.stop();
  await gateway?.close();
  await fake?.close();
});

describe("credential profiles end to end", () => {
  it("is ready with every profile usable, each labelled with its source", async () => {
    expect((await fetch(`${cs.adminUrl}/readyz`)).status).toBe(200);
    const usable = samplesOf(await scrape(cs.adminUrl), "countersign_credentials_usable").map((s) => [s.labels.profile, s.labels.source, s.value]);
    expect(usable.sort()).toEqual([
      ["role", "assume_role", 1],
      ["role-source", "static", 1],
      ["rotating", "file", 1],
      ["team-a", "static", 1],
      ["team-b", "static", 1],
    ]);
  });

  it("signs each endpoint with its own static profile's key, and the fake AWS verifies each with that key", async () => {
    const a = await putVia(HOST.teamA);
    const recA = fake.requests.at(-1);
    const b = await putVia(HOST.teamB);
    const recB = fake.requests.at(-1);
    expect([signedKeyId(a), signedKeyId(b)]).toEqual([TEAM_A.accessKeyId, TEAM_B.accessKeyId]);
    expect([recA, recB].map((r) => [r?.host, r?.verified, r?.accessKeyId, r?.status])).toEqual([
      [HOST.teamA, true, TEAM_A.accessKeyId, 200],
      [HOST.teamB, true, TEAM_B.accessKeyId, 200],
    ]);
  });

  it("signs a file: profile with the key in its file, and after the file is replaced (temp + rename) with the new key", async () => {
    const before = await putVia(HOST.rotating);
    expect(signedKeyId(before)).toBe(FILE_1.accessKeyId);
    expect(fake.requests.at(-1)).toMatchObject({ verified: true, accessKeyId: FILE_1.accessKeyId });

    replaceAtomically(credentialsFile, iniFor(FILE_2));
    const seen: Array<string | undefined> = [];
    await eventually(
      async () => {
        const r = await putVia(HOST.rotating);
        seen.push(signedKeyId(r));
        return signedKeyId(r) === FILE_2.accessKeyId ? true : undefined;
      },
      "a request signed with the rotated key",
      { timeoutMs: 5_000, everyMs: 100 },
    );
    // Until the switch, the old key; from it on, the new one; never anything else.
    expect(seen.every((k) => k === FILE_1.accessKeyId || k === FILE_2.accessKeyId)).toBe(true);
    expect(fake.requests.at(-1)).toMatchObject({ host: HOST.rotating, verified: true, accessKeyId: FILE_2.accessKeyId, status: 200 });
    const after = await putVia(HOST.rotating);
    expect(signedKeyId(after)).toBe(FILE_2.accessKeyId);

    const m = await scrape(cs.adminUrl);
    expect(valueOf(m, "countersign_credential_refreshes_total", { profile: "rotating", result: "success" })).toBe(2);
    expect(valueOf(m, "countersign_credential_refreshes_total", { profile: "rotating", result: "failure" })).toBeUndefined();
    const refreshed = cs.logRecords().filter((r) => r.profile === "rotating" && r.msg === "credential refresh succeeded");
    expect(refreshed.map((r) => r.keyIdSuffix)).toEqual([FILE_1.accessKeyId.slice(-4), FILE_2.accessKeyId.slice(-4)]);
  });

  it("signs an assume_role profile with the temporary credentials STS issued (session token included), obtained with its static source over a loopback sts_endpoint", async () => {
    // The AssumeRole call: made once at start, signed with the source profile's key.
    expect(fake.sts.calls.AssumeRole).toBe(1);
    const issued = fake.sts.issued[0];
    if (!issued) throw new Error("the fake STS issued nothing");
    expect(gateway.calls).toEqual([{ action: "AssumeRole", verified: true, accessKeyId: ROLE_SOURCE.accessKeyId, issuedKeyId: issued.accessKeyId, upstreamStatus: 200 }]);
    expect(issued.accessKeyId).toMatch(/^ASIA/);
    expect(issued.arn).toBe("arn:aws:sts::123456789012:assumed-role/countersign-ops/countersign-ops-test");

    const r = await putVia(HOST.role);
    expect(signedKeyId(r)).toBe(issued.accessKeyId);
    if (r.kind !== "forwarded") return;
    expect(headerOf(r.request.headers, "x-amz-security-token")).toBe(issued.sessionToken);
    expect(headerOf(r.request.headers, "authorization")).toMatch(/SignedHeaders=[^,]*x-amz-security-token/);
    expect(fake.requests.at(-1)).toMatchObject({ host: HOST.role, verified: true, accessKeyId: issued.accessKeyId, status: 200, operation: "PutObject" });

    const m = await scrape(cs.adminUrl);
    expect(valueOf(m, "countersign_credentials_usable", { profile: "role", source: "assume_role" })).toBe(1);
    const expiresIn = valueOf(m, "countersign_credentials_expiry_seconds", { profile: "role" }) ?? 0;
    expect(expiresIn).toBeGreaterThan(3_000);
    expect(expiresIn).toBeLessThanOrEqual(3_600);
    expect(valueOf(m, "countersign_credential_refreshes_total", { profile: "role", result: "success" })).toBe(1);
    expect(valueOf(m, "countersign_credential_refresh_duration_seconds_count", { profile: "role" })).toBe(1);
  });

  it("never logs a real key id, secret, session token or the credentials file's content", () => {
    const all = cs.lines.join("\n");
    const issued = fake.sts.issued[0];
    const secrets = [TEAM_A, TEAM_B, FILE_1, FILE_2, ROLE_SOURCE].flatMap((k) => [k.accessKeyId, k.secretAccessKey]);
    if (issued) secrets.push(issued.accessKeyId, issued.secretAccessKey, issued.sessionToken ?? "<no token>");
    for (const s of secrets) expect(all).not.toContain(s);
    expect(all).not.toContain(readFileSync(credentialsFile, "utf8").split("\n")[5]);
  });
});

describe("an assume_role profile whose STS throttles at start, through countersign serve", () => {
  const HOST_ROLE = "late-role.s3.eu-west-1.amazonaws.com";
  let fake2: FakeAws;
  let gateway2: StsGateway;
  let cs2: ServeProcess;
  let client2: ExternalProcessorClient;

  beforeAll(async () => {
    fake2 = await startFakeAws({ accounts: [ROLE_SOURCE] });
    fake2.sts.failAll("throttle-503");
    gateway2 = await startStsGateway({ fakePort: fake2.port, accounts: [ROLE_SOURCE] });
    const dir = tempDir("credentials-throttled");
    const policyFile = join(dir, "policy.yaml");
    writeFileSync(
      policyFile,
      `version: 1\ncredentials:\n${staticCredentials({ "role-source": "OPS_CS" })}  late:\n    assume_role:\n      role_arn: arn:aws:iam::123456789012:role/countersign-late\n      source: role-source\n      sts_endpoint: ${gateway2.url}\nendpoints:\n${s3Endpoint(HOST_ROLE, "late")}`,
    );
    cs2 = await startServe({ shutdownGraceSeconds: 2, policyFile, env: envFor("OPS_CS", ROLE_SOURCE) });
    client2 = connectOwnChannel(cs2.grpcAddress);
  });

  afterAll(async () => {
    client2?.close();
    await cs2?.stop();
    await gateway2?.close();
    await fake2?.close();
  });

  it("is not ready and refuses with 503 naming STS's error while STS throttles, then signs once STS answers", async () => {
    await eventually(async () => ((await fetch(`${cs2.adminUrl}/readyz`)).status === 503 ? true : undefined), "/readyz 503");
    const refused = await exchange(client2, s3Put(HOST_ROLE, "while-throttled.txt", Buffer.from("x")));
    expect(refused.kind).toBe("refused");
    if (refused.kind === "refused") {
      expect(refused.status).toBe(503);
      expect(refused.body).toMatch(/no credentials for profile &quot;late&quot; \(assume_role\); last refresh failed: STS Throttling: Rate exceeded \(HTTP 503\)/);
    }
    // Retries with backoff: at least two failed attempts, each counted and logged.
    await eventually(async () => ((valueOf(await scrape(cs2.adminUrl), "countersign_credential_refreshes_total", { profile: "late", result: "failure" }) ?? 0) >= 2 ? true : undefined), "two failed refreshes");
    const throttled = await scrape(cs2.adminUrl);
    expect(valueOf(throttled, "countersign_credentials_usable", { profile: "late", source: "assume_role" })).toBe(0);
    const failedLine = await cs2.waitForRecord((r) => r.profile === "late" && r.msg === "credential refresh failed");
    expect(failedLine).toMatchObject({ source: "assume_role", result: "failure", error: "STS Throttling: Rate exceeded (HTTP 503)" });

    const backAt = Date.now();
    fake2.sts.clearFailures();
    await eventually(async () => ((await fetch(`${cs2.adminUrl}/readyz`)).status === 200 ? true : undefined), "/readyz 200 after STS recovers", { timeoutMs: 20_000, everyMs: 100 });
    const recoveryMs = Date.now() - backAt;
    const calls = gateway2.calls.map((c) => [c.action, c.verified, c.accessKeyId, c.upstreamStatus]);
    expect(calls.at(-1)).toEqual(["AssumeRole", true, ROLE_SOURCE.accessKeyId, 200]);
    expect(calls.slice(0, -1).every(([, , , status]) => status === 503)).toBe(true);
    // The backoff ceiling after n failures is 2^(n-1) s (60 s cap): the recovery waited at most that long.
    expect(recoveryMs).toBeLessThanOrEqual(Math.min(60, 2 ** (calls.length - 2)) * 1000 + 1000);

    const issued = fake2.sts.issued[0];
    if (!issued) throw new Error("the fake STS issued nothing");
    const r = await exchange(client2, s3Put(HOST_ROLE, "after-recovery.txt", Buffer.from("y")));
    expect(signedKeyId(r)).toBe(issued.accessKeyId);
    if (r.kind === "forwarded") expect(await forwardToFake(fake2.port, r.request)).toBe(200);
    expect(fake2.requests.at(-1)).toMatchObject({ host: HOST_ROLE, verified: true, accessKeyId: issued.accessKeyId });

    const m = await scrape(cs2.adminUrl);
    expect(valueOf(m, "countersign_credentials_usable", { profile: "late", source: "assume_role" })).toBe(1);
    expect(valueOf(m, "countersign_credential_refreshes_total", { profile: "late", result: "success" })).toBe(1);
    expect(valueOf(m, "countersign_credential_refreshes_total", { profile: "late", result: "failure" })).toBe(calls.length - 1);
    expect(valueOf(m, "countersign_credential_refresh_duration_seconds_count", { profile: "late" })).toBe(calls.length);
    expect(valueOf(m, "countersign_credentials_expiry_seconds", { profile: "late" })).toBeGreaterThan(3_000);
    const outcomes = cs2.logRecords().filter((l) => l.profile === "late" && typeof l.msg === "string" && l.msg.startsWith("credential refresh"));
    expect(outcomes).toHaveLength(calls.length);
    const all = cs2.lines.join("\n");
    for (const secret of [ROLE_SOURCE.accessKeyId, ROLE_SOURCE.secretAccessKey, issued.accessKeyId, issued.secretAccessKey, issued.sessionToken ?? "<none>"]) {
      expect(all).not.toContain(secret);
    }
  });
});
