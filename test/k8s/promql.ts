/**
 * Just enough PromQL reading to check dashboards and alerts against the metrics countersign
 * exports: which series names an expression selects, with which label matchers, and which labels
 * it groups by. The real promtool checks that every expression is valid PromQL and runs the rules'
 * unit tests (monitoring.spec.ts), but it has no command that lists the series, matchers and
 * groupings of an expression, and it does not know countersign's metric catalogue: an unknown name
 * is valid PromQL that selects nothing. This reading fills that gap only. Not a parser: it relies
 * on the expressions being well formed (promtool checks that first) and on label values holding no
 * braces.
 */

export interface LabelMatcher {
  readonly label: string;
  readonly op: "=" | "!=" | "=~" | "!~";
  readonly value: string;
}

export interface Selector {
  readonly metric: string;
  readonly matchers: readonly LabelMatcher[];
}

/** Words that look like series names but are PromQL keywords. */
const KEYWORDS = new Set([
  "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
  "offset", "atan2", "inf", "nan",
]);

const STRING_LITERAL = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g;
const GROUPING = /\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;
const IDENTIFIER = /[A-Za-z_:][A-Za-z0-9_:]*/g;
const MATCHER = /([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g;

/** Every series name the expression selects, in order of appearance, without duplicates. */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(STRING_LITERAL, '""')
    .replace(/\{[^}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(GROUPING, " ");
  const names: string[] = [];
  for (const match of bare.matchAll(IDENTIFIER)) {
    const word = match[0];
    const start = match.index;
    const before = start > 0 ? bare[start - 1] : "";
    if (before !== undefined && /[0-9.$]/.test(before)) continue; // 1e3, 5m, $variable
    if (/^\s*\(/.test(bare.slice(start + word.length))) continue; // a function call
    if (KEYWORDS.has(word)) continue;
    if (!names.includes(word)) names.push(word);
  }
  return names;
}

/** Every `name{matchers}` in the expression. A name without braces has no matchers and is left out. */
export function selectorsIn(expr: string): Selector[] {
  const selectors: Selector[] = [];
  for (const match of expr.matchAll(/([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}/g)) {
    const matchers = [...(match[2] ?? "").matchAll(MATCHER)].map((m) => ({
      label: m[1] ?? "",
      op: (m[2] ?? "=") as LabelMatcher["op"],
      value: m[3] ?? "",
    }));
    selectors.push({ metric: match[1] ?? "", matchers });
  }
  return selectors;
}

/** Labels named in by (...), without (...), on (...), ignoring (...) and group_left/right (...). */
export function groupingLabelsIn(expr: string): string[] {
  const labels = new Set<string>();
  for (const match of expr.replace(STRING_LITERAL, '""').matchAll(GROUPING)) {
    for (const label of (match[1] ?? "").split(",")) {
      const trimmed = label.trim();
      if (trimmed !== "") labels.add(trimmed);
    }
  }
  return [...labels];
}

/** Seconds in a Prometheus duration such as 90s, 6m, 1h30m or 1d. */
export function durationSeconds(duration: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  const parts = [...duration.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== duration) {
    throw new Error(`not a Prometheus duration: ${JSON.stringify(duration)}`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (units[p[2] ?? "s"] ?? 0), 0);
}
