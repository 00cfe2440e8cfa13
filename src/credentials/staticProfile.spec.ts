import { afterEach, describe, expect, it } from "vitest";
import type { StaticCredentialSpec } from "../policy/types.js";
import { createStaticProfile } from "./staticProfile.js";
import { createAudit, observeProfile } from "./testing/audit.js";

const audit = createAudit();
const KEY = "AKIASTATICEXAMPLE001";
const SECRET = "static-secret-value";
const TOKEN = "static-session-token";
audit.secret({ accessKeyId: KEY, secretAccessKey: SECRET, sessionToken: TOKEN });

const spec: StaticCredentialSpec = { kind: "static", accessKeyIdEnv: "CS_KEY", secretAccessKeyEnv: "CS_SECRET" };

function profileWith(env: NodeJS.ProcessEnv, s: StaticCredentialSpec = spec) {
  return createStaticProfile({ name: "ci", spec: s, env, now: Date.now, logger: audit.logger, events: audit.events });
}

afterEach(() => {
  expect(audit.leaks()).toEqual([]);
});

describe("static credentials", () => {
  it("reads the named environment variables at start", async () => {
    const profile = profileWith({ CS_KEY: KEY, CS_SECRET: SECRET });
    await profile.start();
    expect(profile.current()).toEqual({ ok: true, credentials: { accessKeyId: KEY, secretAccessKey: SECRET } });
    expect(profile.status()).toMatchObject({ usable: true, refreshSuccesses: 1, refreshFailures: 0 });
    expect(profile.status().expiresAt).toBeUndefined();
  });

  it("includes the session token when its variable is named", async () => {
    const profile = profileWith({ CS_KEY: KEY, CS_SECRET: SECRET, CS_TOKEN: TOKEN }, { ...spec, sessionTokenEnv: "CS_TOKEN" });
    await profile.start();
    expect(profile.current()).toEqual({
      ok: true,
      credentials: { accessKeyId: KEY, secretAccessKey: SECRET, sessionToken: TOKEN },
    });
  });

  it("is unusable when a variable is missing, naming the variable and never a value", async () => {
    const profile = profileWith({ CS_KEY: KEY });
    await profile.start();
    expect(profile.current()).toEqual({
      ok: false,
      error: {
        cause: "unavailable",
        message: 'no credentials for profile "ci" (static); last refresh failed: environment variable $CS_SECRET not set or empty',
      },
    });
    observeProfile(audit, profile);
  });

  it("names every missing variable, counting empty ones as missing", async () => {
    const profile = profileWith({ CS_KEY: "" }, { ...spec, sessionTokenEnv: "CS_TOKEN" });
    await profile.start();
    expect(profile.status().lastError).toBe("environment variables $CS_KEY, $CS_SECRET not set or empty");
  });

  it("signs without a session token when the named token variable is unset (long-term keys)", async () => {
    const profile = profileWith({ CS_KEY: KEY, CS_SECRET: SECRET }, { ...spec, sessionTokenEnv: "CS_TOKEN" });
    await profile.start();
    expect(profile.current()).toEqual({ ok: true, credentials: { accessKeyId: KEY, secretAccessKey: SECRET } });
  });

  it("does not read the environment before start, nor again after it", async () => {
    const env: NodeJS.ProcessEnv = {};
    const profile = profileWith(env);
    env["CS_KEY"] = KEY;
    env["CS_SECRET"] = SECRET;
    expect(profile.current().ok).toBe(false);
    await profile.start();
    env["CS_KEY"] = "AKIACHANGEDEXAMPLE99";
    await profile.start();
    expect(profile.current()).toEqual({ ok: true, credentials: { accessKeyId: KEY, secretAccessKey: SECRET } });
    expect(profile.status().refreshSuccesses).toBe(1);
  });
});
