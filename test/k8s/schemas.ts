/**
 * Validates Kubernetes objects against the Kubernetes API's schemas and the released CRDs' schemas,
 * unknown fields rejected, with the pinned validator (test/k8s/validate_objects.py run by the
 * .tools/venv Python, scripts/install-validators.sh).
 */
import type { Doc } from "./kustomize.js";
import { repoPath } from "./repoPath.js";
import { CRD_DIR, K8S_SCHEMA_VERSION, runTool, validatorPython } from "./tools.js";

export interface Located {
  /** Where the object comes from, for failure messages. */
  readonly where: string;
  readonly object: Doc;
}

export interface SchemaResult {
  readonly where: string;
  readonly kind: string;
  readonly apiVersion: string;
  /** "kubernetes-validate <version> strict", "CRD <file>", or "nothing" (then errors says so). */
  readonly validatedBy: string;
  readonly errors: readonly string[];
}

const SCRIPT = repoPath("test", "k8s", "validate_objects.py");

/** One result per object, in order. Throws when the validator itself fails (not when an object does). */
export function validateObjects(objects: readonly Located[]): SchemaResult[] {
  const r = runTool(validatorPython(), [SCRIPT, K8S_SCHEMA_VERSION, CRD_DIR], { input: JSON.stringify(objects), timeoutMs: 120_000 });
  if (r.status !== 0) throw new Error(`the schema validator failed:\n${r.transcript}`);
  const results = JSON.parse(r.stdout) as SchemaResult[];
  if (results.length !== objects.length) throw new Error(`the schema validator answered ${results.length} results for ${objects.length} objects`);
  return results;
}

/** "where kind: error" lines of every failed object; empty when all pass. */
export function schemaProblems(results: readonly SchemaResult[]): string[] {
  return results.flatMap((r) => r.errors.map((e) => `${r.where} ${r.kind}: ${e}`));
}
