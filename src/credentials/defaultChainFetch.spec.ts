import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { until } from "../../test/support/eventually.js";
import { createCredentialProfiles } from "./createProfiles.js";
import { createAudit, FAKE_TIMERS, observeProfile, type Audit } from "./testing/audit.js";
import { startStsStub, type StsStub } from "./testing/stsStub.js";
import type { CredentialProfile } from "./types.js";

/** Polls every millisecond, in real time, for at most 5 s. */
const POLL_EVERY_MS_1 = { timeoutMs: 5_000, everyMs: 1 };

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);
const S = 1000;
const ROLE_ARN = "arn:aws:iam::111122223333:role/irsa-workload";

let stub: StsStub;
let dir: string;
let tokenFile: string;
let audit: Audit;
let profile: CredentialProfile | undefined;

beforeAll(async () => {
  stub = await startStsStub();
  dir = await mkdtemp(join(tmpdir(), "countersign-irsa-"));
  tokenFile = join(dir, "token");
});

afterAll(async () => {
  await stub.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  audit = createAudit();
  stub.requests.length = 0;
  stub.issued.length = 0;
  stub.reply = () => ({ kind: "credentials", expiresInSeconds: 3600 });
  // IRSA as EKS sets it up, with STS pointed at the stub; nothing else the chain could find first.
  for (const name of [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_ENDPOINT_URL",
  ]) {
    vi.stubEnv(name, undefined);
  }
  vi.stubEnv("AWS_CONFIG_FILE", join(dir, "no-config"));
  vi.stubEnv("AWS_SHARED_CREDENTIALS_FILE", join(dir, "no-credentials"));
  vi.stubEnv("AWS_EC2_METADATA_DISABLED", "true");
  vi.stubEnv("AWS_REGION", "us-east-1");
  vi.stubEnv("AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile);
  vi.stubEnv("AWS_ROLE_ARN", ROLE_ARN);
  vi.stubEnv("AWS_ROLE_SESSION_NAME", "irsa-session");
  vi.stubEnv("AWS_ENDPOINT_URL_STS", stub.url);
  vi.useFakeTimers({ now: T0, toFake: [...FAKE_TIMERS] });
});

afterEach(() => {
  if (profile) {
    observeProfile(audit, profile);
    profile.stop();
  }
  profile = undefined;
  vi.useRealTimers();
  vi.unstubAllEnvs();
  for (const set of stub.issued) audit.secret(set);
  expect(audit.leaks()).toEqual([]);
});

function open(): CredentialProfile {
  const map = createCredentialProfiles(new Map([["ambient", { kind: "default_chain" }]]), {
    random: () => 0.5,
    logger: audit.logger,
    events: audit.events,
  });
  profile = map.get("ambient");
  if (!profile) throw new Error("no profile");
  return profile;
}

describe("default_chain with IRSA (web identity token file)", () => {
  it("sends the token in an unsigned AssumeRoleWithWebIdentity and uses the returned credentials", async () => {
    await writeFile(tokenFile, "eyJ.projected-token-1.sig");
    const p = open();
    await p.start();

    expect(stub.requests).toHaveLength(1);
    const request = stub.requests[0];
    expect(request?.authorization).toBeUndefined();
    expect(Object.fromEntries(request?.params ?? [])).toMatchObject({
      Action: "AssumeRoleWithWebIdentity",
      RoleArn: ROLE_ARN,
      RoleSessionName: "irsa-session",
      WebIdentityToken: "eyJ.projected-token-1.sig",
    });
    const state = p.current();
    expect(state.ok).toBe(true);
    if (!state.ok) return;
    expect(state.credentials).toEqual(stub.issued[0]);
    // Refreshed by the refresher, 300 s (+ jitter 15 s) before expiry.
    expect(p.status().nextRefreshAt).toEqual(new Date(T0 + 3285 * S));
  });

  it("re-reads the rotated token file at the proactive refresh and uses the new set", async () => {
    await writeFile(tokenFile, "eyJ.projected-token-1.sig");
    const p = open();
    await p.start();
    await writeFile(tokenFile, "eyJ.projected-token-2.sig");

    await vi.advanceTimersByTimeAsync(3285 * S);
    await until(() => p.status().refreshSuccesses === 2, "the refresh", POLL_EVERY_MS_1);
    expect(stub.requests.at(-1)?.params.get("WebIdentityToken")).toBe("eyJ.projected-token-2.sig");
    const state = p.current();
    expect(state.ok && state.credentials).toEqual(stub.issued[1]);
  });

  it("keeps the set while STS refuses the token, and reports STS's error", async () => {
    await writeFile(tokenFile, "eyJ.projected-token-1.sig");
    const p = open();
    await p.start();
    stub.reply = () => ({ kind: "error", status: 400, code: "InvalidIdentityToken", message: "Token expired" });

    await vi.advanceTimersByTimeAsync(3285 * S);
    await until(() => p.status().refreshFailures === 1, "the failed refresh", POLL_EVERY_MS_1);
    expect(p.current()).toEqual({ ok: true, credentials: stub.issued[0] });
    expect(p.status().lastError).toBe("InvalidIdentityTokenException: Token expired (HTTP 400)");
  });

  it("is unusable, saying why, when the chain finds nothing", async () => {
    vi.stubEnv("AWS_WEB_IDENTITY_TOKEN_FILE", undefined);
    vi.stubEnv("AWS_ROLE_ARN", undefined);
    const p = open();
    await p.start();
    const state = p.current();
    expect(state.ok).toBe(false);
    if (state.ok) return;
    expect(state.error.cause).toBe("unavailable");
    expect(state.error.message).toMatch(/^no credentials for profile "ambient" \(default_chain\); last refresh failed: CredentialsProviderError: /);
    expect(stub.requests).toHaveLength(0);
  });
});
