/**
 * What the soak samples over time: RSS and CPU of each process in the stack (/proc), the machine's
 * busy time (so load from outside the soak shows), and countersign's refreshes and heap (/metrics).
 */
import { cpuSeconds, machineBusySeconds, memory } from "../../bench/procfs.js";
import { scrape, sumOf, valueOf, type Sample } from "../ops/support/metrics.js";

/** The processes of the soak, by role. */
export type Role = "countersign" | "envoy" | "loadgen" | "soak";
export const ROLES: readonly Role[] = ["countersign", "envoy", "loadgen", "soak"];
export const ROLE_LABELS: Readonly<Record<Role, string>> = { countersign: "countersign", envoy: "Envoy", loadgen: "load generator", soak: "fake AWS + STS + soak" };

export interface ProcessReading {
  readonly rssBytes: number;
  /** User + system CPU seconds so far. */
  readonly cpuSeconds: number;
}

export interface Reading {
  /** performance.now() when read. */
  readonly at: number;
  readonly processes: Readonly<Record<Role, ProcessReading>>;
  /** CPU seconds every process on the machine has used so far. */
  readonly machineBusySeconds: number;
}

export function read(pids: Readonly<Record<Role, number>>, at: number): Reading {
  const processes = {} as Record<Role, ProcessReading>;
  for (const role of ROLES) processes[role] = { rssBytes: memory(pids[role]).rssKiB * 1024, cpuSeconds: cpuSeconds(pids[role]) };
  return { at, processes, machineBusySeconds: machineBusySeconds() };
}

/** Cores each process used between two readings, and `other`: the rest of the machine's busy time. */
export function coresBetween(a: Reading, b: Reading): Record<Role | "other", number> {
  const seconds = (b.at - a.at) / 1000;
  const out = {} as Record<Role | "other", number>;
  let ours = 0;
  for (const role of ROLES) {
    const used = b.processes[role].cpuSeconds - a.processes[role].cpuSeconds;
    out[role] = used / seconds;
    ours += used;
  }
  out.other = Math.max(0, (b.machineBusySeconds - a.machineBusySeconds - ours) / seconds);
  return out;
}

export interface Counters {
  readonly refreshSuccesses: number;
  readonly refreshFailures: number;
  readonly heapUsedBytes: number;
  readonly samples: readonly Sample[];
}

export async function counters(adminUrl: string, profile: string): Promise<Counters> {
  const samples = await scrape(adminUrl);
  return {
    refreshSuccesses: valueOf(samples, "countersign_credential_refreshes_total", { profile, result: "success" }) ?? 0,
    refreshFailures: valueOf(samples, "countersign_credential_refreshes_total", { profile, result: "failure" }) ?? 0,
    heapUsedBytes: samples.some((s) => s.name === "nodejs_heap_size_used_bytes") ? sumOf(samples, "nodejs_heap_size_used_bytes") : Number.NaN,
    samples,
  };
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export const MIB = 1024 * 1024;

export function mib(bytes: number): string {
  return Number.isNaN(bytes) ? "n/a" : (bytes / MIB).toFixed(1);
}
