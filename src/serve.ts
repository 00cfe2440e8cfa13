/**
 * `countersign serve`: wires the policy, the credential profiles, the ext_proc gRPC server and the
 * admin listener together, and owns the process lifecycle: readiness, policy reload (file watch
 * and SIGHUP), the listener's TLS files (reloaded when they change), draining and shutdown.
 */
import * as grpcJs from "@grpc/grpc-js";
import { startAdminServer, type AdminServer } from "./admin/adminServer.js";
import { createLogger, type Logger, type LogLevel } from "./admin/logger.js";
import { Metrics } from "./admin/metrics.js";
import { Readiness } from "./admin/readiness.js";
import type { CredentialDeps } from "./credentials/index.js";
import { Admission, DEFAULT_ADMISSION_LIMITS, type AdmissionLimits } from "./extproc/admission.js";
import type { DecisionEvent, SigningContext } from "./extproc/context.js";
import { startExtProcServer, type ExtProcServer } from "./extproc/server.js";
import { readMountedFile, watchMountedFiles, type MountedFileTiming, type MountedFileWatcher } from "./files/index.js";
import { formatPolicyError, loadPolicyFile, parsePolicy } from "./policy/index.js";
import { buildRuntime, notReadyReasons, type Runtime } from "./runtime.js";
import { splitHostPort } from "./splitHostPort.js";
import { startListenerTls, type ListenerTls, type TlsFiles } from "./tls/index.js";

export interface ServeOptions {
  readonly policyPath: string;
  /** host:port for the ext_proc gRPC listener. */
  readonly listen: string;
  /** host:port for /healthz, /readyz and /metrics; undefined: no admin listener (workers). */
  readonly adminListen: string | undefined;
  readonly logLevel: LogLevel;
  /** After SIGTERM: keep serving new streams this long while /readyz says no. */
  readonly drainMs: number;
  /** Then wait at most this long for in-flight streams before forcing them closed. */
  readonly shutdownGraceMs: number;
  /** TLS on the gRPC listener; the files are followed and reloaded when they change. */
  readonly tls?: TlsFiles;
  /** Concurrent-stream and held-body-bytes limits (default DEFAULT_ADMISSION_LIMITS). */
  readonly admission?: AdmissionLimits;
  /** Watch the policy file and reload it when it changes (default true). */
  readonly watchPolicy?: boolean;
  /** Overrides of the mounted-file watcher's timings for the policy and TLS files (tests). */
  readonly fileWatchTiming?: Partial<MountedFileTiming>;
  /** Test hooks. */
  readonly credentialDeps?: Omit<CredentialDeps, "logger" | "events">;
  readonly logDestination?: Parameters<typeof createLogger>[1];
}

export interface RunningServer {
  readonly grpcPort: number;
  readonly adminPort: number | undefined;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Re-reads the policy file now (what SIGHUP does). Resolves true when the new policy is in use. */
  reload(trigger: string): Promise<boolean>;
  /** What /readyz and countersign_ready report (a worker sends it to the primary). */
  readonly readiness: Readiness;
  stop(): Promise<void>;
}

export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const logger = createLogger(opts.logLevel, opts.logDestination);
  const metrics = new Metrics();
  const credentialDeps: CredentialDeps = {
    ...opts.credentialDeps,
    logger,
    events: { onRefresh: (e) => metrics.credentialRefreshed(e) },
  };

  // Read before the load, so that a change made while it loads is still seen by the watcher.
  const initialPolicyFile = await readMountedFile(opts.policyPath);
  const loaded = await loadPolicyFile(opts.policyPath);
  if (!loaded.ok) {
    throw new Error(`policy ${opts.policyPath} is invalid:\n${loaded.error.map(formatPolicyError).join("\n")}`);
  }
  // The one mutable reference: every request reads it once, at its start.
  let runtime: Runtime = (await buildRuntime(loaded.policy, credentialDeps)).runtime;
  metrics.policyLoaded(runtime.policy.sha256);
  logger.info({ policy: opts.policyPath, sha256: runtime.policy.sha256.slice(0, 16), endpoints: runtime.policy.endpoints.length }, "policy loaded");

  let reloading: Promise<boolean> = Promise.resolve(true);
  /** Loads the policy file (or `text`, its content as the watcher saw it settle) and swaps it in when it is valid. */
  const reload = (trigger: string, text?: string): Promise<boolean> => {
    reloading = reloading.then(async () => {
      const next = text === undefined ? await loadPolicyFile(opts.policyPath) : parsePolicy(text, opts.policyPath);
      if (!next.ok) {
        const unreadable = next.error.length === 1 && next.error[0]?.message.startsWith("cannot read the policy file");
        metrics.policyRefused(unreadable ? "unreadable" : "invalid");
        logger.error(
          { trigger, policy: opts.policyPath, errors: next.error.map(formatPolicyError), keptSha256: runtime.policy.sha256.slice(0, 16) },
          "policy reload refused; still serving the previous policy",
        );
        return false;
      }
      if (next.policy.sha256 === runtime.policy.sha256) return true;
      const { runtime: built, retired } = await buildRuntime(next.policy, credentialDeps, runtime);
      runtime = built;
      for (const p of retired) p.stop();
      metrics.policyLoaded(built.policy.sha256);
      logger.info({ trigger, policy: opts.policyPath, sha256: built.policy.sha256.slice(0, 16), endpoints: built.policy.endpoints.length }, "policy reloaded");
      return true;
    });
    return reloading;
  };

  let watcher: MountedFileWatcher | undefined;
  if (opts.watchPolicy ?? true) {
    watcher = watchMountedFiles(
      [opts.policyPath],
      async ({ files: [file] }) => {
        // A vanished or unreadable policy file is left alone: the policy in use stays (SIGHUP says why).
        if (file?.kind === "content") await reload("file change", file.bytes.toString("utf8"));
      },
      {
        initial: [initialPolicyFile],
        ...(opts.fileWatchTiming ? { timing: opts.fileWatchTiming } : {}),
        onWatchFailure: ({ dir, error, when }) =>
          logger.warn(
            { policy: opts.policyPath, dir, error: error instanceof Error ? error.message : String(error) },
            when === "start" ? "cannot watch the policy file's directory; polling only" : "policy directory watch failed; polling only",
          ),
      },
    );
  }
  const onHup = (): void => void reload("SIGHUP");
  process.on("SIGHUP", onHup);

  const readiness = new Readiness(() => notReadyReasons(runtime));
  const onDecision = (e: DecisionEvent): void => {
    metrics.recordDecision(e);
    const level = e.decision === "refused" || e.audit !== undefined ? "warn" : "info";
    if (!logger.isLevelEnabled(level)) return;
    const line = {
      requestId: e.requestId,
      method: e.method,
      host: e.host,
      service: e.service,
      region: e.region,
      payloadMode: e.payloadMode,
      profile: e.profile,
      decision: e.decision,
      reason: e.reason,
      status: e.status,
      durationMs: Math.round(e.signingSeconds * 1e6) / 1e3,
      clientKeyId: e.clientKeyId,
      ...(e.audit === undefined ? {} : { wouldRefuse: e.audit.reason, wouldRefuseMessage: e.audit.message, ...(e.audit.rule === undefined ? {} : { wouldRefuseRule: e.audit.rule }) }),
      ...(e.action === undefined ? {} : { action: e.action }),
    };
    logger[level](line, e.decision);
  };

  const admission = new Admission(opts.admission ?? DEFAULT_ADMISSION_LIMITS);
  metrics.observe({
    readiness,
    admission,
    credentials: () =>
      [...runtime.profiles].map(([name, profile]) => {
        const s = profile.status();
        return { profile: name, source: profile.source, usable: s.usable, expiresAt: s.expiresAt };
      }),
  });
  const ctx: SigningContext = {
    snapshot: () => runtime,
    now: () => new Date(),
    maxHeaderBytes: 96 * 1024,
    admission,
    onDecision,
  };

  let listenerTls: ListenerTls | undefined;
  const cleanup = (): void => {
    watcher?.stop();
    listenerTls?.stop();
    process.off("SIGHUP", onHup);
    for (const p of runtime.profiles.values()) p.stop();
  };

  // gRPC first, admin second: once /healthz answers, the ext_proc listener is bound too.
  let grpcServer: ExtProcServer | undefined;
  let admin: AdminServer | undefined;
  try {
    splitHostPort(opts.listen, "--listen");
    if (opts.adminListen !== undefined) splitHostPort(opts.adminListen, "--admin-listen");
    if (opts.tls) listenerTls = await startListenerTls(opts.tls, { logger, ...(opts.fileWatchTiming ? { timing: opts.fileWatchTiming } : {}) });
    grpcServer = await startExtProcServer(opts.listen, ctx, metrics, listenerTls?.credentials ?? grpcJs.ServerCredentials.createInsecure()).catch((err: unknown) => {
      throw new Error(`cannot listen on --listen ${opts.listen}: ${err instanceof Error ? err.message : String(err)}`);
    });
    if (opts.adminListen !== undefined) admin = await startAdminServer(opts.adminListen, readiness, metrics.registry);
  } catch (err) {
    await grpcServer?.shutdown(0);
    await admin?.close();
    cleanup();
    throw err;
  }
  const grpc: ExtProcServer = grpcServer;
  logger.info(
    { listen: opts.listen, grpcPort: grpc.port, tls: listenerTls?.mode ?? "off", admin: opts.adminListen, adminPort: admin?.port, pid: process.pid },
    "countersign serving",
  );

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      readiness.shutDown();
      logger.info({ drainMs: opts.drainMs, graceMs: opts.shutdownGraceMs }, "draining: /readyz now fails; still serving new streams");
      await new Promise((r) => setTimeout(r, opts.drainMs));
      await grpc.shutdown(opts.shutdownGraceMs);
      await admin?.close();
      cleanup();
      logger.info({}, "stopped");
      logger.flush();
    })();
    return stopping;
  };

  return {
    grpcPort: grpc.port,
    adminPort: admin?.port,
    metrics,
    logger,
    reload,
    readiness,
    stop,
  };
}
