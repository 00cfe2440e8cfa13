/**
 * The decision log: one line per decided request (`msg` is the decision), at info when signed and
 * warn when refused. Masked key ids only; the denial's own message stays in the response body.
 */
import type { DecisionEvent } from "../extproc/context.js";

/** The subset of a pino logger the decision log writes to. */
export interface DecisionLogger {
  isLevelEnabled(level: string): boolean;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export function logDecision(logger: DecisionLogger, e: DecisionEvent): void {
  const level = e.decision === "refused" ? "warn" : "info";
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
    // Refused for want of credentials: expiry_margin, expired or unavailable.
    ...(e.credentialsRefusal !== undefined ? { credentialsRefusal: e.credentialsRefusal } : {}),
  };
  logger[level](line, e.decision);
}
