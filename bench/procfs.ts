/**
 * Server-side resource readings from /proc (Linux): CPU time and resident memory of a process and
 * of its descendants (so a future `--workers N` server is measured whole).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface StatFields {
  readonly ppid: number;
  /** utime + stime, clock ticks. */
  readonly cpuTicks: number;
}

function readStat(pid: number): StatFields | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name may contain spaces and parentheses: fields start after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); ppid is field 4, utime 14, stime 15.
  return { ppid: Number(rest[1]), cpuTicks: Number(rest[11]) + Number(rest[12]) };
}

/** pid and every live descendant. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readStat(Number(entry));
    if (!s) continue;
    const list = children.get(s.ppid) ?? [];
    list.push(Number(entry));
    children.set(s.ppid, list);
  }
  const out: number[] = [];
  const visit = (p: number): void => {
    out.push(p);
    for (const c of children.get(p) ?? []) visit(c);
  };
  visit(pid);
  return out;
}

/** User + system CPU seconds used so far by pid (and its descendants when `tree`). */
export function cpuSeconds(pid: number, tree = false): number {
  const pids = tree ? processTree(pid) : [pid];
  let ticks = 0;
  for (const p of pids) ticks += readStat(p)?.cpuTicks ?? 0;
  return ticks / clockTicks();
}

export interface MemoryReading {
  /** Current resident set, KiB. */
  readonly rssKiB: number;
  /** Peak resident set since start (or since the last resetPeakRss), KiB. */
  readonly hwmKiB: number;
}

function readStatusKiB(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Memory of pid (summed over its descendants when `tree`). */
export function memory(pid: number, tree = false): MemoryReading {
  const pids = tree ? processTree(pid) : [pid];
  let rssKiB = 0;
  let hwmKiB = 0;
  for (const p of pids) {
    rssKiB += readStatusKiB(p, "VmRSS");
    hwmKiB += readStatusKiB(p, "VmHWM");
  }
  return { rssKiB, hwmKiB };
}

/** Sets VmHWM back to the current RSS (Linux clear_refs "5"); false when not permitted. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Samples VmRSS every `intervalMs` until stopped; returns the largest sample, KiB. */
export function rssSampler(pid: number, intervalMs: number, tree = false): { stop(): number } {
  let peak = memory(pid, tree).rssKiB;
  const timer = setInterval(() => {
    peak = Math.max(peak, memory(pid, tree).rssKiB);
  }, intervalMs);
  return {
    stop(): number {
      clearInterval(timer);
      return Math.max(peak, memory(pid, tree).rssKiB);
    },
  };
}

export function machineFacts(): { cores: number; cpusInCpuinfo: number; cpuModel: string; node: string; kernel: string; memTotalMiB: number } {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const models = [...cpuinfo.matchAll(/^model name\s*:\s*(.+)$/gm)].map((m) => (m[1] as string).trim());
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  const memKiB = Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1] ?? 0);
  const kernel = readOr("/proc/sys/kernel/osrelease", "unknown").trim();
  return {
    cores: availableParallelism(),
    cpusInCpuinfo: models.length,
    cpuModel: models[0] ?? "unknown",
    node: process.version,
    kernel,
    memTotalMiB: Math.round(memKiB / 1024),
  };
}

function readOr(file: string, fallback: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return fallback;
  }
}

/** CPU seconds all processes on the machine have used so far (busy time from /proc/stat). */
export function machineBusySeconds(): number {
  const line = readOr("/proc/stat", "cpu 0 0 0 0").split("\n")[0] as string;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return busy / clockTicks();
}
