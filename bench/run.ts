/**
 * `make bench`: measures countersign against baselines taken in the same run and prints ratios.
 *
 *   node --import tsx bench/run.ts        (after `make build`; the server measured is dist/src/cli.js)
 *
 * Settings (environment, or --name=value on the command line):
 *   BENCH_DURATION=8        measured seconds per load scenario (after BENCH_WARMUP=2 seconds)
 *   BENCH_CONCURRENCY       streams kept busy at once, every scenario (default: per scenario, 64 / 8)
 *   BENCH_CLIENTS=1         load generator processes (each one HTTP/2 connection)
 *   BENCH_ROUNDS=3          interleaved rounds (no-op, countersign, ...) of the headers-only scenarios
 *   BENCH_RATE              request rate of the paired CPU comparison, req/s (default: 1000, or half the
 *                           slowest closed-loop rate of that scenario when that is lower)
 *   BENCH_ONLY              comma-separated subset: scenario names, real, micro, hold, upload, workers, profile, info
 *   BENCH_UPLOAD_MIB=1024   size of the single streamed upload (RSS growth target)
 *   BENCH_HOLD_STREAMS=1000 streams held open at once (RSS target); BENCH_HOLD_ROUNDS=3
 *   BENCH_WINDOW=4          request_body messages in flight per streamed upload
 *   BENCH_HEADLINE_LOG=warn countersign --log-level of the headline rows (the other level is measured too)
 *   BENCH_QUICK=1           a short smoke run (2 s scenarios, 64 MiB upload, 200 held streams)
 *   BENCH_REAL_MODES=endpoint,proxy          the real path's Envoy entry points (section "real")
 *   BENCH_REAL_SCENARIOS=get,put-hash,json-post,upload,refused   its scenarios
 *   BENCH_REAL_CONNECTIONS=16                its closed-loop HTTP/1.1 connections
 *   BENCH_REAL_UPLOAD_MIB=64                 its chunk-signed upload size
 *   BENCH_REAL_WORKERS=1                     also countersign --workers 2 (C2) and the pinned scaling run
 *   BENCH_REAL_PROFILE=1                     also profile countersign (node --cpu-prof) behind Envoy
 *   BENCH_REAL_DURATION=5, BENCH_REAL_ROUNDS=2  its measured seconds per run and interleaved rounds (quick: 2 and 1)
 *
 * A full run writes bench/results/latest.{md,json}; a quick or partial run writes
 * bench/results/partial.{md,json}.tmp instead. Everything listens on 127.0.0.1 only, and every
 * child process is killed when this one exits (normally, on error or on Ctrl-C).
 */
import { fork, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { closeSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { LatencyHistogram } from "./histogram.js";
import type { LoadgenConfig } from "./loadgen.js";
import { cpuSeconds, machineBusySeconds, machineFacts, memory, processTree, resetPeakRss, rssSampler } from "./procfs.js";
import { computeTargets, renderMarkdown, type BenchResults, type HoldRun, type LatencySummary, type LoadRun, type UploadRun } from "./report.js";
import { BENCH_ACCESS_KEY_ID, BENCH_SECRET_ACCESS_KEY, allScenarios, type Scenario } from "./scenarios.js";
import { summarizeProfile, type CpuProfile } from "./topFunctions.js";
import { CLI, startServe, type ServeProcess } from "../test/support/startServe.js";
import { renderReal, runRealPath, type Mode, type RealResults } from "./realpath/run.js";
import { REAL_SCENARIOS, type RealScenario } from "./realpath/requests.js";

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, "..");
const POLICY = join(here, "policy.yaml");
const LOADGEN = join(here, "loadgen.ts");
const NOOP = join(here, "noopServer.ts");
const MICRO = join(here, "micro.ts");
const RESULTS = join(here, "results");

// ---------------------------------------------------------------------------------------------
// Settings

interface Settings {
  readonly warmupS: number;
  readonly durationS: number;
  readonly concurrency: number | undefined;
  readonly clients: number;
  readonly rounds: number;
  readonly only: ReadonlySet<string> | undefined;
  readonly uploadMiB: number;
  readonly holdStreams: number;
  readonly holdRounds: number;
  readonly holdMs: number;
  readonly window: number;
  readonly headlineLevel: "warn" | "info";
  readonly rate: number | undefined;
  readonly quick: boolean;
  readonly microScale: number;
}

const SETTING_NAMES = ["duration", "warmup", "concurrency", "clients", "rounds", "rate", "only", "upload-mib", "hold-streams", "hold-rounds", "window", "headline-log", "quick"] as const;

function readSettings(argv: string[]): Settings {
  const { values } = parseArgs({ args: argv, options: Object.fromEntries(SETTING_NAMES.map((n) => [n, { type: "string" as const }])) });
  const get = (name: (typeof SETTING_NAMES)[number]): string | undefined => {
    const v = values[name];
    return typeof v === "string" ? v : process.env[`BENCH_${name.toUpperCase().replace(/-/g, "_")}`];
  };
  const num = (name: (typeof SETTING_NAMES)[number], dflt: number, min: number, max: number): number => {
    const raw = get(name);
    if (raw === undefined || raw === "") return dflt;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < min || n > max) throw new Error(`BENCH_${name.toUpperCase().replace(/-/g, "_")}="${raw}": expected a number from ${min} to ${max}`);
    return n;
  };
  const quick = ["1", "true", "yes"].includes((get("quick") ?? "").toLowerCase());
  const only = get("only");
  const headline = get("headline-log") ?? "warn";
  if (headline !== "warn" && headline !== "info") throw new Error(`BENCH_HEADLINE_LOG must be warn or info, got "${headline}"`);
  const concurrency = get("concurrency");
  return {
    warmupS: num("warmup", quick ? 1 : 2, 0, 60),
    durationS: num("duration", quick ? 2 : 8, 0.5, 600),
    concurrency: concurrency === undefined || concurrency === "" ? undefined : num("concurrency", 64, 1, 5000),
    clients: num("clients", 1, 1, 16),
    rounds: num("rounds", quick ? 1 : 3, 1, 20),
    only: only ? new Set(only.split(",").map((s) => s.trim()).filter(Boolean)) : undefined,
    uploadMiB: num("upload-mib", quick ? 64 : 1024, 1, 16384),
    holdStreams: num("hold-streams", quick ? 200 : 1000, 1, 10000),
    holdRounds: num("hold-rounds", quick ? 1 : 3, 1, 20),
    holdMs: quick ? 300 : 1000,
    window: num("window", 4, 1, 64),
    headlineLevel: headline,
    rate: get("rate") ? num("rate", 1000, 10, 100_000) : undefined,
    quick,
    microScale: quick ? 0.2 : 1,
  };
}

// ---------------------------------------------------------------------------------------------
// Child processes: all of them are tracked and killed on exit.

const children = new Set<ChildProcess>();
let scratch: string | undefined;

function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

function killAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
      // Descendants first (the workers of a --workers server), then the child itself.
      for (const pid of processTree(c.pid).reverse()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // already gone
        }
      }
    }
  }
  children.clear();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
  scratch = undefined;
}

process.on("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    process.stderr.write(`\nbench: ${signal}, stopping child processes\n`);
    killAll();
    process.exit(130);
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  if (!(await waitExit(child, graceMs))) {
    child.kill("SIGKILL");
    await waitExit(child, 2000);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Servers

interface ServerHandle {
  readonly kind: "noop" | "countersign";
  readonly child: ChildProcess;
  readonly pid: number;
  readonly address: string;
  /** Whether CPU and memory must be summed over child processes (--workers). */
  readonly tree: boolean;
  stop(): Promise<void>;
}

function tailOf(chunks: Buffer[], max = 2000): string {
  const s = Buffer.concat(chunks).toString("utf8");
  return s.length > max ? s.slice(-max) : s;
}

function serverEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("COUNTERSIGN_") && !k.startsWith("AWS_")) env[k] = v;
  env.COUNTERSIGN_AWS_ACCESS_KEY_ID = BENCH_ACCESS_KEY_ID;
  env.COUNTERSIGN_AWS_SECRET_ACCESS_KEY = BENCH_SECRET_ACCESS_KEY;
  return env;
}

let serverCount = 0;

async function startCountersign(opts: { logLevel: string; cpuProfDir?: string; workers?: number }): Promise<ServerHandle> {
  const logFile = join(scratch as string, `countersign-${++serverCount}.log`);
  const logFd = openSync(logFile, "w");
  let serve: ServeProcess;
  try {
    // The decision log goes to a file, as it would go to a pipe in production: writing it is part
    // of the cost measured.
    serve = await startServe({
      policyFile: POLICY,
      args: ["--log-level", opts.logLevel, ...(opts.workers && opts.workers > 1 ? ["--workers", String(opts.workers)] : [])],
      env: serverEnv(),
      shutdownGraceSeconds: 1,
      nodeArgs: opts.cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${opts.cpuProfDir}`] : [],
      stdoutFd: logFd,
      readyPath: "/readyz",
      onSpawn: (child) => void track(child),
    });
  } catch (err) {
    const log = existsSync(logFile) ? readFileSync(logFile, "utf8").slice(-2000) : "";
    throw new Error(`countersign serve did not start: ${err instanceof Error ? err.message : String(err)}\n${log}`, { cause: err });
  } finally {
    closeSync(logFd);
  }
  return {
    kind: "countersign",
    child: serve.proc,
    pid: serve.pid,
    address: serve.grpcAddress,
    tree: (opts.workers ?? 1) > 1,
    stop: async () => {
      await serve.stop("SIGTERM", 10_000);
      rmSync(logFile, { force: true });
    },
  };
}

async function startNoop(): Promise<ServerHandle> {
  const child = track(spawn(process.execPath, ["--import", "tsx", NOOP, "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"], cwd: ROOT }));
  const stderr: Buffer[] = [];
  child.stderr?.on("data", (b: Buffer) => stderr.push(b));
  const port = await new Promise<number>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error(`no-op server did not start in 20 s:\n${tailOf(stderr)}`)), 20_000);
    child.stdout?.on("data", (b: Buffer) => {
      buf += b.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      try {
        resolve((JSON.parse(buf.slice(0, nl)) as { grpcPort: number }).grpcPort);
      } catch (err) {
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`no-op server exited during start-up (${code}):\n${tailOf(stderr)}`));
    });
  });
  return { kind: "noop", child, pid: child.pid as number, address: `127.0.0.1:${port}`, tree: false, stop: () => stopChild(child, 5000) };
}

// ---------------------------------------------------------------------------------------------
// Load generators

interface LoadgenResult {
  readonly completed: number;
  readonly errors: number;
  /** Paced mode: starts skipped because `concurrency` exchanges were already in flight. */
  readonly skipped?: number;
  readonly refused: number;
  readonly firstError: string | undefined;
  readonly windowMs: number;
  readonly clientCpuSeconds: number;
  readonly histogram: { counts: number[]; maxMicros: number; sumMicros: number };
}

type LoadgenMessage = { type: "ready" } | { type: "marked" } | { type: "holding"; round: number; open: number } | ({ type: "result" } & LoadgenResult) | { type: "fatal"; error: string };

class Loadgen {
  private readonly child: ChildProcess;
  private readonly inbox: LoadgenMessage[] = [];
  private waiter: { type: string; resolve: (m: LoadgenMessage) => void; reject: (e: Error) => void } | undefined;
  private fatal: Error | undefined;

  constructor(cfg: LoadgenConfig) {
    this.child = track(
      fork(LOADGEN, [], {
        cwd: ROOT,
        execArgv: ["--import", "tsx"],
        env: { ...process.env, BENCH_LOADGEN: JSON.stringify(cfg) },
        stdio: ["ignore", "inherit", "inherit", "ipc"],
      }),
    );
    this.child.on("message", (m: LoadgenMessage) => {
      if (m.type === "fatal") this.fail(new Error(`load generator: ${m.error}`));
      else this.inbox.push(m);
      this.deliver();
    });
    this.child.once("exit", (code, signal) => this.fail(new Error(`load generator exited (${code ?? signal}) before it reported`)));
  }

  private fail(err: Error): void {
    this.fatal ??= err;
    this.deliver();
  }

  private deliver(): void {
    const w = this.waiter;
    if (!w) return;
    const i = this.inbox.findIndex((m) => m.type === w.type);
    if (i >= 0) {
      this.waiter = undefined;
      w.resolve(this.inbox.splice(i, 1)[0] as LoadgenMessage);
    } else if (this.fatal) {
      this.waiter = undefined;
      w.reject(this.fatal);
    }
  }

  waitFor<T extends LoadgenMessage["type"]>(type: T, timeoutMs: number): Promise<Extract<LoadgenMessage, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new Error(`load generator: no "${type}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        type,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<LoadgenMessage, { type: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.deliver();
    });
  }

  send(cmd: "go" | "mark" | "stop" | "release"): void {
    if (this.child.connected) this.child.send({ cmd });
  }

  async finished(): Promise<void> {
    if (!(await waitExit(this.child, 8000))) await stopChild(this.child, 1000);
  }
}

function loadgenConfig(server: ServerHandle, s: Settings, partial: Partial<LoadgenConfig>): LoadgenConfig {
  return {
    address: server.address,
    mode: "closed",
    scenario: "headers-unsigned",
    concurrency: 64,
    forceBody: server.kind === "noop",
    expect: server.kind === "noop" ? "noop" : "countersign",
    hardLimitMs: (s.warmupS + s.durationS + 60) * 1000,
    maxExchanges: 50_000_000,
    holdStreams: s.holdStreams,
    holdRounds: s.holdRounds,
    uploadBytes: s.uploadMiB * 1024 * 1024,
    window: s.window,
    ...partial,
  };
}

function summarizeLatency(h: LatencyHistogram): LatencySummary {
  return { p50Us: h.quantile(0.5), p99Us: h.quantile(0.99), p999Us: h.quantile(0.999), maxUs: h.maxMicros, meanUs: h.total ? h.sumMicros / h.total : Number.NaN };
}

const MiB = (kib: number): number => kib / 1024;

function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
}

/** One row from several rounds of the same scenario and server: medians, largest RSS, summed errors. */
function combineRounds(rounds: LoadRun[]): LoadRun {
  const first = rounds[0] as LoadRun;
  if (rounds.length === 1) return first;
  const med = (f: (r: LoadRun) => number): number => median(rounds.map(f));
  const cpu = rounds.map((r) => r.serverCpuUsPerRequest);
  return {
    ...first,
    windowSeconds: rounds.reduce((a, r) => a + r.windowSeconds, 0),
    completed: rounds.reduce((a, r) => a + r.completed, 0),
    errors: rounds.reduce((a, r) => a + r.errors, 0),
    skipped: rounds.reduce((a, r) => a + (r.skipped ?? 0), 0),
    firstError: rounds.find((r) => r.firstError)?.firstError,
    requestsPerSecond: med((r) => r.requestsPerSecond),
    latency: {
      p50Us: med((r) => r.latency.p50Us),
      p99Us: med((r) => r.latency.p99Us),
      p999Us: med((r) => r.latency.p999Us),
      maxUs: Math.max(...rounds.map((r) => r.latency.maxUs)),
      meanUs: med((r) => r.latency.meanUs),
    },
    serverCpuUsPerRequest: median(cpu),
    serverCores: med((r) => r.serverCores),
    clientCores: med((r) => r.clientCores),
    peakRssMiB: Math.max(...rounds.map((r) => r.peakRssMiB)),
    bodyMBPerSecond: med((r) => r.bodyMBPerSecond),
    otherCores: med((r) => r.otherCores),
    rounds: rounds.length,
    serverCpuUsPerRequestMin: Math.min(...cpu),
    serverCpuUsPerRequestMax: Math.max(...cpu),
  };
}

// ---------------------------------------------------------------------------------------------
// Scenario runners

async function runClosedLoop(server: ServerHandle, scenario: Scenario, s: Settings, label: { logLevel: string; workers?: number; clients?: number }): Promise<LoadRun> {
  const concurrency = s.concurrency ?? scenario.defaultConcurrency;
  const clients = label.clients ?? s.clients;
  const perClient = Math.max(1, Math.ceil(concurrency / clients));
  const gens = Array.from({ length: clients }, () => new Loadgen(loadgenConfig(server, s, { scenario: scenario.name, concurrency: perClient })));
  try {
    await Promise.all(gens.map((g) => g.waitFor("ready", 30_000)));
    for (const g of gens) g.send("go");
    await sleep(s.warmupS * 1000);
    const busy0 = machineBusySeconds();
    const cpu0 = cpuSeconds(server.pid, server.tree);
    const mono0 = process.hrtime.bigint();
    const t0 = performance.now();
    for (const g of gens) g.send("mark");
    await Promise.all(gens.map((g) => g.waitFor("marked", 10_000)));
    await sleep(s.durationS * 1000);
    const cpu1 = cpuSeconds(server.pid, server.tree);
    const busy1 = machineBusySeconds();
    const mono1 = process.hrtime.bigint();
    const t1 = performance.now();
    for (const g of gens) g.send("stop");
    const results = await Promise.all(gens.map((g) => g.waitFor("result", 15_000)));
    const mem = memory(server.pid, server.tree);
    await Promise.all(gens.map((g) => g.finished()));

    const windowS = (t1 - t0) / 1000;
    const hist = new LatencyHistogram();
    let completed = 0;
    let errors = 0;
    let clientCpu = 0;
    let firstError: string | undefined;
    for (const r of results) {
      hist.merge(LatencyHistogram.fromJSON(r.histogram));
      completed += r.completed;
      errors += r.errors;
      clientCpu += r.clientCpuSeconds;
      firstError ??= r.firstError;
    }
    if (completed === 0) throw new Error(`${scenario.name} on ${server.kind}: no exchange completed (${firstError ?? "no error reported"})`);
    const rps = completed / windowS;
    const serverCpuUsPerRequest = ((cpu1 - cpu0) / completed) * 1e6;
    return {
      scenario: scenario.name,
      server: server.kind,
      logLevel: label.logLevel,
      workers: label.workers ?? 1,
      concurrency: perClient * clients,
      clients,
      windowSeconds: windowS,
      completed,
      errors,
      firstError,
      requestsPerSecond: rps,
      latency: summarizeLatency(hist),
      serverCpuUsPerRequest,
      serverCores: (cpu1 - cpu0) / windowS,
      clientCores: clientCpu / windowS,
      peakRssMiB: MiB(mem.hwmKiB),
      bodyMBPerSecond: (rps * scenario.bodyBytes) / 1e6,
      otherCores: Math.max(0, (busy1 - busy0 - (cpu1 - cpu0) - clientCpu) / windowS),
      rounds: 1,
      serverCpuUsPerRequestMin: serverCpuUsPerRequest,
      serverCpuUsPerRequestMax: serverCpuUsPerRequest,
      windowMonotonicUs: { startUs: Number(mono0 / 1000n), endUs: Number(mono1 / 1000n) },
    };
  } finally {
    for (const g of gens) await g.finished();
  }
}

/**
 * The CPU comparison: the no-op floor and countersign run at the same time, each with its own
 * load generator starting exchanges at the same fixed rate, and their CPU is read over the same
 * window. Same rate: CPU per request depends on how many requests each wake-up of the event loop
 * serves, so a slower server measured in a closed loop also pays more per request for the
 * transport. Same time: both see the same machine (other tenants, frequency, caches).
 */
async function runPaired(scenario: Scenario, s: Settings, rate: number, logLevel: string): Promise<{ noop: LoadRun; cs: LoadRun }> {
  const noop = await startNoop();
  try {
    const cs = await startCountersign({ logLevel });
    try {
      const servers = [noop, cs] as const;
      // Enough in flight for latency spikes of a loaded machine; a start over it is counted as skipped.
      const cap = Math.max(256, Math.ceil(rate / 2));
      const gens = servers.map((srv) => new Loadgen(loadgenConfig(srv, s, { mode: "paced", rate, scenario: scenario.name, concurrency: cap })));
      try {
        await Promise.all(gens.map((g) => g.waitFor("ready", 30_000)));
        for (const g of gens) g.send("go");
        await sleep(s.warmupS * 1000);
        const busy0 = machineBusySeconds();
        const cpu0 = servers.map((srv) => cpuSeconds(srv.pid));
        const mono0 = process.hrtime.bigint();
        const t0 = performance.now();
        for (const g of gens) g.send("mark");
        await Promise.all(gens.map((g) => g.waitFor("marked", 10_000)));
        await sleep(s.durationS * 1000);
        const cpu1 = servers.map((srv) => cpuSeconds(srv.pid));
        const busy1 = machineBusySeconds();
        const mono1 = process.hrtime.bigint();
        const t1 = performance.now();
        for (const g of gens) g.send("stop");
        const results = await Promise.all(gens.map((g) => g.waitFor("result", 15_000)));
        const mems = servers.map((srv) => memory(srv.pid));
        const windowS = (t1 - t0) / 1000;
        const allCpu = (cpu1[0] as number) - (cpu0[0] as number) + (cpu1[1] as number) - (cpu0[1] as number) + results.reduce((a, r) => a + r.clientCpuSeconds, 0);
        const rows = servers.map((srv, i): LoadRun => {
          const r = results[i] as LoadgenResult;
          if (r.completed === 0) throw new Error(`${scenario.name} at ${rate} req/s on ${srv.kind}: no exchange completed (${r.firstError ?? "no error reported"})`);
          const cpu = (cpu1[i] as number) - (cpu0[i] as number);
          const hist = LatencyHistogram.fromJSON(r.histogram);
          const perReq = (cpu / r.completed) * 1e6;
          return {
            scenario: scenario.name,
            server: srv.kind,
            logLevel: srv.kind === "noop" ? "-" : logLevel,
            workers: 1,
            load: "paced",
            targetRate: rate,
            concurrency: cap,
            clients: 1,
            windowSeconds: windowS,
            completed: r.completed,
            errors: r.errors,
            skipped: r.skipped ?? 0,
            firstError: r.firstError,
            requestsPerSecond: r.completed / windowS,
            latency: summarizeLatency(hist),
            serverCpuUsPerRequest: perReq,
            serverCores: cpu / windowS,
            clientCores: r.clientCpuSeconds / windowS,
            peakRssMiB: MiB((mems[i] as { hwmKiB: number }).hwmKiB),
            bodyMBPerSecond: ((r.completed / windowS) * scenario.bodyBytes) / 1e6,
            otherCores: Math.max(0, (busy1 - busy0 - allCpu) / windowS),
            rounds: 1,
            serverCpuUsPerRequestMin: perReq,
            serverCpuUsPerRequestMax: perReq,
            windowMonotonicUs: { startUs: Number(mono0 / 1000n), endUs: Number(mono1 / 1000n) },
          };
        });
        return { noop: rows[0] as LoadRun, cs: rows[1] as LoadRun };
      } finally {
        for (const g of gens) await g.finished();
      }
    } finally {
      await cs.stop();
    }
  } finally {
    await noop.stop();
  }
}

async function runHold(server: ServerHandle, s: Settings): Promise<HoldRun> {
  const gen = new Loadgen(loadgenConfig(server, s, { mode: "hold", scenario: "json-4k", hardLimitMs: 120_000 }));
  try {
    await gen.waitFor("ready", 30_000);
    const idle = memory(server.pid, server.tree);
    gen.send("go");
    let holding = 0;
    for (let round = 0; round < s.holdRounds; round++) {
      const h = await gen.waitFor("holding", 60_000);
      if (h.open < s.holdStreams) throw new Error(`only ${h.open} of ${s.holdStreams} streams got their headers answer`);
      const sampler = rssSampler(server.pid, 50, server.tree);
      await sleep(s.holdMs);
      holding = Math.max(holding, sampler.stop());
      gen.send("release");
    }
    const r = await gen.waitFor("result", 60_000);
    const end = memory(server.pid, server.tree);
    return {
      server: server.kind,
      streams: s.holdStreams,
      rounds: s.holdRounds,
      idleRssMiB: MiB(idle.rssKiB),
      holdingRssMiB: MiB(holding),
      peakRssMiB: MiB(end.hwmKiB),
      completed: r.completed,
      errors: r.errors,
      firstError: r.firstError,
    };
  } finally {
    await gen.finished();
  }
}

async function runUpload(server: ServerHandle, s: Settings): Promise<UploadRun> {
  const bytes = s.uploadMiB * 1024 * 1024;
  const gen = new Loadgen(loadgenConfig(server, s, { mode: "upload", hardLimitMs: 600_000 }));
  try {
    await gen.waitFor("ready", 30_000);
    await sleep(200);
    const before = memory(server.pid, server.tree);
    const reset = resetPeakRss(server.pid);
    const sampler = rssSampler(server.pid, 50, server.tree);
    const cpu0 = cpuSeconds(server.pid, server.tree);
    gen.send("go");
    const r = await gen.waitFor("result", 590_000);
    const cpu1 = cpuSeconds(server.pid, server.tree);
    const sampled = sampler.stop();
    const after = memory(server.pid, server.tree);
    const peakKiB = reset ? Math.max(after.hwmKiB, sampled) : sampled;
    const seconds = r.windowMs / 1000;
    return {
      server: server.kind,
      decodedMiB: s.uploadMiB,
      seconds,
      mbPerSecond: seconds > 0 ? bytes / 1e6 / seconds : Number.NaN,
      rssBeforeMiB: MiB(before.rssKiB),
      rssAfterMiB: MiB(after.rssKiB),
      peakRssMiB: MiB(peakKiB),
      growthMiB: MiB(peakKiB - before.rssKiB),
      serverCpuSecondsPerGiB: ((cpu1 - cpu0) / bytes) * 1024 ** 3,
      ok: r.errors === 0,
      error: r.firstError,
    };
  } finally {
    await gen.finished();
  }
}

/**
 * Runs `body` against a countersign started under `node --cpu-prof` and keeps its profile as
 * bench/results/<name>.cpuprofile: what `body` returned, and the profile (undefined, and said so,
 * when the server did not write one).
 */
async function profiledRun<T>(s: Settings, name: string, body: (server: ServerHandle) => Promise<T>): Promise<{ result: T; cpuProfile: CpuProfile | undefined; file: string }> {
  const dir = join(scratch as string, `cpuprof-${name}`);
  mkdirSync(dir);
  const result = await withServer(() => startCountersign({ logLevel: s.headlineLevel, cpuProfDir: dir }), body);
  const kept = join(RESULTS, `${name}.cpuprofile`);
  const written = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
  if (written === undefined) {
    log(`no .cpuprofile was written for ${name} (the server did not exit cleanly)`);
    return { result, cpuProfile: undefined, file: relative(ROOT, kept) };
  }
  mkdirSync(RESULTS, { recursive: true });
  copyFileSync(join(dir, written), kept);
  return { result, cpuProfile: JSON.parse(readFileSync(kept, "utf8")) as CpuProfile, file: relative(ROOT, kept) };
}

async function withServer<T>(start: () => Promise<ServerHandle>, body: (server: ServerHandle) => Promise<T>): Promise<T> {
  const server = await start();
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

function runMicro(s: Settings): Promise<NonNullable<BenchResults["micro"]>> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(process.execPath, ["--import", "tsx", MICRO], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, BENCH_MICRO_SCALE: String(s.microScale) } }));
    const out: Buffer[] = [];
    child.stdout?.on("data", (b: Buffer) => out.push(b));
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error("micro-benchmarks did not finish in 5 minutes"));
    }, 300_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`micro-benchmarks failed (exit ${code})`));
      else resolve(JSON.parse(Buffer.concat(out).toString("utf8")) as NonNullable<BenchResults["micro"]>);
    });
  });
}

function workersSupported(): boolean {
  const r = spawnSync(process.execPath, [CLI, "serve", "--help"], { encoding: "utf8", timeout: 10_000, env: serverEnv() });
  return `${r.stdout ?? ""}${r.stderr ?? ""}`.includes("--workers");
}

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

function describe(r: LoadRun): string {
  return `${r.requestsPerSecond.toFixed(0)} req/s${r.skipped ? ` (${r.skipped} starts skipped: behind the rate)` : ""}, server ${r.serverCpuUsPerRequest.toFixed(1)} µs CPU/req (${r.serverCores.toFixed(2)} cores), client ${r.clientCores.toFixed(2)} cores, p50 ${r.latency.p50Us.toFixed(0)} µs, p99 ${r.latency.p99Us.toFixed(0)} µs${r.errors ? `, ${r.errors} errors: ${r.firstError ?? ""}` : ""}`;
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const started = performance.now();
  const s = readSettings(process.argv.slice(2));
  if (!existsSync(CLI)) throw new Error(`${relative(process.cwd(), CLI)} is missing: run \`make build\` first`);
  scratch = mkdtempSync(join(tmpdir(), "countersign-bench-"));
  const wants = (name: string): boolean => !s.only || s.only.has(name);
  const otherLevel = s.headlineLevel === "warn" ? "info" : "warn";
  const machine = machineFacts();
  log(`${machine.cores} cores, ${machine.cpuModel}, Node ${machine.node}; ${s.durationS} s per scenario after ${s.warmupS} s warm-up${s.quick ? " (quick)" : ""}`);

  let real: RealResults | undefined;
  if (wants("real")) {
    const list = <T extends string>(name: string, all: readonly T[], dflt: readonly T[]): T[] => {
      const raw = process.env[name];
      if (!raw) return [...dflt];
      const got = raw.split(",").map((x) => x.trim()).filter(Boolean);
      for (const g of got) if (!all.includes(g as T)) throw new Error(`${name}: "${g}" is not one of ${all.join(", ")}`);
      return got as T[];
    };
    const modes: readonly Mode[] = ["endpoint", "proxy"];
    const positive = (name: string, dflt: number): number => {
      const raw = process.env[name];
      const n = raw === undefined || raw === "" ? dflt : Number(raw);
      if (!Number.isFinite(n) || n <= 0) throw new Error(`${name}="${raw ?? ""}": expected a positive number`);
      return n;
    };
    real = await runRealPath(
      {
        warmupS: s.quick ? 0.5 : 1,
        durationS: positive("BENCH_REAL_DURATION", s.quick ? 2 : 5),
        rounds: Math.round(positive("BENCH_REAL_ROUNDS", s.quick ? 1 : 2)),
        modes: list("BENCH_REAL_MODES", modes, modes),
        scenarios: list<RealScenario>("BENCH_REAL_SCENARIOS", REAL_SCENARIOS, REAL_SCENARIOS),
        connections: Math.round(positive("BENCH_REAL_CONNECTIONS", 16)),
        uploadMiB: positive("BENCH_REAL_UPLOAD_MIB", 64),
        workers2: (process.env.BENCH_REAL_WORKERS ?? "1") !== "0" && workersSupported(),
        profile: (process.env.BENCH_REAL_PROFILE ?? "1") !== "0",
        track: (c) => void track(c),
        log,
      },
      scratch,
    );
  }

  let micro: BenchResults["micro"];
  if (wants("micro")) {
    log("in-process micro-benchmarks (signing, hashing, chunk re-signing)");
    micro = await runMicro(s);
  }

  const runs: LoadRun[] = [];
  for (const scenario of allScenarios()) {
    if (!wants(scenario.name)) continue;
    // The floor and countersign alternate, so that they see the same machine conditions; the
    // headers-only scenarios (the CPU targets) get several rounds.
    const headersOnly = scenario.name.startsWith("headers-");
    // The other log level costs a round per server start; headers-unsigned alone shows its price.
    const levels = scenario.name === "headers-unsigned" && (wants("info") || !s.only) ? [s.headlineLevel, otherLevel] : [s.headlineLevel];
    const rounds = headersOnly ? s.rounds : 1;
    const noopRounds: LoadRun[] = [];
    const csRounds = new Map<string, LoadRun[]>(levels.map((l) => [l, []]));
    for (let round = 1; round <= rounds; round++) {
      const noop = await withServer(startNoop, (srv) => runClosedLoop(srv, scenario, s, { logLevel: "-" }));
      noopRounds.push(noop);
      log(`${scenario.name} / no-op${rounds > 1 ? ` (round ${round}/${rounds})` : ""}: ${describe(noop)}`);
      for (const level of levels) {
        const cs = await withServer(() => startCountersign({ logLevel: level }), (srv) => runClosedLoop(srv, scenario, s, { logLevel: level }));
        csRounds.get(level)?.push(cs);
        log(`${scenario.name} / countersign (${level})${rounds > 1 ? ` (round ${round}/${rounds})` : ""}: ${describe(cs)} — ${(cs.serverCpuUsPerRequest / noop.serverCpuUsPerRequest).toFixed(2)} × no-op`);
      }
    }
    runs.push(combineRounds(noopRounds));
    for (const level of levels) runs.push(combineRounds(csRounds.get(level) ?? []));
    if (headersOnly) {
      const slowest = Math.min(...[...noopRounds, ...(csRounds.get(s.headlineLevel) ?? [])].map((r) => r.requestsPerSecond));
      const rate = s.rate ?? Math.max(50, Math.round(Math.min(1000, slowest / 2)));
      const pn: LoadRun[] = [];
      const pc: LoadRun[] = [];
      for (let round = 1; round <= s.rounds; round++) {
        const { noop, cs } = await runPaired(scenario, s, rate, s.headlineLevel);
        pn.push(noop);
        pc.push(cs);
        log(`${scenario.name} / paired at ${rate} req/s${s.rounds > 1 ? ` (round ${round}/${s.rounds})` : ""}: no-op ${describe(noop)}; countersign ${describe(cs)} — ${(cs.serverCpuUsPerRequest / noop.serverCpuUsPerRequest).toFixed(2)} × no-op`);
      }
      runs.push(combineRounds(pn), { ...combineRounds(pc), pairedRatios: pc.map((c, i) => c.serverCpuUsPerRequest / (pn[i] as LoadRun).serverCpuUsPerRequest) });
    }
  }

  const hold: HoldRun[] = [];
  if (wants("hold")) {
    for (const start of [startNoop, () => startCountersign({ logLevel: s.headlineLevel })]) {
      const h = await withServer(start, (srv) => runHold(srv, s));
      hold.push(h);
      log(`hold ${h.streams} streams / ${h.server}: idle ${h.idleRssMiB.toFixed(1)} MiB, holding ${h.holdingRssMiB.toFixed(1)} MiB, peak ${h.peakRssMiB.toFixed(1)} MiB, ${h.errors} errors`);
    }
  }

  const upload: UploadRun[] = [];
  if (wants("upload")) {
    for (const start of [startNoop, () => startCountersign({ logLevel: s.headlineLevel })]) {
      const u = await withServer(start, (srv) => runUpload(srv, s));
      upload.push(u);
      log(`upload ${u.decodedMiB} MiB / ${u.server}: ${u.mbPerSecond.toFixed(0)} MB/s, RSS ${u.rssBeforeMiB.toFixed(1)} -> peak ${u.peakRssMiB.toFixed(1)} MiB (growth ${u.growthMiB.toFixed(1)})${u.ok ? "" : ` FAILED: ${u.error ?? ""}`}`);
    }
  }

  let workers: BenchResults["workers"] = {
    supported: false,
    note: wants("workers") ? "SKIP: `countersign serve --help` does not mention --workers." : "not measured in this run (BENCH_ONLY leaves out workers).",
  };
  if (wants("workers") && workersSupported()) {
    // Two load generators against one worker, then against two; alternated like the floor.
    const scenario = allScenarios()[0] as Scenario;
    const label = { logLevel: s.headlineLevel, clients: 2 };
    const ones: LoadRun[] = [];
    const twos: LoadRun[] = [];
    for (let round = 1; round <= s.rounds; round++) {
      ones.push(await withServer(() => startCountersign({ logLevel: s.headlineLevel }), (srv) => runClosedLoop(srv, scenario, s, label)));
      twos.push(await withServer(() => startCountersign({ logLevel: s.headlineLevel, workers: 2 }), (srv) => runClosedLoop(srv, scenario, s, { ...label, workers: 2 })));
      log(`--workers round ${round}/${s.rounds}: one worker ${describe(ones[ones.length - 1] as LoadRun)}; two workers ${describe(twos[twos.length - 1] as LoadRun)}`);
    }
    const one = combineRounds(ones);
    const two = combineRounds(twos);
    const name = `${scenario.name}, 2 clients (workers test)`;
    runs.push({ ...one, scenario: name }, { ...two, scenario: name });
    workers = {
      supported: true,
      note: `${scenario.name}, 2 load generator processes, median of ${s.rounds} alternating rounds: one worker ${one.requestsPerSecond.toFixed(0)} req/s, two workers ${two.requestsPerSecond.toFixed(0)} req/s. The machine has ${machine.cores} cores, shared with the load generators (and other tenants: see "other load"), so this cannot show the scaling of a dedicated host.`,
      singleRps: one.requestsPerSecond,
      twoWorkersRps: two.requestsPerSecond,
    };
  }

  let profile: BenchResults["profile"];
  let uploadProfile: BenchResults["uploadProfile"];
  if (wants("profile")) {
    const scenario = allScenarios()[0] as Scenario;
    log(`profiling countersign (node --cpu-prof) during ${scenario.name}`);
    const headers = await profiledRun(s, scenario.name, (srv) => runClosedLoop(srv, scenario, s, { logLevel: s.headlineLevel }));
    log(`profiled run: ${describe(headers.result)}`);
    if (headers.cpuProfile) {
      // Only the measured window: no start-up (module loading, policy compilation) or shutdown.
      const w = headers.result.windowMonotonicUs;
      const inWindow = headers.cpuProfile.startTime <= w.startUs && headers.cpuProfile.endTime >= w.endUs;
      const summary = summarizeProfile(headers.cpuProfile, 25, inWindow ? w : undefined);
      profile = { ...summary, scenario: `${scenario.name}, ${inWindow ? "measured window only" : "whole process life (clocks did not line up)"}, ${headers.result.requestsPerSecond.toFixed(0)} req/s`, file: headers.file };
    }
    // The chunk-signed upload: where a STREAMED body's CPU goes (re-signing against the gRPC and
    // HTTP/2 transport that carries every byte in and out). The whole process is profiled; at this
    // size start-up is a small share of it.
    log(`profiling countersign (node --cpu-prof) during one ${s.uploadMiB} MiB chunk-signed upload`);
    const upload = await profiledRun(s, "upload", (srv) => runUpload(srv, s));
    if (upload.cpuProfile) {
      uploadProfile = { ...summarizeProfile(upload.cpuProfile, 25), scenario: `one ${s.uploadMiB} MiB chunk-signed upload, 64 KiB messages, whole process life, ${upload.result.mbPerSecond.toFixed(0)} MB/s`, file: upload.file };
    }
  }

  const partial = s.quick || s.only !== undefined;
  const base = {
    date: new Date().toISOString(),
    machine,
    config: {
      durationS: s.durationS,
      warmupS: s.warmupS,
      concurrency: s.concurrency ?? "per scenario",
      clients: s.clients,
      rounds: s.rounds,
      headlineLogLevel: s.headlineLevel,
      uploadMiB: s.uploadMiB,
      holdStreams: s.holdStreams,
      window: s.window,
      quick: s.quick,
      only: s.only ? [...s.only].join(",") : "all",
    },
    runs,
    hold,
    upload,
    micro,
    profile,
    uploadProfile,
    workers,
    durationSeconds: (performance.now() - started) / 1000,
  };
  const results: BenchResults = { ...base, targets: computeTargets(base, s.headlineLevel) };
  const md = real ? `${renderMarkdown(results)}\n\n${renderReal(real)}` : renderMarkdown(results);
  mkdirSync(RESULTS, { recursive: true });
  const stem = partial ? "partial" : "latest";
  const suffix = partial ? ".tmp" : "";
  writeFileSync(join(RESULTS, `${stem}.md${suffix}`), `${md}\n`);
  writeFileSync(join(RESULTS, `${stem}.json${suffix}`), `${JSON.stringify({ ...results, real }, null, 2)}\n`);
  process.stdout.write(`${md}\n`);
  log(`wrote bench/results/${stem}.md${suffix} and ${stem}.json${suffix}`);
}

main().then(
  () => {
    killAll();
  },
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAll();
    process.exitCode = 1;
  },
);
