/**
 * countersign's memory sizing rule (k8s/README.md, "Memory"), in numbers, and how to read a
 * container's side of it (limit, request, --max-held-bytes, --max-old-space-size) from a manifest.
 *
 *   memory limit         >= IDLE_RSS + max-held-bytes + HEADROOM
 *   --max-old-space-size <= memory limit - max-held-bytes - NON_HEAP
 *   memory request       >= IDLE_RSS
 *
 * IDLE_RSS and HEADROOM are measured bounds (Node 20 and Node 24) that memory.spec.ts re-measures on
 * every run, on the Node that runs the tests.
 */
import { DEFAULT_ADMISSION_LIMITS } from "../../src/extproc/admission.js";
import { type Container, envValue, flagValue } from "./workloads.js";

export const MiB = 1024 * 1024;
/** countersign's resident memory after start, idle (measured 85-89 MiB on Node 20, 101-103 MiB on Node 24, x86-64), rounded up. */
export const IDLE_RSS = 112 * MiB;
/** Above idle RSS plus the held bodies: gRPC receive buffers and GC slack (measured about 25 MiB), with room to spare. */
export const HEADROOM = 64 * MiB;
/** RSS outside V8's old space when the heap is at its cap: code, native memory, gRPC buffers (idle RSS minus idle heap is about 63 MiB on Node 20, 80 on Node 24, plus about 25 MiB of gRPC buffers under load). */
export const NON_HEAP = 112 * MiB;

export interface MemorySettings {
  readonly limit: number;
  readonly request: number;
  readonly maxHeldBytes: number;
  /** undefined when NODE_OPTIONS sets no --max-old-space-size. */
  readonly maxOldSpace: number | undefined;
  readonly workers: number;
}

/** A Kubernetes memory quantity (Ki, Mi, Gi or plain bytes) in bytes. */
export function memoryBytes(quantity: string | undefined): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(quantity ?? "");
  if (m === null) throw new Error(`not a memory quantity this test reads: ${String(quantity)}`);
  const unit = { Ki: 1024, Mi: MiB, Gi: 1024 * MiB }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * unit;
}

export function memorySettings(container: Container): MemorySettings {
  const held = flagValue(container, "--max-held-bytes");
  const oldSpace = /--max-old-space-size=(\d+)/.exec(envValue(container, "NODE_OPTIONS") ?? "")?.[1];
  return {
    limit: memoryBytes(container.resources?.limits?.["memory"]),
    request: memoryBytes(container.resources?.requests?.["memory"]),
    maxHeldBytes: held === undefined ? DEFAULT_ADMISSION_LIMITS.maxHeldBytes : Number(held),
    maxOldSpace: oldSpace === undefined ? undefined : Number(oldSpace) * MiB,
    workers: Number(flagValue(container, "--workers") ?? "1"),
  };
}

/** The rule's violations, as sentences; empty when the settings keep it. */
export function sizingProblems(s: MemorySettings): string[] {
  const mib = (b: number): string => `${(b / MiB).toFixed(0)} MiB`;
  const problems: string[] = [];
  // Each worker is a process of its own with its own budget.
  const needed = s.workers * (IDLE_RSS + s.maxHeldBytes) + HEADROOM;
  if (s.limit < needed) problems.push(`memory limit ${mib(s.limit)} < ${s.workers} x (idle ${mib(IDLE_RSS)} + max-held-bytes ${mib(s.maxHeldBytes)}) + headroom ${mib(HEADROOM)} = ${mib(needed)}`);
  if (s.maxOldSpace === undefined) problems.push("NODE_OPTIONS sets no --max-old-space-size");
  else if (s.maxOldSpace > s.limit / s.workers - s.maxHeldBytes - NON_HEAP) {
    problems.push(`--max-old-space-size ${mib(s.maxOldSpace)} > limit/workers ${mib(s.limit / s.workers)} - max-held-bytes ${mib(s.maxHeldBytes)} - ${mib(NON_HEAP)}`);
  }
  if (s.request < s.workers * IDLE_RSS) problems.push(`memory request ${mib(s.request)} < idle ${mib(s.workers * IDLE_RSS)}`);
  return problems;
}
