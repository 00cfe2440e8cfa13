import { describe, expect, it } from "vitest";
import { durationSeconds, groupingLabelsIn, metricNamesIn, parsePromQL, selectorsIn } from "./promql.js";

describe("metricNamesIn (Prometheus's PromQL grammar)", () => {
  it("returns the series names and skips functions, groupings, ranges and matchers", () => {
    const expr = 'histogram_quantile(0.99, sum by (le, payload_mode) (rate(countersign_signing_duration_seconds_bucket{pod=~"$pod"}[5m])))';
    expect(metricNamesIn(expr)).toEqual(["countersign_signing_duration_seconds_bucket"]);
  });

  it("finds both sides of binary operators, recorded names with colons, and skips keywords and numbers", () => {
    const expr = "a:b:ratio > 3 * c_total offset 1d and on (instance) d_seconds > 1e3 unless bool e";
    expect(metricNamesIn(expr)).toEqual(["a:b:ratio", "c_total", "d_seconds", "e"]);
  });

  it("ignores words inside strings and reads a name given as a __name__ matcher", () => {
    expect(metricNamesIn('time() - max by (pod) (x{a="not_a_metric"}) + {__name__="y", b="c"}')).toEqual(["x", "y"]);
  });

  it("rejects what is not PromQL, saying where", () => {
    expect(() => metricNamesIn("sum(rate(x[$__rate_interval]))")).toThrow(/^not PromQL at offset \d+: sum\(rate\(x\[/);
    expect(() => parsePromQL("a +")).toThrow(/not PromQL/);
  });
});

describe("selectorsIn", () => {
  it("returns each selector's label matchers with their operators and unescaped values", () => {
    expect(selectorsIn('rate(m_total{decision="refused", code!="CANCELLED", pod=~"$pod", x!~"a\\"b"}[5m]) / n')).toEqual([
      {
        metric: "m_total",
        matchers: [
          { label: "decision", op: "=", value: "refused" },
          { label: "code", op: "!=", value: "CANCELLED" },
          { label: "pod", op: "=~", value: "$pod" },
          { label: "x", op: "!~", value: 'a"b' },
        ],
      },
      { metric: "n", matchers: [] },
    ]);
  });
});

describe("groupingLabelsIn", () => {
  it("collects labels of by, without, on and group_left clauses", () => {
    expect(groupingLabelsIn("sum by (namespace, pod) (a) and on (instance) sum without (le) (b) * on (pod) group_left (node) c")).toEqual(["namespace", "pod", "instance", "le", "node"]);
  });
});

describe("durationSeconds", () => {
  it("reads single and compound durations", () => {
    expect([durationSeconds("6m"), durationSeconds("1h30m"), durationSeconds("1d")]).toEqual([360, 5400, 86400]);
  });

  it("rejects text that is not a duration", () => {
    expect(() => durationSeconds("6 minutes")).toThrow(/not a Prometheus duration/);
  });
});
