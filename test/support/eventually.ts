/**
 * The one way tests wait for something to happen: poll, in real time, until it has, and fail with
 * what was awaited (and the last error, if any) after a deadline. Real time even where a test fakes
 * timers (vi.useFakeTimers): the clock and setTimeout are taken when this module loads.
 */
const realSetTimeout = globalThis.setTimeout;
const realNow = performance.now.bind(performance);

export interface PollOptions {
  /** Give up after this long; default 10 s. */
  readonly timeoutMs?: number;
  /** Wait this long between probes; default 50 ms. */
  readonly everyMs?: number;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => realSetTimeout(resolve, ms));
}

/** Calls `probe` until it returns something other than undefined, and returns that. A throw ends the wait. */
export async function eventually<T>(probe: () => Promise<T | undefined> | T | undefined, what: string, opts: PollOptions = {}): Promise<T> {
  const { timeoutMs = 10_000, everyMs = 50 } = opts;
  const deadline = realNow() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (realNow() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await pause(everyMs);
  }
}

/** Waits until `condition` holds. */
export async function until(condition: () => boolean | Promise<boolean>, what = "a condition", opts: PollOptions = {}): Promise<void> {
  await eventually(async () => ((await condition()) ? true : undefined), what, opts);
}

/** Retries `attempt` (typically expect() calls) until it stops throwing, and returns its result; after the deadline, throws its last error. */
export async function untilPasses<T>(attempt: () => T | Promise<T>, what: string, opts: PollOptions = {}): Promise<T> {
  const { timeoutMs = 10_000 } = opts;
  let last: unknown;
  const result = await eventually<{ value: T }>(
    async () => {
      try {
        return { value: await attempt() };
      } catch (err) {
        last = err;
        return undefined;
      }
    },
    what,
    opts,
  ).catch((timeout: unknown) => {
    throw new Error(`${what}: not within ${timeoutMs} ms: ${last instanceof Error ? last.message : String(last)}`, { cause: last ?? timeout });
  });
  return result.value;
}
