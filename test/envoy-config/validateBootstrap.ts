/**
 * Checks an Envoy bootstrap file two ways: Envoy itself decides whether Envoy accepts it
 * (`envoy --mode validate` by the pinned Envoy, envoyValidate.ts), and countersign's rules decide
 * whether it keeps the guarantees countersign relies on, which Envoy cannot know (checkSemantics.ts).
 *
 *   const files = await createEnvoyTestFiles();
 *   const problems = validateBootstrapFile("envoy/envoy.yaml", files);
 *   // [] when the file is good; otherwise { path, message, severity } per finding.
 */
import { readFileSync } from "node:fs";
import { load as loadYaml } from "js-yaml";
import { checkSemantics } from "./checkSemantics.js";
import type { ConfigProblem } from "./configProblem.js";
import type { EnvoyVerdict } from "../support/envoy.js";
import { type EnvoyTestFiles, envoyValidate } from "./envoyValidate.js";

export type { ConfigProblem } from "./configProblem.js";
export { EXPECTED_BUFFER_LIMIT_BYTES } from "./checkSemantics.js";

/** Where Envoy's own findings are reported: Envoy names the place in its message. */
export const ENVOY_VERDICT_PATH = "(envoy --mode validate)";

export function loadEnvoyYaml(path: string): unknown {
  return loadYaml(readFileSync(path, "utf8"), { filename: path });
}

/** Envoy's rejection as an error and each of its warnings (deprecated fields, …) as a warning. */
export function envoyProblems(verdict: EnvoyVerdict): ConfigProblem[] {
  return [
    ...(verdict.accepted ? [] : [{ path: ENVOY_VERDICT_PATH, message: verdict.output, severity: "error" as const }]),
    ...verdict.warnings.map((message) => ({ path: ENVOY_VERDICT_PATH, message, severity: "warning" as const })),
  ];
}

/** Every problem in the bootstrap file: Envoy's verdict on the file as written, then countersign's rules. */
export function validateBootstrapFile(path: string, files: EnvoyTestFiles): ConfigProblem[] {
  const text = readFileSync(path, "utf8");
  return [...envoyProblems(envoyValidate(text, files)), ...checkSemantics(loadYaml(text, { filename: path }))];
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `${p.severity}: ${p.path}: ${p.message}`).join("\n");
}
