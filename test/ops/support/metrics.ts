/**
 * Reads Prometheus text exposition (what /metrics serves) into samples, so tests can assert exact
 * values by metric name and exact label set.
 */

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const SAMPLE_RE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/;
const LABEL_RE = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function unescapeLabel(v: string): string {
  return v.replace(/\\(.)/g, (_m, c: string) => (c === "n" ? "\n" : c));
}

function parseValue(text: string): number {
  if (text === "+Inf") return Number.POSITIVE_INFINITY;
  if (text === "-Inf") return Number.NEGATIVE_INFINITY;
  return Number(text);
}

export function parseMetrics(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = SAMPLE_RE.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(LABEL_RE)) labels[l[1] as string] = unescapeLabel(l[2] as string);
    out.push({ name: m[1] as string, labels, value: parseValue(m[3] as string) });
  }
  return out;
}

/** The lines of the metric families (HELP, TYPE and samples) whose names start with `prefix`. */
export function familiesNamed(text: string, prefix: string): string {
  let keep = false;
  const kept: string[] = [];
  for (const line of text.split("\n")) {
    const family = /^# (?:HELP|TYPE) (\S+)/.exec(line)?.[1];
    if (family !== undefined) keep = family.startsWith(prefix);
    if (keep && line !== "") kept.push(line);
  }
  return `${kept.join("\n")}\n`;
}

export async function scrape(adminUrl: string): Promise<Sample[]> {
  const res = await fetch(`${adminUrl}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return parseMetrics(await res.text());
}

/** Samples of `name` whose labels include every pair in `labels`. */
export function samplesOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The value of the one sample of `name` with exactly `labels`; undefined when there is none. */
export function valueOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const want = Object.keys(labels).length;
  const found = samplesOf(samples, name, labels).filter((s) => Object.keys(s.labels).length === want);
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} samples`);
  return found[0]?.value;
}

/** Sum of every sample of `name` whose labels include `labels`. */
export function sumOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number {
  return samplesOf(samples, name, labels).reduce((acc, s) => acc + s.value, 0);
}
