/**
 * Graceful shutdown of `countersign serve --drain-seconds 1 --shutdown-grace-seconds 3`: on SIGTERM
 * /readyz fails at once while /healthz stays up, new streams are still served during the drain, a
 * stream in flight completes, and the process exits 0; a stream that never completes is cut at
 * the end of the grace period, and the process still exits 0.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { startFakeAws, type FakeAws } from "../fakeaws/server.js";
import { exchange } from "../support/extProcClient.js";
import { eventually } from "../support/eventually.js";
import { sleep, startServe, type ServeProcess } from "../support/startServe.js";
import { tempDir } from "./support/files.js";
import { holdAfterHeaders } from "./support/heldStream.js";
import { scrape, valueOf } from "./support/metrics.js";
import { envFor, policyText } from "./support/policyText.js";
import { connectOwnChannel, forwardToFake, headerOf, s3Put, s3PutBuffered, signedKeyId } from "./support/requests.js";

const KEY = { accessKeyId: "AKIAOPSSHUTDOWN00001", secretAccessKey: "ops/shutdown/secret/000000000000000001" };
const HOST = "drain.s3.eu-west-1.amazonaws.com";
const DRAIN_MS = 1_000;
const GRACE_MS = 3_000;

let fake: FakeAws;
let policyFile: string;
const running: ServeProcess[] = [];
const clients: ExternalProcessorClient[] = [];

beforeAll(async () => {
  fake = await startFakeAws({ accounts: [KEY] });
  policyFile = join(tempDir("shutdown"), "policy.yaml");
  writeFileSync(policyFile, policyText({ main: "OPS_SD" }, [[HOST, "main"]]));
});

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await Promise.all(running.splice(0).map((cs) => cs.stop("SIGKILL")));
});

afterAll(async () => {
  await fake?.close();
});

async function start(): Promise<ServeProcess> {
  const cs = await startServe({
    shutdownGraceSeconds: 2,
    policyFile,
    env: envFor("OPS_SD", KEY),
    args: ["--drain-seconds", String(DRAIN_MS / 1000), "--shutdown-grace-seconds", String(GRACE_MS / 1000)],
  });
  running.push(cs);
  return cs;
}

function client(cs: ServeProcess): ExternalProcessorClient {
  const c = connectOwnChannel(cs.grpcAddress);
  clients.push(c);
  return c;
}

async function status(url: string): Promise<{ code: number; body: string }> {
  const res = await fetch(url);
  return { code: res.status, body: await res.text() };
}

describe("countersign serve shuts down gracefully on SIGTERM", () => {
  it("fails /readyz at once, keeps /healthz, serves new streams while draining, completes the stream in flight, then exits 0", async () => {
    const cs = await start();
    const first = client(cs);
    const body = Buffer.from("a body that arrives after SIGTERM");
    const held = await holdAfterHeaders(first, s3PutBuffered(HOST, "in-flight.txt", body));
    expect((await status(`${cs.adminUrl}/readyz`)).code).toBe(200);

    const t0 = Date.now();
    cs.signal("SIGTERM");
    const notReady = await eventually(async () => {
      const r = await status(`${cs.adminUrl}/readyz`);
      return r.code === 503 ? r : undefined;
    }, "/readyz to fail", { timeoutMs: 1_000, everyMs: 10 });
    expect(Date.now() - t0).toBeLessThan(500);
    expect(notReady.body).toContain("- shutting down");
    expect((await status(`${cs.adminUrl}/healthz`)).code).toBe(200);
    expect(valueOf(await scrape(cs.adminUrl), "countersign_ready")).toBe(0);

    // During the drain: a new stream on the existing connection and one on a new connection.
    const onExisting = await exchange(first, s3Put(HOST, "during-drain-1.txt", Buffer.from("one")));
    const onNew = await exchange(client(cs), s3Put(HOST, "during-drain-2.txt", Buffer.from("two")));
    expect(Date.now() - t0).toBeLessThan(DRAIN_MS);
    expect([signedKeyId(onExisting), signedKeyId(onNew)]).toEqual([KEY.accessKeyId, KEY.accessKeyId]);
    for (const r of [onExisting, onNew]) if (r.kind === "forwarded") expect(await forwardToFake(fake.port, r.request)).toBe(200);

    // After the drain, inside the grace period: the held stream sends its body and is signed.
    await sleep(DRAIN_MS + 300 - (Date.now() - t0));
    expect(cs.proc.exitCode).toBeNull();
    expect(held.closedEarly()).toBeUndefined();
    const done = await held.sendBody();
    const bodyDoneAt = Date.now();
    expect(done.kind).toBe("forwarded");
    if (done.kind !== "forwarded") return;
    expect(headerOf(done.headers, "authorization")).toContain(`Credential=${KEY.accessKeyId}/`);
    expect(await forwardToFake(fake.port, { method: "PUT", authority: HOST, path: "/in-flight.txt", headers: done.headers, body })).toBe(200);
    expect(fake.requests.slice(-3).map((r) => [r.verified, r.accessKeyId])).toEqual([
      [true, KEY.accessKeyId],
      [true, KEY.accessKeyId],
      [true, KEY.accessKeyId],
    ]);

    // With nothing left in flight the process exits without waiting out the grace period.
    const { code, signal } = await cs.exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(Date.now() - bodyDoneAt).toBeLessThan(1_500);
    expect(Date.now() - t0).toBeLessThan(DRAIN_MS + GRACE_MS);
    const messages = cs.logRecords().map((r) => r.msg);
    expect(messages).toEqual(expect.arrayContaining(["shutdown requested", "stopped"]));
    expect(messages.filter((m) => m === "signed")).toHaveLength(3);
  });

  it("cuts a stream that never completes at the end of the grace period, forwards nothing for it, and still exits 0", async () => {
    const cs = await start();
    const held = await holdAfterHeaders(client(cs), s3PutBuffered(HOST, "never.txt", Buffer.from("never sent")));
    const t0 = Date.now();
    cs.signal("SIGTERM");
    const { code } = await cs.exited;
    const elapsed = Date.now() - t0;
    expect(code).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(DRAIN_MS + GRACE_MS - 200);
    expect(elapsed).toBeLessThan(DRAIN_MS + GRACE_MS + 2_000);
    await eventually(() => held.closedEarly(), "the held stream to be closed by the server", { timeoutMs: 2_000 });
    expect(cs.logRecords().filter((r) => r.msg === "signed" || r.msg === "refused")).toEqual([]);
  });
});
