/**
 * Validates an Envoy bootstrap (YAML) without an Envoy binary: strictly against Envoy's v3 API
 * protos (the snapshot shipped in @grpc/grpc-js-xds), then against the rules countersign relies on.
 *
 *   const problems = validateBootstrapFile("envoy/envoy.yaml");
 *   // [] when the file is good; otherwise { path, message, severity } per finding.
 */
import { readFileSync } from "node:fs";
import { load as loadYaml } from "js-yaml";
import { checkAgainstProto } from "./checkAgainstProto.js";
import { checkSemantics } from "./checkSemantics.js";
import type { ConfigProblem } from "./configProblem.js";
import { loadEnvoyProtos } from "./envoyProtos.js";

export type { ConfigProblem } from "./configProblem.js";
export { EXPECTED_BUFFER_LIMIT_BYTES } from "./checkSemantics.js";

export function loadEnvoyYaml(path: string): unknown {
  return loadYaml(readFileSync(path, "utf8"), { filename: path });
}

/** Every problem in a parsed bootstrap document: proto shape first, then countersign's rules. */
export function validateBootstrap(doc: unknown): ConfigProblem[] {
  const protos = loadEnvoyProtos();
  return [...checkAgainstProto(doc, protos.bootstrap, protos), ...checkSemantics(doc)];
}

export function validateBootstrapFile(path: string): ConfigProblem[] {
  return validateBootstrap(loadEnvoyYaml(path));
}

export function formatProblems(problems: readonly ConfigProblem[]): string {
  return problems.map((p) => `${p.severity}: ${p.path}: ${p.message}`).join("\n");
}
