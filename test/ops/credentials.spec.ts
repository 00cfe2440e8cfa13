/**
 * Credential profiles end to end through `countersign serve`: endpoints bound to different
 * profiles are signed with different real keys (each verified by the fake AWS with its own key), a
 * `file:` profile follows its file when it is replaced on disk, and an `assume_role` profile signs
 * with the temporary credentials STS issued to it, session token included.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { startFakeAws, type FakeAws } from "../fakeaws/server.js";
import { exchange, type ExchangeResult } from "../support/extProcClient.js";
import { eventually, startCountersign, type Countersign } from "./support/countersign.js";
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
let cs: Countersign;
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
  cs = await startCountersign({
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
      5_000,
      100,
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
    expect(gateway.calls).toEqual([{ action: "AssumeRole", verified: true, accessKeyId: ROLE_SOURCE.accessKeyId, upstreamStatus: 200 }]);
    expect(fake.sts.calls.AssumeRole).toBe(1);
    const issued = fake.sts.issued[0];
    if (!issued) throw new Error("the fake STS issued nothing");
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
