/**
 * The Grafana dashboard and the PrometheusRule against countersign's metrics and the real promtool
 * (the pinned version, test/k8s/tools.ts): promtool checks the rules and every dashboard query,
 * and runs the rules' unit tests
 * (test/k8s/prometheusrule.test.yaml), which prove each alert fires when it should and not when it
 * should not. What promtool cannot know is checked here: that every series, label and label value
 * a query names is one countersign exports (src/admin/metrics.ts, plus prom-client's default process
 * metrics), read from the query's syntax tree by Prometheus's own PromQL grammar (test/k8s/promql.ts),
 * that each alert has its tests, and that the alerts keep the promises k8s/README.md and the
 * credential refresher's timing make.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { status as grpcStatus } from "@grpc/grpc-js";
import { dump } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Metrics, POLICY_RELOAD_RESULTS } from "../../src/admin/metrics.js";
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
import { promtoolBinary, runTool } from "./tools.js";

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
/** promtool unit tests of RULES; they load the rules from RULES_FILE, written beside a copy. */
const RULE_TESTS = repoPath("test", "k8s", "prometheusrule.test.yaml");
const RULES_FILE = "countersign.rules.yaml";

const exported = readMetricsSource(METRICS_SOURCE);
const dashboard: unknown = JSON.parse(readFileSync(DASHBOARD, "utf8"));
const rules = readRules(RULES);

/** A scratch directory for the files promtool reads, removed after the tests. */
let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "countersign-promtool-"));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let catalog: Map<string, MetricInfo>;

beforeAll(async () => {
  const defaults = await defaultProcessMetrics();
  // `up`: the series Prometheus itself writes for every scrape target (the alerts on vanished targets).
  const up: MetricInfo = { name: "up", type: "gauge", labels: [], documentedValues: new Map() };
  catalog = seriesNames([...exported, ...defaults, ...recordedSeries(rules), up]);
});

/** The PrometheusRule's spec: a Prometheus rule file (`groups:`) as it is. */
function ruleFileOf(path: string): Doc {
  const [doc] = loadYamlDocs(path);
  const spec = doc?.["spec"];
  if (!isDoc(spec)) throw new Error(`${path} has no spec`);
  return spec;
}

function readRules(path: string): Rule[] {
  const spec = ruleFileOf(path);
  const groups = Array.isArray(spec["groups"]) ? spec["groups"] : [];
  return groups.flatMap((g: unknown) => (isDoc(g) && Array.isArray(g["rules"]) ? (g["rules"] as Rule[]) : []));
}

/** Writes `ruleFile` into the scratch directory and runs `promtool check rules` on it. */
function promtoolCheckRules(name: string, ruleFile: unknown, lint: "all" | "none") {
  const path = join(scratch, name);
  writeFileSync(path, dump(ruleFile, { lineWidth: -1 }));
  return runTool(promtoolBinary(), ["check", "rules", `--lint=${lint}`, "--lint-fatal", path]);
}

/** Grafana's interval variables as durations, so a dashboard query is plain PromQL (other variables appear only inside label values). */
function grafanaToPromQL(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__interval|\$__range/g, (v) => (v === "$__range" ? "1h" : "1m"));
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
    return targets.map((t) => ({ where: `panel "${String(panel["title"])}" ${String(t["refId"])}`, expr: grafanaToPromQL(String(t["expr"])) }));
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
    expect(byName.get("countersign_policy_reloads_total")?.documentedValues.get("result")).toEqual([...POLICY_RELOAD_RESULTS]);
  });
});

describe("the Grafana dashboard (k8s/grafana/countersign-dashboard.json)", () => {
  it("queries only exported series, with their labels and label values", () => {
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThan(20);
    expect(queries.flatMap(problemsOf)).toEqual([]);
  });

  it("is PromQL promtool accepts (each query checked as a recording rule, Grafana's interval variables as durations)", () => {
    const queries = dashboardQueries(dashboard);
    const ruleFile = { groups: [{ name: "dashboard", rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr })) }] };
    const r = promtoolCheckRules("dashboard.rules.yaml", ruleFile, "none");
    const legend = queries.map((q, i) => `dashboard:query_${i} = ${q.where}`).join("\n");
    expect(r.status, `${r.transcript}\n${legend}`).toBe(0);
    expect(r.stdout).toContain(`SUCCESS: ${queries.length} rules found`);
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
  const records = rules.filter((r): r is Rule & { record: string } => r.record !== undefined);
  const alert = (name: string): Rule => {
    const found = alerts.find((a) => a.alert === name);
    if (found === undefined) throw new Error(`no alert ${name}`);
    return found;
  };
  const ruleTests = ruleTestsOf(RULE_TESTS);

  it("is a rule file promtool accepts, without lint findings (promtool check rules --lint=all --lint-fatal)", () => {
    const r = promtoolCheckRules(RULES_FILE, ruleFileOf(RULES), "all");
    expect(r.status, r.transcript).toBe(0);
    expect(r.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it("passes its promtool unit tests (promtool test rules test/k8s/prometheusrule.test.yaml)", () => {
    promtoolCheckRules(RULES_FILE, ruleFileOf(RULES), "none");
    const tests = join(scratch, basename(RULE_TESTS));
    copyFileSync(RULE_TESTS, tests);
    const r = runTool(promtoolBinary(), ["test", "rules", tests], { timeoutMs: 180_000 });
    expect(r.status, r.transcript).toBe(0);
    expect(r.stdout).toContain("SUCCESS");
  });

  it("has, for every alert, a promtool test where it fires (labels and annotations in full) and one where it stays silent", () => {
    const missing = alerts.flatMap((a) => {
      const cases = ruleTests.alertCases.filter((c) => c.alertname === a.alert);
      const problems: string[] = [];
      if (!cases.some((c) => c.firing.length > 0)) problems.push(`${a.alert}: no case where it fires`);
      if (!cases.some((c) => c.firing.length === 0)) problems.push(`${a.alert}: no case where it stays silent`);
      for (const c of cases) {
        for (const f of c.firing) {
          const labels = Object.keys(f.labels).sort();
          const annotations = Object.keys(f.annotations).sort();
          if (!labels.includes("severity")) problems.push(`${a.alert} at ${c.evalTime}: exp_labels without severity`);
          if (annotations.join() !== Object.keys(a.annotations ?? {}).sort().join()) problems.push(`${a.alert} at ${c.evalTime}: exp_annotations must give ${Object.keys(a.annotations ?? {}).join(", ")}`);
        }
      }
      return problems;
    });
    expect(missing).toEqual([]);
    expect(ruleTests.alertCases.map((c) => c.alertname).filter((name) => !alerts.some((a) => a.alert === name))).toEqual([]);
  });

  it("has a promtool test of each recording rule's value", () => {
    expect(records.map((r) => r.record).filter((name) => !ruleTests.exprs.includes(name))).toEqual([]);
  });

  // promtool evaluates expressions, but it cannot say which series, labels and label values an
  // expression names, nor what countersign exports; a misspelt name just selects nothing. So the
  // selectors are read from each expression's syntax tree (Prometheus's PromQL grammar,
  // test/k8s/promql.ts) and looked up in the catalogue.
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
      "CountersignScrapeFailing",
      "CountersignSigningSlow",
      "CountersignTargetsAbsent",
    ]);
    for (const a of alerts) {
      expect(["critical", "warning", "info"], a.alert).toContain(a.labels?.["severity"]);
      expect(a.annotations?.["summary"], a.alert).toBeTruthy();
    }
    const readme = readFileSync(repoPath("k8s", "README.md"), "utf8");
    expect(alerts.map((a) => a.alert).filter((name) => !readme.includes(name))).toEqual([]);
  });

  // The promtool tests show a cycle refreshed 300 s before expiry staying silent; this ties `for` to
  // the refresh windows countersign's code actually uses, which promtool cannot see.
  it("waits on expiring credentials longer than a healthy refresh cycle spends under 10 minutes to expiry", () => {
    const expiring = alert("CountersignCredentialsExpiringSoon");
    expect(expiring.expr).toMatch(/\) < 600$/);
    // Credentials are refreshed `window` plus a jitter before expiry, so a healthy cycle stays
    // under 600 s for at most 600 - window seconds. The alert must wait longer than that.
    const shortestWindow = Math.min(DEFAULT_REFRESH_BEFORE_SECONDS, DEFAULT_CHAIN_REFRESH_BEFORE_MS / 1000);
    expect(durationSeconds(expiring.for ?? "0s")).toBeGreaterThan(600 - shortestWindow);
    expect(durationSeconds(expiring.for ?? "0s")).toBeLessThan(600);
  });
});

interface AlertCase {
  readonly alertname: string;
  readonly evalTime: string;
  readonly firing: readonly { labels: Record<string, unknown>; annotations: Record<string, unknown> }[];
}

/** The alert cases and the expressions of test/k8s/prometheusrule.test.yaml. */
function ruleTestsOf(path: string): { alertCases: AlertCase[]; exprs: string[] } {
  const [file] = loadYamlDocs(path);
  const groups = Array.isArray(file?.["tests"]) ? file["tests"].filter(isDoc) : [];
  const list = (doc: Doc, key: string): Doc[] => (Array.isArray(doc[key]) ? doc[key].filter(isDoc) : []);
  const record = (value: unknown): Record<string, unknown> => (isDoc(value) ? value : {});
  return {
    alertCases: groups.flatMap((g) =>
      list(g, "alert_rule_test").map((t) => ({
        alertname: String(t["alertname"]),
        evalTime: String(t["eval_time"]),
        firing: list(t, "exp_alerts").map((e) => ({ labels: record(e["exp_labels"]), annotations: record(e["exp_annotations"]) })),
      })),
    ),
    exprs: groups.flatMap((g) => list(g, "promql_expr_test").map((t) => String(t["expr"]))),
  };
}
