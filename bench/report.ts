/**
 * Result shapes of one `make bench` run, the targets computed from them, and the markdown report.
 */
import type { MicroResult } from "./micro.js";
import type { ProfileSummary } from "./topFunctions.js";
import { formatSummary } from "./topFunctions.js";

export interface LatencySummary {
  readonly p50Us: number;
  readonly p99Us: number;
  readonly p999Us: number;
  readonly maxUs: number;
  readonly meanUs: number;
}

export interface LoadRun {
  readonly scenario: string;
  readonly server: "noop" | "countersign";
  /** countersign's --log-level ("-" for the no-op server). */
  readonly logLevel: string;
  readonly workers: number;
  /** closed: `concurrency` streams kept busy (throughput, latency); paced: a fixed rate, run beside the no-op floor (the CPU comparison). */
  readonly load?: "closed" | "paced";
  /** Paced: the rate both servers were offered, req/s. */
  readonly targetRate?: number;
  /** Paced countersign rows: countersign ÷ no-op CPU per request in each round (each round pairs the two). */
  readonly pairedRatios?: readonly number[];
  /** Paced: starts skipped because the in-flight cap was reached (the server fell behind the rate). */
  readonly skipped?: number;
  readonly concurrency: number;
  readonly clients: number;
  readonly windowSeconds: number;
  readonly completed: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly requestsPerSecond: number;
  readonly latency: LatencySummary;
  /** Server user+system CPU over the window / exchanges completed in it. */
  readonly serverCpuUsPerRequest: number;
  /** Server CPU seconds per wall second (1.0 = one core busy). */
  readonly serverCores: number;
  /** Load generator CPU seconds per wall second, all client processes together. */
  readonly clientCores: number;
  readonly peakRssMiB: number;
  readonly bodyMBPerSecond: number;
  /** CPU used by everything else on the machine during the window (cores): other tenants' noise. */
  readonly otherCores: number;
  /** Rounds aggregated into this row (medians; RSS is the largest; errors add up). */
  readonly rounds: number;
  readonly serverCpuUsPerRequestMin: number;
  readonly serverCpuUsPerRequestMax: number;
  /** The measured window on the monotonic clock, µs (to cut a CPU profile to it). */
  readonly windowMonotonicUs: { startUs: number; endUs: number };
}

export interface HoldRun {
  readonly server: "noop" | "countersign";
  readonly streams: number;
  readonly rounds: number;
  readonly idleRssMiB: number;
  /** Largest VmRSS sample while all streams were open. */
  readonly holdingRssMiB: number;
  /** VmHWM at the end of the scenario (process lifetime peak). */
  readonly peakRssMiB: number;
  readonly completed: number;
  readonly errors: number;
  readonly firstError: string | undefined;
}

export interface UploadRun {
  readonly server: "noop" | "countersign";
  readonly decodedMiB: number;
  readonly seconds: number;
  readonly mbPerSecond: number;
  readonly rssBeforeMiB: number;
  readonly rssAfterMiB: number;
  readonly peakRssMiB: number;
  readonly growthMiB: number;
  readonly serverCpuSecondsPerGiB: number;
  readonly ok: boolean;
  readonly error: string | undefined;
}

export interface Target {
  readonly name: string;
  /** What was measured, in words and numbers. */
  readonly measured: string;
  readonly ratio: number | undefined;
  readonly limit: string;
  readonly result: "PASS" | "MISS" | "SKIP" | "n/a";
  readonly note?: string;
}

export interface BenchResults {
  readonly date: string;
  readonly machine: { cores: number; cpusInCpuinfo: number; cpuModel: string; node: string; kernel: string; memTotalMiB: number };
  readonly config: Record<string, string | number | boolean>;
  readonly targets: Target[];
  readonly runs: LoadRun[];
  readonly hold: HoldRun[];
  readonly upload: UploadRun[];
  readonly micro: { signing: MicroResult[]; breakdown: MicroResult[]; hashing: MicroResult[] } | undefined;
  readonly profile: (ProfileSummary & { scenario: string; file: string }) | undefined;
  /** The same for one chunk-signed upload (STREAMED). */
  readonly uploadProfile?: (ProfileSummary & { scenario: string; file: string }) | undefined;
  readonly workers: { supported: boolean; note: string; singleRps?: number; twoWorkersRps?: number };
  readonly durationSeconds: number;
}

function findRun(r: Pick<BenchResults, "runs">, scenario: string, server: LoadRun["server"], logLevel: string, workers = 1, load: "closed" | "paced" = "closed"): LoadRun | undefined {
  return r.runs.find((x) => x.scenario === scenario && x.server === server && x.logLevel === logLevel && x.workers === workers && (x.load ?? "closed") === load);
}

function medianOf(xs: readonly number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? (v[m] as number) : ((v[m - 1] as number) + (v[m] as number)) / 2;
}

function micro(r: Pick<BenchResults, "micro">, name: string): MicroResult | undefined {
  return [...(r.micro?.signing ?? []), ...(r.micro?.hashing ?? [])].find((m) => m.name.startsWith(name));
}

function verdict(ratio: number | undefined, ok: (x: number) => boolean): Target["result"] {
  if (ratio === undefined || !Number.isFinite(ratio)) return "n/a";
  return ok(ratio) ? "PASS" : "MISS";
}

const us = (x: number): string => `${x.toFixed(1)} µs`;
const mbs = (x: number): string => `${x.toFixed(0)} MB/s`;

export function computeTargets(r: Omit<BenchResults, "targets">, headlineLevel: string): Target[] {
  const targets: Target[] = [];

  const cpuTarget = (scenario: string, level: string, headline: boolean, load: "closed" | "paced"): void => {
    const cs = findRun(r, scenario, "countersign", level, 1, load);
    const floor = findRun(r, scenario, "noop", "-", 1, load);
    // Paired rounds: the median of the per-round ratios (each round saw one machine state).
    const ratio = cs && floor ? (cs.pairedRatios?.length ? medianOf(cs.pairedRatios) : cs.serverCpuUsPerRequest / floor.serverCpuUsPerRequest) : undefined;
    const how = load === "paced" ? `at ${cs?.targetRate ?? "?"} req/s beside the floor` : "closed loop, each at its own throughput";
    targets.push({
      name: `${headline ? "" : "(info) "}server CPU per request, ${scenario}, --log-level ${level}, vs no-op floor (${how})`,
      measured: cs && floor ? `${us(cs.serverCpuUsPerRequest)} vs ${us(floor.serverCpuUsPerRequest)}${cs.pairedRatios && cs.pairedRatios.length > 1 ? `; rounds ${cs.pairedRatios.map((x) => x.toFixed(2)).join(", ")}` : ""}` : "not measured",
      ratio,
      limit: "≤ 1.30",
      result: headline ? verdict(ratio, (x) => x <= 1.3) : ratio === undefined ? "n/a" : ratio <= 1.3 ? "PASS" : "MISS",
      note: cs && (cs.errors > 0 || (cs.skipped ?? 0) > 0) ? `${cs.errors} errors, ${cs.skipped ?? 0} starts skipped: the server fell behind the rate` : undefined,
    });
  };
  cpuTarget("headers-unsigned", headlineLevel, true, "paced");
  cpuTarget("headers-hash", headlineLevel, false, "paced");
  cpuTarget("headers-unsigned", headlineLevel, false, "closed");
  cpuTarget("headers-hash", headlineLevel, false, "closed");
  for (const level of ["info", "warn"]) if (level !== headlineLevel) cpuTarget("headers-unsigned", level, false, "closed");

  const bare = micro(r, "smithy-sign-bare");
  const stream = micro(r, "countersign-extproc-stream");
  const signRatio = bare && stream ? stream.nsPerOp / bare.nsPerOp : undefined;
  targets.push({
    name: "per-request signing work (ExtProcStream, request_headers) vs bare @smithy/signature-v4 sign()",
    measured: bare && stream ? `${us(stream.nsPerOp / 1000)} vs ${us(bare.nsPerOp / 1000)}` : "not measured",
    ratio: signRatio,
    limit: "≤ 1.20",
    result: verdict(signRatio, (x) => x <= 1.2),
  });

  const raw1m = micro(r, "sha256-raw-1MiB");
  const buffered = micro(r, "buffered-body-1MiB");
  const bufRatio = raw1m?.mbPerSecond && buffered?.mbPerSecond ? buffered.mbPerSecond / raw1m.mbPerSecond : undefined;
  targets.push({
    name: "BUFFERED body hashing (1 MiB, hash + sign) vs raw SHA-256 of 1 MiB",
    measured: raw1m?.mbPerSecond && buffered?.mbPerSecond ? `${mbs(buffered.mbPerSecond)} vs ${mbs(raw1m.mbPerSecond)}` : "not measured",
    ratio: bufRatio,
    limit: "≥ 0.80",
    result: verdict(bufRatio, (x) => x >= 0.8),
  });

  const raw64k = micro(r, "sha256-raw-64KiB");
  const resigner = micro(r, "chunk-resigner-16MiB");
  const chunkRatio = raw64k?.mbPerSecond && resigner?.mbPerSecond ? resigner.mbPerSecond / raw64k.mbPerSecond : undefined;
  targets.push({
    name: "chunk re-signing (AwsChunkedResigner, 64 KiB chunks) vs raw SHA-256 of 64 KiB",
    measured: raw64k?.mbPerSecond && resigner?.mbPerSecond ? `${mbs(resigner.mbPerSecond)} vs ${mbs(raw64k.mbPerSecond)}` : "not measured",
    ratio: chunkRatio,
    limit: "≥ 0.70",
    result: verdict(chunkRatio, (x) => x >= 0.7),
  });

  // Signed event streams: the target is on 64 KiB messages, where throughput is what a stream
  // needs; small messages (Transcribe's 3200 B audio frames, Bedrock's JSON events) are paced by
  // the client far below what one core re-signs, and their fixed per-message signing cost makes a
  // ratio to raw SHA-256 of so few bytes a measure of that cost, not of throughput: shown as info.
  for (const [label, headline] of [["64KiB", true], ["3200B", false], ["256B", false]] as const) {
    const raw = micro(r, `sha256-raw-${label}`);
    const ev = micro(r, `event-resigner-${label}`);
    const ratio = raw?.mbPerSecond && ev?.mbPerSecond ? ev.mbPerSecond / raw.mbPerSecond : undefined;
    targets.push({
      name: `${headline ? "" : "(info) "}event-stream re-signing (EventStreamResigner, ${label} messages) vs raw SHA-256 of ${label}`,
      measured: raw?.mbPerSecond && ev?.mbPerSecond ? `${mbs(ev.mbPerSecond)} (${us(ev.nsPerOp / 1000 / (ev.bytesPerOp / raw.bytesPerOp))} per message) vs ${mbs(raw.mbPerSecond)}` : "not measured",
      ratio,
      limit: "≥ 0.60",
      result: verdict(ratio, (x) => x >= 0.6),
    });
  }

  const hold = r.hold.find((h) => h.server === "countersign");
  targets.push({
    name: `peak RSS with ${hold?.streams ?? 1000} concurrent streams open (countersign serve)`,
    measured: hold ? `${hold.peakRssMiB.toFixed(1)} MiB (idle ${hold.idleRssMiB.toFixed(1)}, while holding ${hold.holdingRssMiB.toFixed(1)})${hold.errors ? `, ${hold.errors} errors` : ""}` : "not measured",
    ratio: hold ? hold.peakRssMiB / 150 : undefined,
    limit: "≤ 150 MiB",
    result: hold ? (hold.errors === 0 && hold.peakRssMiB <= 150 ? "PASS" : "MISS") : "n/a",
    note: hold && hold.streams < 1000 ? `only ${hold.streams} streams (quick run)` : undefined,
  });

  const up = r.upload.find((u) => u.server === "countersign");
  targets.push({
    name: `peak RSS growth during a ${up?.decodedMiB ?? 1024} MiB chunk-signed upload (one stream, 64 KiB chunks)`,
    measured: up ? `${up.growthMiB.toFixed(1)} MiB (before ${up.rssBeforeMiB.toFixed(1)}, after ${up.rssAfterMiB.toFixed(1)}, peak ${up.peakRssMiB.toFixed(1)})${up.ok ? "" : `, failed: ${up.error ?? "?"}`}` : "not measured",
    ratio: up ? up.growthMiB / 64 : undefined,
    limit: "≤ 64 MiB",
    result: up ? (up.ok && up.growthMiB <= 64 ? "PASS" : "MISS") : "n/a",
    note: up && up.decodedMiB < 1024 ? `only ${up.decodedMiB} MiB (quick run)` : undefined,
  });

  const w = r.workers;
  const wRatio = w.singleRps && w.twoWorkersRps ? w.twoWorkersRps / w.singleRps : undefined;
  targets.push({
    name: "--workers 2 throughput vs one worker",
    measured: w.supported ? (wRatio === undefined ? w.note : `${w.twoWorkersRps?.toFixed(0)} vs ${w.singleRps?.toFixed(0)} req/s`) : w.note,
    ratio: wRatio,
    limit: "≥ 1.70",
    result: w.supported ? verdict(wRatio, (x) => x >= 1.7) : "SKIP",
  });
  return targets;
}

const fmt = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : "—");

export function renderMarkdown(r: BenchResults): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`# countersign benchmark — ${r.date}`);
  out.push("");
  out.push(`Machine: ${m.cores} cores (${m.cpuModel}), ${m.memTotalMiB} MiB RAM, Linux ${m.kernel}, Node ${m.node}. Whole run: ${fmt(r.durationSeconds)} s.`);
  out.push(`Config: ${Object.entries(r.config).map(([k, v]) => `${k}=${String(v)}`).join(", ")}.`);
  out.push("");
  out.push("Ratios compare figures taken in this same run; absolute numbers drift between runs on shared machines.");
  out.push("");
  out.push("## Targets");
  out.push("");
  out.push("| target | measured | ratio | limit | result |");
  out.push("|---|---|---:|---|---|");
  for (const t of r.targets) {
    out.push(`| ${t.name}${t.note ? ` (${t.note})` : ""} | ${t.measured} | ${t.ratio === undefined ? "—" : t.ratio.toFixed(2)} | ${t.limit} | ${t.result} |`);
  }
  out.push("");
  out.push("## Load scenarios (ext_proc over loopback gRPC)");
  out.push("");
  out.push("Latency is per exchange, measured in the load generator (first message written → last answer read). Server CPU is user+system from /proc/PID/stat over the measured window, divided by the exchanges completed in it. Every round is a fresh server process; rows with several rounds show medians over rounds run interleaved with the no-op floor (no-op, countersign, no-op, countersign, ...). \"paced\" rows are the CPU comparison: the no-op floor and countersign run at the same time, each offered the same fixed request rate by its own load generator, their CPU read over the same window (CPU per request depends on the rate, so a closed loop, where the slower server runs at a lower rate, overstates the difference). Peak RSS is VmHWM. \"Other load\" is CPU used by everything else on the machine during the window (other tenants): when it is high, the absolute figures are noisy.");
  out.push("");
  out.push("| scenario | load | server | log | conc | rounds | req/s | p50 µs | p99 µs | p99.9 µs | server CPU/req µs (min–max) | × no-op | server cores | client cores | other load cores | body MB/s | peak RSS MiB | errors |");
  out.push("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const x of r.runs) {
    const load = x.load ?? "closed";
    const floor = findRun(r, x.scenario, "noop", "-", 1, load);
    const vs = x.server === "noop" || !floor ? "" : fmt(x.serverCpuUsPerRequest / floor.serverCpuUsPerRequest, 2);
    const server = x.workers > 1 ? `${x.server} ×${x.workers}` : x.server;
    out.push(
      `| ${x.scenario} | ${load === "paced" ? `paced ${x.targetRate ?? "?"}/s` : "closed"} | ${server} | ${x.logLevel} | ${x.concurrency} | ${x.rounds} | ${fmt(x.requestsPerSecond)} | ${fmt(x.latency.p50Us)} | ${fmt(x.latency.p99Us)} | ${fmt(x.latency.p999Us)} | ${fmt(x.serverCpuUsPerRequest, 1)}${x.rounds > 1 ? ` (${fmt(x.serverCpuUsPerRequestMin, 1)}–${fmt(x.serverCpuUsPerRequestMax, 1)})` : ""} | ${vs} | ${fmt(x.serverCores, 2)} | ${fmt(x.clientCores, 2)} | ${fmt(x.otherCores, 2)} | ${x.bodyMBPerSecond > 0 ? fmt(x.bodyMBPerSecond) : ""} | ${fmt(x.peakRssMiB, 1)} | ${x.errors}${x.firstError ? ` (${x.firstError.slice(0, 60)})` : ""} |`,
    );
  }
  out.push("");
  out.push("No-op rows with a body: the no-op server never asks for the body, so the client sends it unasked (same messages as to countersign); its STREAMED answers are empty CONTINUEs, whereas countersign sends every re-signed byte back.");
  out.push("");
  if (r.hold.length > 0 || r.upload.length > 0) {
    out.push("## Memory");
    out.push("");
    for (const h of r.hold) {
      out.push(`- ${h.server}, ${h.streams} streams held open (4 KiB JSON requests stopped after their BUFFERED headers answer), ${h.rounds} rounds: idle ${fmt(h.idleRssMiB, 1)} MiB, while holding ${fmt(h.holdingRssMiB, 1)} MiB, peak (VmHWM) ${fmt(h.peakRssMiB, 1)} MiB; ${h.completed} exchanges completed, ${h.errors} errors${h.firstError ? ` (${h.firstError})` : ""}.`);
    }
    for (const u of r.upload) {
      out.push(`- ${u.server}, one ${u.decodedMiB} MiB chunk-signed upload in 64 KiB messages: ${fmt(u.seconds, 1)} s, ${fmt(u.mbPerSecond)} MB/s of body, server CPU ${fmt(u.serverCpuSecondsPerGiB, 2)} s/GiB; RSS before ${fmt(u.rssBeforeMiB, 1)} MiB, after ${fmt(u.rssAfterMiB, 1)} MiB, peak ${fmt(u.peakRssMiB, 1)} MiB (growth ${fmt(u.growthMiB, 1)} MiB)${u.ok ? "" : `; FAILED: ${u.error ?? "?"}`}.`);
    }
    out.push("");
  }
  if (r.micro) {
    out.push("## In-process micro-benchmarks");
    out.push("");
    out.push("Interleaved batches after warm-up; median of batch means (spread = (max − min) / median).");
    out.push("");
    out.push("| benchmark | per op | MB/s | spread | batches × ops |");
    out.push("|---|---:|---:|---:|---:|");
    for (const x of [...r.micro.signing, ...r.micro.breakdown, ...r.micro.hashing]) {
      const per = x.nsPerOp >= 1e6 ? `${(x.nsPerOp / 1e6).toFixed(2)} ms` : `${(x.nsPerOp / 1000).toFixed(2)} µs`;
      out.push(`| ${x.name} | ${per} | ${x.mbPerSecond === undefined ? "" : fmt(x.mbPerSecond)} | ${(x.spread * 100).toFixed(0)}% | ${x.batches} × ${x.opsPerBatch} |`);
    }
    out.push("");
  }
  out.push("## --workers");
  out.push("");
  out.push(r.workers.note);
  out.push("");
  for (const p of [r.profile, r.uploadProfile]) {
    if (!p) continue;
    out.push(`## Server CPU profile (${p.scenario}, node --cpu-prof)`);
    out.push("");
    out.push(`Profile file: ${p.file} (not committed).`);
    out.push("");
    out.push(formatSummary(p));
    out.push("");
  }
  return out.join("\n");
}
