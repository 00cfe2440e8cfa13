import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import type { AssumeRoleCredentialSpec, CredentialSpec } from "../policy/types.js";
import type { Credentials } from "../sigv4/types.js";
import { until } from "../../test/support/eventually.js";
import { createCredentialProfiles } from "./createProfiles.js";
import { createAudit, FAKE_TIMERS, observeProfile, realSleep, realTurn, sameSet, type Audit } from "./testing/audit.js";
import { startStsStub, type StsReply, type StsStub } from "./testing/stsStub.js";
import type { CredentialDeps, CredentialProfile } from "./types.js";

/** Polls every millisecond, in real time, for at most 5 s. */
const POLL_EVERY_MS_1 = { timeoutMs: 5_000, everyMs: 1 };

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);
const S = 1000;
const BASE_KEY = "AKIABASEEXAMPLE00001";
const BASE_SECRET = "base-secret-do-not-log";

let stub: StsStub;
let audit: Audit;
let profiles: Map<string, CredentialProfile> | undefined;

beforeAll(async () => {
  stub = await startStsStub();
  // Keep the SDK away from this machine's AWS configuration.
  vi.stubEnv("AWS_CONFIG_FILE", "/nonexistent/countersign-test/config");
  vi.stubEnv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/countersign-test/credentials");
});

afterAll(async () => {
  await stub.close();
  vi.unstubAllEnvs();
});

beforeEach(() => {
  audit = createAudit();
  audit.secret({ accessKeyId: BASE_KEY, secretAccessKey: BASE_SECRET });
  stub.requests.length = 0;
  stub.issued.length = 0;
  stub.reply = () => ({ kind: "credentials", expiresInSeconds: 3600 });
  vi.useFakeTimers({ now: T0, toFake: [...FAKE_TIMERS] });
});

afterEach(() => {
  for (const profile of profiles?.values() ?? []) {
    observeProfile(audit, profile);
    profile.stop();
  }
  profiles = undefined;
  vi.useRealTimers();
  for (const set of stub.issued) audit.secret(set);
  expect(audit.leaks()).toEqual([]);
});

function role(source: string, overrides: Partial<AssumeRoleCredentialSpec> = {}): AssumeRoleCredentialSpec {
  return {
    kind: "assume_role",
    roleArn: `arn:aws:iam::111122223333:role/${source}-child`,
    durationSeconds: 3600,
    refreshBeforeSeconds: 300,
    // These tests are about the expiry itself; the margin has its own (refresher.spec.ts, test/credentials/expiryMargin.spec.ts).
    expiryMarginSeconds: 0,
    source,
    stsRegion: "us-east-1",
    stsEndpoint: stub.url,
    ...overrides,
  };
}

function build(entries: Record<string, CredentialSpec>, deps: CredentialDeps = {}): Map<string, CredentialProfile> {
  profiles = createCredentialProfiles(new Map(Object.entries(entries)), {
    env: { BASE_KEY_ID: BASE_KEY, BASE_SECRET },
    random: () => 0.5,
    logger: audit.logger,
    events: audit.events,
    hostname: "pod-7",
    ...deps,
  });
  return profiles;
}

const base: CredentialSpec = { kind: "static", accessKeyIdEnv: "BASE_KEY_ID", secretAccessKeyEnv: "BASE_SECRET" };

function get(map: Map<string, CredentialProfile>, name: string): CredentialProfile {
  const profile = map.get(name);
  if (!profile) throw new Error(`no profile ${name}`);
  return profile;
}

function usableCredentials(profile: CredentialProfile): Credentials {
  const state = profile.current();
  if (!state.ok) throw new Error(`unusable: ${state.error.message}`);
  return state.credentials;
}

function expectIssued(credentials: Credentials, index: number): void {
  const set = stub.issued[index];
  expect(set).toBeDefined();
  if (set) expect(credentials).toEqual(set);
}

/** Advances fake time to the profile's next attempt and waits (really) until that attempt has finished. */
async function runNextAttempt(profile: CredentialProfile, reply: StsReply): Promise<void> {
  const before = profile.status().refreshSuccesses + profile.status().refreshFailures;
  const requestsBefore = stub.requests.length;
  const at = profile.status().nextRefreshAt;
  if (!at) throw new Error("no attempt scheduled");
  stub.reply = () => reply;
  await vi.advanceTimersByTimeAsync(at.getTime() - Date.now());
  if (reply.kind === "hang") {
    await until(() => stub.requests.length > requestsBefore, "the STS request", POLL_EVERY_MS_1);
    await vi.advanceTimersByTimeAsync(5 * S); // the STS client's request timeout
  }
  await until(() => profile.status().refreshSuccesses + profile.status().refreshFailures > before, "the attempt", POLL_EVERY_MS_1);
}

describe("assume_role against an STS stub", () => {
  it("assumes the role on start with the spec's parameters, signed by the source's key", async () => {
    const map = build({
      base,
      role: role("base", {
        externalId: "ext-123",
        policy: '{"Version":"2012-10-17"}',
        tags: { team: "ai", env: "prod" },
        durationSeconds: 1800,
      }),
    });
    await get(map, "base").start();
    await get(map, "role").start();
    expect(stub.requests).toHaveLength(1);
    const request = stub.requests[0];
    expect(request?.action).toBe("AssumeRole");
    expect(Object.fromEntries(request?.params ?? [])).toMatchObject({
      RoleArn: "arn:aws:iam::111122223333:role/base-child",
      RoleSessionName: "countersign-pod-7",
      ExternalId: "ext-123",
      DurationSeconds: "1800",
      Policy: '{"Version":"2012-10-17"}',
      "Tags.member.1.Key": "team",
      "Tags.member.1.Value": "ai",
      "Tags.member.2.Key": "env",
      "Tags.member.2.Value": "prod",
    });
    expect(request?.signedWithKeyId).toBe(BASE_KEY);
    expectIssued(usableCredentials(get(map, "role")), 0);
    // 1800 s session (stub still issues 3600 s) − 300 s − 15 s jitter.
    expect(get(map, "role").status().nextRefreshAt).toEqual(new Date(T0 + 3285 * S));
  });

  it("refreshes before expiry while current() is read in a tight loop: never unusable, never a mix of two sets", async () => {
    const map = build({ base, role: role("base") });
    const profile = get(map, "role");
    await profile.start();
    expect(profile.status().nextRefreshAt).toEqual(new Date(T0 + 3285 * S));

    // STS holds its answer to the refresh until the reads below have run while it was in flight.
    let answer = (): void => {};
    const answered = new Promise<void>((resolve) => (answer = resolve));
    stub.reply = () => ({ kind: "credentials", expiresInSeconds: 3600, heldUntil: answered });
    await vi.advanceTimersByTimeAsync(3285 * S - 1);
    expect(stub.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);

    const seen: Credentials[] = [];
    let reads = 0;
    const readMany = (): void => {
      for (let i = 0; i < 1000; i++) {
        const state = profile.current();
        reads += 1;
        if (!state.ok) throw new Error(`unusable during refresh: ${state.error.message}`);
        if (seen.at(-1) !== state.credentials) seen.push(state.credentials);
      }
    };
    await until(() => stub.requests.length === 2, "the refresh to reach STS", POLL_EVERY_MS_1);
    for (let turn = 0; turn < 11; turn++) {
      readMany();
      await realTurn();
    }
    expect(profile.status().refreshSuccesses).toBe(1);
    answer();
    while (profile.status().refreshSuccesses < 2) {
      readMany();
      await realTurn();
    }
    readMany();
    expect(reads).toBeGreaterThan(10_000);
    expect(stub.issued).toHaveLength(2);
    for (const credentials of seen) {
      expect(stub.issued.some((set) => sameSet(set, credentials))).toBe(true);
    }
    expect(seen).toHaveLength(2);
    expectIssued(seen[0] ?? usableCredentials(profile), 0);
    expectIssued(seen[1] ?? usableCredentials(profile), 1);
    // The next refresh is scheduled from the new set's expiry.
    expect(profile.status().nextRefreshAt).toEqual(new Date(T0 + (3285 + 3285) * S));
  });

  const outages: { name: string; reply: StsReply; reason: RegExp }[] = [
    {
      name: "STS 500",
      reply: { kind: "raw", status: 500, body: "Internal Server Error" },
      reason: /last refresh failed: STS .*\(HTTP 500\)$/,
    },
    {
      name: "STS 400 Throttling",
      reply: { kind: "error", status: 400, code: "Throttling", message: "Rate exceeded" },
      reason: /last refresh failed: STS Throttling: Rate exceeded \(HTTP 400\)$/,
    },
    {
      name: "a timeout (STS never answers)",
      reply: { kind: "hang" },
      reason: /last refresh failed: STS TimeoutError: .*exceeded the configured 5000 ms requestTimeout\.$/,
    },
    {
      name: "credentials that are already expired",
      reply: { kind: "credentials", expiresInSeconds: -60 },
      reason: /last refresh failed: STS returned credentials that expire at \S+Z, which is already past$/,
    },
  ];

  it.each(outages)(
    "$name past expiry: last good set until it expires, then unusable with the reason, then the new set when STS recovers",
    async ({ reply, reason }) => {
      const map = build({ base, role: role("base") });
      const profile = get(map, "role");
      await profile.start();
      const first = usableCredentials(profile);
      const expiresAt = T0 + 3600 * S;

      while (Date.now() < expiresAt) {
        await runNextAttempt(profile, reply);
        if (Date.now() < expiresAt) expect(profile.current()).toEqual({ ok: true, credentials: first });
      }
      const state = profile.current();
      expect(state.ok).toBe(false);
      if (state.ok) return;
      expect(state.error.cause).toBe("expired");
      expect(state.error.message).toMatch(/^credentials for profile "role" \(assume_role\) expired at 2030-01-01T01:00:00\.000Z; /);
      expect(state.error.message).toMatch(reason);
      expect(profile.status()).toMatchObject({ usable: false, refreshSuccesses: 1 });
      expect(profile.status().refreshFailures).toBeGreaterThan(5);

      await runNextAttempt(profile, { kind: "credentials", expiresInSeconds: 3600 });
      const recovered = usableCredentials(profile);
      expect(recovered).toEqual(stub.issued.at(-1));
      expect(recovered.accessKeyId).not.toBe(first.accessKeyId);
      expect(profile.status().lastError).toBeUndefined();
    },
  );

  it("schedules retries 1, 2, 4 … 60 s apart after failed STS calls, the last one at the expiry", async () => {
    const map = build({ base, role: role("base") }, { random: () => 1 });
    const profile = get(map, "role");
    await profile.start();
    expect(profile.status().nextRefreshAt).toEqual(new Date(T0 + 3270 * S));
    const throttled: StsReply = { kind: "error", status: 400, code: "Throttling", message: "Rate exceeded" };
    const delays: number[] = [];
    while (Date.now() < T0 + 3600 * S) {
      await runNextAttempt(profile, throttled);
      delays.push((profile.status().nextRefreshAt?.getTime() ?? 0) - Date.now());
    }
    expect(delays).toEqual([1, 2, 4, 8, 16, 32, 60, 60, 60, 60, 27, 60].map((s) => s * S));
  });

  it("chains a role from a static source and another role from it, each signed by its source's current key", async () => {
    const map = build({ base, first: role("base"), second: role("first") });
    await get(map, "second").start(); // starts its sources first
    expect(stub.requests.map((r) => [r.params.get("RoleArn"), r.signedWithKeyId])).toEqual([
      ["arn:aws:iam::111122223333:role/base-child", BASE_KEY],
      ["arn:aws:iam::111122223333:role/first-child", stub.issued[0]?.accessKeyId],
    ]);
    expectIssued(usableCredentials(get(map, "first")), 0);
    expectIssued(usableCredentials(get(map, "second")), 1);
    // The request carried the source's session token too.
    expect(stub.requests[1]?.authorization).toContain("x-amz-security-token");
  });

  it("signs the next AssumeRole with the source role's refreshed set", async () => {
    const map = build({ base, first: role("base"), second: role("first", { refreshBeforeSeconds: 100 }) });
    const first = get(map, "first");
    const second = get(map, "second");
    await second.start();
    expect(first.status().nextRefreshAt).toEqual(new Date(T0 + 3285 * S));
    expect(second.status().nextRefreshAt).toEqual(new Date(T0 + 3495 * S));
    await runNextAttempt(first, { kind: "credentials", expiresInSeconds: 3600 });
    const refreshedFirst = usableCredentials(first);
    expectIssued(refreshedFirst, 2);
    await runNextAttempt(second, { kind: "credentials", expiresInSeconds: 3600 });
    expect(stub.requests.at(-1)?.signedWithKeyId).toBe(refreshedFirst.accessKeyId);
    expectIssued(usableCredentials(second), 3);
  });

  it("signs with a rotated file source's new key (no client-side memoization of the old one)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "countersign-cred-"));
    const path = join(dir, "credentials");
    const write = async (key: string): Promise<void> => {
      audit.secret({ accessKeyId: key, secretAccessKey: `s-${key}` });
      await writeFile(`${path}.tmp`, `[default]\naws_access_key_id = ${key}\naws_secret_access_key = s-${key}\n`);
      await rename(`${path}.tmp`, path);
    };
    try {
      await write("AKIAFILEKEYOLD000001");
      const map = build({ file: { kind: "file", path, profile: "default" }, role: role("file") });
      const file = get(map, "file");
      await get(map, "role").start();
      expect(stub.requests.at(-1)?.signedWithKeyId).toBe("AKIAFILEKEYOLD000001");

      await write("AKIAFILEKEYNEW000002");
      // The directory watch or the 10 s poll notices; the change settles for 200 ms.
      for (let i = 0; i < 500 && file.status().refreshSuccesses < 2; i++) {
        await vi.advanceTimersByTimeAsync(100);
        await realSleep(2);
      }
      expect(usableCredentials(file).accessKeyId).toBe("AKIAFILEKEYNEW000002");

      await runNextAttempt(get(map, "role"), { kind: "credentials", expiresInSeconds: 3600 });
      expect(stub.requests.at(-1)?.signedWithKeyId).toBe("AKIAFILEKEYNEW000002");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("logs no secret, session token or full key id through success, failure, expiry and recovery", async () => {
    const map = build({ base, role: role("base") });
    const profile = get(map, "role");
    await profile.start();
    while (Date.now() < T0 + 3600 * S) {
      await runNextAttempt(profile, { kind: "error", status: 403, code: "AccessDenied", message: "not authorized" });
    }
    observeProfile(audit, profile);
    await runNextAttempt(profile, { kind: "credentials", expiresInSeconds: 3600 });
    for (const set of stub.issued) audit.secret(set);

    expect(audit.leaks()).toEqual([]);
    const successes = audit.lines
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l["msg"] === "credential refresh succeeded" && l["profile"] === "role");
    expect(successes.map((l) => l["keyIdSuffix"])).toEqual(stub.issued.map((set) => set.accessKeyId.slice(-4)));
    // The scan itself finds a leak when there is one.
    audit.observe(`oops ${stub.issued[0]?.secretAccessKey ?? ""}`);
    expect(audit.leaks()).toHaveLength(1);
    audit.lines.pop();
  });

  it("fails the refresh, naming the source, while the source profile is unusable", async () => {
    const map = build({ base: { ...base, secretAccessKeyEnv: "MISSING_SECRET" } as CredentialSpec, role: role("base") });
    await get(map, "role").start();
    expect(stub.requests).toHaveLength(0);
    expect(get(map, "role").current()).toEqual({
      ok: false,
      error: {
        cause: "unavailable",
        message:
          'no credentials for profile "role" (assume_role); last refresh failed: source profile "base" is unusable: ' +
          'no credentials for profile "base" (static); last refresh failed: environment variable $MISSING_SECRET not set or empty',
      },
    });
  });
});
