/**
 * countersign's memory limit, request, --max-held-bytes and V8 heap cap agree in both overlays, by the
 * sizing rule k8s/README.md documents (test/k8s/sizing.ts), read from the built manifests: the flags
 * from the container's args (the CLI's default when absent), the heap cap from NODE_OPTIONS. A
 * container sized otherwise is OOM-killed by the kernel before countersign's own 503 limit is reached.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { assemble, repoPath } from "./kustomize.js";
import { HEADROOM, IDLE_RSS, memoryBytes, memorySettings, MiB, NON_HEAP, sizingProblems } from "./sizing.js";
import { containerNamed, findOne, podTemplateOf } from "./workloads.js";

const OVERLAYS = { sidecar: "aws-workload", "shared-service": "countersign" } as const;

function countersignOf(overlay: keyof typeof OVERLAYS) {
  return containerNamed(podTemplateOf(findOne(assemble(repoPath("k8s", overlay)).resources, "Deployment", OVERLAYS[overlay])).spec, "countersign");
}

describe.each(Object.keys(OVERLAYS) as (keyof typeof OVERLAYS)[])("countersign's memory in the %s overlay", (overlay) => {
  it("keeps the sizing rule: limit >= idle RSS + max-held-bytes + headroom, heap cap <= limit - max-held-bytes - non-heap, request >= idle RSS", () => {
    const settings = memorySettings(countersignOf(overlay));
    expect(sizingProblems(settings)).toEqual([]);
  });

  it("states --max-held-bytes next to the limit instead of relying on the CLI's default", () => {
    expect(countersignOf(overlay).args?.some((a) => a.startsWith("--max-held-bytes"))).toBe(true);
  });
});

describe("the sizing rule itself", () => {
  it("rejects the sidecar settings the overlays had before (128 MiB held against a 256 Mi limit with a 160 MiB heap and a 96 Mi request)", () => {
    const before = { limit: 256 * MiB, request: 96 * MiB, maxHeldBytes: 128 * MiB, maxOldSpace: 160 * MiB, workers: 1 };
    expect(sizingProblems(before)).toEqual([
      "memory limit 256 MiB < 1 x (idle 112 MiB + max-held-bytes 128 MiB) + headroom 64 MiB = 304 MiB",
      "--max-old-space-size 160 MiB > limit/workers 256 MiB - max-held-bytes 128 MiB - 112 MiB",
      "memory request 96 MiB < idle 112 MiB",
    ]);
  });

  it("counts every worker as a process with its own idle memory and budget", () => {
    const one = { limit: 256 * MiB, request: 128 * MiB, maxHeldBytes: 64 * MiB, maxOldSpace: 80 * MiB, workers: 1 };
    expect(sizingProblems(one)).toEqual([]);
    expect(sizingProblems({ ...one, workers: 2 }).length).toBeGreaterThan(0);
  });

  it("reads memory quantities in bytes", () => {
    expect([memoryBytes("256Mi"), memoryBytes("1Gi"), memoryBytes("512Ki"), memoryBytes("1000")]).toEqual([256 * MiB, 1024 * MiB, 512 * 1024, 1000]);
    expect(() => memoryBytes("256M")).toThrow(/not a memory quantity/);
  });

  it("is the rule k8s/README.md documents, with the same numbers", () => {
    const readme = readFileSync(repoPath("k8s", "README.md"), "utf8");
    const start = readme.indexOf("\n## Memory\n");
    expect(start, "k8s/README.md has a ## Memory section").toBeGreaterThan(0);
    const section = readme.slice(start, readme.indexOf("\n## ", start + 1));
    const n = (b: number): string => `${b / MiB} MiB`;
    expect(section).toContain(`limit ≥ ${n(IDLE_RSS)} (idle RSS) + max-held-bytes + ${n(HEADROOM)} (headroom)`);
    expect(section).toContain(`--max-old-space-size ≤ limit − max-held-bytes − ${n(NON_HEAP)}`);
  });
});
