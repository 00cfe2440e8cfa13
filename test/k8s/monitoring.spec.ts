/**
 * The Grafana dashboard and the PrometheusRule name only series countersign exports
 * (src/admin/metrics.ts, plus prom-client's default process metrics), with labels and label values
 * those series carry; and the alerts keep the promises k8s/README.md makes about them.
 */
import { readFileSync } from "node:fs";
import { status as grpcStatus } from "@grpc/grpc-js";
import { beforeAll, describe, expect, it } from "vitest";
import { Metrics } from "../../src/admin/metrics.js";
import { DEFAULT_CHAIN_REFRESH_BEFORE_MS } from "../../src/credentials/constants.js";
import { DEFAULT_REFRESH_BEFORE_SECONDS } from "../../src/policy/index.js";
import { isDoc, loadYamlDocs, repoPath, type Doc } from "./kustomize.js";
import {
  defaultProcessMetrics,
  type MetricInfo,
  readMetricsSource,
  registryMetrics,
  seriesNames,
  TARGET_LABELS,
} from "./metricCatalog.js";
import { durationSeconds, groupingLabelsIn, metricNamesIn, selectorsIn } from "./promql.js";

interface Rule {
  readonly record?: string;
  readonly alert?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

interface Query {
  /** Where it comes from, for failure messages. */
  readonly where: string;
  readonly expr: string;
}

const METRICS_SOURCE = repoPath("src", "admin", "metrics.ts");
const DASHBOARD = repoPath("k8s", "grafana", "countersign-dashboard.json");
const RULES = repoPath("k8s", "base", "prometheusrule.yaml");

const exported = readMetricsSource(METRICS_SOURCE);
const dashboard: unknown = JSON.parse(readFileSync(DASHBOARD, "utf8"));
const rules = readRules(RULES);

let catalog: Map<string, MetricInfo>;

beforeAll(async () => {
  const defaults = await defaultProcessMetrics();
  catalog = seriesNames([...exported, ...defaults, ...recordedSeries(rules)]);
});

function readRules(path: string): Rule[] {
  const [doc] = loadYamlDocs(path);
  const spec = doc?.["spec"];
  const groups = isDoc(spec) && Array.isArray(spec["groups"]) ? spec["groups"] : [];
  return groups.flatMap((g: unknown) => (isDoc(g) && Array.isArray(g["rules"]) ? (g["rules"] as Rule[]) : []));
}

/** Recording rules as series: their labels are those they aggregate by. */
function recordedSeries(all: readonly Rule[]): MetricInfo[] {
  return all
    .filter((r): r is Rule & { record: string } => r.record !== undefined)
    .map((r) => ({ name: r.record, type: "gauge", labels: groupingLabelsIn(r.expr), documentedValues: new Map() }));
}

function panelsOf(board: unknown): Doc[] {
  const panels = isDoc(board) && Array.isArray(board["panels"]) ? board["panels"].filter(isDoc) : [];
  return panels.flatMap((p) => [p, ...(Array.isArray(p["panels"]) ? p["panels"].filter(isDoc) : [])]);
}

function dashboardQueries(board: unknown): Query[] {
  return panelsOf(board).flatMap((panel) => {
    const targets = Array.isArray(panel["targets"]) ? panel["targets"].filter(isDoc) : [];
    return targets.map((t) => ({ where: `panel "${String(panel["title"])}" ${String(t["refId"])}`, expr: String(t["expr"]) }));
  });
}

function templateQueries(board: unknown): Query[] {
  const templating = isDoc(board) ? board["templating"] : undefined;
  const variables = isDoc(templating) && Array.isArray(templating["list"]) ? templating["list"].filter(isDoc) : [];
  return variables
    .filter((v) => v["type"] === "query")
    .map((v) => ({ where: `variable $${String(v["name"])}`, expr: String(isDoc(v["query"]) ? v["query"]["query"] : v["query"]) }));
}

function ruleQueries(all: readonly Rule[]): Query[] {
  return all.map((r) => ({ where: r.alert ?? r.record ?? "?", expr: r.expr }));
}

/** Values a label may take when a query compares it with = or !=; undefined when not known. */
function knownValues(metric: MetricInfo, label: string): readonly string[] | undefined {
  if (metric.name === "countersign_grpc_errors_total" && label === "code") {
    return Object.keys(grpcStatus).filter((k) => Number.isNaN(Number(k)));
  }
  return metric.documentedValues.get(label);
}

/** Every way a query can name what does not exist, as sentences; empty when it is sound. */
function problemsOf(query: Query): string[] {
  const problems: string[] = [];
  const names = metricNamesIn(query.expr);
  if (names.length === 0) problems.push(`${query.where}: selects no series: ${query.expr}`);
  const known = names.map((n) => catalog.get(n));
  names.forEach((n, i) => {
    if (known[i] === undefined) problems.push(`${query.where}: ${n} is not exported by countersign`);
  });
  const inExpr = new Set<string>([...TARGET_LABELS, "le", ...known.flatMap((m) => m?.labels ?? [])]);
  for (const label of groupingLabelsIn(query.expr)) {
    if (!inExpr.has(label)) problems.push(`${query.where}: groups by ${label}, a label none of its series has`);
  }
  for (const selector of selectorsIn(query.expr)) {
    const metric = catalog.get(selector.metric);
    if (metric === undefined) continue;
    for (const matcher of selector.matchers) {
      const labels = new Set<string>([...TARGET_LABELS, ...metric.labels, ...(selector.metric.endsWith("_bucket") ? ["le"] : [])]);
      if (!labels.has(matcher.label)) problems.push(`${query.where}: ${selector.metric} has no label ${matcher.label}`);
      const values = knownValues(metric, matcher.label);
      if (values !== undefined && (matcher.op === "=" || matcher.op === "!=") && !values.includes(matcher.value)) {
        problems.push(`${query.where}: ${selector.metric}{${matcher.label}} is never "${matcher.value}" (it is one of ${values.join(", ")})`);
      }
    }
  }
  return problems;
}

function templateMetricProblems(query: Query): string[] {
  const metric = /label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)/.exec(query.expr)?.[1];
  if (metric === undefined) return [`${query.where}: not a label_values(...) query: ${query.expr}`];
  return catalog.has(metric) ? [] : [`${query.where}: ${metric} is not exported by countersign`];
}

describe("the metric catalogue read from src/admin/metrics.ts", () => {
  it("lists exactly the countersign_ metrics, types and labels of a live registry", async () => {
    const live = (await registryMetrics(new Metrics({ processMetrics: false }).registry)).filter((m) => m.name.startsWith("countersign_"));
    const summary = (ms: readonly MetricInfo[]): string[] => ms.map((m) => `${m.name} ${m.type} [${[...m.labels].sort().join(",")}]`).sort();
    expect(summary(exported)).toEqual(summary(live));
    expect(exported.length).toBeGreaterThan(10);
  });

  it("reads the label values the help texts list", () => {
    const byName = new Map(exported.map((m) => [m.name, m]));
    expect(byName.get("countersign_requests_total")?.documentedValues.get("decision")).toEqual(["signed", "refused", "cancelled"]);
    expect(byName.get("countersign_credential_refreshes_total")?.documentedValues.get("result")).toEqual(["success", "failure"]);
  });
});

describe("the Grafana dashboard (k8s/grafana/countersign-dashboard.json)", () => {
  it("queries only exported series, with their labels and label values", () => {
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(20);
    expect(queries.flatMap(problemsOf)).toEqual([]);
  });

  it("builds its variables from exported series", () => {
    const queries = templateQueries(dashboard);
    expect(queries.map((q) => q.where)).toEqual(["variable $namespace", "variable $pod"]);
    expect(queries.flatMap(templateMetricProblems)).toEqual([]);
  });

  it("charts every countersign metric", () => {
    const charted = new Set(dashboardQueries(dashboard).flatMap((q) => metricNamesIn(q.expr)).map((n) => catalog.get(n)?.name));
    expect(exported.map((m) => m.name).filter((n) => !charted.has(n))).toEqual([]);
  });

  it("charts signing latency p50 and p99 from the signing histogram, and process CPU, memory and event-loop lag", () => {
    const exprs = dashboardQueries(dashboard).map((q) => q.expr);
    for (const quantile of ["0.5", "0.99"]) {
      expect(exprs.some((e) => e.startsWith(`histogram_quantile(${quantile}, sum by (le) (rate(countersign_signing_duration_seconds_bucket`))).toBe(true);
    }
    for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "nodejs_eventloop_lag_seconds"]) {
      expect(exprs.some((e) => metricNamesIn(e).includes(name))).toBe(true);
    }
  });

  it("gives every panel a unique id and takes every target's data source from the $datasource variable", () => {
    const panels = panelsOf(dashboard);
    const ids = panels.map((p) => p["id"]);
    expect(new Set(ids).size).toBe(ids.length);
    const sources = panels
      .filter((p) => p["type"] !== "row")
      .flatMap((p) => [p["datasource"], ...(Array.isArray(p["targets"]) ? p["targets"].filter(isDoc).map((t) => t["datasource"]) : [])]);
    expect(sources.every((s) => isDoc(s) && s["uid"] === "${datasource}")).toBe(true);
    expect(isDoc(dashboard) && dashboard["uid"]).toBe("countersign");
  });
});

describe("the PrometheusRule (k8s/base/prometheusrule.yaml)", () => {
  const alerts = rules.filter((r): r is Rule & { alert: string } => r.alert !== undefined);
  const alert = (name: string): Rule => {
    const found = alerts.find((a) => a.alert === name);
    if (found === undefined) throw new Error(`no alert ${name}`);
    return found;
  };

  it("queries only exported series or its own recording rules, with their labels and label values", () => {
    expect(ruleQueries(rules).flatMap(problemsOf)).toEqual([]);
  });

  it("has the alerts k8s/README.md describes, each with a severity and a summary", () => {
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      "CountersignCredentialRefreshFailing",
      "CountersignCredentialsExpiringSoon",
      "CountersignCredentialsUnusable",
      "CountersignGrpcErrors",
      "CountersignMetricsAbsent",
      "CountersignNoReadyReplicas",
      "CountersignNotReady",
      "CountersignPolicyDiverged",
      "CountersignPolicyReloadFailed",
      "CountersignRefusalRateHigh",
      "CountersignRefusalRateJump",
      "CountersignSigningSlow",
    ]);
    for (const a of alerts) {
      expect(["critical", "warning", "info"], a.alert).toContain(a.labels?.["severity"]);
      expect(a.annotations?.["summary"], a.alert).toBeTruthy();
    }
    const readme = readFileSync(repoPath("k8s", "README.md"), "utf8");
    expect(alerts.map((a) => a.alert).filter((name) => !readme.includes(name))).toEqual([]);
  });

  it("fills annotation templates only with labels the expression keeps", () => {
    const recorded = new Map(recordedSeries(rules).map((r) => [r.name, r.labels]));
    for (const a of alerts) {
      const kept = new Set([...groupingLabelsIn(a.expr), ...metricNamesIn(a.expr).flatMap((n) => recorded.get(n) ?? [])]);
      const used = Object.values(a.annotations ?? {}).flatMap((text) => [...text.matchAll(/\$labels\.([a-z_]+)/g)].map((m) => m[1] ?? ""));
      expect(used.filter((label) => !kept.has(label)), a.alert).toEqual([]);
    }
  });

  it("warns when credentials are within 10 minutes of expiry, but not during a healthy refresh cycle", () => {
    const expiring = alert("CountersignCredentialsExpiringSoon");
    expect(expiring.expr).toMatch(/\(countersign_credentials_expiry_seconds\) < 600$/);
    // Credentials are refreshed `window` plus a jitter before expiry, so a healthy cycle stays
    // under 600 s for at most 600 - window seconds. The alert must wait longer than that.
    const shortestWindow = Math.min(DEFAULT_REFRESH_BEFORE_SECONDS, DEFAULT_CHAIN_REFRESH_BEFORE_MS / 1000);
    expect(durationSeconds(expiring.for ?? "0s")).toBeGreaterThan(600 - shortestWindow);
    expect(durationSeconds(expiring.for ?? "0s")).toBeLessThan(600);
  });

  it("alerts on refresh failures sustained over 15 minutes, unusable credentials and no ready replica", () => {
    expect(alert("CountersignCredentialRefreshFailing").expr).toContain('increase(countersign_credential_refreshes_total{result="failure"}[15m])) > 0');
    expect(durationSeconds(alert("CountersignCredentialRefreshFailing").for ?? "0s")).toBeGreaterThanOrEqual(900);
    expect(alert("CountersignCredentialsUnusable").expr).toContain("(countersign_credentials_usable) == 0");
    expect(alert("CountersignNoReadyReplicas").expr).toBe("sum by (namespace) (countersign_ready) == 0");
    expect(alert("CountersignNotReady").expr).toBe("max by (namespace, pod) (countersign_ready) == 0");
  });

  it("compares the refusal ratio with 5 % over 10 minutes and with its 1-day baseline", () => {
    expect(alert("CountersignRefusalRateHigh").expr).toContain("namespace:countersign_requests_refused:ratio_rate15m > 0.05");
    expect(alert("CountersignRefusalRateHigh").for).toBe("10m");
    expect(alert("CountersignRefusalRateJump").expr).toContain(
      "namespace:countersign_requests_refused:ratio_rate15m > 3 * namespace:countersign_requests_refused:ratio_rate1d",
    );
    const baseline = rules.find((r) => r.record === "namespace:countersign_requests_refused:ratio_rate1d");
    expect(baseline?.expr).toContain('rate(countersign_requests_total{decision="refused"}[1d])');
  });
});
