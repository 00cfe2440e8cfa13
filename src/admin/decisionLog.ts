/**
 * The decision log: one line per decided request (`msg` is the decision), at info when signed and
 * warn when refused or signed under audit although a check would have refused it. Masked key ids only; the denial's own message stays in the response body.
 */
import type { DecisionEvent } from "../extproc/context.js";

/** The subset of a pino logger the decision log writes to. */
export interface DecisionLogger {
  isLevelEnabled(level: string): boolean;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export function logDecision(logger: DecisionLogger, e: DecisionEvent): void {
  // An audited request is signed, but what would have refused it is worth a warning.
  const level = e.decision === "refused" || e.audit !== undefined ? "warn" : "info";
  if (!logger.isLevelEnabled(level)) return;
  const line: Record<string, unknown> = {
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
  // Optional fields are added when present, not spread in (spreads are slow on this path).
  // Refused for want of credentials: expiry_margin, expired or unavailable.
  if (e.credentialsRefusal !== undefined) line.credentialsRefusal = e.credentialsRefusal;
  // enforcement: audit — the check that would have refused this signed request.
  if (e.audit !== undefined) {
    line.wouldRefuse = e.audit.reason;
    line.wouldRefuseMessage = e.audit.message;
    if (e.audit.rule !== undefined) line.wouldRefuseRule = e.audit.rule;
  }
  // The action names the endpoint's rules read, or why none could be determined.
  if (e.action !== undefined) line.action = e.action;
  logger[level](line, e.decision);
}
