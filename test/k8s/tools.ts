/**
 * The real tools the k8s tests run, pinned in scripts/tool-versions.env: kubectl (kustomize built in)
 * in .tools/bin, installed by scripts/install-kubectl.sh, and promtool from Debian's prometheus
 * package, installed by scripts/install-system-deps.sh. `make test` and .ci/run install both; a
 * missing tool fails the test that needs it with what to do, never skips it.
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

export const KUBECTL = repoPath(".tools", "bin", "kubectl");
export const PROMTOOL = "/usr/bin/promtool";

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
