/**
 * `countersign serve` as a process: the checked command line (serveArgs.ts) → one server, or a
 * `--workers` primary and its workers; then waits for SIGTERM / SIGINT and stops cleanly.
 */
import { serveMetricsToPrimary } from "../admin/metrics.js";
import { serve } from "../serve.js";
import { isWorker, reportStatusToPrimary, runPrimary } from "../workers.js";
import type { ServeCommand } from "./serveArgs.js";

export async function runServe(command: ServeCommand): Promise<number> {
  if (command.workers > 1 && !isWorker()) {
    return runPrimary({
      workers: command.workers,
      adminListen: command.adminListen,
      logLevel: command.logLevel,
      shutdownTimeoutMs: command.drainMs + command.shutdownGraceMs + 5_000,
    });
  }
  // Until serve() has bound its listeners nothing else holds the event loop open, and start-up
  // waits on timers that do not (credential settling, STS retries): keep the process alive.
  const keepAlive = setInterval(() => undefined, 60_000);
  let server: Awaited<ReturnType<typeof serve>>;
  try {
    server = await serve({
      policyPath: command.policyPath,
      listen: command.listen,
      adminListen: isWorker() ? undefined : command.adminListen,
      logLevel: command.logLevel,
      drainMs: command.drainMs,
      shutdownGraceMs: command.shutdownGraceMs,
      tls: command.tls,
      admission: command.admission,
    });
  } finally {
    clearInterval(keepAlive);
  }
  if (isWorker()) {
    serveMetricsToPrimary(server.metrics);
    reportStatusToPrimary(server.readiness);
  }
  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      server.logger.info({ signal }, "shutdown requested");
      void server.stop().then(resolve);
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  // A worker's IPC channel to the primary would keep it alive: leave the cluster so it exits now.
  if (isWorker() && process.connected) process.disconnect();
  return 0;
}
