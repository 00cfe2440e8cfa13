/**
 * A mistake in how the command was called (unknown flag, bad value, missing argument): the CLI
 * answers it with exit code 2 and the usage of the subcommand, before doing anything else.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { Result } from "../result.js";

/** The CLI's one exit-code rule. */
export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/**
 * node:util parseArgs (strict, its default), with its exceptions (unknown option, missing value, a value given
 * to a boolean flag) turned into a usage-error message.
 */
export function parseStrict<T extends ParseArgsConfig & { strict?: true }>(config: T): Result<{ parsed: ReturnType<typeof parseArgs<T>> }> {
  try {
    return { ok: true, parsed: parseArgs(config) };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message.split("\n")[0] ?? error.message : String(error) };
  }
}

/** True when `--help` or `-h` is among the arguments: help wins over any other mistake on the line. */
export function asksForHelp(args: readonly string[]): boolean {
  for (const arg of args) {
    if (arg === "--") return false;
    if (arg === "--help" || arg === "-h") return true;
  }
  return false;
}
