/**
 * `--workers N`: N worker processes share the gRPC listener through Node's cluster module (the
 * primary accepts connections and hands them to workers round-robin, so the unit of balance is a
 * connection — see the README on Envoy's max_concurrent_streams). The primary runs no ext_proc
 * itself: it owns the admin listener, aggregates the workers' metrics (prom-client's
 * AggregatorRegistry), reports ready only when every worker is, forwards SIGHUP and SIGTERM, and
 * replaces a worker that dies unexpectedly.
 */
import cluster, { type Worker } from "node:cluster";
import { startAdminServer } from "./admin/adminServer.js";
import { createLogger, type LogLevel } from "./admin/logger.js";
import { clusterMetrics } from "./admin/metrics.js";
import { Readiness } from "./admin/readiness.js";

interface WorkerStatus {
  type: "countersign:status";
  reasons: string[];
}

const STATUS_INTERVAL_MS = 1_000;
const MAX_FAILED_STARTS = 3;

/** In a worker: report its readiness to the primary every second. */
export function reportStatusToPrimary(readiness: Readiness): () => void {
  const send = (): void => {
    if (process.connected) process.send?.({ type: "countersign:status", reasons: readiness.notReadyReasons() } satisfies WorkerStatus);
  };
  send();
  const timer = setInterval(send, STATUS_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}

export function isWorker(): boolean {
  return cluster.isWorker;
}

export async function runPrimary(opts: { workers: number; adminListen: string; logLevel: LogLevel; shutdownTimeoutMs: number }): Promise<number> {
  const logger = createLogger(opts.logLevel);
  const status = new Map<number, string[]>();
  /** Workers that have been ready at least once. */
  const everReady = new Set<number>();
  /** Workers in a row that died before they were ever ready: a broken config, not bad luck. */
  let failedStarts = 0;
  let stopping = false;
  let exitCode = 0;
  let requestStop: ((signal: NodeJS.Signals) => void) | undefined;

  const fork = (): Worker => {
    const w = cluster.fork();
    status.set(w.id, ["starting"]);
    w.on("message", (m: unknown) => {
      if (typeof m === "object" && m !== null && (m as WorkerStatus).type === "countersign:status") {
        const reasons = (m as WorkerStatus).reasons;
        status.set(w.id, reasons);
        if (reasons.length === 0 && !everReady.has(w.id)) {
          everReady.add(w.id);
          failedStarts = 0;
        }
      }
    });
    return w;
  };
  for (let i = 0; i < opts.workers; i++) fork();
  cluster.on("exit", (w, code, signal) => {
    status.delete(w.id);
    if (stopping) return;
    if (!everReady.delete(w.id) && ++failedStarts >= MAX_FAILED_STARTS) {
      logger.error({ worker: w.process.pid, code, signal, failedStarts }, "workers keep exiting before they are ready; stopping (see the workers' errors above)");
      exitCode = 1;
      requestStop?.("SIGTERM");
      return;
    }
    logger.error({ worker: w.process.pid, code, signal }, "worker exited unexpectedly; starting a replacement");
    // A worker that never got ready is replaced after a pause, so a broken start does not spin.
    if (failedStarts > 0) setTimeout(() => void (stopping || fork()), 1_000 * failedStarts).unref();
    else fork();
  });

  // Ready when every worker runs and last reported itself ready.
  const readiness = new Readiness(() => {
    const reasons: string[] = [];
    if (status.size < opts.workers) reasons.push(`${opts.workers - status.size} worker(s) not running`);
    for (const [id, r] of status) for (const reason of r) reasons.push(`worker ${id}: ${reason}`);
    return reasons;
  });
  const admin = await startAdminServer(opts.adminListen, readiness, clusterMetrics(readiness));
  logger.info({ workers: opts.workers, admin: opts.adminListen }, "countersign primary started");

  process.on("SIGHUP", () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill("SIGHUP");
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      readiness.shutDown();
      logger.info({ signal }, "shutdown requested; stopping workers");
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
      for (const w of workers) w.process.kill("SIGTERM");
      const deadline = setTimeout(() => {
        for (const w of workers) w.process.kill("SIGKILL");
      }, opts.shutdownTimeoutMs);
      deadline.unref();
      const check = setInterval(() => {
        if (Object.keys(cluster.workers ?? {}).length === 0) {
          clearInterval(check);
          clearTimeout(deadline);
          void admin.close().then(resolve);
        }
      }, 50);
    };
    requestStop = stop;
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  logger.info({}, "stopped");
  logger.flush();
  return exitCode;
}
