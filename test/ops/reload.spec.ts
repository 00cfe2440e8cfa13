/**
 * Policy hot reload of a running `countersign serve`: a valid change is applied (and counted and
 * hashed), an invalid one is refused with FILE:LINE:COL while the old policy keeps serving, a file
 * caught mid-write is never applied, a Kubernetes ConfigMap `..data` swap is noticed, SIGHUP
 * reloads at once, and every request is decided by exactly one policy, even while it swaps.
 */
import { closeSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { startFakeAws, type FakeAws } from "../fakeaws/server.js";
import { exchange, type ExchangeResult } from "../support/extProcClient.js";
import { sleep, startServe, type ServeProcess, type LogRecord } from "../support/startServe.js";
import { ConfigMapVolume, replaceAtomically, tempDir } from "./support/files.js";
import { holdAfterHeaders } from "./support/heldStream.js";
import { scrape, samplesOf, valueOf } from "./support/metrics.js";
import { envFor, policyText } from "./support/policyText.js";
import { connectOwnChannel, forwardToFake, headerOf, s3Put, s3PutBuffered, sha256Hex, signedKeyId } from "./support/requests.js";

const KEY_A = { accessKeyId: "AKIAOPSRELOADA000001", secretAccessKey: "ops/reload/secret/a/0000000000000000001" };
const KEY_B = { accessKeyId: "AKIAOPSRELOADB000002", secretAccessKey: "ops/reload/secret/b/0000000000000000002" };
const ENV = { ...envFor("OPS_RA", KEY_A), ...envFor("OPS_RB", KEY_B) };

const ONE = "one.s3.eu-west-1.amazonaws.com";
const TWO = "two.s3.eu-west-1.amazonaws.com";

/** Only ONE, signed with key A. */
const P_ONE = policyText({ main: "OPS_RA" }, [[ONE, "main"]]);
/** ONE and TWO, signed with key A. */
const P_ONE_TWO = policyText({ main: "OPS_RA" }, [[ONE, "main"], [TWO, "main"]]);
/**
 * Only TWO, with the same profile name "main" now reading key B: a request matched by this policy
 * but signed with the previous policy's "main" would carry key A for TWO, which the tests catch.
 */
const P_TWO_B = policyText({ main: "OPS_RB" }, [[TWO, "main"]]);

const hash16 = (text: string): string => sha256Hex(text).slice(0, 16);

let fake: FakeAws;
const running: ServeProcess[] = [];
const clients: ExternalProcessorClient[] = [];

beforeAll(async () => {
  fake = await startFakeAws({ accounts: [KEY_A, KEY_B] });
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(running.splice(0).map((cs) => cs.stop()));
});

afterAll(async () => {
  await fake?.close();
});

async function serveFrom(policyFile: string): Promise<{ cs: ServeProcess; client: ExternalProcessorClient }> {
  const cs = await startServe({ shutdownGraceSeconds: 2, policyFile, env: ENV });
  running.push(cs);
  const client = connectOwnChannel(cs.grpcAddress);
  clients.push(client);
  return { cs, client };
}

async function serveText(text: string): Promise<{ cs: ServeProcess; client: ExternalProcessorClient; file: string }> {
  const file = join(tempDir("reload"), "policy.yaml");
  writeFileSync(file, text);
  return { ...(await serveFrom(file)), file };
}

/** "A" or "B" (which real key signed it), or the refusal status. */
function outcome(r: ExchangeResult): string | number {
  if (r.kind === "refused") return r.status;
  const id = signedKeyId(r);
  return id === KEY_A.accessKeyId ? "A" : id === KEY_B.accessKeyId ? "B" : `unknown key ${id}`;
}

async function put(client: ExternalProcessorClient, host: string, key = "k.txt"): Promise<ExchangeResult> {
  return exchange(client, s3Put(host, key, Buffer.from(`body of ${key}`)));
}

const reloaded = (text: string) => (r: LogRecord) => r.msg === "policy reloaded" && r.sha256 === hash16(text);
const refusedReload = (r: LogRecord): boolean => typeof r.msg === "string" && r.msg.startsWith("policy reload refused");

describe("countersign serve reloads its policy file", () => {
  it("applies a valid new policy: a previously refused host now signs, policy_info shows the new hash, reloads_total{result=success} goes 1 → 2", async () => {
    const { cs, client, file } = await serveText(P_ONE);
    expect(outcome(await put(client, TWO))).toBe(403);
    const before = await scrape(cs.adminUrl);
    expect(valueOf(before, "countersign_policy_reloads_total", { result: "success" })).toBe(1);

    writeFileSync(file, P_ONE_TWO);
    const line = await cs.waitForRecord(reloaded(P_ONE_TWO));
    expect(line).toMatchObject({ level: "info", trigger: "file change", endpoints: 2 });

    const r = await put(client, TWO, "after-reload.txt");
    expect(outcome(r)).toBe("A");
    if (r.kind === "forwarded") expect(await forwardToFake(fake.port, r.request)).toBe(200);
    expect(fake.requests.at(-1)).toMatchObject({ verified: true, accessKeyId: KEY_A.accessKeyId, operation: "PutObject" });

    const after = await scrape(cs.adminUrl);
    expect(samplesOf(after, "countersign_policy_info")).toEqual([{ name: "countersign_policy_info", labels: { sha256: hash16(P_ONE_TWO) }, value: 1 }]);
    expect(valueOf(after, "countersign_policy_reloads_total", { result: "success" })).toBe(2);
    expect(valueOf(after, "countersign_policy_reloads_total", { result: "invalid" })).toBe(0);
  });

  it("refuses an invalid policy: the old one keeps serving, the error names FILE:LINE:COL, reloads_total{result=invalid} is 1", async () => {
    const { cs, client, file } = await serveText(P_ONE_TWO);
    const invalid = P_ONE_TWO.replace("credential_signing: sigv4", "credential_signing: sigv5");
    const lines = invalid.split("\n");
    const lineNo = lines.findIndex((l) => l.includes("sigv5")) + 1;
    const col = (lines[lineNo - 1] as string).indexOf("sigv5") + 1;

    writeFileSync(file, invalid);
    const refused = await cs.waitForRecord(refusedReload);
    expect(refused).toMatchObject({ level: "error", trigger: "file change", keptSha256: hash16(P_ONE_TWO) });
    expect(refused.errors).toEqual([`${file}:${lineNo}:${col}: unknown credential_signing "sigv5" (expected sigv4, sigv4:body, sigv4:no_body or sigv4a)`]);

    expect([outcome(await put(client, ONE)), outcome(await put(client, TWO))]).toEqual(["A", "A"]);
    const m = await scrape(cs.adminUrl);
    expect(valueOf(m, "countersign_policy_reloads_total", { result: "invalid" })).toBe(1);
    expect(valueOf(m, "countersign_policy_reloads_total", { result: "success" })).toBe(1);
    expect(samplesOf(m, "countersign_policy_info").map((s) => s.labels.sha256)).toEqual([hash16(P_ONE_TWO)]);
  });

  it("never applies a file caught half-written (cut mid-line); the completed file is applied", async () => {
    const { cs, client, file } = await serveText(P_ONE);
    const cut = P_ONE_TWO.indexOf("credential_signing", P_ONE_TWO.indexOf(TWO)) + "credential_sig".length;
    const fd = openSync(file, "w");
    writeSync(fd, P_ONE_TWO.slice(0, cut));
    await sleep(100); // well under the watcher's 300 ms settle time
    writeSync(fd, P_ONE_TWO.slice(cut));
    closeSync(fd);

    await cs.waitForRecord(reloaded(P_ONE_TWO));
    expect(outcome(await put(client, TWO))).toBe("A");
    // The intermediate is not a valid policy. The watcher waits for the content to settle, so it
    // should not even be tried; if it was, it must have been refused with the old policy kept.
    for (const r of cs.logRecords().filter(refusedReload)) expect(r.keptSha256).toBe(hash16(P_ONE));
    const applied = cs.logRecords().filter((r) => r.msg === "policy reloaded" || r.msg === "policy loaded").map((r) => r.sha256);
    expect(applied).toEqual([hash16(P_ONE), hash16(P_ONE_TWO)]);
  });

  it("never applies the first part of a two-part write even when that part is a valid policy by itself", async () => {
    // The first part is a complete, valid policy (TWO only) that differs from both the old policy
    // and the final one (TWO then ONE): applying it would briefly refuse ONE.
    const { cs, client, file } = await serveText(P_ONE);
    const final = policyText({ main: "OPS_RA" }, [[TWO, "main"], [ONE, "main"]]);
    const firstPart = policyText({ main: "OPS_RA" }, [[TWO, "main"]]);
    expect(final.startsWith(firstPart)).toBe(true);
    const fd = openSync(file, "w");
    writeSync(fd, firstPart);
    await sleep(50);
    writeSync(fd, final.slice(firstPart.length));
    closeSync(fd);

    await cs.waitForRecord(reloaded(final));
    expect([outcome(await put(client, ONE)), outcome(await put(client, TWO))]).toEqual(["A", "A"]);
    const applied = cs.logRecords().filter((r) => r.msg === "policy reloaded").map((r) => r.sha256);
    expect(applied).toEqual([hash16(final)]);
    expect(valueOf(await scrape(cs.adminUrl), "countersign_policy_reloads_total", { result: "success" })).toBe(2);
  });

  it("follows a Kubernetes ConfigMap volume: ..data swapped by rename to a new version directory, twice", async () => {
    const volume = new ConfigMapVolume(tempDir("configmap"), "policy.yaml");
    volume.init(P_ONE);
    const { cs, client } = await serveFrom(volume.path);
    expect(outcome(await put(client, TWO))).toBe(403);

    volume.update(P_ONE_TWO);
    await cs.waitForRecord(reloaded(P_ONE_TWO));
    expect(outcome(await put(client, TWO))).toBe("A");

    volume.update(P_TWO_B);
    await cs.waitForRecord(reloaded(P_TWO_B));
    expect([outcome(await put(client, ONE)), outcome(await put(client, TWO))]).toEqual([403, "B"]);
    expect(cs.logRecords().filter(refusedReload)).toEqual([]);
  });

  it("reloads on SIGHUP at once, without waiting for the file watcher", async () => {
    const { cs, client, file } = await serveText(P_ONE);
    writeFileSync(file, P_ONE_TWO);
    cs.signal("SIGHUP");
    const line = await cs.waitForRecord(reloaded(P_ONE_TWO));
    expect(line.trigger).toBe("SIGHUP");
    expect(outcome(await put(client, TWO))).toBe("A");
    // Unchanged file: SIGHUP is a no-op (no second reload, no refusal), and the process lives on.
    cs.signal("SIGHUP");
    await sleep(500);
    expect(cs.logRecords().filter((r) => r.msg === "policy reloaded")).toHaveLength(1);
    expect(cs.proc.exitCode).toBeNull();
    expect(valueOf(await scrape(cs.adminUrl), "countersign_policy_reloads_total", { result: "success" })).toBe(2);
  });
});

describe("a request is decided by exactly one policy", () => {
  it("while requests flow continuously through a reload that swaps the allowed host and the key, each is consistent with the old or the new policy, and the swap is one-way", async () => {
    const { cs, file } = await serveText(P_ONE);
    interface Sent {
      host: string;
      start: number;
      end: number;
      result: ExchangeResult;
    }
    const records: Sent[] = [];
    let seq = 0;
    let stopAt = Number.POSITIVE_INFINITY;
    const loop = async (worker: number): Promise<void> => {
      const client = connectOwnChannel(cs.grpcAddress);
      clients.push(client);
      for (let i = 0; Date.now() < stopAt; i++) {
        const host = (i + worker) % 2 === 0 ? ONE : TWO;
        const start = seq++;
        const result = await exchange(client, s3Put(host, `w${worker}-${i}.txt`, Buffer.from(`${worker}/${i}`)));
        records.push({ host, start, end: seq++, result });
      }
    };
    const loops = [0, 1, 2, 3].map(loop);
    await sleep(300);
    replaceAtomically(file, P_TWO_B);
    await cs.waitForRecord(reloaded(P_TWO_B));
    stopAt = Date.now() + 300;
    await Promise.all(loops);

    // Which policy decided each request, from what it got: ONE signed with A or TWO refused → old;
    // TWO signed with B or ONE refused → new. Anything else (e.g. TWO signed with A) is a mix.
    const verdict = (r: Sent): "old" | "new" | string => {
      const o = outcome(r.result);
      if ((r.host === ONE && o === "A") || (r.host === TWO && o === 403)) return "old";
      if ((r.host === TWO && o === "B") || (r.host === ONE && o === 403)) return "new";
      return `mixed: ${r.host} → ${String(o)}`;
    };
    const verdicts = records.map(verdict);
    expect(verdicts.filter((v) => v !== "old" && v !== "new")).toEqual([]);
    expect(verdicts.filter((v) => v === "old").length).toBeGreaterThan(4);
    expect(verdicts.filter((v) => v === "new").length).toBeGreaterThan(4);

    // One-way: once any request has come back decided by the new policy, every request started
    // later is decided by the new policy too.
    const firstNewEnd = Math.min(...records.filter((r) => verdict(r) === "new").map((r) => r.end));
    expect(records.filter((r) => r.start > firstNewEnd && verdict(r) === "old")).toEqual([]);

    // The fake AWS agrees with the key each side signed with.
    const lastOld = records.filter((r) => verdict(r) === "old" && r.result.kind === "forwarded").at(-1);
    const firstNew = records.filter((r) => verdict(r) === "new" && r.result.kind === "forwarded")[0];
    for (const [r, key] of [[lastOld, KEY_A], [firstNew, KEY_B]] as const) {
      if (r?.result.kind !== "forwarded") throw new Error("expected a signed request on each side of the reload");
      expect(await forwardToFake(fake.port, r.result.request)).toBe(200);
      expect(fake.requests.at(-1)).toMatchObject({ verified: true, accessKeyId: key.accessKeyId });
    }
  });

  it("a buffered request whose headers arrived before a reload is signed, body and all, by the policy it started with", async () => {
    const { cs, client, file } = await serveText(P_ONE);
    const body = Buffer.from("held across the reload");
    const req = s3PutBuffered(ONE, "held.txt", body);
    const held = await holdAfterHeaders(client, req);

    replaceAtomically(file, P_TWO_B);
    await cs.waitForRecord(reloaded(P_TWO_B));
    expect(outcome(await put(client, ONE))).toBe(403); // the new policy is in force for new requests

    const done = await held.sendBody();
    expect(done.kind).toBe("forwarded");
    if (done.kind !== "forwarded") return;
    expect(headerOf(done.headers, "authorization")).toContain(`Credential=${KEY_A.accessKeyId}/`);
    expect(headerOf(done.headers, "x-amz-content-sha256")).toBe(sha256Hex(body));
    expect(await forwardToFake(fake.port, { method: "PUT", authority: ONE, path: "/held.txt", headers: done.headers, body })).toBe(200);
    expect(fake.requests.at(-1)).toMatchObject({ verified: true, accessKeyId: KEY_A.accessKeyId, operation: "PutObject" });
  });
});
