#!/usr/bin/env node
/**
 * The `countersign` executable (package.json "bin", the image's ENTRYPOINT): runs the command line
 * in src/cli/main.ts with this process's argv, streams and environment, and exits with its code.
 * `countersign --help` lists the subcommands; each has its own --help.
 */
import { runCli } from "./cli/main.js";
import { EXIT } from "./cli/usageError.js";
import { isWorker } from "./workers.js";

runCli(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env }).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`countersign: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = EXIT.failure;
    // A worker that failed to start must leave the cluster, or its IPC channel keeps it alive.
    if (isWorker() && process.connected) process.disconnect();
  },
);
