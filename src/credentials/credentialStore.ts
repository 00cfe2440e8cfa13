import type { Credentials } from "../sigv4/types.js";
import { keyIdSuffix, redactKeyIds } from "./redact.js";
import type {
  CredentialEvents,
  CredentialLogger,
  CredentialProfileStatus,
  CredentialRefusalCause,
  CredentialSourceKind,
  CredentialState,
  RefreshEvent,
} from "./types.js";

export interface CredentialStoreOptions {
  readonly profile: string;
  readonly source: CredentialSourceKind;
  readonly now: () => number;
  /** Stop handing out a set this long before it expires (0: until it expires). */
  readonly expiryMarginMs?: number;
  readonly events?: CredentialEvents;
  readonly logger?: CredentialLogger;
}

/**
 * The one piece of shared state of a profile: the last good credentials (one frozen object,
 * replaced whole), the refresh counters, and the one log line / event per refresh outcome.
 * Sources write to it; the request path reads `current()`.
 */
export interface CredentialStore {
  current(): CredentialState;
  status(): CredentialProfileStatus;
  /** Installs a complete new set. */
  recordSuccess(credentials: Credentials, durationMs: number): Credentials;
  /** Keeps the last good set; `error` must already be free of secrets. */
  recordFailure(error: string, durationMs: number): void;
  /** The credentials held, even if expired or within the expiry margin. */
  held(): Credentials | undefined;
  setNextRefreshAt(at: number | undefined): void;
}

export function createCredentialStore(options: CredentialStoreOptions): CredentialStore {
  const { profile, source, now, events, logger } = options;
  const marginMs = options.expiryMarginMs ?? 0;
  let usableState: Extract<CredentialState, { ok: true }> | undefined;
  let expiresAtMs: number | undefined;
  let lastRefreshAt: number | undefined;
  let lastError: string | undefined;
  let successes = 0;
  let failures = 0;
  let nextRefreshAt: number | undefined;

  function unusableReason(nowMs: number): string {
    const why = lastError === undefined ? "" : `; last refresh failed: ${lastError}`;
    if (usableState === undefined) {
      return lastError === undefined
        ? `no credentials for profile "${profile}" (${source}) yet: the first refresh has not finished`
        : `no credentials for profile "${profile}" (${source})${why}`;
    }
    const expiredAt = new Date(expiresAtMs ?? nowMs).toISOString();
    return `credentials for profile "${profile}" (${source}) expired at ${expiredAt}${why || "; no refresh has succeeded since"}`;
  }

  function marginReason(): string {
    const why = lastError === undefined ? "; no refresh has succeeded yet" : `; last refresh failed: ${lastError}`;
    const expiresAt = new Date(expiresAtMs ?? 0).toISOString();
    return `credentials for profile "${profile}" (${source}) expire at ${expiresAt}, within the ${marginMs / 1000} s expiry margin, so they are no longer used for signing${why}`;
  }

  function refuse(cause: CredentialRefusalCause, message: string): CredentialState {
    return { ok: false, error: { cause, message } };
  }

  function current(): CredentialState {
    try {
      if (usableState !== undefined) {
        if (expiresAtMs === undefined) return usableState;
        const nowMs = now();
        if (nowMs < expiresAtMs - marginMs) return usableState;
        if (nowMs < expiresAtMs) return refuse("expiry_margin", marginReason());
        return refuse("expired", unusableReason(nowMs));
      }
      return refuse("unavailable", unusableReason(0));
    } catch {
      return refuse("unavailable", `credentials for profile "${profile}" could not be read`);
    }
  }

  function emit(event: RefreshEvent): void {
    const fields = {
      profile: event.profile,
      source: event.source,
      result: event.result,
      durationMs: event.durationMs,
      ...(event.expiresAt ? { expiresAt: event.expiresAt.toISOString() } : {}),
      ...(event.keyIdSuffix !== undefined ? { keyIdSuffix: event.keyIdSuffix } : {}),
      ...(event.error !== undefined ? { error: event.error } : {}),
    };
    try {
      if (event.result === "success") logger?.info(fields, "credential refresh succeeded");
      else logger?.warn(fields, "credential refresh failed");
    } catch {
      // A broken logger must not break the refresher.
    }
    try {
      events?.onRefresh?.(event);
    } catch {
      // Nor a broken listener.
    }
  }

  return {
    current,
    status(): CredentialProfileStatus {
      const state = current();
      return {
        usable: state.ok,
        ...(expiresAtMs !== undefined ? { expiresAt: new Date(expiresAtMs) } : {}),
        ...(lastRefreshAt !== undefined ? { lastRefreshAt: new Date(lastRefreshAt) } : {}),
        ...(lastError !== undefined ? { lastError } : {}),
        refreshSuccesses: successes,
        refreshFailures: failures,
        ...(nextRefreshAt !== undefined ? { nextRefreshAt: new Date(nextRefreshAt) } : {}),
      };
    },
    recordSuccess(credentials, durationMs) {
      const expiration = credentials.expiration ? new Date(credentials.expiration.getTime()) : undefined;
      const frozen: Credentials = Object.freeze({
        accessKeyId: credentials.accessKeyId,
        secretAccessKey: credentials.secretAccessKey,
        ...(credentials.sessionToken ? { sessionToken: credentials.sessionToken } : {}),
        ...(expiration ? { expiration } : {}),
      });
      usableState = Object.freeze({ ok: true as const, credentials: frozen });
      expiresAtMs = expiration?.getTime();
      lastRefreshAt = now();
      lastError = undefined;
      successes += 1;
      emit({
        profile,
        source,
        result: "success",
        durationMs,
        ...(expiration ? { expiresAt: expiration } : {}),
        keyIdSuffix: keyIdSuffix(frozen.accessKeyId),
      });
      return frozen;
    },
    recordFailure(error, durationMs) {
      lastError = redactKeyIds(error);
      failures += 1;
      emit({ profile, source, result: "failure", durationMs, error: lastError });
    },
    held: () => usableState?.credentials,
    setNextRefreshAt(at) {
      nextRefreshAt = at;
    },
  };
}
