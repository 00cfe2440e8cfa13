/**
 * The metrics countersign exports, as dashboards and alerts may name them: read from the source of
 * src/admin/metrics.ts (name, type, labels, and the label values its help text lists), and the
 * prom-client default process metrics from a live registry.
 */
import { readFileSync } from "node:fs";
import client from "prom-client";

export type MetricType = "counter" | "gauge" | "histogram" | "summary";

export interface MetricInfo {
  readonly name: string;
  readonly type: MetricType;
  readonly labels: readonly string[];
  /** Label values the help text lists, e.g. "by decision (signed|refused)". */
  readonly documentedValues: ReadonlyMap<string, readonly string[]>;
}

/** Labels Prometheus adds to every scraped series (target labels of pod and service discovery). */
export const TARGET_LABELS = ["namespace", "pod", "instance", "job", "container", "service", "endpoint"] as const;

/** One entry per `new client.<Type>({ name: "countersign_..." ... })` in the source text. */
export function parseMetricsSource(source: string): MetricInfo[] {
  const metrics: MetricInfo[] = [];
  for (const chunk of source.split(/new client\./).slice(1)) {
    const type = /^(Counter|Gauge|Histogram|Summary)\b/.exec(chunk)?.[1];
    const name = /name:\s*"(countersign_[a-z0-9_]+)"/.exec(chunk)?.[1];
    if (type === undefined || name === undefined) continue;
    const help = /help:\s*"((?:[^"\\]|\\.)*)"/.exec(chunk)?.[1] ?? "";
    const labelList = /labelNames:\s*\[([^\]]*)\]/.exec(chunk)?.[1] ?? "";
    const labels = [...labelList.matchAll(/"([^"]+)"/g)].map((m) => m[1] ?? "");
    metrics.push({ name, type: type.toLowerCase() as MetricType, labels, documentedValues: documentedValues(help, labels) });
  }
  return metrics;
}

function documentedValues(help: string, labels: readonly string[]): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const match of help.matchAll(/\b([a-z_]+) \(([a-z_]+(?:\|[a-z_]+)+)\)/g)) {
    const label = match[1] ?? "";
    if (labels.includes(label)) values.set(label, (match[2] ?? "").split("|"));
  }
  return values;
}

export function readMetricsSource(path: string): MetricInfo[] {
  return parseMetricsSource(readFileSync(path, "utf8"));
}

/** Name, type and label names of every metric in a prom-client registry. */
export async function registryMetrics(registry: client.Registry): Promise<MetricInfo[]> {
  const json = await registry.getMetricsAsJSON();
  return json.map((m) => {
    const instance: unknown = registry.getSingleMetric(m.name);
    const labelNames = isRecord(instance) && Array.isArray(instance["labelNames"]) ? instance["labelNames"].map(String) : [];
    return { name: m.name, type: String(m.type) as MetricType, labels: labelNames, documentedValues: new Map() };
  });
}

/** prom-client's default process and Node.js metrics, as a fresh registry reports them. */
export async function defaultProcessMetrics(): Promise<MetricInfo[]> {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  return registryMetrics(registry);
}

/** Every series name a query may select: histogram and summary series with their suffixes. */
export function seriesNames(metrics: readonly MetricInfo[]): Map<string, MetricInfo> {
  const series = new Map<string, MetricInfo>();
  for (const m of metrics) {
    series.set(m.name, m);
    if (m.type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) series.set(m.name + suffix, m);
    if (m.type === "summary") for (const suffix of ["_sum", "_count"]) series.set(m.name + suffix, m);
  }
  return series;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}
