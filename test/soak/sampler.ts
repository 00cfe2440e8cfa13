/** countersign's memory and counters over time: RSS from /proc, heap and refreshes from /metrics. */
import { readFileSync } from "node:fs";
import { scrape, sumOf, valueOf, type Sample } from "../ops/support/metrics.js";

export interface MemorySample {
  /** Seconds since the load started. */
  readonly t: number;
  readonly rssBytes: number;
  /** V8 heap in use (nodejs_heap_size_used_bytes); NaN when /metrics does not export it. */
  readonly heapUsedBytes: number;
}

/** VmRSS of a process, in bytes (Linux /proc). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]) * 1024;
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
