/**
 * What a PromQL expression selects, read from its syntax tree as Prometheus's own PromQL grammar
 * builds it (@prometheus-io/lezer-promql, the parser of the Prometheus web UI, published from the
 * prometheus/prometheus repository): the series names, their label matchers, and the labels it
 * groups by. promtool checks that each expression is valid PromQL and runs the rules' unit tests
 * (monitoring.spec.ts), but it has no command that lists an expression's selectors, and it does not
 * know countersign's metric catalogue: an unknown name is valid PromQL that selects nothing. Listing
 * the selectors is all this module does; an expression the grammar cannot parse is an error.
 */
import { parser } from "@prometheus-io/lezer-promql";

type Tree = ReturnType<typeof parser.parse>;
type SyntaxNode = Tree["topNode"];

export interface LabelMatcher {
  readonly label: string;
  readonly op: "=" | "!=" | "=~" | "!~";
  readonly value: string;
}

export interface Selector {
  /** The series name: the identifier, or the value of a `__name__="..."` matcher; "" when neither. */
  readonly metric: string;
  readonly matchers: readonly LabelMatcher[];
}

/** The syntax tree of `expr`; throws, naming the place, when the grammar finds an error in it. */
export function parsePromQL(expr: string): Tree {
  const tree = parser.parse(expr);
  let error: number | undefined;
  tree.iterate({
    enter(node) {
      if (node.type.isError) error ??= node.from;
    },
  });
  if (error !== undefined) throw new Error(`not PromQL at offset ${error}: ${expr.slice(0, error)} ⟨here⟩ ${expr.slice(error)}`);
  return tree;
}

function nodesNamed(expr: string, name: string): SyntaxNode[] {
  const found: SyntaxNode[] = [];
  parsePromQL(expr).iterate({
    enter(node) {
      if (node.name === name) found.push(node.node);
    },
  });
  return found;
}

/** The text of a PromQL string literal ("...", '...' or `...`). */
function stringValue(literal: string): string {
  if (literal.startsWith("`")) return literal.slice(1, -1);
  const quote = literal[0] ?? '"';
  return literal.slice(1, -1).replace(/\\(.)/g, (_, c: string) => (c === quote || c === "\\" ? c : `\\${c}`));
}

function matcherOf(expr: string, node: SyntaxNode): LabelMatcher {
  const text = (n: SyntaxNode | null): string => (n === null ? "" : expr.slice(n.from, n.to));
  return {
    label: text(node.getChild("LabelName") ?? node.getChild("QuotedLabelName")).replace(/^"(.*)"$/, "$1"),
    op: text(node.getChild("MatchOp")) as LabelMatcher["op"],
    value: stringValue(text(node.getChild("StringLiteral"))),
  };
}

/** Every vector selector of the expression (those of range selectors included), in order of appearance. */
export function selectorsIn(expr: string): Selector[] {
  return nodesNamed(expr, "VectorSelector").map((selector) => {
    const identifier = selector.getChild("Identifier");
    const matcherNodes = selector.getChild("LabelMatchers")?.getChildren("UnquotedLabelMatcher") ?? [];
    const matchers = matcherNodes.map((m) => matcherOf(expr, m));
    const metric = identifier !== null ? expr.slice(identifier.from, identifier.to) : (matchers.find((m) => m.label === "__name__" && m.op === "=")?.value ?? "");
    return { metric, matchers: matchers.filter((m) => m.label !== "__name__") };
  });
}

/** Every series name the expression selects, in order of appearance, without duplicates. */
export function metricNamesIn(expr: string): string[] {
  return [...new Set(selectorsIn(expr).map((s) => s.metric).filter((m) => m !== ""))];
}

/** Labels named in by (...), without (...), on (...), ignoring (...) and group_left/right (...). */
export function groupingLabelsIn(expr: string): string[] {
  const labels = nodesNamed(expr, "GroupingLabels").flatMap((g) => g.getChildren("LabelName").map((l) => expr.slice(l.from, l.to)));
  return [...new Set(labels)];
}

/** Seconds in a Prometheus duration such as 90s, 6m, 1h30m or 1d (a rule's `for`, which promtool has checked). */
export function durationSeconds(duration: string): number {
  const units: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };
  const parts = [...duration.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join("") !== duration) {
    throw new Error(`not a Prometheus duration: ${JSON.stringify(duration)}`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (units[p[2] ?? "s"] ?? 0), 0);
}
