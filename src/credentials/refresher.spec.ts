import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Credentials } from "../sigv4/types.js";
import { createRefreshingProfile, type RefresherOptions } from "./refresher.js";
import { createAudit, FAKE_TIMERS, observeProfile, type Audit } from "./testing/audit.js";
import type { CredentialProfile } from "./types.js";

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);
const S = 1000;

let audit: Audit;
let serial = 0;

function credentialsExpiringIn(seconds: number): Credentials {
  serial += 1;
  const set = {
    accessKeyId: `ASIATESTKEY${String(serial).padStart(9, "0")}`,
    secretAccessKey: `secret-${serial}`,
    sessionToken: `token-${serial}`,
    expiration: new Date(Date.now() + seconds * S),
  };
  audit.secret(set);
  return set;
}

type Step = { ok: number } | { fail: string } | "hang";

/** A fetch that follows a script: { ok: n } issues credentials valid n seconds; { fail } rejects. */
function scripted(steps: Step[]): { fetch: () => Promise<Credentials>; calls: () => number } {
  let calls = 0;
  return {
    calls: () => calls,
    fetch: () => {
      const step = steps[Math.min(calls, steps.length - 1)];
      calls += 1;
      if (step === undefined || step === "hang") return new Promise<Credentials>(() => {});
      if ("fail" in step) return Promise.reject(Object.assign(new Error(step.fail), { name: "Throttling" }));
      return Promise.resolve(credentialsExpiringIn(step.ok));
    },
  };
}

function refresher(fetch: () => Promise<Credentials>, overrides: Partial<RefresherOptions> = {}): CredentialProfile {
  return createRefreshingProfile({
    name: "role",
    source: "assume_role",
    origin: "STS",
    fetch,
    refreshBeforeMs: 300 * S,
    now: Date.now,
    random: () => 0.5,
    events: audit.events,
    logger: audit.logger,
    ...overrides,
  });
}

function delayToNextAttempt(profile: CredentialProfile): number | undefined {
  const at = profile.status().nextRefreshAt;
  return at === undefined ? undefined : at.getTime() - Date.now();
}

beforeEach(() => {
  audit = createAudit();
  serial = 0;
  vi.useFakeTimers({ now: T0, toFake: [...FAKE_TIMERS] });
});

afterEach(() => {
  vi.useRealTimers();
  expect(audit.leaks()).toEqual([]);
});

describe("createRefreshingProfile", () => {
  it("is unusable before the first attempt finishes, saying so", () => {
    const profile = refresher(scripted(["hang"]).fetch);
    expect(profile.current()).toEqual({
      ok: false,
      error: {
        cause: "unavailable",
        message: 'no credentials for profile "role" (assume_role) yet: the first refresh has not finished',
      },
    });
  });

  it("fetches at start and refreshes at expiry − refreshBefore − jitter (3600 − 300 − 15 s)", async () => {
    const source = scripted([{ ok: 3600 }]);
    const profile = refresher(source.fetch);
    await profile.start();
    expect(source.calls()).toBe(1);
    expect(profile.status().nextRefreshAt).toEqual(new Date(T0 + 3285 * S));

    await vi.advanceTimersByTimeAsync(3285 * S - 1);
    expect(source.calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(source.calls()).toBe(2);
    expect(profile.status().nextRefreshAt).toEqual(new Date(T0 + (3285 + 3285) * S));
    profile.stop();
  });

  it("swaps in the new set as one frozen object and returns that same object on every call", async () => {
    const source = scripted([{ ok: 3600 }]);
    const profile = refresher(source.fetch);
    await profile.start();
    const first = profile.current();
    expect(first).toBe(profile.current());
    if (!first.ok) throw new Error("expected usable");
    expect(Object.isFrozen(first.credentials)).toBe(true);
    await vi.advanceTimersByTimeAsync(3285 * S);
    const second = profile.current();
    if (!second.ok) throw new Error("expected usable");
    expect(second.credentials).not.toBe(first.credentials);
    expect(second.credentials.accessKeyId).not.toBe(first.credentials.accessKeyId);
    profile.stop();
  });

  it("runs one attempt at a time: start() called twice fetches once", async () => {
    const source = scripted(["hang"]);
    const profile = refresher(source.fetch);
    void profile.start();
    void profile.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(source.calls()).toBe(1);
    profile.stop();
  });

  it("resolves start() after a failed first attempt and keeps retrying in the background", async () => {
    const source = scripted([{ fail: "Rate exceeded" }, { ok: 3600 }]);
    const profile = refresher(source.fetch);
    await profile.start();
    expect(profile.current()).toEqual({
      ok: false,
      error: {
        cause: "unavailable",
        message: 'no credentials for profile "role" (assume_role); last refresh failed: Throttling: Rate exceeded',
      },
    });
    expect(delayToNextAttempt(profile)).toBe(500);
    await vi.advanceTimersByTimeAsync(500);
    expect(profile.current().ok).toBe(true);
    expect(profile.status()).toMatchObject({ refreshSuccesses: 1, refreshFailures: 1, usable: true });
    expect(profile.status().lastError).toBeUndefined();
    profile.stop();
  });

  it("backs off 1, 2, 4 … 60 s (full jitter at its ceiling) and retries no later than the expiry", async () => {
    const source = scripted([{ ok: 3600 }, { fail: "Rate exceeded" }]);
    const profile = refresher(source.fetch, { random: () => 1 });
    await profile.start();
    // Jitter draw 1: the refresh starts 10% of 300 s earlier, at 3270 s.
    expect(delayToNextAttempt(profile)).toBe(3270 * S);
    await vi.advanceTimersByTimeAsync(3270 * S);

    const delays: number[] = [];
    while (Date.now() < T0 + 3600 * S) {
      const delay = delayToNextAttempt(profile) ?? -1;
      delays.push(delay);
      expect(profile.current().ok).toBe(true);
      await vi.advanceTimersByTimeAsync(delay);
    }
    expect(delays).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 27].map((s) => s * S));
    expect(Date.now()).toBe(T0 + 3600 * S);
    // After expiry the ceiling stays at 60 s.
    expect(delayToNextAttempt(profile)).toBe(60 * S);
    expect(profile.status().refreshFailures).toBe(12);
    profile.stop();
  });

  it("turns unusable exactly at expiry while refreshes fail, naming the expiry and the error, then recovers", async () => {
    const source = scripted([{ ok: 3600 }, ...Array<Step>(40).fill({ fail: "Rate exceeded" }), { ok: 3600 }]);
    const profile = refresher(source.fetch, { random: () => 1 });
    await profile.start();
    await vi.advanceTimersByTimeAsync(3600 * S - 1);
    expect(profile.current().ok).toBe(true);
    await vi.advanceTimersByTimeAsync(1);
    const expired = profile.current();
    expect(expired).toEqual({
      ok: false,
      error: {
        cause: "expired",
        message:
          'credentials for profile "role" (assume_role) expired at 2030-01-01T01:00:00.000Z; last refresh failed: Throttling: Rate exceeded',
      },
    });
    observeProfile(audit, profile);

    await vi.advanceTimersByTimeAsync(40 * 60 * S);
    expect(profile.current().ok).toBe(true);
    expect(profile.status()).toMatchObject({ usable: true, refreshSuccesses: 2, refreshFailures: 40 });
    profile.stop();
  });

  describe("with an expiry margin of 30 s", () => {
    const margin = { expiryMarginMs: 30 * S };

    it("still refreshes at expiry − refreshBefore − jitter; signs with the set until expiry − 30 s and refuses it from 29 s before expiry (cause expiry_margin)", async () => {
      const source = scripted([{ ok: 3600 }, { fail: "Rate exceeded" }]);
      const profile = refresher(source.fetch, margin);
      await profile.start();
      expect(profile.status().nextRefreshAt).toEqual(new Date(T0 + 3285 * S));
      await vi.advanceTimersByTimeAsync(3285 * S - 1);
      expect(source.calls()).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(source.calls()).toBe(2);

      await vi.advanceTimersByTimeAsync(T0 + (3600 - 31) * S - Date.now());
      expect(profile.current().ok).toBe(true);
      await vi.advanceTimersByTimeAsync(2 * S);
      expect(Date.now()).toBe(T0 + (3600 - 29) * S);
      expect(profile.current()).toEqual({
        ok: false,
        error: {
          cause: "expiry_margin",
          message:
            'credentials for profile "role" (assume_role) expire at 2030-01-01T01:00:00.000Z, within the 30 s expiry margin, so they are no longer used for signing; last refresh failed: Throttling: Rate exceeded',
        },
      });
      expect(profile.status()).toMatchObject({ usable: false, expiresAt: new Date(T0 + 3600 * S) });
      observeProfile(audit, profile);

      await vi.advanceTimersByTimeAsync(29 * S);
      expect(profile.current()).toMatchObject({ ok: false, error: { cause: "expired" } });
      profile.stop();
    });

    it("is usable up to the millisecond before expiry − 30 s", async () => {
      const profile = refresher(scripted([{ ok: 3600 }, "hang"]).fetch, margin);
      await profile.start();
      await vi.advanceTimersByTimeAsync(3570 * S - 1);
      expect(profile.current().ok).toBe(true);
      await vi.advanceTimersByTimeAsync(1);
      expect(profile.current()).toMatchObject({ ok: false, error: { cause: "expiry_margin" } });
      profile.stop();
    });

    it("retries no later than expiry − 30 s, when the set stops being used", async () => {
      const source = scripted([{ ok: 3600 }, { fail: "Rate exceeded" }]);
      const profile = refresher(source.fetch, { ...margin, random: () => 1 });
      await profile.start();
      await vi.advanceTimersByTimeAsync(3270 * S);
      const delays: number[] = [];
      while (Date.now() < T0 + 3570 * S) {
        const delay = delayToNextAttempt(profile) ?? -1;
        delays.push(delay);
        await vi.advanceTimersByTimeAsync(delay);
      }
      expect(delays).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60, 57].map((s) => s * S));
      profile.stop();
    });

    it("signs again as soon as a refresh inside the margin succeeds", async () => {
      const source = scripted([{ ok: 3600 }, ...Array<Step>(11).fill({ fail: "Rate exceeded" }), { ok: 3600 }]);
      const profile = refresher(source.fetch, { ...margin, random: () => 1 });
      await profile.start();
      await vi.advanceTimersByTimeAsync(3570 * S);
      expect(profile.current()).toMatchObject({ ok: false, error: { cause: "expiry_margin" } });
      await vi.advanceTimersByTimeAsync(60 * S);
      expect(profile.current().ok).toBe(true);
      expect(profile.status()).toMatchObject({ refreshSuccesses: 2, refreshFailures: 11 });
      profile.stop();
    });
  });

  it("counts credentials that arrive already expired as a failure and does not use them", async () => {
    const source = scripted([{ ok: -1 }, { ok: 3600 }]);
    const profile = refresher(source.fetch);
    await profile.start();
    expect(profile.current()).toEqual({
      ok: false,
      error: {
        cause: "unavailable",
        message:
          'no credentials for profile "role" (assume_role); last refresh failed: STS returned credentials that expire at 2029-12-31T23:59:59.000Z, which is already past',
      },
    });
    expect(profile.status().refreshFailures).toBe(1);
    await vi.advanceTimersByTimeAsync(500);
    expect(profile.current().ok).toBe(true);
    profile.stop();
  });

  it("counts credentials expiring within the refresh window as a failure", async () => {
    const source = scripted([{ ok: 200 }]);
    const profile = refresher(source.fetch);
    await profile.start();
    expect(profile.status().lastError).toBe(
      "STS returned credentials that expire at 2030-01-01T00:03:20.000Z, within the 300 s refresh window",
    );
    expect(profile.current().ok).toBe(false);
    profile.stop();
  });

  it("fails an attempt that has not settled after 30 s and retries", async () => {
    const source = scripted(["hang", { ok: 3600 }]);
    const profile = refresher(source.fetch);
    const started = profile.start();
    await vi.advanceTimersByTimeAsync(30 * S);
    await started;
    expect(profile.status()).toMatchObject({ refreshFailures: 1, lastError: "no answer within 30 s" });
    await vi.advanceTimersByTimeAsync(500);
    expect(source.calls()).toBe(2);
    expect(profile.current().ok).toBe(true);
    profile.stop();
  });

  it("re-resolves credentials without an expiry at the configured interval", async () => {
    const source = scripted([{ ok: 3600 }]);
    const noExpiry = async (): Promise<Credentials> => {
      const { expiration: _e, ...rest } = await source.fetch();
      return rest;
    };
    const profile = refresher(noExpiry, { noExpiryRefreshMs: 15 * 60 * S });
    await profile.start();
    expect(delayToNextAttempt(profile)).toBe(15 * 60 * S);
    await vi.advanceTimersByTimeAsync(15 * 60 * S);
    expect(source.calls()).toBe(2);
    profile.stop();
  });

  it("stops refreshing after stop()", async () => {
    const source = scripted([{ ok: 3600 }]);
    const profile = refresher(source.fetch);
    await profile.start();
    profile.stop();
    expect(profile.status().nextRefreshAt).toBeUndefined();
    await vi.advanceTimersByTimeAsync(4 * 3600 * S);
    expect(source.calls()).toBe(1);
  });

  it("keeps refreshing when the logger and the event listener throw", async () => {
    const source = scripted([{ ok: 3600 }]);
    const boom = (): never => {
      throw new Error("listener failed");
    };
    const profile = refresher(source.fetch, { logger: { info: boom, warn: boom }, events: { onRefresh: boom } });
    await profile.start();
    expect(profile.current().ok).toBe(true);
    expect(profile.status().nextRefreshAt).toEqual(new Date(T0 + 3285 * S));
    profile.stop();
  });

  it("logs one line per outcome with profile, source, result, duration, expiry and the key id's last 4 characters", async () => {
    const source = scripted([{ fail: "Rate exceeded" }, { ok: 3600 }]);
    const profile = refresher(source.fetch);
    await profile.start();
    await vi.advanceTimersByTimeAsync(500);
    expect(audit.lines.filter((l) => l.includes('"msg"')).map((l) => JSON.parse(l) as unknown)).toEqual([
      {
        level: "warn",
        profile: "role",
        source: "assume_role",
        result: "failure",
        durationMs: 0,
        error: "Throttling: Rate exceeded",
        msg: "credential refresh failed",
      },
      {
        level: "info",
        profile: "role",
        source: "assume_role",
        result: "success",
        durationMs: 0,
        expiresAt: "2030-01-01T01:00:00.500Z",
        keyIdSuffix: "0001",
        msg: "credential refresh succeeded",
      },
    ]);
    profile.stop();
  });
});
