import type { AssumeRoleCommand, STSClientConfig } from "@aws-sdk/client-sts";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { AssumeRoleCredentialSpec, CredentialSpec } from "../policy/types.js";
import { createCredentialProfiles } from "./createProfiles.js";
import { createAudit, type Audit } from "./testing/audit.js";
import type { CredentialLogger, CredentialProfile, STSClientFactory } from "./types.js";

const KEY = "AKIABASEEXAMPLE00001";
const base: CredentialSpec = { kind: "static", accessKeyIdEnv: "K", secretAccessKeyEnv: "S" };
let audit: Audit = createAudit();
let built: Map<string, CredentialProfile> | undefined;

afterEach(() => {
  for (const p of built?.values() ?? []) p.stop();
  built = undefined;
  expect(audit.leaks()).toEqual([]);
  audit = createAudit();
});

function role(source: string, extra: Partial<AssumeRoleCredentialSpec> = {}): AssumeRoleCredentialSpec {
  return {
    kind: "assume_role",
    roleArn: "arn:aws:iam::111122223333:role/r",
    durationSeconds: 3600,
    refreshBeforeSeconds: 300,
    expiryMarginSeconds: 30,
    source,
    stsRegion: "eu-west-1",
    ...extra,
  };
}

interface FakeSts {
  readonly factory: STSClientFactory;
  readonly configs: STSClientConfig[];
  readonly commands: AssumeRoleCommand[];
  destroyed: number;
}

function fakeSts(): FakeSts {
  const fake: FakeSts = {
    configs: [],
    commands: [],
    destroyed: 0,
    factory: (config) => {
      fake.configs.push(config);
      return {
        send: (command) => {
          fake.commands.push(command);
          return Promise.resolve({
            $metadata: {},
            Credentials: {
              AccessKeyId: `ASIAFAKESTS${String(fake.commands.length).padStart(9, "0")}`,
              SecretAccessKey: "fake-secret",
              SessionToken: "fake-token",
              Expiration: new Date(Date.now() + 3_600_000),
            },
          });
        },
        destroy: () => {
          fake.destroyed += 1;
        },
      };
    },
  };
  return fake;
}

function build(entries: Record<string, CredentialSpec>, sts = fakeSts()): Map<string, CredentialProfile> {
  audit.secret({ accessKeyId: KEY, secretAccessKey: "base-secret" });
  audit.secret({ accessKeyId: "ASIAFAKESTS000000001", secretAccessKey: "fake-secret", sessionToken: "fake-token" });
  built = createCredentialProfiles(new Map(Object.entries(entries)), {
    env: { K: KEY, S: "base-secret" },
    stsClientFactory: sts.factory,
    hostname: "node/with spaces",
    logger: audit.logger,
    events: audit.events,
  });
  return built;
}

function reasonOf(p: CredentialProfile | undefined): string | undefined {
  const state = p?.current();
  return state && !state.ok ? state.error.message : undefined;
}

describe("createCredentialProfiles", () => {
  it("builds one profile per entry, in the policy's order, each with its source kind", () => {
    const map = build({
      r: role("s"),
      s: base,
      f: { kind: "file", path: "/nonexistent/credentials", profile: "default" },
      d: { kind: "default_chain" },
    });
    expect([...map].map(([name, p]) => [name, p.name, p.source])).toEqual([
      ["r", "r", "assume_role"],
      ["s", "s", "static"],
      ["f", "f", "file"],
      ["d", "d", "default_chain"],
    ]);
  });

  it("configures the STS client for one try with short timeouts, the region and the endpoint", async () => {
    const sts = fakeSts();
    const map = build({ s: base, r: role("s", { stsEndpoint: "https://sts.eu-west-1.amazonaws.com" }) }, sts);
    await map.get("r")?.start();
    expect(sts.configs).toHaveLength(1);
    expect(sts.configs[0]).toMatchObject({
      region: "eu-west-1",
      endpoint: "https://sts.eu-west-1.amazonaws.com",
      maxAttempts: 1,
      requestHandler: { requestTimeout: 5000, connectionTimeout: 2000, throwOnRequestTimeout: true },
    });
    expect(sts.commands[0]?.input).toEqual({
      RoleArn: "arn:aws:iam::111122223333:role/r",
      RoleSessionName: "countersign-node-with-spaces",
      DurationSeconds: 3600,
    });
    expect(sts.destroyed).toBe(1);
  });

  it("uses the spec's session name when given", async () => {
    const sts = fakeSts();
    const map = build({ s: base, r: role("s", { sessionName: "audit-me" }) }, sts);
    await map.get("r")?.start();
    expect(sts.commands[0]?.input.RoleSessionName).toBe("audit-me");
  });

  it("gives the STS client a credential provider that reads the source profile at call time", async () => {
    const sts = fakeSts();
    const map = build({ s: base, r: role("s") }, sts);
    await map.get("r")?.start();
    const provider = sts.configs[0]?.credentials;
    expect(typeof provider).toBe("function");
    if (typeof provider !== "function") return;
    await expect(provider()).resolves.toEqual({ accessKeyId: KEY, secretAccessKey: "base-secret" });
  });

  it("makes a role whose source is missing unusable, naming the source", async () => {
    const map = build({ r: role("ghost") });
    await map.get("r")?.start();
    expect(reasonOf(map.get("r"))).toBe(
      'no credentials for profile "r" (assume_role); last refresh failed: source "ghost" is not a credentials entry',
    );
  });

  it("makes roles in a source cycle unusable, naming the cycle, and never calls STS", async () => {
    const sts = fakeSts();
    const map = build({ a: role("b"), b: role("a"), self: role("self") }, sts);
    await Promise.all([...map.values()].map((p) => p.start()));
    expect(reasonOf(map.get("b"))).toBe(
      'no credentials for profile "b" (assume_role); last refresh failed: credential source cycle: a -> b -> a',
    );
    expect(reasonOf(map.get("a"))).toMatch(/source profile "b" is unusable: .*credential source cycle: a -> b -> a$/);
    expect(reasonOf(map.get("self"))).toBe(
      'no credentials for profile "self" (assume_role); last refresh failed: credential source cycle: self -> self',
    );
    expect(sts.commands).toHaveLength(0);
  });

  it("caps a refresh window that is not shorter than half the session, and says so", async () => {
    const map = build({ s: base, r: role("s", { durationSeconds: 900, refreshBeforeSeconds: 900 }) });
    await map.get("r")?.start();
    expect(map.get("r")?.current().ok).toBe(true);
    const next = map.get("r")?.status().nextRefreshAt?.getTime() ?? 0;
    // Fake STS issues an hour; the window is capped at 450 s (+ up to 45 s jitter).
    expect(next - Date.now()).toBeGreaterThan(3_600_000 - 496_000);
    expect(next - Date.now()).toBeLessThanOrEqual(3_600_000 - 450_000);
    expect(audit.lines.some((l) => l.includes("refreshBeforeSeconds is not below half of durationSeconds"))).toBe(true);
  });

  it("starts a role's source before the role's first call, and start() is idempotent", async () => {
    const sts = fakeSts();
    const map = build({ r: role("s"), s: base }, sts);
    await Promise.all([map.get("r")?.start(), map.get("r")?.start(), map.get("s")?.start()]);
    expect(sts.commands).toHaveLength(1);
    expect(map.get("s")?.status().refreshSuccesses).toBe(1);
    expect(map.get("r")?.current().ok).toBe(true);
  });

  it("accepts a pino logger", async () => {
    const logger: CredentialLogger = pino({ enabled: false });
    built = createCredentialProfiles(new Map([["s", base]]), { env: { K: KEY, S: "x" }, logger });
    await built.get("s")?.start();
    expect(built.get("s")?.current().ok).toBe(true);
  });
});
