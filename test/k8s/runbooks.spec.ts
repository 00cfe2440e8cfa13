/**
 * Every alert of every PrometheusRule under k8s/ links a runbook, and each link's anchor is a heading
 * that exists in the file it names (k8s/README.md or README.md), as GitHub renders anchors. So a
 * renamed heading or a new alert without a runbook fails here, not during an incident.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isDoc, loadYamlDocs, repoPath } from "./kustomize.js";

/** The files a runbook_url may point into, by their path in the repository. */
const DOCS = ["k8s/README.md", "README.md"] as const;
const URL_PREFIX = "https://git.example.com/countersign/blob/main/";

/** GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens. */
function githubAnchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** Every anchor a Markdown file's headings produce (duplicates numbered as GitHub does). */
function anchorsOf(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split("\n")) {
    if (line.startsWith("```")) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (m === null) continue;
    const base = githubAnchor((m[1] ?? "").replace(/`/g, ""));
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

function ruleFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return ruleFiles(path);
    return /\.ya?ml$/.test(e.name) && loadYamlDocs(path).some((d) => d["kind"] === "PrometheusRule") ? [path] : [];
  });
}

interface Alert {
  readonly alert: string;
  readonly annotations?: Record<string, string>;
}

const alerts: Alert[] = ruleFiles(repoPath("k8s")).flatMap((file) =>
  loadYamlDocs(file)
    .filter((d) => d["kind"] === "PrometheusRule")
    .flatMap((d) => {
      const spec = isDoc(d["spec"]) ? d["spec"] : {};
      const groups = Array.isArray(spec["groups"]) ? spec["groups"].filter(isDoc) : [];
      return groups.flatMap((g) => (Array.isArray(g["rules"]) ? (g["rules"] as Alert[]).filter((r) => typeof r.alert === "string") : []));
    }),
);
const anchors = new Map(DOCS.map((doc) => [doc, anchorsOf(readFileSync(repoPath(doc), "utf8"))]));

describe("runbook links", () => {
  it("computes GitHub's anchors", () => {
    expect(githubAnchor("CountersignNoReadyReplicas")).toBe("countersignnoreadyreplicas");
    expect(githubAnchor("cert-manager instead of countersign certs")).toBe("cert-manager-instead-of-countersign-certs");
    expect(githubAnchor("Memory (sizing)")).toBe("memory-sizing");
    expect([...anchorsOf("# A\n```\n# not a heading\n```\n## A\n### `B` c\n")]).toEqual(["a", "a-1", "b-c"]);
  });

  it("finds the alerts of both PrometheusRules", () => {
    expect(alerts.length).toBeGreaterThanOrEqual(20);
    expect(alerts.some((a) => a.alert.startsWith("CountersignEnvoy"))).toBe(true);
  });

  it("gives every alert a runbook_url whose anchor is a heading of the file it names", () => {
    const broken = alerts.flatMap((a) => {
      const url = a.annotations?.["runbook_url"];
      if (url === undefined) return [`${a.alert}: no runbook_url`];
      if (!url.startsWith(URL_PREFIX)) return [`${a.alert}: ${url} does not start with ${URL_PREFIX}`];
      const [file = "", anchor = ""] = url.slice(URL_PREFIX.length).split("#");
      const known = anchors.get(file as (typeof DOCS)[number]);
      if (known === undefined) return [`${a.alert}: ${file} is none of ${DOCS.join(", ")}`];
      return known.has(anchor) ? [] : [`${a.alert}: ${file} has no heading with the anchor #${anchor}`];
    });
    expect(broken).toEqual([]);
  });

  it("gives each alert a runbook of its own", () => {
    const urls = alerts.map((a) => a.annotations?.["runbook_url"]);
    expect(new Set(urls).size).toBe(alerts.length);
  });
});
