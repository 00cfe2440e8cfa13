/**
 * Test helpers: a recording logger and event sink, a scan of everything recorded for secrets,
 * and waits that use real time while a test's fake timers are installed.
 */
import type { Credentials } from "../../sigv4/types.js";
import type { CredentialLogger, CredentialProfile, RefreshEvent } from "../types.js";

const realSetTimeout = globalThis.setTimeout;

/** Fake timers used by these tests: time and timers only, so real I/O and setImmediate keep running. */
export const FAKE_TIMERS = ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] as const;

export interface Audit {
  readonly logger: CredentialLogger;
  readonly events: { onRefresh(e: RefreshEvent): void };
  readonly lines: string[];
  readonly refreshes: RefreshEvent[];
  /** Remember a set whose secret parts must never be recorded anywhere. */
  secret(credentials: Credentials): void;
  /** Also scan this text (status snapshots, unusable reasons). */
  observe(text: string): void;
  /** Every recorded text that contains a secret access key, a session token or a full key id. */
  leaks(): string[];
}

export function createAudit(): Audit {
  const lines: string[] = [];
  const refreshes: RefreshEvent[] = [];
  const secrets = new Set<string>();
  const record =
    (level: string) =>
    (obj: object, msg: string): void => {
      lines.push(JSON.stringify({ level, ...obj, msg }));
    };
  return {
    logger: { info: record("info"), warn: record("warn") },
    events: {
      onRefresh(e) {
        refreshes.push(e);
        lines.push(JSON.stringify(e));
      },
    },
    lines,
    refreshes,
    secret(credentials) {
      secrets.add(credentials.accessKeyId);
      secrets.add(credentials.secretAccessKey);
      if (credentials.sessionToken) secrets.add(credentials.sessionToken);
    },
    observe(text) {
      lines.push(text);
    },
    leaks() {
      return lines.filter((line) => [...secrets].some((s) => line.includes(s) || line.includes(JSON.stringify(s).slice(1, -1))));
    },
  };
}

/** Records a profile's status and current reason into the audit. */
export function observeProfile(audit: Audit, profile: CredentialProfile): void {
  audit.observe(JSON.stringify(profile.status()));
  const state = profile.current();
  if (!state.ok) audit.observe(state.error.message);
}

/** Sleeps in real time, whatever timers the test has faked. */
export function realSleep(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

/** Yields to real I/O once (setImmediate is not faked by FAKE_TIMERS). */
export function realTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export function sameSet(a: Credentials, b: Credentials): boolean {
  return a.accessKeyId === b.accessKeyId && a.secretAccessKey === b.secretAccessKey && a.sessionToken === b.sessionToken;
}
