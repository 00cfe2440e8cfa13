import type { CredentialsResult } from "./parseSharedCredentials.js";
import type { Credentials } from "../sigv4/types.js";
import { ATTEMPT_TIMEOUT_MS } from "./constants.js";
import { createCredentialStore } from "./credentialStore.js";
import { describeError } from "./redact.js";
import { refreshDelayMs, retryDelayMs } from "./schedule.js";
import type { CredentialEvents, CredentialLogger, CredentialProfile, CredentialSourceKind } from "./types.js";

export interface RefresherOptions {
  readonly name: string;
  readonly source: CredentialSourceKind;
  /** Who hands out the credentials, for messages: "STS", "the default credential chain". */
  readonly origin: string;
  /** One attempt to obtain a complete set. Rejections become failures (described, never thrown). */
  readonly fetch: () => Promise<Credentials>;
  /** Refresh this long before expiry; credentials that arrive expiring sooner count as a failure. */
  readonly refreshBeforeMs: number;
  /** Stop signing with a set this long before it expires; less than refreshBeforeMs. Default 0. */
  readonly expiryMarginMs?: number;
  /** Re-resolve credentials without an expiry this often; undefined: never. */
  readonly noExpiryRefreshMs?: number;
  /** Awaited once before the first attempt (e.g. the source profile's own start). */
  readonly beforeFirstFetch?: () => Promise<void>;
  readonly attemptTimeoutMs?: number;
  readonly now: () => number;
  readonly random: () => number;
  readonly events?: CredentialEvents;
  readonly logger?: CredentialLogger;
}

/**
 * A profile kept fresh in the background, never in the request path:
 * - fetch at start, then again at expiry − refreshBefore − jitter;
 * - one attempt in flight at a time;
 * - on failure, retry with capped exponential backoff and full jitter, never later than the
 *   start of the expiry margin, while `current()` keeps returning the last good set until then
 *   (expiry − expiryMargin: a request signed later could reach AWS after the set expired);
 * - timers are unref'd so they never hold the process open.
 */
export function createRefreshingProfile(options: RefresherOptions): CredentialProfile {
  const { name, source, now, random } = options;
  const attemptTimeoutMs = options.attemptTimeoutMs ?? ATTEMPT_TIMEOUT_MS;
  const expiryMarginMs = options.expiryMarginMs ?? 0;
  const store = createCredentialStore({
    profile: name,
    source,
    now,
    expiryMarginMs,
    ...(options.events ? { events: options.events } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let startPromise: Promise<void> | undefined;
  let consecutiveFailures = 0;
  let stopped = false;

  function schedule(delayMs: number): void {
    clearTimer();
    if (stopped) return;
    store.setNextRefreshAt(now() + delayMs);
    timer = setTimeout(() => {
      timer = undefined;
      void refresh();
    }, delayMs);
    timer.unref?.();
  }

  function clearTimer(): void {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    store.setNextRefreshAt(undefined);
  }

  function refresh(): Promise<void> {
    inFlight ??= attempt().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  async function attempt(): Promise<void> {
    clearTimer();
    const startedAt = now();
    let outcome: CredentialsResult;
    try {
      outcome = checkExpiry(await withTimeout(options.fetch(), attemptTimeoutMs), now(), options.refreshBeforeMs, options.origin);
    } catch (err) {
      outcome = { ok: false, error: describeError(err) };
    }
    if (stopped) return;
    const durationMs = Math.max(0, now() - startedAt);
    if (outcome.ok) {
      consecutiveFailures = 0;
      const installed = store.recordSuccess(outcome.credentials, durationMs);
      scheduleAfterSuccess(installed);
    } else {
      consecutiveFailures += 1;
      store.recordFailure(outcome.error, durationMs);
      const expiresAt = store.held()?.expiration?.getTime();
      schedule(retryDelayMs(consecutiveFailures, random(), expiresAt === undefined ? undefined : expiresAt - expiryMarginMs - now()));
    }
  }

  function scheduleAfterSuccess(credentials: Credentials): void {
    if (credentials.expiration !== undefined) {
      schedule(refreshDelayMs(credentials.expiration.getTime(), now(), options.refreshBeforeMs, random()));
    } else if (options.noExpiryRefreshMs !== undefined) {
      schedule(options.noExpiryRefreshMs);
    }
  }

  return {
    name,
    source,
    current: store.current,
    status: store.status,
    start() {
      startPromise ??= (async () => {
        try {
          await options.beforeFirstFetch?.();
        } catch {
          // The first attempt reports whatever is wrong with the source.
        }
        if (!stopped) await refresh();
      })();
      return startPromise;
    },
    stop() {
      stopped = true;
      clearTimer();
    },
  };
}

/** Credentials that are already expired, or expire within the refresh window, are a failed refresh. */
function checkExpiry(
  credentials: Credentials,
  nowMs: number,
  refreshBeforeMs: number,
  origin: string,
): CredentialsResult {
  const expiresAt = credentials.expiration?.getTime();
  if (expiresAt === undefined) return { ok: true, credentials };
  if (Number.isNaN(expiresAt)) return { ok: false, error: `${origin} returned credentials with an invalid expiration` };
  const iso = new Date(expiresAt).toISOString();
  if (expiresAt <= nowMs) {
    return { ok: false, error: `${origin} returned credentials that expire at ${iso}, which is already past` };
  }
  if (expiresAt - nowMs <= refreshBeforeMs) {
    return {
      ok: false,
      error: `${origin} returned credentials that expire at ${iso}, within the ${Math.round(refreshBeforeMs / 1000)} s refresh window`,
    };
  }
  return { ok: true, credentials };
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number): Promise<T> {
  let timeout: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_resolve, reject) => {
    timeout = setTimeout(() => reject(new Error(`no answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    timeout.unref?.();
  });
  return Promise.race([promise, timedOut]).finally(() => clearTimeout(timeout));
}
