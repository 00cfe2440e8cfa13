/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time per function and per code area.
 *
 *   node --import tsx bench/topFunctions.ts FILE.cpuprofile [TOP_N]
 *
 * Self time of a node = the sum of the sampling intervals (timeDeltas) whose sample landed in it.
 */
import { readFileSync, statSync } from "node:fs";
import { fileURLToPath } from "node:url";

interface CallFrame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
  readonly columnNumber: number;
}

interface ProfileNode {
  readonly id: number;
  readonly callFrame: CallFrame;
  readonly children?: readonly number[];
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface FunctionTime {
  readonly name: string;
  /** Short location: path from the project root or the package, :line (1-based). */
  readonly where: string;
  readonly area: string;
  readonly selfMs: number;
  /** Share of busy (non-idle) time. */
  readonly selfPercent: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly busyMs: number;
  readonly functions: FunctionTime[];
  /** Inclusive (self + callees) time of JS functions outside Node's internals, largest first. */
  readonly inclusive: FunctionTime[];
  readonly areas: Array<{ area: string; selfMs: number; selfPercent: number }>;
}

/** "(program)" stays in: it is native work with no JS frame (nghttp2, syscalls), part of the cost. */
const IDLE = new Set(["(idle)"]);

/** Where a function lives: countersign's own code, a package, Node internals or V8. */
export function areaOf(frame: CallFrame): string {
  const url = frame.url;
  if (url === "") return frame.functionName.startsWith("(") ? frame.functionName : "(native)";
  if (url.startsWith("node:")) return "node:internal";
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1] ?? ""}` : (rest[0] ?? "?");
  }
  const dist = /\/(?:dist\/)?(src|bench|test)\/(.+)$/.exec(url);
  if (dist) return `countersign ${dist[1]}/${(dist[2] as string).split("/")[0]}`;
  return "other";
}

function shortWhere(frame: CallFrame): string {
  const url = frame.url.replace(/^file:\/\//, "");
  if (url === "") return "";
  const nm = url.lastIndexOf("/node_modules/");
  const base = nm >= 0 ? url.slice(nm + "/node_modules/".length) : (/\/((?:dist\/)?(?:src|bench|test)\/.+)$/.exec(url)?.[1] ?? url);
  return `${base}:${frame.lineNumber + 1}`;
}

/**
 * `window` (µs on the profile's clock, CLOCK_MONOTONIC on Linux, like process.hrtime) keeps only
 * the samples taken inside it, e.g. the measured load window without start-up and shutdown.
 */
export function summarizeProfile(profile: CpuProfile, topN = 20, window?: { startUs: number; endUs: number }): ProfileSummary {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const selfUs = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (window && (t < window.startUs || t > window.endUs)) continue;
    const id = profile.samples[i] as number;
    selfUs.set(id, (selfUs.get(id) ?? 0) + delta);
  }
  const fnTotals = new Map<string, { frame: CallFrame; us: number }>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = (byId.get(id) as ProfileNode).callFrame;
    totalUs += us;
    if (IDLE.has(frame.functionName)) {
      idleUs += us;
      continue;
    }
    const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}|${frame.columnNumber}`;
    const entry = fnTotals.get(key) ?? { frame, us: 0 };
    entry.us += us;
    fnTotals.set(key, entry);
  }
  const busyUs = totalUs - idleUs || 1;
  // Inclusive: each sample counts once for every distinct function on its stack.
  const incl = new Map<string, { frame: CallFrame; us: number }>();
  for (const [id, us] of selfUs) {
    if (IDLE.has((byId.get(id) as ProfileNode).callFrame.functionName)) continue;
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const frame = (byId.get(cur) as ProfileNode).callFrame;
      const area = areaOf(frame);
      if (frame.url === "" || area === "node:internal") continue;
      const key = `${frame.functionName}|${frame.url}|${frame.lineNumber}|${frame.columnNumber}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const entry = incl.get(key) ?? { frame, us: 0 };
      entry.us += us;
      incl.set(key, entry);
    }
  }
  const areaTotals = new Map<string, number>();
  for (const { frame, us } of fnTotals.values()) areaTotals.set(areaOf(frame), (areaTotals.get(areaOf(frame)) ?? 0) + us);
  const rank = (m: Map<string, { frame: CallFrame; us: number }>): FunctionTime[] =>
    [...m.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map(({ frame, us }) => ({
        name: frame.functionName || "(anonymous)",
        where: shortWhere(frame),
        area: areaOf(frame),
        selfMs: us / 1000,
        selfPercent: (100 * us) / busyUs,
      }));
  const functions = rank(fnTotals);
  const inclusive = rank(incl);
  const areas = [...areaTotals]
    .sort((a, b) => b[1] - a[1])
    .map(([area, us]) => ({ area, selfMs: us / 1000, selfPercent: (100 * us) / busyUs }));
  return { totalMs: totalUs / 1000, busyMs: (totalUs - idleUs) / 1000, functions, inclusive, areas };
}

export function formatSummary(s: ProfileSummary): string {
  const lines = [
    `busy ${s.busyMs.toFixed(0)} ms of ${s.totalMs.toFixed(0)} ms sampled (idle excluded from the shares; "(program)" is native code without a JS frame, e.g. nghttp2 and syscalls)`,
    "",
    "| # | self % | self ms | function | where | area |",
    "|---:|---:|---:|---|---|---|",
    ...s.functions.map((f, i) => `| ${i + 1} | ${f.selfPercent.toFixed(1)} | ${f.selfMs.toFixed(0)} | \`${f.name}\` | ${f.where} | ${f.area} |`),
    "",
    "| area | self % | self ms |",
    "|---|---:|---:|",
    ...s.areas.slice(0, 15).map((a) => `| ${a.area} | ${a.selfPercent.toFixed(1)} | ${a.selfMs.toFixed(0)} |`),
    "",
    "Inclusive time (the function and everything it called), JS outside Node's internals:",
    "",
    "| # | incl. % | incl. ms | function | where | area |",
    "|---:|---:|---:|---|---|---|",
    ...s.inclusive.map((f, i) => `| ${i + 1} | ${f.selfPercent.toFixed(1)} | ${f.selfMs.toFixed(0)} | \`${f.name}\` | ${f.where} | ${f.area} |`),
  ];
  return lines.join("\n");
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // `node --cpu-prof --import tsx` writes two profiles (tsx's loader thread too), so a glob gives
  // several files: the largest is the main thread's. A trailing number is TOP_N.
  const args = process.argv.slice(2);
  const last = args.at(-1);
  const topN = last !== undefined && /^\d+$/.test(last) ? Number(args.pop()) : 25;
  if (args.length === 0) {
    process.stderr.write("usage: node --import tsx bench/topFunctions.ts FILE.cpuprofile... [TOP_N]\n");
    process.exit(2);
  }
  const file = args.reduce((a, b) => (statSync(b).size > statSync(a).size ? b : a));
  if (args.length > 1) process.stdout.write(`${file} (the largest of ${args.length} profiles)\n\n`);
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  process.stdout.write(`${formatSummary(summarizeProfile(profile, topN))}\n`);
}
