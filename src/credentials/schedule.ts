import {
  MAX_TIMER_DELAY_MS,
  MIN_REFRESH_DELAY_MS,
  MIN_RETRY_DELAY_MS,
  REFRESH_JITTER_FRACTION,
  RETRY_BASE_MS,
  RETRY_CAP_MS,
} from "./constants.js";

/**
 * Delay before the proactive refresh of credentials that expire at `expiresAtMs`:
 * expiry − refreshBefore − jitter, the jitter being up to 10% of refreshBefore.
 * `random` is a draw from [0, 1).
 */
export function refreshDelayMs(expiresAtMs: number, nowMs: number, refreshBeforeMs: number, random: number): number {
  const jitterMs = random * REFRESH_JITTER_FRACTION * refreshBeforeMs;
  const delay = expiresAtMs - refreshBeforeMs - jitterMs - nowMs;
  return clampTimerDelay(Math.max(MIN_REFRESH_DELAY_MS, Math.round(delay)));
}

/** Ceiling of the retry delay after `consecutiveFailures` (≥ 1) failures: 1 s, 2 s, 4 s, … capped at 60 s. */
export function retryCeilingMs(consecutiveFailures: number): number {
  const exponent = Math.min(Math.max(consecutiveFailures, 1) - 1, 30);
  return Math.min(RETRY_CAP_MS, RETRY_BASE_MS * 2 ** exponent);
}

/**
 * Delay before the next retry: full jitter (a uniform draw below the ceiling), at least
 * MIN_RETRY_DELAY_MS, and never later than the moment the credentials still held stop being used
 * (their expiry less the expiry margin).
 */
export function retryDelayMs(consecutiveFailures: number, random: number, msUntilUnusable: number | undefined): number {
  const jittered = Math.max(MIN_RETRY_DELAY_MS, Math.round(random * retryCeilingMs(consecutiveFailures)));
  const beforeExpiry = msUntilUnusable !== undefined && msUntilUnusable > 0 ? Math.min(jittered, msUntilUnusable) : jittered;
  return clampTimerDelay(beforeExpiry);
}

function clampTimerDelay(ms: number): number {
  return Math.min(Math.max(0, ms), MAX_TIMER_DELAY_MS);
}
