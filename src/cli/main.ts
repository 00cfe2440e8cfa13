/**
 * The countersign command line, callable with any argv and output streams (src/cli.ts passes the
 * process's). One exit-code rule for every subcommand: 0 success, 1 failure, 2 usage error
 * (unknown command or flag, bad value, missing argument), the usage error found before anything is
 * read, bound or fetched. `--help` on any subcommand prints its usage on stdout and exits 0.
 */
import { formatPolicyError, loadPolicyFile } from "../policy/index.js";
import { parseServeArgs, type ServeCommand } from "./serveArgs.js";
import { asksForHelp, EXIT, parseStrict } from "./usageError.js";
import { MAIN_USAGE, SERVE_USAGE, VALIDATE_USAGE } from "./usage.js";
import { packageVersion } from "./version.js";

export interface Output {
  write(text: string): unknown;
}

export interface CliIo {
  readonly stdout: Output;
  readonly stderr: Output;
  readonly env: NodeJS.ProcessEnv;
}

export interface CliDeps {
  /** Runs a checked serve command (default: ./serveCommand.js's runServe). */
  readonly runServe?: (command: ServeCommand) => Promise<number>;
}

export async function runCli(argv: readonly string[], io: CliIo, deps: CliDeps = {}): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return serveCommand(rest, io, deps);
    case "validate":
      return validateCommand(rest, io);
    case "certs": {
      const { runCertsCommand } = await import("../certs/command.js");
      return runCertsCommand(rest, io.stdout, io.stderr);
    }
    case "version":
    case "--version":
      if (rest.length > 0) return usageError(io, "countersign version", `takes no arguments (got ${rest.join(" ")})`, MAIN_USAGE);
      io.stdout.write(`countersign ${packageVersion()}\n`);
      return EXIT.ok;
    case "help":
    case "--help":
    case "-h":
      return helpCommand(rest, io, deps);
    case undefined:
      return usageError(io, "countersign", "no command given", MAIN_USAGE);
    default:
      return usageError(io, "countersign", `unknown command ${JSON.stringify(command)}`, MAIN_USAGE);
  }
}

async function helpCommand(args: readonly string[], io: CliIo, deps: CliDeps): Promise<number> {
  const [topic, ...extra] = args;
  if (extra.length > 0 || (topic !== undefined && !["serve", "validate", "certs"].includes(topic))) {
    return usageError(io, "countersign help", `unknown help topic ${JSON.stringify(args.join(" "))}`, MAIN_USAGE);
  }
  if (topic === undefined) {
    io.stdout.write(MAIN_USAGE);
    return EXIT.ok;
  }
  return runCli([topic, "--help"], io, deps);
}

async function serveCommand(args: string[], io: CliIo, deps: CliDeps): Promise<number> {
  if (asksForHelp(args)) {
    io.stdout.write(SERVE_USAGE);
    return EXIT.ok;
  }
  const parsed = parseServeArgs(args, io.env);
  if (!parsed.ok) return usageError(io, "countersign serve", parsed.error.join("\ncountersign serve: "), SERVE_USAGE);
  const run = deps.runServe ?? (await import("./serveCommand.js")).runServe;
  return run(parsed.command);
}

async function validateCommand(args: string[], io: CliIo): Promise<number> {
  if (asksForHelp(args)) {
    io.stdout.write(VALIDATE_USAGE);
    return EXIT.ok;
  }
  const parsed = parseStrict({ args, options: {}, allowPositionals: true });
  if (!parsed.ok) return usageError(io, "countersign validate", parsed.error, VALIDATE_USAGE);
  const files = parsed.parsed.positionals;
  if (files.length !== 1) {
    return usageError(io, "countersign validate", `expected exactly one policy file, got ${files.length}`, VALIDATE_USAGE);
  }
  const file = files[0] as string;
  const result = await loadPolicyFile(file);
  if (result.ok) {
    io.stdout.write(`${file}: valid (${result.policy.endpoints.length} endpoints, ${result.policy.credentials.size} credentials entries)\n`);
    return EXIT.ok;
  }
  for (const e of result.error) io.stdout.write(`${formatPolicyError(e)}\n`);
  return EXIT.failure;
}

function usageError(io: CliIo, who: string, message: string, usage: string): number {
  io.stderr.write(`${who}: ${message}\n\n${usage}`);
  return EXIT.usage;
}
