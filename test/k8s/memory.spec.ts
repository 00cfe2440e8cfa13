/**
 * The memory sizing holds for the real process: countersign started with each overlay's own flags and
 * NODE_OPTIONS (read from the built manifests) is measured idle, then with its --max-held-bytes budget
 * full of stalled chunk-signed uploads. It must answer 503 itself while its RSS is still inside the
 * container's memory limit, and the measured idle RSS and overhead must be within the bounds the
 * sizing rule assumes (test/k8s/sizing.ts). Memory, not time, is measured: nothing here depends on
 * how fast the machine is.
 */
import { describe, expect, it } from "vitest";
import { assemble, repoPath } from "./kustomize.js";
import { measureHeldMemory } from "./memoryProbe.js";
import { HEADROOM, IDLE_RSS, memorySettings, MiB } from "./sizing.js";
import { containerNamed, envValue, findOne, podTemplateOf } from "./workloads.js";

const OVERLAYS = { sidecar: "aws-workload", "shared-service": "countersign" } as const;

describe.each(Object.keys(OVERLAYS) as (keyof typeof OVERLAYS)[])("countersign with the %s overlay's memory settings", (overlay) => {
  it("refuses with 503 at its held-bytes budget while its RSS stays inside the container limit, and measures within the rule's bounds", async () => {
    const container = containerNamed(podTemplateOf(findOne(assemble(repoPath("k8s", overlay)).resources, "Deployment", OVERLAYS[overlay])).spec, "countersign");
    const settings = memorySettings(container);
    const m = await measureHeldMemory({
      args: [`--max-held-bytes=${settings.maxHeldBytes}`],
      nodeOptions: envValue(container, "NODE_OPTIONS"),
      maxHeldBytes: settings.maxHeldBytes,
    });
    const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
    console.log(`${overlay}: idle RSS ${mib(m.idleRss)}, peak ${mib(m.peakRss)} with ${mib(m.heldAtRefusal)} held at the first 503 (limit ${mib(settings.limit)})`);
    expect(m.refused).toBe(true);
    expect(m.heldAtRefusal).toBeLessThanOrEqual(settings.maxHeldBytes);
    // The budget was really filled: within one stream's share of it.
    expect(m.heldAtRefusal).toBeGreaterThan(settings.maxHeldBytes - 16 * MiB);
    expect(m.idleRss, `idle RSS ${mib(m.idleRss)} is over the rule's ${mib(IDLE_RSS)}: re-measure and update test/k8s/sizing.ts, k8s/README.md and the manifests`).toBeLessThanOrEqual(IDLE_RSS);
    expect(m.peakRss - m.idleRss - m.heldAtRefusal, "overhead over idle + held bodies").toBeLessThanOrEqual(HEADROOM);
    expect(m.peakRss).toBeLessThan(settings.limit);
  });
});
