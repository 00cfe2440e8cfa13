/**
 * The assume_role refresher against the strict fake STS on loopback, with fake timers: first
 * fetch, a proactive refresh with requests in flight (none waits, none fails), STS outages of
 * every kind lasting past the expiry (503 refusals naming the expiry and the refresh error, then
 * recovery), and concurrent signing across many swaps never mixing parts of two sets. Every
 * signed request is checked by the fake AWS's own SigV4 verifier, which requires the key's own
 * secret and the session token issued with it.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Credentials } from "../../src/sigv4/types.js";
import { FAKE_TIMERS } from "../../src/credentials/testing/audit.js";
import type { StsFailureKind } from "../fakeaws/server.js";
import { until } from "../support/eventually.js";
import { headerOf, keyIdOf } from "./support/harness.js";
import { put, putBuffered, startFixture, type Fixture, type Sent } from "./support/fixture.js";

/** Polls a millisecond apart: these tests run on vitest's fake clock and wait for real I/O. */
const EVERY_MS_1 = { everyMs: 1 } as const;

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);
const S = 1000;
const HOST = "bucket.s3.eu-west-1.amazonaws.com";
const SOURCE = { accessKeyId: "AKIACREDTESTSOURCE01", secretAccessKey: "credentials/test/source/000000000000001" };
const ENV = { SRC_ID: SOURCE.accessKeyId, SRC_SECRET: SOURCE.secretAccessKey };
const SHOW_TIMINGS = process.env["COUNTERSIGN_SHOW_TIMINGS"] === "1";

const policy = (stsUrl: string): string => `version: 1
credentials:
  source:
    static: { access_key_id_env: SRC_ID, secret_access_key_env: SRC_SECRET }
  role:
    assume_role:
      role_arn: arn:aws:iam::123456789012:role/countersign-refresh
      session_name: countersign-refresh-test
      duration_seconds: 3600
      refresh_before_seconds: 300
      source: source
      sts_endpoint: ${stsUrl}
endpoints:
  - host: "${HOST}"
    credential_signing: sigv4
    signing_service: s3
    credentials: role
`;

let fx: Fixture;

beforeEach(async () => {
  vi.useFakeTimers({ now: T0, toFake: [...FAKE_TIMERS] });
  // Keep the SDK away from this machine's AWS configuration.
  vi.stubEnv("AWS_CONFIG_FILE", "/nonexistent/countersign-test/config");
  vi.stubEnv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/countersign-test/credentials");
  fx = await startFixture({ accounts: [SOURCE] });
});

afterEach(async () => {
  await fx.close();
  vi.useRealTimers();
  vi.unstubAllEnvs();
  expect(fx.audit.leaks()).toEqual([]);
});

function issued(i: number): Credentials {
  const set = fx.fake.sts.issued.at(i);
  if (!set) throw new Error(`the fake STS issued no set #${i}`);
  return set;
}

function xmlText(escaped: string): string {
  const entities: Record<string, string> = { "&quot;": '"', "&apos;": "'", "&lt;": "<", "&gt;": ">", "&amp;": "&" };
  return escaped.replace(/&(quot|apos|lt|gt|amp);/g, (e) => entities[e] ?? e);
}

function attempts(): number {
  const s = fx.profile("role").status();
  return s.refreshSuccesses + s.refreshFailures;
}

/** Signed with `set` (key id and token of that one set) and verified by the fake AWS with that set's secret. */
function expectSignedWith(sent: Sent, set: Credentials): void {
  expect(sent.outcome.kind).toBe("forwarded");
  expect(keyIdOf(sent.outcome)).toBe(set.accessKeyId);
  expect(headerOf(sent.outcome, "x-amz-security-token")).toBe(set.sessionToken);
  expect(sent.record).toMatchObject({ verified: true, accessKeyId: set.accessKeyId, status: 200 });
}

/**
 * Advances fake time to the role's next scheduled attempt and waits (really) until it has
 * finished. A call the fake STS never answers is given the STS client's 5 s request timeout.
 * Returns the time the attempt started.
 */
async function runNextAttempt(hang: boolean): Promise<number> {
  const before = attempts();
  const callsBefore = fx.fake.sts.calls["AssumeRole"] ?? 0;
  const at = fx.profile("role").status().nextRefreshAt;
  if (!at) throw new Error("no attempt scheduled");
  await vi.advanceTimersByTimeAsync(at.getTime() - Date.now());
  const started = Date.now();
  if (hang) {
    await until(() => (fx.fake.sts.calls["AssumeRole"] ?? 0) > callsBefore, "the AssumeRole call to reach the fake STS", EVERY_MS_1);
    await vi.advanceTimersByTimeAsync(5 * S);
  }
  await until(() => attempts() > before, "the attempt to finish", EVERY_MS_1);
  return started;
}

describe("assume_role against the fake STS on loopback", () => {
  it("first fetch: not ready and 503 until the first AssumeRole succeeds, then signs with the issued set", async () => {
    fx.fake.sts.failNext(1, "500");
    await fx.start(policy, ENV);
    // The first attempt failed: the profile has nothing, readiness says why, requests are refused.
    expect(fx.notReady()).toEqual([
      expect.stringMatching(/^credentials "role": no credentials for profile "role" \(assume_role\); last refresh failed: STS InternalFailure: fakeaws: injected STS failure \(HTTP 500\)$/),
    ]);
    const refused = await fx.send(put(HOST));
    expect(refused.outcome).toMatchObject({ kind: "refused", status: 503, reason: "credentials_unavailable" });
    if (refused.outcome.kind === "refused") expect(refused.outcome.body).toContain("are unavailable: no credentials for profile");

    // The first retry comes within 1 s (full jitter below the 1 s ceiling).
    const retryIn = (fx.profile("role").status().nextRefreshAt?.getTime() ?? Infinity) - Date.now();
    expect(retryIn).toBeGreaterThanOrEqual(100);
    expect(retryIn).toBeLessThanOrEqual(1 * S);
    await runNextAttempt(false);
    expect(fx.notReady()).toEqual([]);

    // The call was signed by the source's key and verified by the fake's verifier (through the gateway).
    expect(fx.gateway.calls.map((c) => [c.action, c.verified, c.accessKeyId, c.upstreamStatus])).toEqual([
      ["AssumeRole", true, SOURCE.accessKeyId, 500],
      ["AssumeRole", true, SOURCE.accessKeyId, 200],
    ]);
    expect(issued(0)).toMatchObject({ arn: "arn:aws:sts::123456789012:assumed-role/countersign-refresh/countersign-refresh-test" });
    expectSignedWith(await fx.send(put(HOST)), issued(0));
    expectSignedWith(await fx.send(putBuffered(HOST)), issued(0));

    // Proactive refresh at expiry − 300 s − jitter, the jitter being draw × 10 % × 300 s.
    const expiry = issued(0).expiration?.getTime() ?? 0;
    const draw = fx.random.draws.at(-1) ?? -1;
    expect(fx.profile("role").status().nextRefreshAt?.getTime()).toBe(Math.round(expiry - 300 * S - draw * 30 * S));
  });

  it("refreshes before expiry with requests in flight: none waits for STS, none fails, each signs with one set", async () => {
    await fx.start(policy, ENV);
    const a = issued(0);
    const expiry = a.expiration?.getTime() ?? 0;
    const refreshAt = fx.profile("role").status().nextRefreshAt?.getTime() ?? 0;
    expect(refreshAt).toBeGreaterThanOrEqual(expiry - 330 * S);
    expect(refreshAt).toBeLessThanOrEqual(expiry - 300 * S);
    await vi.advanceTimersByTimeAsync(refreshAt - 1 - Date.now());
    expect(fx.fake.sts.calls["AssumeRole"]).toBe(1);

    // STS holds the refresh call for as long as the test likes.
    const release = fx.gateway.hold();
    await vi.advanceTimersByTimeAsync(1);
    await until(() => fx.gateway.waiting === 1, "the refresh call to be held at STS", EVERY_MS_1);

    // 200 requests while the refresh is in flight: each answered at once, with the old set.
    const started = performance.now();
    const during = await Promise.all(Array.from({ length: 200 }, (_, i) => fx.send(i % 2 ? put(HOST) : putBuffered(HOST))));
    const elapsedMs = performance.now() - started;
    expect(fx.gateway.waiting).toBe(1);
    expect(fx.profile("role").status()).toMatchObject({ refreshSuccesses: 1, refreshFailures: 0 });
    for (const sent of during) expectSignedWith(sent, a);

    // 50 uploads whose headers are answered now (old set taken) and whose bodies arrive after the swap.
    let bodiesMayGo: () => void = () => {};
    const gate = new Promise<void>((resolve) => (bodiesMayGo = resolve));
    const spanning = Array.from({ length: 50 }, () => fx.send(putBuffered(HOST), () => gate));
    release();
    await until(() => fx.profile("role").status().refreshSuccesses === 2, "the refresh to finish", EVERY_MS_1);
    const b = issued(1);
    bodiesMayGo();
    for (const sent of await Promise.all(spanning)) expectSignedWith(sent, a);
    // From the swap on, the new set.
    expectSignedWith(await fx.send(put(HOST)), b);
    expectSignedWith(await fx.send(putBuffered(HOST)), b);

    const decisions = fx.test?.decisions ?? [];
    expect(decisions.filter((d) => d.decision !== "signed")).toEqual([]);
    expect(decisions).toHaveLength(252);
    if (SHOW_TIMINGS) {
      console.info(`refresh at expiry − ${(expiry - refreshAt) / S} s; 200 requests signed in ${elapsedMs.toFixed(0)} ms (real) while STS held the refresh`);
    }
  });

  const outages: ReadonlyArray<{ kind: StsFailureKind; name: string; error: RegExp }> = [
    { kind: "500", name: "STS answers 500", error: /last refresh failed: STS InternalFailure: fakeaws: injected STS failure \(HTTP 500\)$/ },
    { kind: "throttle-503", name: "STS answers 503 Throttling", error: /last refresh failed: STS Throttling: Rate exceeded \(HTTP 503\)$/ },
    { kind: "throttle", name: "STS answers 400 Throttling", error: /last refresh failed: STS Throttling: Rate exceeded \(HTTP 400\)$/ },
    { kind: "timeout", name: "STS never answers", error: /last refresh failed: STS TimeoutError: .*5000 ms requestTimeout\.$/ },
    { kind: "expired", name: "STS returns already-expired credentials", error: /last refresh failed: STS returned credentials that expire at \S+Z, which is already past$/ },
  ];

  it.each(outages)("$name until the old set expires: old set signs until its expiry margin, 503 naming expiry and error after, recovery when STS returns", async ({ kind, error }) => {
    await fx.start(policy, ENV);
    const a = issued(0);
    const expiry = a.expiration?.getTime() ?? 0;
    // The default expiry margin: the set stops being used 30 s before it expires.
    const unusableAt = expiry - 30 * S;
    fx.fake.sts.failAll(kind);

    // Every attempt fails; requests between attempts keep signing with the old set.
    const times: number[] = [];
    while (Date.now() < unusableAt) {
      times.push(await runNextAttempt(kind === "timeout"));
      if (Date.now() < unusableAt) expectSignedWith(await fx.send(put(HOST)), a);
    }
    const status = fx.profile("role").status();
    expect(status).toMatchObject({ usable: false, refreshSuccesses: 1 });
    expect(status.refreshFailures).toBe(times.length);

    // The first attempt at expiry − 300 s − jitter; then full-jitter backoff below a ceiling of 1, 2, 4 … 60 s, never past the margin.
    const draws = fx.random.draws;
    expect(times[0]).toBe(Math.round(expiry - 300 * S - (draws[0] ?? 0) * 30 * S));
    const attemptMs = kind === "timeout" ? 5 * S : 0;
    for (let i = 1; i < times.length; i++) {
      const failedAt = (times[i - 1] ?? 0) + attemptMs;
      const ceiling = Math.min(60 * S, S * 2 ** (i - 1));
      const delay = (times[i] ?? 0) - failedAt;
      expect(delay).toBe(Math.min(Math.max(100, Math.round((draws[i] ?? 0) * ceiling)), unusableAt - failedAt));
    }
    const last = times.at(-1) ?? 0;
    expect(last + attemptMs).toBeGreaterThanOrEqual(unusableAt);
    // Past the margin and then the expiry itself (the retries go on meanwhile, still failing).
    while (Date.now() < expiry) times.push(await runNextAttempt(kind === "timeout"));

    // Refused from the expiry on, with a message that says the credentials expired and why refresh failed.
    const refused = await fx.send(put(HOST));
    expect(refused.outcome).toMatchObject({ kind: "refused", status: 503, reason: "credentials_unavailable" });
    if (refused.outcome.kind === "refused") {
      expect(refused.outcome.body).toContain("<Code>ServiceUnavailable</Code>");
      const message = xmlText(/<Message>(.*)<\/Message>/.exec(refused.outcome.body)?.[1] ?? "");
      expect(message).toMatch(/^credentials "role" are unavailable: credentials for profile "role" \(assume_role\) expired at 2030-01-01T01:00:00\.000Z; /);
      expect(message).toMatch(error);
    }
    // Readiness is not withdrawn: the profile has had credentials (README: Readiness).
    expect(fx.notReady()).toEqual([]);
    // Nothing was forwarded unsigned or with the placeholder: the fake AWS saw only verified requests.
    expect(fx.fake.requests.filter((r) => r.service === "s3" && !r.verified)).toEqual([]);

    // STS comes back: the next scheduled retry (at most 60 s away) recovers.
    const backAt = Date.now();
    fx.fake.sts.clearFailures();
    const retryAt = await runNextAttempt(false);
    const recovered = Date.now() - backAt;
    expect(retryAt - backAt).toBeLessThanOrEqual(60 * S);
    expect(fx.profile("role").status()).toMatchObject({ usable: true, refreshSuccesses: 2 });
    expect(fx.profile("role").status().lastError).toBeUndefined();
    expect(fx.notReady()).toEqual([]);
    const b = issued(-1);
    expect(b.accessKeyId).not.toBe(a.accessKeyId);
    expectSignedWith(await fx.send(put(HOST)), b);
    expectSignedWith(await fx.send(putBuffered(HOST)), b);

    // One log line per outcome; refresh errors named; no secret anywhere.
    const lines = fx.audit.lines.filter((l) => l.includes('"msg":"credential refresh'));
    expect(lines.filter((l) => l.includes('"profile":"role"'))).toHaveLength(times.length + 2);
    if (SHOW_TIMINGS) {
      const steps = times.slice(1).map((t, i) => ((t - (times[i] ?? 0) - attemptMs) / S).toFixed(2));
      console.info(`${kind}: first attempt at expiry − ${((expiry - (times[0] ?? 0)) / S).toFixed(2)} s; ${times.length} attempts; backoff steps (s) ${steps.join(", ")}; refused from expiry; recovered ${(recovered / S).toFixed(2)} s after STS came back`);
    }
  });

  it("concurrent signing across 8 swaps never mixes key id, secret and token of two sets", async () => {
    await fx.start(policy, ENV);
    const results: Sent[] = [];
    for (let swap = 0; swap < 8; swap++) {
      const successes = fx.profile("role").status().refreshSuccesses;
      const at = fx.profile("role").status().nextRefreshAt?.getTime() ?? 0;
      await vi.advanceTimersByTimeAsync(at - 1 - Date.now());
      // 60 requests in flight, half of them uploads whose bodies arrive a few turns later.
      const turns = (n: number) => async (): Promise<void> => {
        for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
      };
      const batch = Array.from({ length: 60 }, (_, i) => (i % 2 ? fx.send(put(HOST)) : fx.send(putBuffered(HOST), turns(i % 7))));
      await vi.advanceTimersByTimeAsync(1); // the refresh starts while the batch is in flight
      const more = Array.from({ length: 20 }, (_, i) => fx.send(i % 2 ? put(HOST) : putBuffered(HOST), turns(3)));
      await until(() => fx.profile("role").status().refreshSuccesses > successes, `refresh ${swap + 1}`, EVERY_MS_1);
      results.push(...(await Promise.all([...batch, ...more])));
    }
    results.push(...(await Promise.all(Array.from({ length: 20 }, (_, i) => fx.send(i % 2 ? put(HOST) : putBuffered(HOST))))));
    expect(fx.fake.sts.issued).toHaveLength(9);
    const byKey = new Map(fx.fake.sts.issued.map((s) => [s.accessKeyId, s]));
    const used = new Set<string>();
    for (const sent of results) {
      const set = byKey.get(keyIdOf(sent.outcome) ?? "");
      if (!set) throw new Error(`signed with a key id STS never issued (${sent.outcome.kind})`);
      // The token is that set's token, and the fake verified the signature with that set's secret.
      expectSignedWith(sent, set);
      used.add(set.accessKeyId);
    }
    expect(results).toHaveLength(660);
    // Both sides of every swap were used.
    expect(used.size).toBe(9);
  });

  it("chains roles from a static key, from another role and from a file rotated on disk, each AssumeRole verified with its source's current set", async () => {
    const dir = mkdtempSync(join(tmpdir(), "countersign-chain-file-"));
    const FILE_1 = { accessKeyId: "AKIACREDTESTFILE0001", secretAccessKey: "credentials/test/file/00000000000000001" };
    const FILE_2 = { accessKeyId: "AKIACREDTESTFILE0002", secretAccessKey: "credentials/test/file/00000000000000002" };
    const writeKey = (k: typeof FILE_1): void => {
      writeFileSync(join(dir, "credentials.tmp"), `[default]\naws_access_key_id = ${k.accessKeyId}\naws_secret_access_key = ${k.secretAccessKey}\n`);
      renameSync(join(dir, "credentials.tmp"), join(dir, "credentials"));
    };
    try {
      fx.addAccount(FILE_1);
      fx.addAccount(FILE_2);
      writeKey(FILE_1);
      const roleEntry = (name: string, source: string, url: string): string =>
        `  ${name}:\n    assume_role:\n      role_arn: arn:aws:iam::123456789012:role/${name}\n      session_name: ${name}-session\n      source: ${source}\n      sts_endpoint: ${url}\n`;
      const endpoint = (name: string): string => `  - host: "${name}.s3.eu-west-1.amazonaws.com"\n    credential_signing: sigv4\n    signing_service: s3\n    credentials: ${name}\n`;
      await fx.start(
        (url) =>
          `version: 1\ncredentials:\n  source:\n    static: { access_key_id_env: SRC_ID, secret_access_key_env: SRC_SECRET }\n` +
          `  from-file:\n    file: { path: ${join(dir, "credentials")}, profile: default }\n` +
          roleEntry("first", "source", url) + roleEntry("second", "first", url) + roleEntry("via-file", "from-file", url) +
          `endpoints:\n${endpoint("second")}${endpoint("via-file")}`,
        ENV,
      );
      const byArn = (role: string): Credentials => {
        const set = fx.fake.sts.issued.filter((i) => i.arn?.includes(`:assumed-role/${role}/`)).at(-1);
        if (!set) throw new Error(`nothing issued for ${role}`);
        return set;
      };
      /** Who signed the AssumeRole that issued the role's current set. */
      const signer = (role: string): string | undefined => fx.gateway.calls.find((c) => c.issuedKeyId === byArn(role).accessKeyId)?.accessKeyId;
      // Each AssumeRole was signed with its source's set, and the fake verified it with that set.
      expect(fx.gateway.calls.every((c) => c.verified && c.upstreamStatus === 200)).toBe(true);
      expect(signer("first")).toBe(SOURCE.accessKeyId);
      expect(signer("second")).toBe(byArn("first").accessKeyId);
      expect(signer("via-file")).toBe(FILE_1.accessKeyId);
      expectSignedWith(await fx.send(put("second.s3.eu-west-1.amazonaws.com")), byArn("second"));
      expectSignedWith(await fx.send(put("via-file.s3.eu-west-1.amazonaws.com")), byArn("via-file"));

      // The file is rotated (temp + rename); the file profile picks it up; the role's next refresh is signed with the new key.
      writeKey(FILE_2);
      const file = fx.profile("from-file");
      for (let i = 0; i < 300 && file.status().refreshSuccesses < 2; i++) {
        await vi.advanceTimersByTimeAsync(100);
        await until(() => file.status().refreshSuccesses >= 2, "the rotated file", { timeoutMs: 5, everyMs: 1 }).catch(() => undefined);
      }
      expect(file.status().refreshSuccesses).toBe(2);
      const viaFile = fx.profile("via-file");
      const before = viaFile.status().refreshSuccesses;
      await vi.advanceTimersByTimeAsync((viaFile.status().nextRefreshAt?.getTime() ?? 0) - Date.now());
      await until(() => viaFile.status().refreshSuccesses > before, "the via-file refresh", EVERY_MS_1);
      expect(signer("via-file")).toBe(FILE_2.accessKeyId);
      expectSignedWith(await fx.send(put("via-file.s3.eu-west-1.amazonaws.com")), byArn("via-file"));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
