/**
 * The real-path benchmark (part of `make bench`, section "real"): requests through real Envoy
 * (the pinned .venv/bin/envoy, --concurrency 1) running the shipped envoy/envoy.yaml, in every
 * configuration of bench/realpath/bootstrap.ts, side by side in one run:
 *   F   Envoy with no signing filter              N/Nu  Envoy's aws_request_signing (static keys)
 *   C1  Envoy + countersign --workers 1           C2    Envoy + countersign --workers 2
 *   X   Envoy + the bench's no-op ext_proc server (the floor of the ext_proc architecture)
 * All of them run at once, idle but for the one under load; the configurations alternate run by run
 * (interleaved rounds), so slow drifts of a shared machine hit them alike.
 *
 * The upstream is a second Envoy (direct_response after reading the body) on 443 of its own
 * loopback address, found through a loopback DNS server: Envoy's dynamic forward proxy, upstream
 * TLS with SNI and the SAN check stay in the path, as in production.
 *
 * The load generator (httpLoad.ts) is its own process; its CPU is reported (client cores) to show
 * whether it, and not Envoy, was the limit. CPU per request is read from /proc for Envoy and for the
 * ext_proc server (all its workers) over the same window.
 */
import "reflect-metadata";
import { fork, spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomInt } from "node:crypto";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as yaml from "js-yaml";
import { createCa, createLeaf } from "../../src/certs/certificates.js";
import { startDnsServer, type DnsServer } from "../../test/support/dnsServer.js";
import { REPO, startServe, type ServeProcess } from "../../test/support/startServe.js";
import { startRealEnvoy, type RealEnvoy } from "../../test/e2e/realEnvoy.js";
import { ENVOY_VERSION, envoyBinary, envoyVersionLine, validateEnvoyConfig } from "../../test/support/envoy.js";
import { LatencyHistogram } from "../histogram.js";
import { summarizeProfile, type CpuProfile, type ProfileSummary } from "../topFunctions.js";
import { cpuSeconds, memory } from "../procfs.js";
import { BENCH_ACCESS_KEY_ID, BENCH_SECRET_ACCESS_KEY } from "../scenarios.js";
import { benchEnvoyConfig, responderConfig, type BenchConfigName } from "./bootstrap.js";
import type { HttpLoadConfig, HttpLoadMessage, HttpLoadResult } from "./httpLoad.js";
import { REGION, type RealScenario } from "./requests.js";

const HERE = import.meta.dirname;
const LOAD = join(HERE, "httpLoad.ts");
const NOOP = join(HERE, "..", "noopServer.ts");
const POLICY = join(HERE, "..", "policy.yaml");

export type RealConfig = "F" | "N" | "Nu" | "C1" | "C2" | "X";
export type Mode = "endpoint" | "proxy";
export type LoadKind = "closed" | "paced200" | "paced1000";

export interface RealSettings {
  readonly warmupS: number;
  readonly durationS: number;
  readonly rounds: number;
  readonly modes: readonly Mode[];
  readonly scenarios: readonly RealScenario[];
  readonly connections: number;
  readonly uploadMiB: number;
  readonly workers2: boolean;
  /** Also profile countersign (node --cpu-prof) behind Envoy: headers-only GET, endpoint mode, closed loop. */
  readonly profile: boolean;
  readonly track: (c: ChildProcess) => void;
  readonly log: (line: string) => void;
}

export interface RealRun {
  readonly mode: Mode;
  readonly scenario: RealScenario;
  readonly config: RealConfig;
  readonly load: LoadKind | "upload" | "workers";
  readonly rounds: number;
  readonly completed: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly requestsPerSecond: number;
  readonly mbPerSecond: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly queued: number;
  readonly envoyCpuUsPerRequest: number;
  readonly serverCpuUsPerRequest: number;
  readonly totalCpuUsPerRequest: number;
  readonly clientCores: number;
  readonly envoyCores: number;
  readonly serverRssMiB: number;
}

export interface RealTarget {
  readonly mode: Mode;
  readonly name: string;
  readonly limit: string;
  readonly value: string;
  readonly pass: boolean | undefined;
}

export interface RealResults {
  readonly envoyVersion: string;
  readonly settings: Omit<RealSettings, "track" | "log">;
  readonly runs: RealRun[];
  readonly targets: RealTarget[];
  readonly workersNote: string;
  readonly profile: (ProfileSummary & { readonly window: string; readonly requestsPerSecond: number; readonly serverCpuUsPerRequest: number }) | undefined;
}

// ---------------------------------------------------------------------------------------------

interface Backend {
  readonly pid: number;
  readonly tree: boolean;
  readonly address: string;
  stop(): Promise<void>;
}

interface Deployment {
  readonly config: RealConfig;
  readonly envoy: RealEnvoy;
  readonly backend: Backend | undefined;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function startNoop(s: RealSettings): Promise<Backend> {
  const child = spawn(process.execPath, ["--import", "tsx", NOOP, "--listen", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"], cwd: REPO });
  s.track(child);
  const port = await new Promise<number>((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error("no-op server did not start in 20 s")), 20_000);
    child.stdout?.on("data", (b: Buffer) => {
      buf += b.toString("utf8");
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      resolve((JSON.parse(buf.slice(0, nl)) as { grpcPort: number }).grpcPort);
    });
    child.once("exit", (code) => reject(new Error(`no-op server exited (${code})`)));
  });
  return {
    pid: child.pid as number,
    tree: false,
    address: `127.0.0.1:${port}`,
    stop: async () => {
      child.kill("SIGTERM");
      await sleep(100);
    },
  };
}

async function startCountersign(s: RealSettings, dir: string, workers: number, cpuProfDir?: string): Promise<Backend> {
  const logFd = openSync(join(dir, `countersign-w${workers}.log`), "w");
  let serve: ServeProcess;
  try {
    serve = await startServe({
      policyFile: POLICY,
      args: ["--log-level", "warn", ...(workers > 1 ? ["--workers", String(workers)] : [])],
      env: { COUNTERSIGN_AWS_ACCESS_KEY_ID: BENCH_ACCESS_KEY_ID, COUNTERSIGN_AWS_SECRET_ACCESS_KEY: BENCH_SECRET_ACCESS_KEY },
      shutdownGraceSeconds: 1,
      nodeArgs: cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`] : [],
      stdoutFd: logFd,
      readyPath: "/readyz",
      onSpawn: (child) => s.track(child),
    });
  } finally {
    closeSync(logFd);
  }
  return { pid: serve.pid, tree: workers > 1, address: serve.grpcAddress, stop: async () => {
      await serve.stop("SIGTERM", 10_000);
    },
  };
}

function randomLoopback(): string {
  return `127.${randomInt(1, 255)}.${randomInt(1, 255)}.${randomInt(1, 255)}`;
}

interface Stack {
  readonly deployments: Map<RealConfig, Deployment>;
  readonly caPem: string;
  close(): Promise<void>;
}

async function startStack(s: RealSettings, dir: string, configs: readonly RealConfig[], cpuProfDir?: string): Promise<Stack> {
  const envoy = envoyBinary();
  const closers: Array<() => Promise<void>> = [];
  const close = async (): Promise<void> => {
    for (const c of closers.reverse()) await c().catch(() => undefined);
  };
  try {
    // The upstream: a responder Envoy with a certificate for the AWS names, on 443 of its own 127.x.y.z.
    const upstreamCa = await createCa({ commonName: "bench upstream CA (loopback only)" });
    const upstreamLeaf = await createLeaf({ ca: upstreamCa, hosts: ["s3.us-east-1.amazonaws.com", "*.s3.us-east-1.amazonaws.com", "sts.amazonaws.com"] });
    const upstreamCaFile = join(dir, "upstream-ca.crt");
    writeFileSync(upstreamCaFile, upstreamCa.certPem);
    writeFileSync(join(dir, "responder.crt"), upstreamLeaf.certPem);
    writeFileSync(join(dir, "responder.key"), upstreamLeaf.keyPem);
    let ip = "";
    let responder: ChildProcess | undefined;
    for (let attempt = 0; responder === undefined; attempt++) {
      ip = randomLoopback();
      const file = join(dir, "responder.yaml");
      writeFileSync(file, yaml.dump(responderConfig({ ip, port: 443, certFile: join(dir, "responder.crt"), keyFile: join(dir, "responder.key"), maxBodyBytes: (s.uploadMiB + 8) * 1024 * 1024 }), { noRefs: true, lineWidth: -1 }));
      const verdict = validateEnvoyConfig(file, ["--disable-hot-restart"]);
      if (!verdict.accepted) throw new Error(`envoy --mode validate rejected ${file} (exit ${verdict.status}; ${envoyVersionLine(envoy)}):\n${verdict.output}`);
      const child = spawn(envoy, ["-c", file, "--disable-hot-restart", "--concurrency", "1", "--log-level", "error"], { stdio: ["ignore", "ignore", "pipe"] });
      s.track(child);
      let err = "";
      child.stderr?.on("data", (b: Buffer) => (err += b.toString("utf8")));
      // The responder is up when its port answers a TCP connect.
      const up = await waitForPort(ip, 443, 10_000, child);
      if (up) {
        responder = child;
        closers.push(async () => {
          child.kill("SIGTERM");
          await sleep(100);
        });
      } else {
        child.kill("SIGKILL");
        if (attempt >= 5) throw new Error(`the responder Envoy did not listen on ${ip}:443:\n${err.slice(-2000)}`);
      }
    }
    const dns: DnsServer = await startDnsServer({ zones: ["amazonaws.com"], ipv4: ip });
    closers.push(() => dns.close());

    // The listener certificate Envoy shows the workload in proxy mode (what `countersign certs` makes).
    const ca = await createCa({ commonName: "bench listener CA (loopback only)" });
    const leaf = await createLeaf({ ca, hosts: ["s3.us-east-1.amazonaws.com", "*.s3.us-east-1.amazonaws.com", "sts.amazonaws.com"] });

    const backends = new Map<string, Backend>();
    const backendFor = async (config: RealConfig): Promise<Backend | undefined> => {
      const key = config === "X" ? "noop" : config === "C1" ? "cs1" : config === "C2" ? "cs2" : undefined;
      if (!key) return undefined;
      let b = backends.get(key);
      if (!b) {
        b = key === "noop" ? await startNoop(s) : await startCountersign(s, dir, key === "cs2" ? 2 : 1, cpuProfDir);
        backends.set(key, b);
        const stop = b.stop;
        closers.push(stop);
      }
      return b;
    };

    const deployments = new Map<RealConfig, Deployment>();
    for (const config of configs) {
      const backend = await backendFor(config);
      const name: BenchConfigName = config === "C1" || config === "C2" ? "C" : config;
      const edir = join(dir, `envoy-${config}`);
      mkdirSync(edir, { recursive: true });
      const e = await startRealEnvoy({
        dir: edir,
        extProcAddress: backend?.address ?? "127.0.0.1:9",
        certPem: leaf.certPem,
        keyPem: leaf.keyPem,
        dnsPort: dns.port,
        upstreamCaFile,
        concurrency: 1,
        logLevel: "error",
        discardStdout: true,
        makeConfig: (shipped, o) =>
          benchEnvoyConfig(shipped, {
            ...o,
            config: name,
            extProcAddress: backend?.address,
            credentials: { accessKeyId: BENCH_ACCESS_KEY_ID, secretAccessKey: BENCH_SECRET_ACCESS_KEY },
            region: REGION,
            service: "s3",
          }),
      });
      closers.push(() => e.stop());
      deployments.set(config, { config, envoy: e, backend });
    }
    return { deployments, caPem: ca.certPem, close };
  } catch (err) {
    await close();
    throw err;
  }
}

async function waitForPort(host: string, port: number, ms: number, child: ChildProcess): Promise<boolean> {
  const { connect } = await import("node:net");
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ host, port });
      sock.once("connect", () => {
        sock.destroy();
        resolve(true);
      });
      sock.once("error", () => resolve(false));
    });
    if (ok) return true;
    await sleep(100);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------

function pin(pid: number, cpus: string): void {
  spawnSync("taskset", ["-a", "-pc", cpus, String(pid)], { stdio: "ignore" });
}

interface Measured {
  readonly r: HttpLoadResult;
  readonly envoyCpu: number;
  readonly serverCpu: number;
  readonly rssKiB: number;
  /** The measured window on the monotonic clock (µs), as V8 profiles time their samples. */
  readonly windowUs: { readonly startUs: number; readonly endUs: number };
}

async function measure(s: RealSettings, d: Deployment, cfg: HttpLoadConfig, pinLoadTo?: string): Promise<Measured> {
  const child = fork(LOAD, [], { cwd: REPO, execArgv: ["--import", "tsx"], env: { ...process.env, BENCH_HTTP_LOAD: JSON.stringify(cfg) }, stdio: ["ignore", "inherit", "inherit", "ipc"] });
  s.track(child);
  if (pinLoadTo && child.pid) pin(child.pid, pinLoadTo);
  const inbox: HttpLoadMessage[] = [];
  let wake: (() => void) | undefined;
  let exited = false;
  child.on("message", (m: HttpLoadMessage) => {
    inbox.push(m);
    wake?.();
  });
  child.once("exit", () => {
    exited = true;
    wake?.();
  });
  const next = async <T extends HttpLoadMessage["type"]>(type: T, ms: number): Promise<Extract<HttpLoadMessage, { type: T }>> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const fatal = inbox.find((m) => m.type === "fatal");
      if (fatal && fatal.type === "fatal") throw new Error(`load generator: ${fatal.error}`);
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return inbox.splice(i, 1)[0] as Extract<HttpLoadMessage, { type: T }>;
      if (exited) throw new Error(`load generator exited before "${type}"`);
      if (Date.now() > deadline) throw new Error(`load generator: no "${type}" within ${ms} ms`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 200);
      });
      wake = undefined;
    }
  };
  try {
    await next("ready", 60_000);
    child.send({ cmd: "go" });
    await next("measuring", (cfg.warmupS + 60) * 1000);
    const startUs = Number(process.hrtime.bigint() / 1000n);
    const e0 = cpuSeconds(d.envoy.pid);
    const b0 = d.backend ? cpuSeconds(d.backend.pid, d.backend.tree) : 0;
    let rssKiB = 0;
    const sampler = setInterval(() => {
      if (d.backend) rssKiB = Math.max(rssKiB, memory(d.backend.pid, d.backend.tree).rssKiB);
    }, 100);
    let r: HttpLoadResult;
    try {
      r = await next("result", (cfg.durationS + 120) * 1000);
    } finally {
      clearInterval(sampler);
    }
    const endUs = Number(process.hrtime.bigint() / 1000n);
    const e1 = cpuSeconds(d.envoy.pid);
    const b1 = d.backend ? cpuSeconds(d.backend.pid, d.backend.tree) : 0;
    if (d.backend) rssKiB = Math.max(rssKiB, memory(d.backend.pid, d.backend.tree).rssKiB);
    return { r, envoyCpu: e1 - e0, serverCpu: b1 - b0, rssKiB, windowUs: { startUs, endUs } };
  } finally {
    if (!exited) child.kill("SIGKILL");
  }
}

function median(xs: readonly number[]): number {
  const v = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
}

function combine(base: Pick<RealRun, "mode" | "scenario" | "config" | "load">, ms: readonly Measured[], bodyBytes: number): RealRun {
  const hist = new LatencyHistogram();
  for (const m of ms) hist.merge(LatencyHistogram.fromJSON(m.r.histogram));
  const per = (f: (m: Measured) => number): number => median(ms.map((m) => (m.r.completed > 0 ? (f(m) / m.r.completed) * 1e6 : Number.NaN)));
  const rps = median(ms.map((m) => m.r.completed / (m.r.windowMs / 1000)));
  return {
    ...base,
    rounds: ms.length,
    completed: ms.reduce((a, m) => a + m.r.completed, 0),
    errors: ms.reduce((a, m) => a + m.r.errors, 0),
    firstError: ms.find((m) => m.r.firstError)?.r.firstError,
    requestsPerSecond: rps,
    mbPerSecond: (rps * bodyBytes) / 1e6,
    p50Us: hist.quantile(0.5),
    p99Us: hist.quantile(0.99),
    p999Us: hist.quantile(0.999),
    queued: ms.reduce((a, m) => a + m.r.queued, 0),
    envoyCpuUsPerRequest: per((m) => m.envoyCpu),
    serverCpuUsPerRequest: per((m) => m.serverCpu),
    totalCpuUsPerRequest: per((m) => m.envoyCpu + m.serverCpu),
    clientCores: median(ms.map((m) => m.r.clientCpuSeconds / (m.r.windowMs / 1000))),
    envoyCores: median(ms.map((m) => m.envoyCpu / (m.r.windowMs / 1000))),
    serverRssMiB: Math.max(...ms.map((m) => m.rssKiB / 1024)),
  };
}

function configsFor(scenario: RealScenario, workers2: boolean): RealConfig[] {
  if (scenario === "refused") return ["C1"]; // only countersign has a policy to refuse with
  if (scenario === "upload") return ["F", "Nu", "C1", "X"];
  return workers2 ? ["F", "N", "C1", "C2", "X"] : ["F", "N", "C1", "X"];
}

function loadsFor(scenario: RealScenario): LoadKind[] {
  return scenario === "upload" ? ["closed"] : ["closed", "paced200", "paced1000"];
}

export async function runRealPath(s: RealSettings, dir: string): Promise<RealResults> {
  const all: RealConfig[] = s.workers2 ? ["F", "N", "Nu", "C1", "C2", "X"] : ["F", "N", "Nu", "C1", "X"];
  s.log(`real path: starting Envoy ${ENVOY_VERSION} in ${all.length} configurations (${all.join(", ")}), the responder and the ext_proc servers`);
  const stack = await startStack(s, dir, all);
  const runs: RealRun[] = [];
  let workersNote = "not measured (BENCH_REAL_WORKERS=0)";
  try {
    for (const mode of s.modes) {
      for (const scenario of s.scenarios) {
        if (scenario === "refused" && mode === "endpoint") continue; // endpoint_in sends every request to the S3 host the policy allows
        const configs = configsFor(scenario, s.workers2);
        for (const load of loadsFor(scenario)) {
          const got = new Map<RealConfig, Measured[]>(configs.map((c) => [c, []]));
          for (let round = 0; round < s.rounds; round++) {
            // Interleaved: the order turns each round.
            const order = configs.map((_, i) => configs[(i + round) % configs.length] as RealConfig);
            for (const config of order) {
              const d = stack.deployments.get(config) as Deployment;
              const upload = scenario === "upload";
              const cfg: HttpLoadConfig = {
                port: mode === "endpoint" ? d.envoy.endpointPort : d.envoy.connectPort,
                mode,
                caPem: stack.caPem,
                scenario,
                connections: upload ? 1 : load === "closed" ? s.connections : 64,
                load: upload ? "upload" : load === "closed" ? "closed" : "paced",
                rate: load === "paced200" ? 200 : 1000,
                warmupS: s.warmupS,
                durationS: upload ? Math.max(s.durationS, 3) : s.durationS,
                uploadBytes: s.uploadMiB * 1024 * 1024,
              };
              const m = await measure(s, d, cfg);
              got.get(config)?.push(m);
              const rps = m.r.completed / (m.r.windowMs / 1000);
              s.log(
                `${mode} ${scenario} ${load} ${config}: ${rps.toFixed(0)} req/s, envoy ${((m.envoyCpu / Math.max(1, m.r.completed)) * 1e6).toFixed(0)} µs/req, server ${((m.serverCpu / Math.max(1, m.r.completed)) * 1e6).toFixed(0)} µs/req, client ${(m.r.clientCpuSeconds / (m.r.windowMs / 1000)).toFixed(2)} cores${m.r.errors ? `, ${m.r.errors} errors (${m.r.firstError ?? ""})` : ""}`,
              );
            }
          }
          const bodyBytes = scenario === "upload" ? s.uploadMiB * 1024 * 1024 : 0;
          for (const config of configs) runs.push(combine({ mode, scenario, config, load: scenario === "upload" ? "upload" : load }, got.get(config) ?? [], bodyBytes));
        }
      }
    }
    if (s.workers2) {
      // --workers scaling: the load generator pinned to CPU 1, Envoy and countersign unpinned.
      const got = new Map<RealConfig, Measured[]>([
        ["C1", []],
        ["C2", []],
      ]);
      for (let round = 0; round < s.rounds; round++) {
        for (const config of round % 2 ? (["C2", "C1"] as const) : (["C1", "C2"] as const)) {
          const d = stack.deployments.get(config) as Deployment;
          const cfg: HttpLoadConfig = { port: d.envoy.endpointPort, mode: "endpoint", caPem: stack.caPem, scenario: "get", connections: s.connections, load: "closed", rate: 0, warmupS: s.warmupS, durationS: s.durationS, uploadBytes: 0 };
          got.get(config)?.push(await measure(s, d, cfg, "1"));
        }
      }
      const one = combine({ mode: "endpoint", scenario: "get", config: "C1", load: "workers" }, got.get("C1") ?? [], 0);
      const two = combine({ mode: "endpoint", scenario: "get", config: "C2", load: "workers" }, got.get("C2") ?? [], 0);
      runs.push(one, two);
      workersNote = `headers-only GET, endpoint mode, closed loop, load generator pinned to CPU 1 (taskset), Envoy (1 worker thread) and countersign free on both cores: --workers 1 ${one.requestsPerSecond.toFixed(0)} req/s, --workers 2 ${two.requestsPerSecond.toFixed(0)} req/s (× ${(two.requestsPerSecond / one.requestsPerSecond).toFixed(2)}). On 2 cores Envoy, the load generator and countersign share the machine, so this shows contention, not the scaling of a host with cores to spare.`;
    }
  } finally {
    await stack.close();
  }
  const profile = s.profile ? await profileCountersign(s, dir) : undefined;
  const { track: _t, log: _l, ...settings } = s;
  return { envoyVersion: ENVOY_VERSION, settings, runs, targets: realTargets(runs, s.modes), workersNote, profile };
}

/** countersign under node --cpu-prof behind its own Envoy (C1 alone): where its CPU goes on the real path. */
async function profileCountersign(s: RealSettings, dir: string): Promise<RealResults["profile"]> {
  const profDir = join(dir, "cpuprof-real");
  mkdirSync(profDir, { recursive: true });
  s.log("real path: profiling countersign (node --cpu-prof) behind Envoy, headers-only GET, endpoint mode, closed loop");
  const stackDir = join(dir, "profiled");
  mkdirSync(stackDir, { recursive: true });
  const stack = await startStack(s, stackDir, ["C1"], profDir);
  let m: Measured;
  try {
    const d = stack.deployments.get("C1") as Deployment;
    m = await measure(s, d, { port: d.envoy.endpointPort, mode: "endpoint", caPem: stack.caPem, scenario: "get", connections: s.connections, load: "closed", rate: 0, warmupS: s.warmupS, durationS: s.durationS, uploadBytes: 0 });
  } finally {
    await stack.close(); // SIGTERM: countersign writes its profile as it exits
  }
  const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
  if (!file) {
    s.log("real path: countersign wrote no .cpuprofile");
    return undefined;
  }
  const cpuProfile = JSON.parse(readFileSync(join(profDir, file), "utf8")) as CpuProfile;
  // Only the measured window when the clocks line up (they do on Linux: both monotonic).
  const inWindow = cpuProfile.startTime <= m.windowUs.startUs && cpuProfile.endTime >= m.windowUs.endUs;
  const summary = summarizeProfile(cpuProfile, 25, inWindow ? m.windowUs : undefined);
  return { ...summary, window: inWindow ? "measured window only" : "whole process life (clocks did not line up)", requestsPerSecond: m.r.completed / (m.r.windowMs / 1000), serverCpuUsPerRequest: (m.serverCpu / Math.max(1, m.r.completed)) * 1e6 };
}

// ---------------------------------------------------------------------------------------------

function find(runs: readonly RealRun[], mode: Mode, scenario: RealScenario, config: RealConfig, load: RealRun["load"]): RealRun | undefined {
  return runs.find((r) => r.mode === mode && r.scenario === scenario && r.config === config && r.load === load);
}

const ms = (us: number): string => `${(us / 1000).toFixed(2)} ms`;

export function realTargets(runs: readonly RealRun[], modes: readonly Mode[]): RealTarget[] {
  const out: RealTarget[] = [];
  for (const mode of modes) {
    const t = (name: string, limit: string, value: number | undefined, pass: (v: number) => boolean, fmt: (v: number) => string): void => {
      const ok = value !== undefined && Number.isFinite(value);
      out.push({ mode, name, limit, value: ok ? fmt(value) : "not measured", pass: ok ? pass(value) : undefined });
    };
    const cGet = find(runs, mode, "get", "C1", "closed");
    const nGet = find(runs, mode, "get", "N", "closed");
    t("C's headers-only throughput / N's (closed loop)", "≥ 0.5", cGet && nGet ? cGet.requestsPerSecond / nGet.requestsPerSecond : undefined, (v) => v >= 0.5, (v) => `${v.toFixed(2)} (${cGet?.requestsPerSecond.toFixed(0)} / ${nGet?.requestsPerSecond.toFixed(0)} req/s)`);
    const c200 = find(runs, mode, "get", "C1", "paced200");
    const f200 = find(runs, mode, "get", "F", "paced200");
    t("C's p50 latency added over F at 200 req/s", "≤ 0.3 ms", c200 && f200 ? c200.p50Us - f200.p50Us : undefined, (v) => v <= 300, ms);
    t("C's p99 latency added over F at 200 req/s", "≤ 1.5 ms", c200 && f200 ? c200.p99Us - f200.p99Us : undefined, (v) => v <= 1500, ms);
    const c1k = find(runs, mode, "get", "C1", "paced1000");
    const n1k = find(runs, mode, "get", "N", "paced1000");
    const x1k = find(runs, mode, "get", "X", "paced1000");
    t(
      "total CPU per headers-only request (Envoy + countersign), C / N, at 1,000 req/s",
      "≤ 4.0",
      c1k && n1k ? c1k.totalCpuUsPerRequest / n1k.totalCpuUsPerRequest : undefined,
      (v) => v <= 4,
      (v) => `${v.toFixed(2)} (${c1k?.totalCpuUsPerRequest.toFixed(0)} / ${n1k?.totalCpuUsPerRequest.toFixed(0)} µs)`,
    );
    t(
      "countersign's CPU per request / the no-op ext_proc server's (X), at 1,000 req/s",
      "≤ 1.3",
      c1k && x1k ? c1k.serverCpuUsPerRequest / x1k.serverCpuUsPerRequest : undefined,
      (v) => v <= 1.3,
      (v) => `${v.toFixed(2)} (${c1k?.serverCpuUsPerRequest.toFixed(0)} / ${x1k?.serverCpuUsPerRequest.toFixed(0)} µs)`,
    );
    const cUp = find(runs, mode, "upload", "C1", "upload");
    const nUp = find(runs, mode, "upload", "Nu", "upload");
    t("chunk-signed upload throughput, C / N with use_unsigned_payload", "≥ 0.5", cUp && nUp ? cUp.mbPerSecond / nUp.mbPerSecond : undefined, (v) => v >= 0.5, (v) => `${v.toFixed(2)} (${cUp?.mbPerSecond.toFixed(0)} / ${nUp?.mbPerSecond.toFixed(0)} MB/s)`);
    const paced = runs.filter((r) => r.mode === mode && r.config === "C1" && (r.load === "paced200" || r.load === "paced1000"));
    t("RSS of countersign under the paced load", "≤ 150 MiB", paced.length ? Math.max(...paced.map((r) => r.serverRssMiB)) : undefined, (v) => v <= 150, (v) => `${v.toFixed(0)} MiB`);
  }
  return out;
}

const LOAD_TITLE: Record<string, string> = { closed: "closed loop", paced200: "200 req/s", paced1000: "1,000 req/s", upload: "upload", workers: "workers" };
const us = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : "-");

export function renderReal(r: RealResults): string {
  const lines: string[] = [];
  lines.push(`## Real path: Envoy ${r.envoyVersion} (--concurrency 1) + signing, side by side`);
  lines.push("");
  lines.push("F: no signing filter · N: Envoy's aws_request_signing (Nu: use_unsigned_payload) · C1/C2: countersign --workers 1/2 · X: no-op ext_proc server.");
  lines.push(`Medians of ${r.settings.rounds} interleaved round(s) of ${r.settings.durationS} s (after ${r.settings.warmupS} s warm-up); latency percentiles over all rounds. CPU µs/req from /proc over the same window; "client" is the load generator's cores (1.00 = it was the limit).`);
  for (const mode of r.settings.modes) {
    lines.push("");
    lines.push(`### ${mode === "endpoint" ? "Endpoint mode (plain HTTP to endpoint_in)" : "Proxy mode (CONNECT + TLS to connect_in)"}`);
    lines.push("");
    lines.push("| scenario | load | config | req/s | MB/s | p50 µs | p99 µs | p99.9 µs | Envoy µs/req | server µs/req | sum µs/req | client cores | server RSS MiB | errors |");
    lines.push("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const x of r.runs.filter((y) => y.mode === mode)) {
      lines.push(
        `| ${x.scenario} | ${LOAD_TITLE[x.load] ?? x.load} | ${x.config} | ${x.requestsPerSecond.toFixed(0)}${x.queued ? ` (${x.queued} queued)` : ""} | ${x.mbPerSecond ? x.mbPerSecond.toFixed(0) : "-"} | ${us(x.p50Us)} | ${us(x.p99Us)} | ${us(x.p999Us)} | ${us(x.envoyCpuUsPerRequest)} | ${x.serverRssMiB ? us(x.serverCpuUsPerRequest) : "-"} | ${us(x.totalCpuUsPerRequest)} | ${x.clientCores.toFixed(2)} | ${x.serverRssMiB ? x.serverRssMiB.toFixed(0) : "-"} | ${x.errors}${x.firstError ? ` (${x.firstError})` : ""} |`,
      );
    }
  }
  lines.push("");
  lines.push("### Real-path targets (ratios from this run)");
  lines.push("");
  lines.push("| mode | target | limit | measured | result |");
  lines.push("|---|---|---|---|---|");
  for (const t of r.targets) lines.push(`| ${t.mode} | ${t.name} | ${t.limit} | ${t.value} | ${t.pass === undefined ? "NOT MEASURED" : t.pass ? "PASS" : "MISS"} |`);
  lines.push("");
  lines.push(`--workers: ${r.workersNote}`);
  if (r.profile) {
    const p = r.profile;
    lines.push("");
    lines.push(`### countersign's CPU profile behind Envoy (headers-only GET, endpoint mode, closed loop, ${p.requestsPerSecond.toFixed(0)} req/s, ${p.serverCpuUsPerRequest.toFixed(0)} µs CPU/req; ${p.window})`);
    lines.push("");
    lines.push("| area | self % |");
    lines.push("|---|---:|");
    for (const a of p.areas.slice(0, 12)) lines.push(`| ${a.area} | ${a.selfPercent.toFixed(1)} |`);
    lines.push("");
    lines.push("| # | incl. % | function | where |");
    lines.push("|---:|---:|---|---|");
    p.inclusive.slice(0, 20).forEach((f, i) => lines.push(`| ${i + 1} | ${f.selfPercent.toFixed(1)} | \`${f.name}\` | ${f.where} |`));
  }
  return lines.join("\n");
}
