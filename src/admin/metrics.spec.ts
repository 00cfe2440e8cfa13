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

describe("Metrics: audit findings", () => {
  const event = {
    requestId: "r",
    method: "PUT",
    host: "h",
    service: "s3",
    region: "eu-west-1",
    payloadMode: "unsigned-payload",
    profile: "p",
    endpointIndex: 2,
    reason: "signed",
    status: 200,
    signingSeconds: 0.001,
    bytesHashed: 0,
    chunksResigned: 0,
  } as const;

  it("counts a request signed in audit mode by the reason that would have refused it, the endpoint's index and the rule's, and nothing else", async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.recordDecision({ ...event, decision: "signed", audit: { reason: "access", message: "m" } });
    metrics.recordDecision({ ...event, decision: "signed", audit: { reason: "access", message: "m" } });
    metrics.recordDecision({ ...event, decision: "signed" });
    metrics.recordDecision({ ...event, decision: "signed", audit: { reason: "rule", message: "m", rule: 1 } });
    // Refused later for another reason: it was not let through, so it is not an audit finding.
    metrics.recordDecision({ ...event, decision: "refused", reason: "body_too_large", status: 413, audit: { reason: "access", message: "m" } });
    const text = await metrics.registry.getSingleMetricAsString("countersign_audit_would_refuse_total");
    expect(text.split("\n").filter((line) => line.startsWith("countersign_"))).toEqual(['countersign_audit_would_refuse_total{reason="access",endpoint="2",rule="none"} 2', 'countersign_audit_would_refuse_total{reason="rule",endpoint="2",rule="1"} 1']);
  });
});
