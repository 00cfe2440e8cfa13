/**
 * The soak's load generator, a child process of test/soak.ts (IPC channel required), so that its
 * CPU is its own and the fake AWS in the parent is not starved by it.
 *
 * It sends the workload mix (workload.ts) the way a workload's SDK does with HTTPS_PROXY set:
 * CONNECT to Envoy's proxy listener, TLS to the AWS host through the tunnel (trusting
 * countersign's CA), HTTP/1.1 with keep-alive, so each tunnel carries many requests. Requests are
 * built once up front (VARIANTS per mode, fresh random bodies) and sent again and again; the modes
 * take turns, so each gets the same share of the rate.
 *
 * Open loop: requests start at `rate` per second, at most `concurrency` in flight. When the
 * stack falls behind, up to one second of starts is caught up; anything later is dropped and
 * counted as `skipped` (the rate was not held). `rate` 0: closed loop, `concurrency` in flight.
 *
 * Every answer is checked here: 200 for a request countersign must sign (the fake AWS verified
 * it: signature, payload hash, every chunk and trailer signature), the expected status and AWS
 * error code for a refusal. The parent checks what reached the fake AWS (test/soak.ts).
 *
 * Config: JSON in SOAK_LOADGEN (LoadgenConfig). IPC: parent → child {cmd:"go"} once the parent
 * has taken its idle readings; child → parent: LoadgenMessage.
 */
import { readFileSync } from "node:fs";
import https from "node:https";
import { performance } from "node:perf_hooks";
import { LatencyHistogram } from "../../bench/histogram.js";
import { TunnelAgent } from "../support/tunnelAgent.js";
import { MODES, plan, type Mode, type Planned } from "./workload.js";

export interface LoadgenConfig {
  /** http://127.0.0.1:<port> — Envoy's CONNECT listener. */
  readonly proxyUrl: string;
  /** PEM file of the CA that issued Envoy's listener certificate. */
  readonly caFile: string;
  /** The payload modes to send, in turn. */
  readonly modes: readonly Mode[];
  /** Requests started per second; 0 = closed loop. */
  readonly rate: number;
  readonly concurrency: number;
  readonly durationMs: number;
  /** How often a "report" message is sent. */
  readonly reportEveryMs: number;
}

export interface ModeCounts {
  ok: number;
  errors: number;
}

export type LoadgenMessage =
  | { readonly type: "ready"; readonly planned: number; readonly bodyMiB: number }
  | {
      readonly type: "report";
      /** ms since the load started. */
      readonly t: number;
      /** Since the previous report. */
      readonly perMode: Record<Mode, ModeCounts>;
      readonly skipped: number;
      readonly latency: ReturnType<LatencyHistogram["toJSON"]>;
      readonly inFlight: number;
      readonly errorSamples: string[];
    }
  | { readonly type: "done"; readonly t: number };

/** Request variants built per mode (refusals: a multiple of their five reasons). */
const VARIANTS = 20;
/** One request gives up after this long (an error). */
const REQUEST_TIMEOUT_MS = 30_000;
const MAX_ERROR_SAMPLES = 5;

function send(msg: LoadgenMessage): void {
  process.send?.(msg);
}

function zeroCounts(): Record<Mode, ModeCounts> {
  return Object.fromEntries(MODES.map((m) => [m, { ok: 0, errors: 0 }])) as Record<Mode, ModeCounts>;
}

interface Answer {
  readonly status: number;
  readonly body: string;
}

/** Sends one request; resolves with the answer, even when the server answered before the body was sent whole (a refusal). */
function exchange(agent: https.Agent, p: Planned): Promise<Answer> {
  const r = p.request;
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = https.request(
      { agent, host: r.authority, port: 443, servername: r.authority, method: r.method, path: r.path, headers: Object.fromEntries(r.headers), timeout: REQUEST_TIMEOUT_MS },
      (res) => {
        answered = true;
        const parts: Buffer[] = [];
        res.on("data", (d: Buffer) => parts.push(d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
    req.on("error", (err) => {
      // Envoy closes the connection after answering a refused upload it did not read whole.
      if (!answered) reject(err);
    });
    req.end(r.body);
  });
}

/** Undefined when the answer is what the plan expects, else why not. */
function check(p: Planned, a: Answer): string | undefined {
  const want = p.expect;
  if (want.kind === "refused") {
    if (a.status !== want.status) return `${want.why}: answered ${a.status}, expected ${want.status}: ${a.body.slice(0, 200)}`;
    if (!a.body.includes(`<Code>${want.code}</Code>`)) return `${want.why}: expected <Code>${want.code}</Code> in ${a.body.slice(0, 200)}`;
    return undefined;
  }
  if (a.status !== want.status) return `answered ${a.status}, expected ${want.status}: ${a.body.slice(0, 300)}`;
  return undefined;
}

async function main(): Promise<void> {
  const raw = process.env.SOAK_LOADGEN;
  if (!raw) throw new Error("SOAK_LOADGEN (JSON config) is not set; this runs under test/soak.ts");
  const cfg = JSON.parse(raw) as LoadgenConfig;
  const ca = readFileSync(cfg.caFile, "utf8");
  // keepAlive: tunnels (CONNECT + TLS) are reused request after request, as an SDK's agent does.
  const proxy = new URL(cfg.proxyUrl);
  const agent = new TunnelAgent({ host: proxy.hostname, port: Number(proxy.port) }, { keepAlive: true, maxSockets: cfg.concurrency, maxFreeSockets: cfg.concurrency, scheduling: "lifo", ca });

  const modes = cfg.modes;
  const pool = new Map<Mode, Planned[]>(modes.map((m) => [m, Array.from({ length: VARIANTS }, (_, v) => plan(m, v))]));
  let bodyBytes = 0;
  for (const list of pool.values()) for (const p of list) bodyBytes += p.request.body.length;
  const go = new Promise<void>((resolve) => process.on("message", (m: { cmd?: string }) => m.cmd === "go" && resolve()));
  send({ type: "ready", planned: VARIANTS * modes.length, bodyMiB: bodyBytes / 2 ** 20 });
  await go;

  let perMode = zeroCounts();
  let latency = new LatencyHistogram();
  let errorSamples: string[] = [];
  /** Starts dropped since the last report / since the start. */
  let skipped = 0;
  let skippedTotal = 0;
  let started = 0;
  let inFlight = 0;

  const record = (mode: Mode, micros: number, problem: string | undefined): void => {
    const c = perMode[mode];
    if (problem === undefined) {
      c.ok++;
      latency.record(micros);
    } else {
      c.errors++;
      if (errorSamples.length < MAX_ERROR_SAMPLES) errorSamples.push(`[${mode}] ${problem}`);
    }
  };

  // One upload first, so the bucket exists before the first list request asks for it.
  const first = plan("hex-sha256", 0);
  const t0 = performance.now();
  const firstAnswer = await exchange(agent, first).catch((err: unknown) => err);
  record(first.mode, (performance.now() - t0) * 1000, firstAnswer instanceof Error ? `exception: ${firstAnswer.message}` : check(first, firstAnswer as Answer));

  const start = performance.now();
  const deadline = start + cfg.durationMs;
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const launch = (): void => {
    const n = started++;
    const mode = modes[n % modes.length] as Mode;
    const variants = pool.get(mode) as Planned[];
    const p = variants[Math.floor(n / modes.length) % variants.length] as Planned;
    inFlight++;
    const t0 = performance.now();
    exchange(agent, p).then(
      (a) => record(mode, (performance.now() - t0) * 1000, check(p, a)),
      (err: unknown) => record(mode, 0, `exception: ${err instanceof Error ? err.message : String(err)}`),
    ).finally(() => {
      inFlight--;
      pump();
    });
  };

  /** Starts what is due (open loop) or refills the in-flight set (closed loop). */
  const pump = (): void => {
    const now = performance.now();
    if (now >= deadline) {
      if (inFlight === 0) finish();
      return;
    }
    if (cfg.rate <= 0) {
      while (inFlight < cfg.concurrency) launch();
      return;
    }
    let due = Math.floor(((now - start) / 1000) * cfg.rate) - started - skippedTotal;
    const catchUp = Math.ceil(cfg.rate);
    if (due > catchUp) {
      // More than a second behind: drop the excess rather than burst.
      skipped += due - catchUp;
      skippedTotal += due - catchUp;
      due = catchUp;
    }
    while (due > 0 && inFlight < cfg.concurrency) {
      launch();
      due--;
    }
  };

  const ticker = setInterval(pump, 2);
  const reporter = setInterval(() => {
    send({ type: "report", t: performance.now() - start, perMode, skipped, latency: latency.toJSON(), inFlight, errorSamples });
    perMode = zeroCounts();
    latency = new LatencyHistogram();
    errorSamples = [];
    skipped = 0;
  }, cfg.reportEveryMs);
  pump();
  await finished;
  clearInterval(ticker);
  clearInterval(reporter);
  send({ type: "report", t: performance.now() - start, perMode, skipped, latency: latency.toJSON(), inFlight, errorSamples });
  send({ type: "done", t: performance.now() - start });
  agent.destroy();
}

process.on("disconnect", () => process.exit(0));
main().catch((err: unknown) => {
  console.error(`soak loadgen: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
