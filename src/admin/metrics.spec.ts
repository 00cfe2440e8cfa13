import { describe, expect, it } from "vitest";
import { Metrics, POLICY_RELOAD_RESULTS } from "./metrics.js";

async function reloadSamples(metrics: Metrics): Promise<string[]> {
  const text = await metrics.registry.getSingleMetricAsString("countersign_policy_reloads_total");
  return text.split("\n").filter((line) => line.startsWith("countersign_"));
}

describe("Metrics", () => {
  it("exports every policy reload result at 0 before any load, so the first rejected reload is an increase Prometheus sees", async () => {
    const metrics = new Metrics({ processMetrics: false });
    expect(POLICY_RELOAD_RESULTS).toEqual(["success", "invalid", "unreadable"]);
    expect(await reloadSamples(metrics)).toEqual([
      'countersign_policy_reloads_total{result="success"} 0',
      'countersign_policy_reloads_total{result="invalid"} 0',
      'countersign_policy_reloads_total{result="unreadable"} 0',
    ]);
    metrics.policyRefused("invalid");
    expect(await reloadSamples(metrics)).toContain('countersign_policy_reloads_total{result="invalid"} 1');
  });
});
