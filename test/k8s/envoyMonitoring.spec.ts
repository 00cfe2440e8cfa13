/**
 * The Envoy side of monitoring (k8s/base/prometheusrule-envoy.yaml and
 * k8s/grafana/countersign-envoy-dashboard.json) against the real tools: promtool checks the rules and
 * every dashboard query and runs the alerts' unit tests (test/k8s/prometheusrule-envoy.test.yaml),
 * and every Envoy metric, label and label value they name is checked against a real
 * `/stats/prometheus` scrape of the pinned Envoy running the shipped envoy/envoy.yaml, so a
 * misspelt or renamed stat (which would select nothing and never fire) fails here.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { dump } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack } from "../e2e/harness.js";
import { type Doc, isDoc, loadYamlDocs, repoPath } from "./kustomize.js";
import { promtoolBinary, runTool } from "./tools.js";

const RULES = repoPath("k8s", "base", "prometheusrule-envoy.yaml");
const RULE_TESTS = repoPath("test", "k8s", "prometheusrule-envoy.test.yaml");
const RULES_FILE = "countersign-envoy.rules.yaml";
const DASHBOARD = repoPath("k8s", "grafana", "countersign-envoy-dashboard.json");
/** Labels the PodMonitor's scrape adds to every series. */
const TARGET_LABELS = new Set(["job", "namespace", "pod", "instance", "container", "endpoint"]);

interface Rule {
  readonly alert?: string;
  readonly expr: string;
  readonly annotations?: Record<string, string>;
}
interface Query {
  readonly where: string;
  readonly expr: string;
}

const ruleSpec = (() => {
  const [doc] = loadYamlDocs(RULES);
  if (!isDoc(doc?.["spec"])) throw new Error(`${RULES} has no spec`);
  return doc["spec"];
})();
const rules: Rule[] = (Array.isArray(ruleSpec["groups"]) ? ruleSpec["groups"].filter(isDoc) : []).flatMap((g) => (Array.isArray(g["rules"]) ? (g["rules"] as Rule[]) : []));
const alerts = rules.filter((r): r is Rule & { alert: string } => r.alert !== undefined);
const dashboard: unknown = JSON.parse(readFileSync(DASHBOARD, "utf8"));

function panelsOf(board: unknown): Doc[] {
  return isDoc(board) && Array.isArray(board["panels"]) ? board["panels"].filter(isDoc) : [];
}
function dashboardQueries(board: unknown): Query[] {
  return panelsOf(board).flatMap((p) => (Array.isArray(p["targets"]) ? p["targets"].filter(isDoc) : []).map((t) => ({ where: `panel "${String(p["title"])}" ${String(t["refId"])}`, expr: String(t["expr"]) })));
}
function variableQueries(board: unknown): Query[] {
  const templating = isDoc(board) ? board["templating"] : undefined;
  const list = isDoc(templating) && Array.isArray(templating["list"]) ? templating["list"].filter(isDoc) : [];
  return list.filter((v) => v["type"] === "query").map((v) => ({ where: `variable $${String(v["name"])}`, expr: String(isDoc(v["query"]) ? v["query"]["query"] : v["query"]) }));
}

/** Metric name → label name → the values seen, from Prometheus text exposition. */
type Scrape = Map<string, Map<string, Set<string>>>;
function parseExposition(text: string): Scrape {
  const scrape: Scrape = new Map();
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+\S+$/.exec(line);
    if (m === null) continue;
    const labels = scrape.get(m[1] ?? "") ?? new Map<string, Set<string>>();
    scrape.set(m[1] ?? "", labels);
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      const values = labels.get(l[1] ?? "") ?? new Set<string>();
      values.add(l[2] ?? "");
      labels.set(l[1] ?? "", values);
    }
  }
  return scrape;
}

/** Every way `query` names an Envoy series, label or label value the scrape does not have. */
function problemsOf(query: Query, scrape: Scrape): string[] {
  const problems: string[] = [];
  const grouping = [...query.expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => (m[1] ?? "").split(",").map((l) => l.trim()).filter((l) => l !== ""));
  const selectors = [...query.expr.replace(/\b(?:by|without)\s*\([^)]*\)/g, "").matchAll(/\b(envoy_[a-zA-Z0-9_]+)\s*(?:\{([^}]*)\})?/g)];
  const labelsInQuery = new Set(selectors.flatMap(([, name = ""]) => [...(scrape.get(name)?.keys() ?? [])]));
  for (const label of grouping) if (!TARGET_LABELS.has(label) && !labelsInQuery.has(label)) problems.push(`${query.where}: groups by ${label}, a label none of its series has`);
  if (selectors.length === 0) problems.push(`${query.where}: names no Envoy series`);
  for (const [, name = "", matchers = ""] of selectors) {
    const labels = scrape.get(name);
    if (labels === undefined) {
      problems.push(`${query.where}: Envoy exports no ${name}`);
      continue;
    }
    for (const [, label = "", op = "", value = ""] of matchers.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      if (TARGET_LABELS.has(label)) continue;
      const values = labels.get(label);
      if (values === undefined) {
        problems.push(`${query.where}: ${name} has no label ${label}`);
        continue;
      }
      if (value.includes("$")) continue; // a Grafana variable
      const wanted = op === "=~" || op === "!~" ? value.split("|") : [value];
      for (const v of wanted) if (!values.has(v)) problems.push(`${query.where}: ${name}{${label}} is never "${v}" (seen: ${[...values].join(", ")})`);
    }
  }
  return problems;
}

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "countersign-envoy-rules-"));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function promtoolCheckRules(name: string, ruleFile: unknown, lint: "all" | "none") {
  const path = join(scratch, name);
  writeFileSync(path, dump(ruleFile, { lineWidth: -1 }));
  return runTool(promtoolBinary(), ["check", "rules", `--lint=${lint}`, "--lint-fatal", path]);
}

describe("the Envoy PrometheusRule (k8s/base/prometheusrule-envoy.yaml)", () => {
  it("is a rule file promtool accepts, without lint findings", () => {
    const r = promtoolCheckRules(RULES_FILE, ruleSpec, "all");
    expect(r.status, r.transcript).toBe(0);
    expect(r.stdout).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it("passes its promtool unit tests (test/k8s/prometheusrule-envoy.test.yaml)", () => {
    promtoolCheckRules(RULES_FILE, ruleSpec, "none");
    const tests = join(scratch, basename(RULE_TESTS));
    copyFileSync(RULE_TESTS, tests);
    const r = runTool(promtoolBinary(), ["test", "rules", tests], { timeoutMs: 180_000 });
    expect(r.status, r.transcript).toBe(0);
    expect(r.stdout).toContain("SUCCESS");
  });

  it("has, for every alert, a promtool case where it fires (labels and annotations in full) and one where it stays silent", () => {
    const [file] = loadYamlDocs(RULE_TESTS);
    const cases = (Array.isArray(file?.["tests"]) ? file["tests"].filter(isDoc) : []).flatMap((g) => (Array.isArray(g["alert_rule_test"]) ? g["alert_rule_test"].filter(isDoc) : []));
    const problems = alerts.flatMap((a) => {
      const mine = cases.filter((c) => c["alertname"] === a.alert);
      const firing = mine.flatMap((c) => (Array.isArray(c["exp_alerts"]) ? c["exp_alerts"].filter(isDoc) : []));
      const out: string[] = [];
      if (firing.length === 0) out.push(`${a.alert}: no case where it fires`);
      if (!mine.some((c) => Array.isArray(c["exp_alerts"]) && c["exp_alerts"].length === 0)) out.push(`${a.alert}: no case where it stays silent`);
      for (const f of firing) {
        const keys = Object.keys(isDoc(f["exp_annotations"]) ? f["exp_annotations"] : {}).sort();
        if (keys.join() !== Object.keys(a.annotations ?? {}).sort().join()) out.push(`${a.alert}: exp_annotations must give ${Object.keys(a.annotations ?? {}).join(", ")}`);
      }
      return out;
    });
    expect(problems).toEqual([]);
    expect(alerts.map((a) => a.alert).sort()).toEqual([
      "CountersignEnvoyBodyTooLarge",
      "CountersignEnvoyDnsFailures",
      "CountersignEnvoyExtProcFailing",
      "CountersignEnvoyScrapeFailing",
      "CountersignEnvoySigningPath5xx",
      "CountersignEnvoySigningTimeouts",
      "CountersignEnvoyTargetsAbsent",
      "CountersignEnvoyUnknownHosts",
      "CountersignEnvoyUpstreamTlsErrors",
    ]);
  });

  it("selects the scrape job the PodMonitor gives Envoy's endpoint", () => {
    const [podMonitor] = loadYamlDocs(repoPath("k8s", "sidecar", "podmonitor.yaml"));
    const endpoints = ((podMonitor?.["spec"] as { podMetricsEndpoints: { port: string; path: string; relabelings?: { targetLabel: string; replacement: string }[] }[] }).podMetricsEndpoints);
    const envoyEndpoint = endpoints.find((e) => e.port === "envoy-stats");
    expect(envoyEndpoint?.path).toBe("/stats/prometheus");
    const job = envoyEndpoint?.relabelings?.find((r) => r.targetLabel === "job")?.replacement;
    expect(job).toBe("countersign-envoy");
    for (const a of alerts) expect(a.expr, a.alert).toContain(`job="${job}"`);
  });

  it("alerts on the scrape of that job itself: a target failing (up == 0) and no target at all (absent)", () => {
    const onUp = alerts.filter((a) => /\bup\{/.test(a.expr));
    expect(onUp.map((a) => [a.alert, a.expr])).toEqual([
      ["CountersignEnvoyScrapeFailing", 'max by (namespace, pod) (up{job="countersign-envoy"}) == 0'],
      ["CountersignEnvoyTargetsAbsent", 'absent(up{job="countersign-envoy"})'],
    ]);
  });

  it("uses no stat that cannot move: the signing routes set no timeout, so no alert or panel reads upstream_rq_timeout", () => {
    const envoyYaml = readFileSync(repoPath("envoy", "envoy.yaml"), "utf8");
    expect(envoyYaml).toMatch(/^\s*timeout: 0s$/m);
    expect(envoyYaml).not.toMatch(/^\s*timeout: (?!0s)\S+$/m);
    const all = [...alerts.map((a) => a.expr), ...dashboardQueries(dashboard).map((q) => q.expr)].join("\n");
    expect(all).not.toContain("upstream_rq_timeout");
  });
});

describe("the Envoy dashboard (k8s/grafana/countersign-envoy-dashboard.json)", () => {
  it("is PromQL promtool accepts (each query checked as a recording rule)", () => {
    const queries = dashboardQueries(dashboard);
    expect(queries.length).toBeGreaterThanOrEqual(10);
    const ruleFile = { groups: [{ name: "dashboard", rules: queries.map((q, i) => ({ record: `dashboard:query_${i}`, expr: q.expr.replace(/\$__rate_interval/g, "1m") })) }] };
    const r = promtoolCheckRules("envoy-dashboard.rules.yaml", ruleFile, "none");
    expect(r.status, r.transcript).toBe(0);
  });

  it("charts every Envoy series an alert reads: ext_proc failures and timeouts, 413, 5xx, upstream TLS, DNS failures and NXDOMAIN", () => {
    const exprs = dashboardQueries(dashboard).map((q) => q.expr).join("\n");
    const alerted = new Set(alerts.flatMap((a) => [...a.expr.matchAll(/\b(envoy_[a-zA-Z0-9_]+)(?=\s*[{[])/g)].map((m) => m[1] ?? "")));
    expect([...alerted].sort()).toEqual([
      "envoy_cluster_ssl_connection_error",
      "envoy_cluster_ssl_fail_verify_error",
      "envoy_cluster_ssl_fail_verify_san",
      "envoy_dns_cache_aws_dns_cache_dns_query_failure",
      "envoy_dns_cache_aws_dns_cache_dns_query_timeout",
      "envoy_dns_cares_not_found",
      "envoy_http_downstream_rq_too_large",
      "envoy_http_downstream_rq_xx",
      "envoy_http_ext_proc_countersign_message_timeouts",
      "envoy_http_ext_proc_countersign_streams_failed",
    ]);
    for (const name of alerted) expect(exprs, name).toContain(name);
  });

  it("gives every panel a unique id and takes every data source from the $datasource variable", () => {
    const panels = panelsOf(dashboard);
    expect(new Set(panels.map((p) => p["id"])).size).toBe(panels.length);
    const sources = panels.filter((p) => p["type"] !== "row").flatMap((p) => [p["datasource"], ...(Array.isArray(p["targets"]) ? p["targets"].filter(isDoc).map((t) => t["datasource"]) : [])]);
    expect(sources.every((s) => isDoc(s) && s["uid"] === "${datasource}")).toBe(true);
    expect(isDoc(dashboard) && dashboard["uid"]).toBe("countersign-envoy");
  });
});

describe("Envoy names against a real scrape of the shipped envoy.yaml (the pinned Envoy)", () => {
  let scrape: Scrape;
  beforeAll(async () => {
    const stack = await startStack({});
    try {
      const r = await fetch(`${stack.envoy?.adminUrl ?? ""}/stats/prometheus`);
      expect(r.status).toBe(200);
      scrape = parseExposition(await r.text());
    } finally {
      await stack.close();
    }
  }, 120_000);

  it("reads the exposition (the premise: the ext_proc filter's stats are there under its stat prefix)", () => {
    expect(scrape.get("envoy_http_ext_proc_countersign_streams_started")?.get("envoy_http_conn_manager_prefix")).toEqual(new Set(["tls_decap", "plain_sign"]));
    expect(problemsOf({ where: "a misspelt stat", expr: 'rate(envoy_http_ext_proc_countersign_stream_failed{envoy_cluster_name="x"}[5m])' }, scrape)).toEqual(["a misspelt stat: Envoy exports no envoy_http_ext_proc_countersign_stream_failed"]);
    expect(problemsOf({ where: "q", expr: 'envoy_cluster_ssl_connection_error{envoy_cluster_name="aws_upstreams"}' }, scrape)).toEqual([
      'q: envoy_cluster_ssl_connection_error{envoy_cluster_name} is never "aws_upstreams" (seen: aws_upstream)',
    ]);
    expect(problemsOf({ where: "g", expr: "sum by (envoy_cluster) (envoy_cluster_ssl_connection_error)" }, scrape)).toEqual(["g: groups by envoy_cluster, a label none of its series has"]);
  });

  it("the alerts name only series, labels and label values the real Envoy exports (those on the scrape's own `up` aside)", () => {
    const onEnvoyStats = alerts.filter((a) => !/\bup\{/.test(a.expr));
    expect(onEnvoyStats.length).toBe(alerts.length - 2);
    expect(onEnvoyStats.flatMap((a) => problemsOf({ where: a.alert, expr: a.expr }, scrape))).toEqual([]);
  });

  it("the dashboard's panels and variables name only series, labels and label values the real Envoy exports", () => {
    expect([...dashboardQueries(dashboard), ...variableQueries(dashboard)].flatMap((q) => problemsOf(q, scrape))).toEqual([]);
  });
});
