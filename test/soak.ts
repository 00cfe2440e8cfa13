/**
 * `make soak`: steady load through the whole path for SOAK_MINUTES (default 10), every payload
 * mode, while an assume_role profile refreshes its credentials about every minute.
 *
 *   load generator (child process) ──CONNECT + TLS──▶ real Envoy (envoy/envoy.yaml)
 *        ──ext_proc──▶ countersign serve (dist/) ──refresh──▶ short-lived STS ──▶ fake STS
 *   Envoy ──dynamic forward proxy, TLS──▶ fake AWS S3 on 127.x.y.z:443 (strict SigV4 verifier)
 *
 * The load generator (test/soak/loadgen.ts) offers SOAK_RATE requests/s (default 1,000; 0 = as
 * fast as the stack answers) with at most SOAK_CONCURRENCY (64) in flight, over keep-alive
 * tunnels, and checks every answer: 200 for what countersign must sign, the expected status and
 * AWS error code for what it must refuse. Here, every request the fake AWS recorded is checked
 * against the plan: verified (signature, payload hash, every chunk and trailer), the expected
 * payload mode, signed with a key STS issued to the role. countersign's error log lines, its
 * request counters and Envoy's ext_proc counters are checked too.
 *
 * Every 10 s: requests/s held, latency, RSS and CPU of countersign, Envoy, the load generator and
 * this process (fake AWS, STS), and the machine's other load. Exits 1 on any error, on fewer
 * credential refreshes than the run's length implies, or when countersign's or Envoy's
 * last-minute RSS median exceeds its first-minute median by more than SOAK_RSS_LIMIT_MIB (20).
 * A rate below the target is reported, not failed: it measures the machine.
 *
 * Knobs: SOAK_MINUTES (10), SOAK_RATE (1000), SOAK_CONCURRENCY (64), SOAK_RSS_LIMIT_MIB (20),
 * SOAK_ENVOY_CONCURRENCY (Envoy worker threads, 1 as in the e2e suite), SOAK_LOG_LEVEL (info),
 * SOAK_MODES (a comma-separated subset of the payload modes in workload.ts; default all).
 */
import "reflect-metadata";
import { spawn, type ChildProcess } from "node:child_process";
import { availableParallelism } from "node:os";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { LatencyHistogram } from "../bench/histogram.js";
import { createCa, createLeaf } from "../src/certs/certificates.js";
import { startLoopbackAws, type LoopbackAws } from "./e2e/loopbackAws.js";
import { startRealEnvoy, type RealEnvoy } from "./e2e/realEnvoy.js";
import { ENVOY_VERSION } from "./support/envoy.js";
import { startFakeAws, type FakeAws, type RecordedRequest } from "./fakeaws/server.js";
import { sumOf } from "./ops/support/metrics.js";
import { tempDir } from "./ops/support/files.js";
import { envFor, type StaticKey } from "./ops/support/policyText.js";
import { PLACEHOLDER_KEY_ID } from "./ops/support/requests.js";
import type { LoadgenConfig, LoadgenMessage, ModeCounts } from "./soak/loadgen.js";
import { coresBetween, counters, median, mib, MIB, read, ROLE_LABELS, ROLES, type Counters, type Reading, type Role } from "./soak/sampler.js";
import { startShortLivedSts, type ShortLivedSts } from "./soak/shortLivedSts.js";
import { BUCKET_HOST, checkRecord, MAX_BUFFERED, modeOfRecord, MODES, type Mode } from "./soak/workload.js";
import { startServe, type ServeProcess } from "./support/startServe.js";

function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return n;
}

if (process.env.SOAK_RPS !== undefined) throw new Error("SOAK_RPS is now SOAK_RATE (requests/s; 0 = as fast as the stack answers)");
const MINUTES = envNumber("SOAK_MINUTES", 10);
const RATE = envNumber("SOAK_RATE", 1000);
const CONCURRENCY = Math.max(1, Math.round(envNumber("SOAK_CONCURRENCY", 64)));
const RSS_LIMIT_MIB = envNumber("SOAK_RSS_LIMIT_MIB", 20);
const ENVOY_CONCURRENCY = Math.max(1, Math.round(envNumber("SOAK_ENVOY_CONCURRENCY", 1)));
const LOG_LEVEL = process.env.SOAK_LOG_LEVEL ?? "info";
const SELECTED: readonly Mode[] = (() => {
  const raw = process.env.SOAK_MODES;
  if (raw === undefined || raw.trim() === "") return MODES;
  const picked = raw.split(",").map((m) => m.trim());
  const unknown = picked.filter((m) => !(MODES as readonly string[]).includes(m));
  if (unknown.length > 0) throw new Error(`SOAK_MODES: unknown mode(s) ${unknown.join(", ")}; the modes are ${MODES.join(", ")}`);
  return MODES.filter((m) => picked.includes(m));
})();
const SAMPLE_EVERY_MS = 10_000;
const SCAN_EVERY_MS = 1_000;
/** A rate held below this share of the target is called out in the summary. */
const RATE_HELD_SHARE = 0.95;
/** STS answers claim this lifetime; with refresh_before_seconds 300 (jitter up to 10% of it) countersign refreshes 45–75 s after each fetch. */
const CREDENTIAL_LIFETIME_S = 375;
const REFRESH_BEFORE_S = 300;
const PROFILE = "soak-role";
const ROLE_SOURCE: StaticKey = { accessKeyId: "AKIASOAKROLESOURCE01", secretAccessKey: "soak/role-source/0000000000000000000001" };
/** Envoy's ext_proc counters that must stay 0 (countersign failed to answer, or answered wrongly). */
const EXT_PROC_TROUBLE = ["streams_failed", "message_timeouts", "failure_mode_allowed", "spurious_msgs_received", "rejected_header_mutations", "clear_route_cache_ignored"];
const EXT_PROC_PREFIX = "http.tls_decap.ext_proc.countersign.";

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

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function zeroCounts(): Record<Mode, ModeCounts> {
  return Object.fromEntries(MODES.map((m) => [m, { ok: 0, errors: 0 }])) as Record<Mode, ModeCounts>;
}

function addCounts(into: Record<Mode, ModeCounts>, from: Record<Mode, ModeCounts>): void {
  for (const m of MODES) {
    into[m].ok += from[m].ok;
    into[m].errors += from[m].errors;
  }
}

function totalOf(c: Record<Mode, ModeCounts>): ModeCounts {
  let ok = 0;
  let errors = 0;
  for (const m of MODES) {
    ok += c[m].ok;
    errors += c[m].errors;
  }
  return { ok, errors };
}

const ms = (micros: number): string => (Number.isNaN(micros) ? "n/a" : `${(micros / 1000).toFixed(1)} ms`);

/** Everything the run collects. */
class Soak {
  readonly total = zeroCounts();
  private window = zeroCounts();
  readonly latency = new LatencyHistogram();
  private windowLatency = new LatencyHistogram();
  skipped = 0;
  private windowSkipped = 0;
  inFlight = 0;
  /** Fake AWS records checked, and verified ones per mode. */
  recordsChecked = 0;
  readonly fakeVerified = new Map<Mode, number>(MODES.map((m) => [m, 0]));
  readonly errors: string[] = [];
  errorCount = 0;
  logErrorLines = 0;
  logLinesSeen = 0;
  readonly signedWithKeys = new Map<string, number>();
  readonly rows: Row[] = [];

  recordError(message: string): void {
    this.errorCount++;
    if (this.errors.length < 25) this.errors.push(message);
  }

  onReport(m: Extract<LoadgenMessage, { type: "report" }>): void {
    addCounts(this.total, m.perMode);
    addCounts(this.window, m.perMode);
    const h = LatencyHistogram.fromJSON(m.latency);
    this.latency.merge(h);
    this.windowLatency.merge(h);
    this.skipped += m.skipped;
    this.windowSkipped += m.skipped;
    this.inFlight = m.inFlight;
    for (const e of m.errorSamples) this.recordError(`load generator: ${e}`);
    // The load generator's own error count (samples are capped).
    const t = totalOf(m.perMode);
    this.errorCount += t.errors - m.errorSamples.length;
  }

  takeWindow(): { counts: Record<Mode, ModeCounts>; latency: LatencyHistogram; skipped: number } {
    const out = { counts: this.window, latency: this.windowLatency, skipped: this.windowSkipped };
    this.window = zeroCounts();
    this.windowLatency = new LatencyHistogram();
    this.windowSkipped = 0;
    return out;
  }

  /** Checks every finished record the fake AWS holds and drops it; pending ones stay. */
  scanRecords(fake: FakeAws, sts: ShortLivedSts, final: boolean): void {
    const records = fake.requests.splice(0);
    const pending: RecordedRequest[] = [];
    const issued = new Set(sts.issued.map((i) => i.accessKeyId));
    for (const rec of records) {
      if (rec.status === 0 && !final) {
        pending.push(rec);
        continue;
      }
      this.recordsChecked++;
      const problem = rec.status === 0 ? `the fake AWS never answered ${rec.method} ${rec.path}` : checkRecord(rec, (k) => issued.has(k));
      if (problem !== undefined) {
        this.recordError(`fake AWS: ${problem}`);
        continue;
      }
      const mode = modeOfRecord(rec) as Mode;
      this.fakeVerified.set(mode, (this.fakeVerified.get(mode) ?? 0) + 1);
      const keyId = rec.accessKeyId ?? "";
      this.signedWithKeys.set(keyId, (this.signedWithKeys.get(keyId) ?? 0) + 1);
    }
    fake.requests.push(...pending);
  }

  /** Reads countersign's output line by line: a line at error level or above, or one that is not JSON, is an error. */
  watchLog(serve: ServeProcess): void {
    for (const stream of [serve.proc.stdout, serve.proc.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream, crlfDelay: Infinity }).on("line", (line) => {
        this.logLinesSeen++;
        if (line.startsWith("{") && !line.includes('"level":"error"') && !line.includes('"level":"fatal"')) return;
        this.logErrorLines++;
        this.recordError(`countersign log: ${line.slice(0, 300)}`);
      });
    }
    // startServe keeps every line too: drop them as they come (the run would otherwise hold them all).
    setInterval(() => serve.lines.splice(0), 1_000).unref();
  }
}

interface Row {
  /** Seconds since the load started. */
  readonly t: number;
  readonly requestsPerSecond: number;
  readonly errors: number;
  readonly skipped: number;
  readonly p50: number;
  readonly p99: number;
  readonly rss: Readonly<Record<Role, number>>;
  readonly cores: Readonly<Record<Role | "other", number>>;
  readonly heapUsedBytes: number;
  readonly envoyAllocatedBytes: number;
  readonly refreshes: number;
}

/** One line per sample: rate and latency over the last 10 s, RSS now, CPU over the last 10 s. */
const SAMPLE_COLUMNS: ReadonlyArray<[string, number]> = [
  ["t s", 5], ["req/s", 6], ["errors", 6], ["p50 ms", 7], ["p99 ms", 7],
  ["RSS MiB: countersign", 21], ["Envoy", 6],
  ["cores: countersign", 19], ["Envoy", 6], ["loadgen", 8], ["fake AWS", 9], ["other", 6], ["refreshes", 10],
];
const SAMPLE_HEADER = SAMPLE_COLUMNS.map(([name, width]) => name.padStart(width)).join(" ");

function sampleLine(row: Row, errorsSoFar: number): string {
  const cells = [
    String(row.t), row.requestsPerSecond.toFixed(0), String(errorsSoFar), (row.p50 / 1000).toFixed(1), (row.p99 / 1000).toFixed(1),
    mib(row.rss.countersign), mib(row.rss.envoy),
    row.cores.countersign.toFixed(2), row.cores.envoy.toFixed(2), row.cores.loadgen.toFixed(2), row.cores.soak.toFixed(2), row.cores.other.toFixed(2), String(row.refreshes),
  ];
  const line = cells.map((c, i) => c.padStart(SAMPLE_COLUMNS[i]?.[1] ?? 0)).join(" ");
  return row.skipped > 0 ? `${line}   (${row.skipped} starts skipped: more than 1 s behind)` : line;
}

async function envoyMemoryAllocated(envoy: RealEnvoy): Promise<number> {
  try {
    const res = await fetch(`${envoy.adminUrl}/stats?filter=^server\\.memory_allocated$&format=json`, { signal: AbortSignal.timeout(5_000) });
    const body = (await res.json()) as { stats?: Array<{ name?: string; value?: number }> };
    return body.stats?.find((s) => s.name === "server.memory_allocated")?.value ?? Number.NaN;
  } catch {
    return Number.NaN;
  }
}

function startLoadgen(cfg: LoadgenConfig): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "soak", "loadgen.ts")], {
    env: { ...process.env, SOAK_LOADGEN: JSON.stringify(cfg) },
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
}

async function main(): Promise<number> {
  const durationMs = MINUTES * 60_000;
  console.log(
    `soak: ${MINUTES} min through real Envoy ${ENVOY_VERSION} (CONNECT + TLS, ${ENVOY_CONCURRENCY} worker thread${ENVOY_CONCURRENCY === 1 ? "" : "s"}); ` +
      `${RATE > 0 ? `${RATE} requests/s offered` : "as fast as the stack answers"}, at most ${CONCURRENCY} in flight; ${SELECTED.length} payload modes in turn; ` +
      `credentials refreshed about every minute; RSS growth limit ${RSS_LIMIT_MIB} MiB; ${availableParallelism()} cores`,
  );
  const dir = tempDir("soak");
  const soak = new Soak();
  let stsFake: FakeAws | undefined;
  let aws: LoopbackAws | undefined;
  let sts: ShortLivedSts | undefined;
  let serve: ServeProcess | undefined;
  let envoy: RealEnvoy | undefined;
  let loadgen: ChildProcess | undefined;
  try {
    // STS behind a loopback gateway (countersign calls it directly); S3 behind Envoy, on 443.
    stsFake = await startFakeAws({ accounts: [ROLE_SOURCE] });
    aws = await startLoopbackAws(dir, { accounts: [], discardBodies: true });
    sts = await startShortLivedSts({ fake: stsFake, source: ROLE_SOURCE, lifetimeSeconds: CREDENTIAL_LIFETIME_S, alsoTrust: [aws.fake] });
    const policyFile = join(dir, "policy.yaml");
    writeFileSync(policyFile, policy(sts.url));
    serve = await startServe({ policyFile, args: ["--log-level", LOG_LEVEL], env: envFor("SOAK_SRC", ROLE_SOURCE) });
    soak.watchLog(serve);
    const readyBy = Date.now() + 20_000;
    while ((await fetch(`${serve.adminUrl}/readyz`).then((r) => r.status, () => 0)) !== 200) {
      if (Date.now() > readyBy) throw new Error(`countersign not ready within 20 s:\n${serve.lines.join("\n")}`);
      await sleep(100);
    }
    const ca = await createCa({ commonName: "countersign soak CA" });
    const leaf = await createLeaf({ ca, hosts: [`*.s3.eu-west-1.amazonaws.com`] });
    const caFile = join(dir, "countersign-ca.crt");
    writeFileSync(caFile, ca.certPem);
    envoy = await startRealEnvoy({
      dir,
      extProcAddress: serve.grpcAddress,
      certPem: leaf.certPem,
      keyPem: leaf.keyPem,
      dnsPort: aws.dns.port,
      upstreamCaFile: aws.caFile,
      concurrency: ENVOY_CONCURRENCY,
    });
    const first = await counters(serve.adminUrl, PROFILE);
    console.log(
      `countersign pid ${serve.proc.pid} (grpc ${serve.grpcAddress}); Envoy pid ${envoy.pid} (proxy ${`http://127.0.0.1:${envoy.connectPort}`}); fake AWS ${aws.fake.url}; ` +
        `initial credential fetch: ${first.refreshSuccesses} success, ${first.refreshFailures} failure`,
    );

    loadgen = startLoadgen({ proxyUrl: `http://127.0.0.1:${envoy.connectPort}`, caFile, modes: SELECTED, rate: RATE, concurrency: CONCURRENCY, durationMs, reportEveryMs: 1_000 });
    const lg = loadgen;
    const exitedEarly = new Promise<never>((_, reject) => lg.once("exit", (code, signal) => reject(new Error(`the load generator exited (${String(code ?? signal)}) before the run ended`))));
    let onDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      onDone = resolve;
    });
    let onReady: () => void = () => undefined;
    const ready = new Promise<void>((resolve) => {
      onReady = resolve;
    });
    lg.on("message", (m: LoadgenMessage) => {
      if (m.type === "ready") {
        console.log(`load generator pid ${String(lg.pid)}: ${m.planned} requests planned (${m.bodyMiB.toFixed(1)} MiB of bodies), sent in turn`);
        onReady();
      } else if (m.type === "report") soak.onReport(m);
      else onDone();
    });
    await Promise.race([ready, exitedEarly]);

    const pids: Record<Role, number> = { countersign: serve.proc.pid as number, envoy: envoy.pid, loadgen: lg.pid as number, soak: process.pid };
    const idle = read(pids, performance.now());
    console.log(`idle RSS: countersign ${mib(idle.processes.countersign.rssBytes)} MiB, Envoy ${mib(idle.processes.envoy.rssBytes)} MiB`);
    console.log(`\n${SAMPLE_HEADER}`);
    lg.send({ cmd: "go" });
    const start = performance.now();
    let last = read(pids, start);
    let lastCounters = first;

    const { fake } = aws;
    const stsRef = sts;
    const serveRef = serve;
    const envoyRef = envoy;
    const scanner = setInterval(() => soak.scanRecords(fake, stsRef, false), SCAN_EVERY_MS);
    const sample = async (): Promise<void> => {
      const now = read(pids, performance.now());
      const cores = coresBetween(last, now);
      const w = soak.takeWindow();
      const seconds = (now.at - last.at) / 1000;
      last = now;
      lastCounters = await counters(serveRef.adminUrl, PROFILE);
      const t = totalOf(w.counts);
      const rss = {} as Record<Role, number>;
      for (const role of ROLES) rss[role] = now.processes[role].rssBytes;
      const row: Row = {
        t: Math.round((now.at - start) / 1000),
        requestsPerSecond: (t.ok + t.errors) / seconds,
        errors: t.errors,
        skipped: w.skipped,
        p50: w.latency.quantile(0.5),
        p99: w.latency.quantile(0.99),
        rss,
        cores,
        heapUsedBytes: lastCounters.heapUsedBytes,
        envoyAllocatedBytes: await envoyMemoryAllocated(envoyRef),
        refreshes: lastCounters.refreshSuccesses - first.refreshSuccesses,
      };
      soak.rows.push(row);
      console.log(sampleLine(row, soak.errorCount));
    };
    const sampler = setInterval(() => void sample().catch((err: unknown) => soak.recordError(`sampling failed: ${String(err)}`)), SAMPLE_EVERY_MS);
    await Promise.race([done, exitedEarly]);
    const elapsedS = (performance.now() - start) / 1000;
    clearInterval(sampler);
    clearInterval(scanner);
    await sample();
    soak.scanRecords(fake, stsRef, true);
    const stats = await envoyRef.stats();
    const end = read(pids, performance.now());
    const whole = coresBetween({ ...idle, at: start, processes: idle.processes }, end);
    lg.disconnect();
    const exitCode = await serveRef.stop("SIGTERM");
    if (exitCode !== 0) soak.recordError(`countersign exited ${String(exitCode)} after SIGTERM`);
    return summary({ soak, elapsedS, idle, first, last: lastCounters, sts: stsRef, stats, whole });
  } finally {
    if (loadgen && loadgen.exitCode === null) loadgen.kill("SIGKILL");
    await envoy?.stop();
    await serve?.stop("SIGTERM");
    await sts?.close();
    await aws?.close();
    await stsFake?.close();
  }
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? "").length))) ?? [];
  return rows.map((row) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  "));
}

function summary(r: {
  soak: Soak;
  elapsedS: number;
  idle: Reading;
  first: Counters;
  last: Counters;
  sts: ShortLivedSts;
  stats: Record<string, number>;
  whole: Record<Role | "other", number>;
}): number {
  const { soak } = r;
  const failures: string[] = [];
  console.log(`\nsoak summary: ${(r.elapsedS / 60).toFixed(1)} min through real Envoy ${ENVOY_VERSION}, ${RATE > 0 ? `${RATE} req/s offered` : "unpaced"}, at most ${CONCURRENCY} in flight`);
  const rows: string[][] = [["mode", "ok", "errors", "req/s", "fake AWS verified"]];
  for (const m of SELECTED) {
    const c = soak.total[m];
    const verified = soak.fakeVerified.get(m) ?? 0;
    rows.push([m, String(c.ok), String(c.errors), ((c.ok + c.errors) / r.elapsedS).toFixed(1), m === "refused" ? "-" : String(verified)]);
    if (m !== "refused" && soak.errorCount === 0 && verified !== c.ok) failures.push(`${m}: the fake AWS verified ${verified}, the load generator saw ${c.ok} answered 200`);
  }
  const t = totalOf(soak.total);
  rows.push(["total", String(t.ok), String(t.errors), ((t.ok + t.errors) / r.elapsedS).toFixed(1), String([...soak.fakeVerified.values()].reduce((a, b) => a + b, 0))]);
  for (const line of table(rows)) console.log(line);

  const rates = soak.rows.filter((row) => row.t > 0).map((row) => row.requestsPerSecond);
  const held = (t.ok + t.errors) / r.elapsedS;
  const rateLine = `rate: ${held.toFixed(1)} req/s held${RATE > 0 ? ` of ${RATE} offered (${((held / RATE) * 100).toFixed(1)}%)` : ""}; per 10 s: min ${Math.min(...rates).toFixed(0)}, median ${median(rates).toFixed(0)}, max ${Math.max(...rates).toFixed(0)}; ${soak.skipped} starts skipped (more than 1 s behind)`;
  console.log(rateLine);
  console.log(`latency (load generator, every request): p50 ${ms(soak.latency.quantile(0.5))}, p99 ${ms(soak.latency.quantile(0.99))}, p99.9 ${ms(soak.latency.quantile(0.999))}, max ${ms(soak.latency.maxMicros)}`);
  if (RATE > 0 && held < RATE * RATE_HELD_SHARE) {
    console.log(`NOTE: the offered rate was not held. CPU over the run (cores of ${availableParallelism()}) is below: where it went says what limits the rate.`);
  }

  const signed = sumOf(r.last.samples, "countersign_requests_total", { decision: "signed" });
  const refused = sumOf(r.last.samples, "countersign_requests_total", { decision: "refused" });
  const cancelled = sumOf(r.last.samples, "countersign_requests_total", { decision: "cancelled" });
  const refusedOk = soak.total.refused.ok + soak.total.refused.errors;
  const signedSent = t.ok + t.errors - refusedOk;
  console.log(`countersign counted ${signed} signed, ${refused} refused, ${cancelled} cancelled (load generator: ${signedSent} to sign, ${refusedOk} to refuse)`);
  if (soak.errorCount === 0 && (signed !== signedSent || refused !== refusedOk || cancelled !== 0)) failures.push(`countersign's request counters (${signed} signed, ${refused} refused, ${cancelled} cancelled) differ from what was sent`);

  const s = r.stats;
  const trouble = EXT_PROC_TROUBLE.map((n) => [n, s[EXT_PROC_PREFIX + n] ?? 0] as const).filter(([, v]) => v > 0);
  console.log(
    `Envoy: ${s["http.connect_in.downstream_cx_upgrades_total"] ?? 0} CONNECT tunnels, ${s["listener.envoy_internal_tls_decap.ssl.handshake"] ?? 0} TLS handshakes terminated, ` +
      `${s["http.tls_decap.downstream_rq_total"] ?? 0} requests, ${s[`${EXT_PROC_PREFIX}streams_started`] ?? 0} ext_proc streams, ` +
      `${s["cluster.aws_upstream.upstream_rq_total"] ?? 0} requests to AWS over ${s["cluster.aws_upstream.upstream_cx_total"] ?? 0} connections; ` +
      `ext_proc trouble counters: ${trouble.length === 0 ? "all 0" : trouble.map(([n, v]) => `${n} ${v}`).join(", ")}`,
  );
  if (trouble.length > 0) {
    failures.push(`Envoy ext_proc: ${trouble.map(([n, v]) => `${n} ${v}`).join(", ")}`);
    // What Envoy saw on its gRPC connections to countersign, and what countersign counted.
    const cluster = Object.entries(s).filter(([n, v]) => v > 0 && /^cluster\.countersign\.(upstream_rq_(timeout|pending_overflow|rx_reset|tx_reset|per_try_timeout|pending_failure_eject)|upstream_cx_(destroy\w*|connect_fail|connect_timeout|protocol_error|overflow|total|rx_bytes_total|tx_bytes_total)|http2\.\w+|upstream_rq_total)$/.test(n));
    console.log(`  Envoy → countersign: ${cluster.map(([n, v]) => `${n.slice("cluster.countersign.".length)} ${v}`).join(", ")}`);
    const grpcErrors = r.last.samples.filter((x) => (x.name === "countersign_grpc_errors_total" || x.name === "countersign_extproc_streams_total") && x.value > 0);
    console.log(`  countersign gRPC errors: ${grpcErrors.map((x) => `${x.labels.code ?? "?"} ${x.value}`).join(", ") || "none"}`);
  }

  const refreshes = r.last.refreshSuccesses - r.first.refreshSuccesses;
  // A refresh comes 45–75 s after the previous fetch: at least one per 75 s of run.
  const minRefreshes = Math.floor(r.elapsedS / 75);
  console.log(
    `credential refreshes: ${refreshes} successful (${r.last.refreshFailures - r.first.refreshFailures} failed) after the initial fetch, at least ${minRefreshes} expected; ` +
      `STS issued ${r.sts.issued.length} keys; ${soak.signedWithKeys.size} distinct keys signed verified requests`,
  );
  if (r.last.refreshFailures > r.first.refreshFailures) failures.push(`${r.last.refreshFailures - r.first.refreshFailures} failed credential refreshes`);
  if (r.sts.failures.length > 0) failures.push(`STS proxy: ${r.sts.failures.join(" | ")}`);
  if (refreshes < minRefreshes) failures.push(`${refreshes} credential refreshes, expected at least ${minRefreshes}`);

  // Memory: a minute of samples at each end, medians compared.
  const loaded = soak.rows.filter((row) => row.t > 0);
  const endT = loaded.at(-1)?.t ?? 0;
  const firstMinute = loaded.filter((row) => row.t <= 60);
  const lastMinute = loaded.filter((row) => row.t >= endT - 60);
  const memRows: string[][] = [["RSS, MiB", "idle", "1st-min median", "last-min median", "end", "max", "growth", "limit"]];
  for (const role of ["countersign", "envoy"] as const) {
    const firstMed = median(firstMinute.map((row) => row.rss[role]));
    const lastMed = median(lastMinute.map((row) => row.rss[role]));
    const growth = lastMed - firstMed;
    const max = Math.max(...loaded.map((row) => row.rss[role]));
    memRows.push([ROLE_LABELS[role], mib(r.idle.processes[role].rssBytes), mib(firstMed), mib(lastMed), mib(loaded.at(-1)?.rss[role] ?? Number.NaN), mib(max), mib(growth), String(RSS_LIMIT_MIB)]);
    if (!(growth <= RSS_LIMIT_MIB * MIB)) failures.push(`${ROLE_LABELS[role]} RSS grew ${mib(growth)} MiB between the first and the last minute (limit ${RSS_LIMIT_MIB} MiB)`);
  }
  for (const line of table(memRows)) console.log(line);
  console.log(
    `countersign heap used: 1st-min median ${mib(median(firstMinute.map((row) => row.heapUsedBytes)))} MiB, last-min median ${mib(median(lastMinute.map((row) => row.heapUsedBytes)))} MiB; ` +
      `Envoy allocated (tcmalloc): ${mib(median(firstMinute.map((row) => row.envoyAllocatedBytes)))} → ${mib(median(lastMinute.map((row) => row.envoyAllocatedBytes)))} MiB`,
  );
  // Per minute: medians of the 10 s samples, so a trend in RSS shows beside the load that went with it.
  const minuteRows: string[][] = [["minute", "req/s", "RSS countersign", "RSS Envoy", "cores countersign", "Envoy", "loadgen", "fake AWS", "other"]];
  // The last sample comes a moment after the run's end: it belongs to the last minute.
  const minutes = Math.max(1, Math.ceil(MINUTES));
  const minuteOf = (row: Row): number => Math.min(minutes, Math.max(1, Math.ceil(row.t / 60)));
  for (let m = 1; m <= minutes; m++) {
    const rowsOf = loaded.filter((row) => minuteOf(row) === m);
    if (rowsOf.length === 0) continue;
    const med = (f: (row: Row) => number): number => median(rowsOf.map(f));
    minuteRows.push([
      String(m), med((row) => row.requestsPerSecond).toFixed(0), mib(med((row) => row.rss.countersign)), mib(med((row) => row.rss.envoy)),
      med((row) => row.cores.countersign).toFixed(2), med((row) => row.cores.envoy).toFixed(2), med((row) => row.cores.loadgen).toFixed(2), med((row) => row.cores.soak).toFixed(2), med((row) => row.cores.other).toFixed(2),
    ]);
  }
  console.log("per minute (medians of the 10 s samples; RSS in MiB, CPU in cores):");
  for (const line of table(minuteRows)) console.log(`  ${line}`);
  const w = r.whole;
  console.log(
    `CPU over the run, cores (of ${availableParallelism()}): ${ROLES.map((role) => `${ROLE_LABELS[role]} ${w[role].toFixed(2)}`).join(", ")}, other processes ${w.other.toFixed(2)}; ` +
      `per 1,000 req/s: countersign ${((w.countersign / held) * 1000).toFixed(2)}, Envoy ${((w.envoy / held) * 1000).toFixed(2)}`,
  );
  console.log(`countersign log: ${soak.logLinesSeen} lines, ${soak.logErrorLines} at error level or above; fake AWS records checked: ${soak.recordsChecked}`);

  if (soak.errorCount > 0) failures.unshift(`${soak.errorCount} errors`);
  if (t.ok === 0) failures.push("no request succeeded");
  for (const m of soak.errors) console.log(`  error: ${m}`);
  if (failures.length > 0) {
    console.log(`\nSOAK FAILED: ${failures.join("; ")}`);
    return 1;
  }
  console.log(`\nSOAK PASSED: ${t.ok} requests, 0 errors, ${held.toFixed(0)} req/s held, refreshes as expected, RSS flat (growth within ${RSS_LIMIT_MIB} MiB) for countersign and Envoy`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
