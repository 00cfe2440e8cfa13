#!/usr/bin/env node
/**
 * countersign command line:
 *   countersign serve    --policy FILE [--listen 127.0.0.1:50051] [--admin-listen 0.0.0.0:9464] [--log-level info]
 *   countersign validate FILE
 *   countersign certs    --policy FILE --out DIR [--ca-cert FILE --ca-key FILE] [--days N]
 */
import { parseArgs } from "node:util";
import { LOG_LEVELS, type LogLevel } from "./admin/logger.js";
import { serveMetricsToPrimary } from "./admin/metrics.js";
import { DEFAULT_ADMISSION_LIMITS } from "./extproc/admission.js";
import { formatPolicyError, loadPolicyFile } from "./policy/index.js";
import { serve } from "./serve.js";
import { isWorker, reportStatusToPrimary, runPrimary } from "./workers.js";

const USAGE = `usage:
  countersign serve --policy FILE [--listen HOST:PORT] [--admin-listen HOST:PORT] [--log-level LEVEL]
                    [--drain-seconds N] [--shutdown-grace-seconds N] [--workers N]
                    [--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]
                    [--max-streams N] [--max-held-bytes N]
      env: COUNTERSIGN_POLICY, COUNTERSIGN_LISTEN (default 127.0.0.1:50051),
           COUNTERSIGN_ADMIN_LISTEN (default 0.0.0.0:9464), COUNTERSIGN_LOG_LEVEL (default info),
           COUNTERSIGN_DRAIN_SECONDS (default 5), COUNTERSIGN_SHUTDOWN_GRACE_SECONDS (default 20),
           COUNTERSIGN_WORKERS (default 1), COUNTERSIGN_TLS_CERT, COUNTERSIGN_TLS_KEY, COUNTERSIGN_TLS_CLIENT_CA,
           COUNTERSIGN_MAX_STREAMS (default 4096), COUNTERSIGN_MAX_HELD_BYTES (default 134217728)
      --workers N       N processes share the gRPC listener (Node cluster); the primary serves the admin port
      --tls-*           TLS for the gRPC listener (shared-service mode); with --tls-client-ca, mTLS
      --max-streams     ext_proc streams open at once; more are answered 503 (per worker)
      --max-held-bytes  request body bytes held in memory by all streams; over it, 503 (per worker)
  countersign validate FILE          exit 0 when the policy is valid; else print FILE:LINE:COL: message, exit 1
  countersign certs --policy FILE --out DIR [--ca-cert FILE --ca-key FILE] [--days N]
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "serve":
      return runServe(rest);
    case "validate":
      return runValidate(rest);
    case "certs": {
      const { runCertsCommand } = await import("./certs/command.js");
      return runCertsCommand(rest);
    }
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`countersign: unknown command ${command === undefined ? "(none)" : JSON.stringify(command)}\n${USAGE}`);
      return 2;
  }
}

async function runValidate(args: string[]): Promise<number> {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  if (positionals.length !== 1) {
    process.stderr.write(`countersign validate: expected exactly one policy file\n${USAGE}`);
    return 2;
  }
  const file = positionals[0] as string;
  const result = await loadPolicyFile(file);
  if (result.ok) {
    process.stdout.write(`${file}: valid (${result.policy.endpoints.length} endpoints, ${result.policy.credentials.size} credentials entries)\n`);
    return 0;
  }
  for (const e of result.error) process.stdout.write(`${formatPolicyError(e)}\n`);
  return 1;
}

async function runServe(args: string[]): Promise<number> {
  const env = process.env;
  const { values } = parseArgs({
    args,
    options: {
      policy: { type: "string" },
      listen: { type: "string" },
      "admin-listen": { type: "string" },
      "log-level": { type: "string" },
      "drain-seconds": { type: "string" },
      "shutdown-grace-seconds": { type: "string" },
      workers: { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-client-ca": { type: "string" },
      "max-streams": { type: "string" },
      "max-held-bytes": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const policyPath = values.policy ?? env.COUNTERSIGN_POLICY;
  if (!policyPath) {
    process.stderr.write(`countersign serve: --policy FILE (or COUNTERSIGN_POLICY) is required\n${USAGE}`);
    return 2;
  }
  const logLevel = (values["log-level"] ?? env.COUNTERSIGN_LOG_LEVEL ?? "info") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    process.stderr.write(`countersign serve: --log-level must be one of ${LOG_LEVELS.join(", ")}\n`);
    return 2;
  }
  const seconds = (v: string | undefined, envName: string, dflt: number): number => {
    const raw = v ?? env[envName];
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isFinite(n) || n < 0) throw new Error(`${envName}: "${raw}" is not a number of seconds`);
    return n;
  };
  const workers = Number(values.workers ?? env.COUNTERSIGN_WORKERS ?? "1");
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) {
    process.stderr.write("countersign serve: --workers must be an integer from 1 to 64\n");
    return 2;
  }
  const adminListen = values["admin-listen"] ?? env.COUNTERSIGN_ADMIN_LISTEN ?? "0.0.0.0:9464";
  const drainMs = seconds(values["drain-seconds"], "COUNTERSIGN_DRAIN_SECONDS", 5) * 1000;
  const shutdownGraceMs = seconds(values["shutdown-grace-seconds"], "COUNTERSIGN_SHUTDOWN_GRACE_SECONDS", 20) * 1000;
  const count = (v: string | undefined, envName: string, flag: string, dflt: number): number => {
    const raw = v ?? env[envName];
    if (raw === undefined) return dflt;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} (${envName}): "${raw}" is not a positive integer`);
    return n;
  };
  const admission = {
    maxConcurrentStreams: count(values["max-streams"], "COUNTERSIGN_MAX_STREAMS", "--max-streams", DEFAULT_ADMISSION_LIMITS.maxConcurrentStreams),
    maxHeldBytes: count(values["max-held-bytes"], "COUNTERSIGN_MAX_HELD_BYTES", "--max-held-bytes", DEFAULT_ADMISSION_LIMITS.maxHeldBytes),
  };
  const certFile = values["tls-cert"] ?? env.COUNTERSIGN_TLS_CERT;
  const keyFile = values["tls-key"] ?? env.COUNTERSIGN_TLS_KEY;
  const clientCaFile = values["tls-client-ca"] ?? env.COUNTERSIGN_TLS_CLIENT_CA;
  if ((certFile === undefined) !== (keyFile === undefined) || (clientCaFile !== undefined && certFile === undefined)) {
    process.stderr.write("countersign serve: --tls-cert and --tls-key go together, and --tls-client-ca needs them\n");
    return 2;
  }
  // Every flag is checked above, before workers are forked, so a mistake stops the whole command.
  if (workers > 1 && !isWorker()) {
    return runPrimary({ workers, adminListen, logLevel, shutdownTimeoutMs: drainMs + shutdownGraceMs + 5_000 });
  }
  // Until serve() has bound its listeners nothing else holds the event loop open, and start-up
  // waits on timers that do not (credential settling, STS retries): keep the process alive.
  const keepAlive = setInterval(() => undefined, 60_000);
  let server: Awaited<ReturnType<typeof serve>>;
  try {
    server = await serve({
      policyPath,
      listen: values.listen ?? env.COUNTERSIGN_LISTEN ?? "127.0.0.1:50051",
      adminListen: isWorker() ? undefined : adminListen,
      logLevel,
      drainMs,
      shutdownGraceMs,
      tls: certFile && keyFile ? { certFile, keyFile, clientCaFile } : undefined,
      admission,
    });
  } finally {
    clearInterval(keepAlive);
  }
  if (isWorker()) {
    serveMetricsToPrimary(server.metrics);
    reportStatusToPrimary(server.readiness);
  }
  const stopped = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      server.logger.info({ signal }, "shutdown requested");
      void server.stop().then(resolve);
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  await stopped;
  // A worker's IPC channel to the primary would keep it alive: leave the cluster so it exits now.
  if (isWorker() && process.connected) process.disconnect();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`countersign: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
    // A worker that failed to start must leave the cluster, or its IPC channel keeps it alive.
    if (isWorker() && process.connected) process.disconnect();
  },
);
