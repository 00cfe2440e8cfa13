/**
 * `make soak`: steady load on `countersign serve` for SOAK_MINUTES (default 10) with every payload
 * mode, while an assume_role profile refreshes its credentials about every minute.
 *
 *   fake AWS (strict SigV4 verifier) ◀── short-lived STS proxy ◀── countersign's refresher
 *   soak workers ──ext_proc gRPC──▶ countersign serve (dist/) ──answers──▶ forwarded to the fake AWS
 *
 * Every signed answer is forwarded to the fake AWS as Envoy's router would send it and must verify
 * there (signature, payload hash or every chunk and trailer) with the temporary key STS issued;
 * every refusal must carry its expected status and AWS error code. Anything else is an error.
 * Samples countersign's RSS (/proc) and heap (/metrics) every 10 s.
 *
 * Exits 1 on any error, on fewer credential refreshes than the run's length implies, or when the
 * last-minute RSS median exceeds the first-minute median by more than SOAK_RSS_LIMIT_MIB (20 MiB).
 *
 * Knobs: SOAK_MINUTES (10), SOAK_CONCURRENCY (8 requests in flight), SOAK_RPS (60 requests/s in
 * total; 0 = as fast as the 8 workers go), SOAK_RSS_LIMIT_MIB (20).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { startFakeAws, type FakeAws, type RecordedRequest } from "./fakeaws/server.js";
import { startCountersign, type Countersign, parseLogLine } from "./ops/support/countersign.js";
import { tempDir } from "./ops/support/files.js";
import { envFor, type StaticKey } from "./ops/support/policyText.js";
import { connectOwnChannel, forwardToFake, PLACEHOLDER_KEY_ID } from "./ops/support/requests.js";
import { exchangeAnyMode, type Outcome } from "./soak/exchange.js";
import { counters, median, mib, MIB, rssBytes, type MemorySample } from "./soak/sampler.js";
import { startShortLivedSts, type ShortLivedSts } from "./soak/shortLivedSts.js";
import { BUCKET_HOST, MAX_BUFFERED, MODES, plan, type Mode, type Planned } from "./soak/workload.js";

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return n;
}

const MINUTES = envNumber("SOAK_MINUTES", 10);
const CONCURRENCY = Math.max(1, Math.round(envNumber("SOAK_CONCURRENCY", 8)));
const RPS = envNumber("SOAK_RPS", 60);
const RSS_LIMIT_MIB = envNumber("SOAK_RSS_LIMIT_MIB", 20);
const SAMPLE_EVERY_MS = 10_000;
/** STS answers claim this lifetime; with refresh_before_seconds 300 (jitter up to 10% of it) countersign refreshes 45–75 s after each fetch. */
const CREDENTIAL_LIFETIME_S = 375;
const REFRESH_BEFORE_S = 300;
const PROFILE = "soak-role";
const ROLE_SOURCE: StaticKey = { accessKeyId: "AKIASOAKROLESOURCE01", secretAccessKey: "soak/role-source/0000000000000000000001" };

function policy(stsUrl: string): string {
  return `version: 1
credentials:
  role-source:
    static:
      access_key_id_env: SOAK_SRC_ID
      secret_access_key_env: SOAK_SRC_SECRET
  ${PROFILE}:
    assume_role:
      role_arn: arn:aws:iam::123456789012:role/countersign-soak
      session_name: countersign-soak
      source: role-source
      sts_endpoint: ${stsUrl}
      duration_seconds: 900
      refresh_before_seconds: ${REFRESH_BEFORE_S}
limits:
  max_buffered_body_bytes: ${MAX_BUFFERED}
endpoints:
  - host: "${BUCKET_HOST}"
    credential_signing: sigv4
    signing_service: s3
    credentials: ${PROFILE}
    client_access_key_ids: [${PLACEHOLDER_KEY_ID}]
`;
}

interface Tally {
  ok: number;
  errors: number;
}

const tally = new Map<Mode, Tally>(MODES.map((m) => [m, { ok: 0, errors: 0 }]));
const errorMessages: string[] = [];
const signedWithKeys = new Map<string, number>();
let logErrorLines = 0;
let logLinesSeen = 0;

function recordError(mode: Mode | "countersign", message: string): void {
  if (mode !== "countersign") (tally.get(mode) as Tally).errors++;
  if (errorMessages.length < 25) errorMessages.push(`[${mode}] ${message}`);
}

/** The newest fake record of this method + path (the worker's own: it has one request in flight). */
function recordOf(fake: FakeAws, method: string, rawPath: string): RecordedRequest | undefined {
  const path = rawPath.split("?")[0];
  for (let i = fake.requests.length - 1; i >= 0; i--) {
    const r = fake.requests[i] as RecordedRequest;
    if (r.method === method && r.path === path && r.host === BUCKET_HOST) return r;
  }
  return undefined;
}

/** Undefined when the outcome is what the plan expects, else why not. */
async function check(fake: FakeAws, sts: ShortLivedSts, p: Planned, outcome: Outcome): Promise<string | undefined> {
  const want = p.expect;
  if (want.kind === "refused") {
    if (outcome.kind !== "refused") return `expected a ${want.status} refusal (${want.why}), but countersign signed it`;
    if (outcome.status !== want.status) return `${want.why}: refused with ${outcome.status}, expected ${want.status}: ${outcome.body.slice(0, 200)}`;
    if (!outcome.body.includes(`<Code>${want.code}</Code>`)) return `${want.why}: expected <Code>${want.code}</Code> in ${outcome.body.slice(0, 200)}`;
    return undefined;
  }
  if (outcome.kind === "refused") return `refused ${outcome.status}: ${outcome.body.slice(0, 300)}`;
  if (outcome.bodyMode !== want.bodyMode) return `body mode ${outcome.bodyMode}, expected ${want.bodyMode}`;
  if (outcome.request.body.length !== p.request.body.length) return `forwarded ${outcome.request.body.length} body bytes of ${p.request.body.length}`;
  const status = await forwardToFake(fake.port, outcome.request);
  const rec = recordOf(fake, outcome.request.method, outcome.request.path);
  if (!rec) return `the fake AWS has no record of ${outcome.request.method} ${outcome.request.path}`;
  const problems: string[] = [];
  if (status !== want.status || rec.status !== want.status) problems.push(`status ${status} (expected ${want.status}) ${rec.errorCode ?? ""} ${rec.errorMessage ?? ""}`);
  if (!rec.verified) problems.push(`not verified (${rec.failure ?? "?"}: ${rec.errorCode ?? ""})`);
  if (rec.payloadMode !== want.payloadMode) problems.push(`payload mode ${rec.payloadMode}, expected ${want.payloadMode}`);
  if (want.chunks !== undefined && rec.chunksVerified !== want.chunks) problems.push(`${rec.chunksVerified} chunks verified of ${want.chunks}`);
  if (want.trailer !== undefined && rec.trailerVerified !== want.trailer) problems.push(`trailer verified ${rec.trailerVerified}, expected ${want.trailer}`);
  const keyId = rec.accessKeyId ?? "";
  if (!sts.issued.some((i) => i.accessKeyId === keyId)) problems.push(`signed with ${keyId.slice(0, 8)}…, not a key STS issued`);
  signedWithKeys.set(keyId, (signedWithKeys.get(keyId) ?? 0) + 1);
  return problems.length === 0 ? undefined : problems.join("; ");
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function main(): Promise<number> {
  const durationMs = MINUTES * 60_000;
  console.log(`soak: ${MINUTES} min, ${CONCURRENCY} in flight, ${RPS > 0 ? `${RPS} requests/s` : "unpaced"}; RSS growth limit ${RSS_LIMIT_MIB} MiB`);
  const fake = await startFakeAws({ accounts: [ROLE_SOURCE] });
  const sts = await startShortLivedSts({ fake, source: ROLE_SOURCE, lifetimeSeconds: CREDENTIAL_LIFETIME_S });
  const dir = tempDir("soak");
  const policyFile = join(dir, "policy.yaml");
  writeFileSync(policyFile, policy(sts.url));
  let cs: Countersign | undefined;
  try {
    cs = await startCountersign({ policyFile, env: envFor("SOAK_SRC", ROLE_SOURCE), args: ["--log-level", "info"] });
    const server = cs;
    const client = connectOwnChannel(server.grpcAddress);
    const first = await counters(server.adminUrl, PROFILE);
    console.log(`countersign pid ${server.pid}; initial credential fetch: ${first.refreshSuccesses} success, ${first.refreshFailures} failure`);

    const memory: MemorySample[] = [];
    const start = Date.now();
    const deadline = start + durationMs;
    let lastCounters = first;
    const sample = async (): Promise<void> => {
      const t = Math.round((Date.now() - start) / 1000);
      const rss = rssBytes(server.pid);
      lastCounters = await counters(server.adminUrl, PROFILE);
      memory.push({ t, rssBytes: rss, heapUsedBytes: lastCounters.heapUsedBytes });
      // Scan the log for error-level lines, then drop what was read (the soak would otherwise hold it all).
      const lines = server.lines.splice(0);
      logLinesSeen += lines.length;
      for (const line of lines) {
        const level = parseLogLine(line)?.["level"];
        if (level === "error" || level === "fatal") {
          logErrorLines++;
          recordError("countersign", `log: ${line.slice(0, 300)}`);
        }
      }
      // Keep the fake's record list short (lookups happen right after each forward).
      if (fake.requests.length > 2_000) fake.requests.splice(0, fake.requests.length - 500);
      const done = [...tally.values()].reduce((a, v) => a + v.ok + v.errors, 0);
      const errors = [...tally.values()].reduce((a, v) => a + v.errors, 0) + logErrorLines;
      console.log(
        `t=${String(t).padStart(4)} s  rss ${mib(rss)} MiB  heap ${mib(lastCounters.heapUsedBytes)} MiB  requests ${done}  errors ${errors}  refreshes ${lastCounters.refreshSuccesses - first.refreshSuccesses}`,
      );
    };
    await sample();
    const sampler = setInterval(() => void sample().catch((err: unknown) => recordError("countersign", `sampling failed: ${String(err)}`)), SAMPLE_EVERY_MS);

    let nextSlot = Date.now();
    const pace = async (): Promise<void> => {
      if (RPS <= 0) return;
      const slot = Math.max(nextSlot, Date.now());
      nextSlot = slot + 1000 / RPS;
      const wait = slot - Date.now();
      if (wait > 0) await sleep(wait);
    };
    const worker = async (w: number): Promise<void> => {
      for (let n = 0; ; n++) {
        await pace();
        if (Date.now() >= deadline) return;
        const mode = MODES[(n + w) % MODES.length] as Mode;
        const p = plan(mode, w, Math.floor(n / MODES.length));
        let problem: string | undefined;
        try {
          problem = await check(fake, sts, p, await exchangeAnyMode(client, p.request));
        } catch (err) {
          problem = `exception: ${err instanceof Error ? err.message : String(err)}`;
        }
        if (problem === undefined) (tally.get(mode) as Tally).ok++;
        else recordError(mode, problem);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, w) => worker(w)));
    const elapsedS = (Date.now() - start) / 1000;
    clearInterval(sampler);
    await sample();
    client.close();
    const exitCode = await server.stop("SIGTERM");
    if (exitCode !== 0) recordError("countersign", `exited ${String(exitCode)} after SIGTERM`);
    return summary({ elapsedS, memory, first, last: lastCounters, sts });
  } finally {
    if (cs) await cs.stop("SIGTERM");
    await sts.close();
    await fake.close();
  }
}

function summary(r: {
  elapsedS: number;
  memory: MemorySample[];
  first: Awaited<ReturnType<typeof counters>>;
  last: Awaited<ReturnType<typeof counters>>;
  sts: ShortLivedSts;
}): number {
  const rows: string[][] = [["mode", "ok", "errors", "per s"]];
  let ok = 0;
  let errors = 0;
  for (const [mode, t] of tally) {
    rows.push([mode, String(t.ok), String(t.errors), ((t.ok + t.errors) / r.elapsedS).toFixed(1)]);
    ok += t.ok;
    errors += t.errors;
  }
  rows.push(["total", String(ok), String(errors), ((ok + errors) / r.elapsedS).toFixed(1)]);
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  const line = (row: string[]): string => row.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
  console.log(`\nsoak summary (${(r.elapsedS / 60).toFixed(1)} min, ${CONCURRENCY} in flight)`);
  console.log(line(rows[0] as string[]));
  for (const row of rows.slice(1)) console.log(line(row));

  const refreshes = r.last.refreshSuccesses - r.first.refreshSuccesses;
  // A refresh comes 45–75 s after the previous fetch: at least one per 75 s of run.
  const minRefreshes = Math.floor(r.elapsedS / 75);
  const end = r.memory.at(-1)?.t ?? 0;
  const loaded = r.memory.filter((m) => m.t > 0);
  const firstMinute = loaded.filter((m) => m.t <= 60);
  const lastMinute = loaded.filter((m) => m.t >= end - 60);
  const rssFirst = median(firstMinute.map((m) => m.rssBytes));
  const rssLast = median(lastMinute.map((m) => m.rssBytes));
  const growth = rssLast - rssFirst;
  const heapFirst = median(firstMinute.map((m) => m.heapUsedBytes));
  const heapLast = median(lastMinute.map((m) => m.heapUsedBytes));
  const rssPeak = Math.max(...r.memory.map((m) => m.rssBytes));
  console.log("");
  console.log(`credential refreshes: ${refreshes} successful (${r.last.refreshFailures} failed) after the initial fetch; STS issued ${r.sts.issued.length} keys; ${signedWithKeys.size} distinct keys signed verified requests; expected at least ${minRefreshes}`);
  console.log(`RSS: idle ${mib(r.memory[0]?.rssBytes ?? Number.NaN)} MiB; first-minute median ${mib(rssFirst)} MiB (${firstMinute.length} samples); last-minute median ${mib(rssLast)} MiB (${lastMinute.length} samples); growth ${mib(growth)} MiB (${((growth / rssFirst) * 100).toFixed(1)}%); peak ${mib(rssPeak)} MiB; limit ${RSS_LIMIT_MIB} MiB`);
  console.log(`heap used: first-minute median ${mib(heapFirst)} MiB, last-minute median ${mib(heapLast)} MiB`);
  console.log(`countersign log: ${logLinesSeen} lines, ${logErrorLines} at error level or above`);

  const failures: string[] = [];
  if (errors + logErrorLines > 0 || errorMessages.length > 0) failures.push(`${errors} request errors, ${logErrorLines} error log lines`);
  if (r.last.refreshFailures > r.first.refreshFailures) failures.push(`${r.last.refreshFailures - r.first.refreshFailures} failed credential refreshes`);
  if (r.sts.failures.length > 0) failures.push(`STS proxy: ${r.sts.failures.join(" | ")}`);
  if (refreshes < minRefreshes) failures.push(`${refreshes} credential refreshes, expected at least ${minRefreshes}`);
  if (ok === 0) failures.push("no request succeeded");
  if (!(growth <= RSS_LIMIT_MIB * MIB)) failures.push(`RSS grew ${mib(growth)} MiB (limit ${RSS_LIMIT_MIB} MiB)`);
  for (const m of errorMessages) console.log(`  error: ${m}`);
  if (failures.length > 0) {
    console.log(`\nSOAK FAILED: ${failures.join("; ")}`);
    return 1;
  }
  console.log("\nSOAK PASSED: 0 errors, refreshes as expected, RSS growth within the limit");
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
