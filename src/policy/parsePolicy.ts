import { LineCounter, parseDocument, type YAMLError } from "yaml";
import { buildPolicy, type PolicyDocument } from "./buildPolicy.js";
import { compiledEndpoints } from "./matchEndpoint.js";
import type { Problem } from "./problem.js";
import { schemaProblems } from "./schemaProblems.js";
import { semanticProblems } from "./semanticProblems.js";
import type { ParseResult, PolicyError } from "./types.js";
import { YamlLocator } from "./yamlLocator.js";

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
  if (doc.errors.length > 0) {
    return failure(doc.errors.map((error) => yamlSyntaxError(error, text, locator, file)));
  }
  const data: unknown = doc.toJS({ maxAliasCount: 100 });
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

function yamlSyntaxError(error: YAMLError, text: string, locator: YamlLocator, file: string): PolicyError {
  const [start, end] = error.pos;
  const { line, col } = locator.offset(start);
  if (error.code === "DUPLICATE_KEY") {
    const key = text.slice(start, end).trim();
    return { file, line, col, message: `duplicate key ${JSON.stringify(key)}: keys of a mapping must be unique` };
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
  return { ok: false, errors: sorted };
}
