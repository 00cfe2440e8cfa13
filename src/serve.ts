/**
 * `countersign serve`: wires the policy, the credential profiles, the ext_proc gRPC server and the
 * admin listener together, and owns the process lifecycle (readiness, draining, shutdown).
 */
import { createCredentialProfiles, type CredentialProfile } from "./credentials/index.js";
import { startAdminServer, type AdminServer } from "./admin/adminServer.js";
import { createLogger, type Logger, type LogLevel } from "./admin/logger.js";
import { Metrics } from "./admin/metrics.js";
import type { DecisionEvent, SigningContext } from "./extproc/context.js";
import { startExtProcServer, type ExtProcServer } from "./extproc/server.js";
import { formatPolicyError, loadPolicyFile } from "./policy/index.js";
import type { Policy } from "./policy/types.js";

export interface ServeOptions {
  readonly policyPath: string;
  /** host:port for the ext_proc gRPC listener. */
  readonly listen: string;
  /** host:port for /healthz, /readyz and /metrics. */
  readonly adminListen: string;
  readonly logLevel: LogLevel;
  /** After SIGTERM: keep serving new streams this long while /readyz says no. */
  readonly drainMs: number;
  /** Then wait at most this long for in-flight streams before forcing them closed. */
  readonly shutdownGraceMs: number;
}

export interface RunningServer {
  readonly grpcPort: number;
  readonly adminPort: number;
  readonly metrics: Metrics;
  readonly logger: Logger;
  stop(): Promise<void>;
}

/** The profiles the endpoints need, with the sources they chain from. */
export function profilesInUse(policy: Policy): Set<string> {
  const used = new Set<string>();
  const visit = (name: string): void => {
    if (used.has(name)) return;
    used.add(name);
    const spec = policy.credentials.get(name);
    if (spec?.kind === "assume_role") visit(spec.source);
  };
  for (const e of policy.endpoints) visit(e.credentials);
  return used;
}

export function splitHostPort(address: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`${what} "${address}" is not host:port (e.g. 127.0.0.1:9464 or [::1]:9464)`);
  return { host: m[1] ?? m[2] ?? "", port };
}

export async function serve(opts: ServeOptions): Promise<RunningServer> {
  const logger = createLogger(opts.logLevel);
  const metrics = new Metrics();

  const loaded = await loadPolicyFile(opts.policyPath);
  if (!loaded.ok) {
    metrics.policyReloads.inc({ result: "invalid" });
    throw new Error(`policy ${opts.policyPath} is invalid:\n${loaded.errors.map(formatPolicyError).join("\n")}`);
  }
  const policy: Policy = loaded.policy;
  metrics.policyReloads.inc({ result: "success" });
  metrics.setPolicy(policy.sha256);
  logger.info({ policy: opts.policyPath, sha256: policy.sha256.slice(0, 16), endpoints: policy.endpoints.length }, "policy loaded");

  const profiles: Map<string, CredentialProfile> = createCredentialProfiles(policy.credentials, {
    logger,
    events: {
      onRefresh(e) {
        metrics.credentialRefreshes.inc({ profile: e.profile, result: e.result });
        metrics.credentialRefreshSeconds.observe({ profile: e.profile }, e.durationMs / 1000);
      },
    },
  });
  const inUse = profilesInUse(policy);
  const started = [...inUse].map((name) => profiles.get(name)?.start());

  let draining = false;
  const readiness = {
    notReadyReasons(): string[] {
      const reasons: string[] = [];
      if (draining) reasons.push("shutting down");
      for (const name of profilesInUse(policy)) {
        const state = profiles.get(name)?.current();
        if (!state?.usable) reasons.push(`credentials "${name}": ${state?.reason ?? "not configured"}`);
      }
      return reasons;
    },
  };

  metrics.credentialStatus = () =>
    [...profiles].map(([name, profile]) => {
      const s = profile.status();
      return { profile: name, source: profile.source, usable: s.usable, expiresAt: s.expiresAt };
    });

  const onDecision = (e: DecisionEvent): void => {
    metrics.recordDecision(e);
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
    };
    if (e.decision === "signed") logger.info(line, "signed");
    else logger.warn(line, "refused");
  };

  const ctx: SigningContext = {
    policy: () => policy,
    credentials: (name) => profiles.get(name)?.current() ?? { usable: false, reason: `no credentials entry "${name}"` },
    now: () => new Date(),
    maxHeaderBytes: 96 * 1024,
    onDecision,
  };

  let grpcServer: ExtProcServer;
  let admin: AdminServer | undefined;
  try {
    const adminAddr = splitHostPort(opts.adminListen, "--admin-listen");
    splitHostPort(opts.listen, "--listen");
    admin = await startAdminServer(adminAddr.host, adminAddr.port, metrics, readiness);
    grpcServer = await startExtProcServer(opts.listen, ctx, {
      streamOpened: () => {
        metrics.streamsActive.inc();
        metrics.streamsTotal.inc();
      },
      streamClosed: () => metrics.streamsActive.dec(),
      grpcError: (code) => metrics.grpcErrors.inc({ code }),
    });
  } catch (err) {
    await admin?.close();
    for (const p of profiles.values()) p.stop();
    throw err;
  }
  const adminServer: AdminServer = admin;
  logger.info({ listen: opts.listen, grpcPort: grpcServer.port, admin: opts.adminListen, adminPort: adminServer.port }, "countersign serving");
  void Promise.all(started).then(() => logger.info({ ready: readiness.notReadyReasons().length === 0 }, "first credential fetch finished"));

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      draining = true;
      metrics.ready.set(0);
      logger.info({ drainMs: opts.drainMs, graceMs: opts.shutdownGraceMs }, "draining: /readyz now fails; still serving new streams");
      await new Promise((r) => setTimeout(r, opts.drainMs));
      await grpcServer.shutdown(opts.shutdownGraceMs);
      await adminServer.close();
      for (const p of profiles.values()) p.stop();
      logger.info({}, "stopped");
      logger.flush();
    })();
    return stopping;
  };

  return {
    grpcPort: grpcServer.port,
    adminPort: adminServer.port,
    metrics,
    logger,
    stop,
  };
}
