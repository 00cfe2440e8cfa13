import { LineCounter, parseDocument, type YAMLError } from "yaml";
import { buildPolicy, type PolicyDocument } from "./buildPolicy.js";
import { compiledEndpoints } from "./matchEndpoint.js";
import type { Problem } from "./problem.js";
import { schemaProblems } from "./schemaProblems.js";
import { semanticProblems } from "./semanticProblems.js";
import type { ParseResult, PolicyError } from "./types.js";
import { YamlLocator } from "./yamlLocator.js";

/** Bounds alias expansion ("billion laughs"); a real policy needs a handful at most. */
const MAX_ALIAS_COUNT = 100;

/**
 * Parses and validates a policy. Pure: no I/O. Every problem is reported, each with the 1-based
 * line and column of the offending key or value in `text`; `file` only labels the errors.
 *
 * 1. YAML syntax (the parser's own positions); stops here when the YAML is malformed.
 * 2. Structure, against policies/policy.schema.json.
 * 3. Semantic rules (host patterns, references, cycles, duplicates).
 */
export function parsePolicy(text: string, file: string): ParseResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const locator = new YamlLocator(doc, lineCounter);
  // Warnings too: an unknown tag (`!foo 1`) would otherwise silently become a string.
  const yamlErrors = [...doc.errors, ...doc.warnings];
  if (yamlErrors.length > 0) {
    return failure(yamlErrors.map((error) => yamlSyntaxError(error, text, locator, file)));
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    // The only way toJS fails on a document without errors: aliases expanding past the limit.
    const reason = error instanceof Error ? error.message : String(error);
    return failure([{ file, line: 1, col: 1, message: `YAML document refused: ${reason} (more than ${MAX_ALIAS_COUNT} alias expansions)` }]);
  }
  const problems = [...schemaProblems(data), ...semanticProblems(data)];
  if (problems.length > 0) {
    return failure(problems.map((problem) => locate(problem, locator, file)));
  }
  const policy = buildPolicy(data as PolicyDocument, text);
  compiledEndpoints(policy); // compile the host matchers now, not on the first request
  return { ok: true, policy };
}

/** `FILE:LINE:COL: message` */
export function formatPolicyError(error: PolicyError): string {
  return `${error.file}:${error.line}:${error.col}: ${error.message}`;
}

/** A quoted or plain YAML key at the start of a string, as written. */
const KEY_AT_START = /^(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\n]|'')*'|[^\s:,{}[\]]+)/;

function yamlSyntaxError(error: YAMLError, text: string, locator: YamlLocator, file: string): PolicyError {
  const start = error.pos[0];
  const { line, col } = locator.offset(start);
  if (error.code === "DUPLICATE_KEY") {
    const key = KEY_AT_START.exec(text.slice(start, start + 256))?.[0] ?? "";
    const shown = key.startsWith('"') || key.startsWith("'") ? key : JSON.stringify(key);
    return { file, line, col, message: `duplicate key ${shown}: keys of a mapping must be unique` };
  }
  return { file, line, col, message: `YAML syntax error: ${error.message}` };
}

function locate(problem: Problem, locator: YamlLocator, file: string): PolicyError {
  const { line, col } = problem.at === "key" ? locator.key(problem.path) : locator.value(problem.path);
  return { file, line, col, message: problem.message };
}

/** Sorted by position, identical reports merged. */
function failure(errors: PolicyError[]): ParseResult {
  const unique = new Map<string, PolicyError>();
  for (const error of errors) unique.set(`${error.line}:${error.col}:${error.message}`, error);
  const sorted = [...unique.values()].sort((a, b) => a.line - b.line || a.col - b.col);
  return { ok: false, error: sorted };
}
