/**
 * `countersign serve --workers 2`: a cluster primary owns the admin port and aggregates the
 * workers' metrics; both workers serve ext_proc streams on the shared port; SIGHUP reaches both;
 * a worker that dies is replaced; SIGTERM stops everything with exit 0 and leaves no process behind.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { startFakeAws, type FakeAws } from "../fakeaws/server.js";
import { exchange, type ExchangeResult } from "../support/extProcClient.js";
import { eventually } from "../support/eventually.js";
import { startServe, type ServeProcess, type LogRecord } from "../support/startServe.js";
import { tempDir } from "./support/files.js";
import { samplesOf, scrape, sumOf, valueOf, type Sample } from "./support/metrics.js";
import { envFor, policyText } from "./support/policyText.js";
import { connectOwnChannel, forwardToFake, s3GetUnsigned, s3Put, sha256Hex, signedKeyId } from "./support/requests.js";

const KEY = { accessKeyId: "AKIAOPSWORKERS000001", secretAccessKey: "ops/workers/secret/0000000000000000001" };
const HOST = "workers.s3.eu-west-1.amazonaws.com";
const EXTRA = "extra.s3.eu-west-1.amazonaws.com";
const CONNECTIONS = 6;
const PER_CONNECTION = 4;

let fake: FakeAws;
let cs: ServeProcess;
let policyFile: string;
let workerPids: number[];
/** How long the whole cluster took to exit after SIGTERM (measured by the SIGTERM test). */
let stopElapsedMs = Number.NaN;
const results: ExchangeResult[] = [];

const serving = (r: LogRecord): boolean => r.msg === "countersign serving";
const decisions = (): LogRecord[] => cs.logRecords().filter((r) => r.msg === "signed" || r.msg === "refused");

async function readyz(): Promise<number> {
  return (await fetch(`${cs.adminUrl}/readyz`)).status;
}

/** Pids of live processes whose command line names `needle`. */
function processesNaming(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(needle)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

beforeAll(async () => {
  fake = await startFakeAws({ accounts: [KEY] });
  policyFile = join(tempDir("workers"), "policy.yaml");
  writeFileSync(policyFile, policyText({ main: "OPS_W" }, [[HOST, "main"]]));
  cs = await startServe({ shutdownGraceSeconds: 2, policyFile, env: envFor("OPS_W", KEY), args: ["--workers", "2", "--log-level", "info"] });
  await eventually(() => (cs.logRecords().filter(serving).length >= 2 ? true : undefined), "both workers to serve");
  workerPids = cs.logRecords().filter(serving).map((r) => r.pid as number);
});

afterAll(async () => {
  await cs?.stop("SIGKILL");
  for (const pid of processesNaming(policyFile ?? "\0")) process.kill(pid, "SIGKILL");
  await fake?.close();
});

describe("countersign serve --workers 2", () => {
  it("starts two worker processes beside the primary, and /readyz turns 200 once both report ready", async () => {
    expect(workerPids).toHaveLength(2);
    expect(new Set([...workerPids, cs.pid]).size).toBe(3);
    await eventually(async () => ((await readyz()) === 200 ? true : undefined), "/readyz 200", { timeoutMs: 5_000 });
  });

  it("both workers serve: streams spread over several connections are decided by both pids", async () => {
    const clients: ExternalProcessorClient[] = Array.from({ length: CONNECTIONS }, () => connectOwnChannel(cs.grpcAddress));
    await Promise.all(
      clients.map(async (client, c) => {
        for (let i = 0; i < PER_CONNECTION; i++) {
          // Three signed to one refused, no x-request-id: countersign's own ids carry the worker's pid.
          const req = i === 3 ? s3GetUnsigned("not-in-policy.example.com", "/") : s3Put(HOST, `c${c}-${i}.txt`, Buffer.from(`${c}/${i}`));
          results.push(await exchange(client, req));
        }
      }),
    );
    for (const c of clients) c.close();
    expect(results).toHaveLength(CONNECTIONS * PER_CONNECTION);
    expect(results.filter((r) => signedKeyId(r) === KEY.accessKeyId)).toHaveLength(CONNECTIONS * 3);
    const signed = results.find((r) => r.kind === "forwarded");
    if (signed?.kind === "forwarded") expect(await forwardToFake(fake.port, signed.request)).toBe(200);
    expect(fake.requests.at(-1)).toMatchObject({ verified: true, accessKeyId: KEY.accessKeyId });

    const byPid = new Map<number, number>();
    await eventually(() => (decisions().length === results.length ? true : undefined), "every decision line", { timeoutMs: 5_000 });
    for (const r of decisions()) {
      const m = /^countersign-(\d+)-\d+$/.exec(String(r.requestId));
      expect(m, String(r.requestId)).not.toBeNull();
      const pid = Number(m?.[1]);
      byPid.set(pid, (byPid.get(pid) ?? 0) + 1);
    }
    expect([...byPid.keys()].sort()).toEqual([...workerPids].sort());
  });

  it("the primary's /metrics sums the workers' counters", async () => {
    const m: Sample[] = await scrape(cs.adminUrl);
    expect(valueOf(m, "countersign_requests_total", { decision: "signed", reason: "signed", payload_mode: "client-hash", service: "s3" })).toBe(CONNECTIONS * 3);
    expect(valueOf(m, "countersign_requests_total", { decision: "refused", reason: "no_endpoint", payload_mode: "none", service: "none" })).toBe(CONNECTIONS);
    expect(sumOf(m, "countersign_signing_duration_seconds_count")).toBe(CONNECTIONS * PER_CONNECTION);
    expect(valueOf(m, "countersign_extproc_streams_total")).toBe(CONNECTIONS * PER_CONNECTION);
    expect(valueOf(m, "countersign_policy_reloads_total", { result: "success" })).toBe(2); // one initial load per worker
  });

  it("the primary reports countersign_policy_info{sha256} as 1, not summed over workers", async () => {
    const hash16 = sha256Hex(readFileSync(policyFile)).slice(0, 16);
    expect(valueOf(await scrape(cs.adminUrl), "countersign_policy_info", { sha256: hash16 })).toBe(1);
  });

  it("the primary reports countersign_credentials_usable{profile,source} as 1, not summed over workers", async () => {
    expect(valueOf(await scrape(cs.adminUrl), "countersign_credentials_usable", { profile: "main", source: "static" })).toBe(1);
  });

  it("the primary reports countersign_policy_loaded_timestamp_seconds near now, not the sum of the workers' timestamps", async () => {
    const loadedAt = valueOf(await scrape(cs.adminUrl), "countersign_policy_loaded_timestamp_seconds") ?? 0;
    expect(Math.abs(loadedAt - Date.now() / 1000)).toBeLessThan(120);
  });

  it("the primary's countersign_ready is 1 while its /readyz answers 200", async () => {
    expect(await readyz()).toBe(200);
    const m = await scrape(cs.adminUrl);
    expect(valueOf(m, "countersign_ready")).toBe(1);
    // The primary's own readiness (which counts its workers): one series, not one per worker.
    expect(samplesOf(m, "countersign_ready")).toHaveLength(1);
  });

  it("the primary's admin port answers a method other than GET or HEAD with 405 and Allow: GET, HEAD, as a single process does", async () => {
    for (const path of ["/healthz", "/readyz", "/metrics"]) {
      const res = await fetch(`${cs.adminUrl}${path}`, { method: "POST" });
      expect({ path, status: res.status, allow: res.headers.get("allow"), body: await res.text() }).toEqual({ path, status: 405, allow: "GET, HEAD", body: "" });
    }
    expect(await readyz()).toBe(200);
  });

  it("forwards SIGHUP to every worker: both reload the policy", async () => {
    const next = policyText({ main: "OPS_W" }, [[HOST, "main"], [EXTRA, "main"]]);
    writeFileSync(policyFile, next);
    cs.signal("SIGHUP");
    const reloaded = (): LogRecord[] => cs.logRecords().filter((r) => r.msg === "policy reloaded" && r.sha256 === sha256Hex(next).slice(0, 16));
    await eventually(() => (reloaded().length === 2 ? true : undefined), "both workers to reload", { timeoutMs: 5_000 });
    expect(reloaded().map((r) => r.trigger)).toEqual(["SIGHUP", "SIGHUP"]);
    expect(cs.proc.exitCode).toBeNull();
    const m = await scrape(cs.adminUrl);
    expect(valueOf(m, "countersign_policy_reloads_total", { result: "success" })).toBe(4);
  });

  it("replaces a worker that dies, and is ready again", async () => {
    const victim = workerPids[0] as number;
    process.kill(victim, "SIGKILL");
    const died = await cs.waitForRecord((r) => r.msg === "worker exited unexpectedly; starting a replacement");
    expect(died).toMatchObject({ level: "error", worker: victim, signal: "SIGKILL" });
    await eventually(() => (cs.logRecords().filter(serving).length === 3 ? true : undefined), "a replacement worker", { timeoutMs: 10_000 });
    workerPids = [...workerPids.slice(1), cs.logRecords().filter(serving).at(-1)?.pid as number];
    await eventually(async () => ((await readyz()) === 200 ? true : undefined), "/readyz 200 again", { timeoutMs: 5_000 });
  });

  it("SIGTERM stops the primary and every worker with exit code 0, leaving no process behind", async () => {
    const live = processesNaming(policyFile);
    expect(live.sort()).toEqual([cs.pid, ...workerPids].sort());
    const t0 = Date.now();
    const code = await cs.stop("SIGTERM");
    stopElapsedMs = Date.now() - t0;
    expect(code).toBe(0);
    await eventually(() => (processesNaming(policyFile).length === 0 ? true : undefined), "no countersign process left", { timeoutMs: 3_000 });
    for (const pid of workerPids) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/);
    expect(cs.logRecords().filter((r) => r.msg === "stopped")).toHaveLength(3);
  });

  it("the cluster exits as soon as its workers have stopped, within drain + grace, without SIGKILL", () => {
    expect(stopElapsedMs).toBeLessThan(2_000);
  });
});

describe("--workers with a configuration that cannot start", () => {
  /** Runs `countersign serve --workers 2 …` to completion; its exit code, stderr and how long it took. */
  function runCluster(args: string[], env: NodeJS.ProcessEnv): { code: number | null; stderr: string; ms: number } {
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [join(import.meta.dirname, "..", "..", "dist", "src", "cli.js"), "serve", "--workers", "2", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", ...args], {
      env: { PATH: process.env.PATH, ...env },
      encoding: "utf8",
      timeout: 30_000,
    });
    return { code: r.status, stderr: r.stderr, ms: Date.now() - t0 };
  }

  it("refuses a bad flag before forking any worker (exit 2, the usage error, naming the flag)", () => {
    const policyFile = join(tempDir("workers-bad-flag"), "policy.yaml");
    writeFileSync(policyFile, policyText({ main: "OPS_W" }, [[HOST, "main"]]));
    const r = runCluster(["--policy", policyFile, "--max-streams", "abc"], envFor("OPS_W", KEY));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('countersign serve: --max-streams: "abc" is not a positive whole number');
    expect(r.ms).toBeLessThan(10_000);
  });

  it("stops with exit 1 when workers keep dying before they are ready (an invalid policy), instead of re-forking for ever", () => {
    const policyFile = join(tempDir("workers-bad-policy"), "policy.yaml");
    writeFileSync(policyFile, "version: 1\nendpoints: [ { host: '*' } ]\n");
    const r = runCluster(["--policy", policyFile], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(policyFile);
    expect(r.ms).toBeLessThan(25_000);
  });
});
