/** Timings of the credential refresher. All in milliseconds. */

/** First retry ceiling after a failed refresh; doubles per consecutive failure. */
export const RETRY_BASE_MS = 1_000;
/** Largest retry ceiling. */
export const RETRY_CAP_MS = 60_000;
/** Shortest delay before any retry, so a random draw near 0 cannot spin. */
export const MIN_RETRY_DELAY_MS = 100;
/** Shortest delay before a scheduled proactive refresh. */
export const MIN_REFRESH_DELAY_MS = 1_000;
/** Proactive refreshes start up to this fraction of the refresh window earlier (jitter). */
export const REFRESH_JITTER_FRACTION = 0.1;
/** Credentials without an expiry (default chain: env, ini, process) are re-resolved this often. */
export const NO_EXPIRY_REFRESH_MS = 15 * 60_000;
/** Refresh window of the default chain (it has no refreshBeforeSeconds of its own). */
export const DEFAULT_CHAIN_REFRESH_BEFORE_MS = 300_000;
/** Expiry margin of the default chain (it has no expiryMarginSeconds of its own): the policy's default. */
export const DEFAULT_CHAIN_EXPIRY_MARGIN_MS = 30_000;
/** An attempt that has not settled after this long counts as failed. */
export const ATTEMPT_TIMEOUT_MS = 30_000;
/** STS HTTP timeouts (maxAttempts is 1: the refresher owns retries). */
export const STS_REQUEST_TIMEOUT_MS = 5_000;
export const STS_CONNECTION_TIMEOUT_MS = 2_000;
/** setTimeout cannot wait longer than this. */
export const MAX_TIMER_DELAY_MS = 2_147_483_647;
