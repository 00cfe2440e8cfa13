/**
 * The expiry margin and what readiness means, with an assume_role profile against the strict fake
 * STS on loopback and vitest's fake clock, requests going through the real request path and the
 * process's real admin server (/readyz, /metrics):
 * - a set is used for signing until expiry − expiry_margin_seconds (default 30 s), then refused
 *   with countersign's 503, counted by countersign_credentials_refusals_total{reason} and logged;
 *   the refresh still starts at expiry − refresh_before_seconds;
 * - ready means the policy is loaded and every profile in use has obtained credentials once: an
 *   STS outage after that leaves /readyz at 200 while requests get 503 and the metrics move.
 */
import http from "node:http";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { logDecision, type DecisionLogger } from "../../src/admin/decisionLog.js";
import { startAdminServer, type AdminServer } from "../../src/admin/adminServer.js";
import { Metrics } from "../../src/admin/metrics.js";
import { Readiness } from "../../src/admin/readiness.js";
import { FAKE_TIMERS } from "../../src/credentials/testing/audit.js";
import type { DecisionEvent } from "../../src/extproc/context.js";
import { notReadyReasons, type Runtime } from "../../src/runtime.js";
import type { Credentials } from "../../src/sigv4/types.js";
import { parseMetrics, valueOf } from "../ops/support/metrics.js";
import { until } from "../support/eventually.js";
import { headerOf, keyIdOf } from "./support/harness.js";
import { put, startFixture, type Fixture, type Sent } from "./support/fixture.js";

const EVERY_MS_1 = { everyMs: 1 } as const;
const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);
const S = 1000;
const HOST = "bucket.s3.eu-west-1.amazonaws.com";
const SOURCE = { accessKeyId: "AKIACREDTESTMARGIN01", secretAccessKey: "credentials/test/margin/000000000000001" };
const ENV = { SRC_ID: SOURCE.accessKeyId, SRC_SECRET: SOURCE.secretAccessKey };

/** `margin`: the expiry_margin_seconds line, or nothing for the default. */
const policy =
  (margin = "") =>
  (stsUrl: string): string => `version: 1
credentials:
  source:
    static: { access_key_id_env: SRC_ID, secret_access_key_env: SRC_SECRET }
  role:
    assume_role:
      role_arn: arn:aws:iam::123456789012:role/countersign-margin
      session_name: countersign-margin-test
      duration_seconds: 3600
      refresh_before_seconds: 300
${margin ? `      ${margin}\n` : ""}      source: source
      sts_endpoint: ${stsUrl}
endpoints:
  - host: "${HOST}"
    credential_signing: sigv4
    signing_service: s3
    credentials: role
`;

let fx: Fixture;
let admin: AdminServer | undefined;

beforeEach(async () => {
  vi.useFakeTimers({ now: T0, toFake: [...FAKE_TIMERS] });
  vi.stubEnv("AWS_CONFIG_FILE", "/nonexistent/countersign-test/config");
  vi.stubEnv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/countersign-test/credentials");
  fx = await startFixture({ accounts: [SOURCE] });
});

afterEach(async () => {
  await admin?.close();
  admin = undefined;
  await fx.close();
  vi.useRealTimers();
  vi.unstubAllEnvs();
  expect(fx.audit.leaks()).toEqual([]);
});

/** What `serve` wires around a runtime: metrics fed by every decision, the decision log, readiness, the admin server. */
async function observe(runtime: Runtime): Promise<{ readiness: Readiness; metrics: Metrics; logLines: Record<string, unknown>[]; adminUrl: string; decided(): Promise<void> }> {
  const readiness = new Readiness(() => notReadyReasons(runtime));
  const metrics = new Metrics({ processMetrics: false });
  metrics.observe({
    readiness,
    admission: { heldBytes: 0, limits: { maxHeldBytes: 1, maxConcurrentStreams: 1 } },
    credentials: () =>
      [...runtime.profiles].map(([profile, p]) => {
        const s = p.status();
        return { profile, source: p.source, usable: s.usable, ...(s.expiresAt ? { expiresAt: s.expiresAt } : {}) };
      }),
  });
  const logLines: Record<string, unknown>[] = [];
  const logger: DecisionLogger = {
    isLevelEnabled: () => true,
    info: (obj, msg) => logLines.push({ level: "info", ...obj, msg }),
    warn: (obj, msg) => logLines.push({ level: "warn", ...obj, msg }),
  };
  admin = await startAdminServer("127.0.0.1:0", readiness, metrics.registry);
  const decisions = fx.test?.decisions ?? [];
  let fed = 0;
  return {
    readiness,
    metrics,
    logLines,
    adminUrl: `http://127.0.0.1:${admin.port}`,
    // The decisions the request path has made so far go to the metrics and the log, as serve's onDecision does.
    decided: () => {
      for (const e of decisions.slice(fed) as DecisionEvent[]) {
        metrics.recordDecision(e);
        logDecision(logger, e);
      }
      fed = decisions.length;
      return Promise.resolve();
    },
  };
}

/** GET over a plain http request (fetch's timers would be fake). */
function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on("error", reject);
  });
}

function issued(i: number): Credentials {
  const set = fx.fake.sts.issued.at(i);
  if (!set) throw new Error(`the fake STS issued no set #${i}`);
  return set;
}

function attempts(): number {
  const s = fx.profile("role").status();
  return s.refreshSuccesses + s.refreshFailures;
}

/** Runs every scheduled attempt due at or before `t` (each to its end), then advances the clock to `t`. */
async function advanceTo(t: number): Promise<number[]> {
  const started: number[] = [];
  for (;;) {
    const at = fx.profile("role").status().nextRefreshAt?.getTime();
    if (at === undefined || at > t) break;
    const before = attempts();
    await vi.advanceTimersByTimeAsync(at - Date.now());
    started.push(Date.now());
    await until(() => attempts() > before, "the attempt to finish", EVERY_MS_1);
  }
  await vi.advanceTimersByTimeAsync(t - Date.now());
  return started;
}

function expectSignedWith(sent: Sent, set: Credentials): void {
  expect(sent.outcome.kind).toBe("forwarded");
  expect(keyIdOf(sent.outcome)).toBe(set.accessKeyId);
  expect(headerOf(sent.outcome, "x-amz-security-token")).toBe(set.sessionToken);
  expect(sent.record).toMatchObject({ verified: true, accessKeyId: set.accessKeyId, status: 200 });
}

function xmlMessage(body: string): string {
  const escaped = /<Message>(.*)<\/Message>/.exec(body)?.[1] ?? "";
  return escaped.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&amp;/g, "&");
}

async function refusals(adminUrl: string): Promise<Record<string, number | undefined>> {
  const samples = parseMetrics((await get(`${adminUrl}/metrics`)).body);
  const of = (reason: string): number | undefined => valueOf(samples, "countersign_credentials_refusals_total", { reason });
  return { expiry_margin: of("expiry_margin"), expired: of("expired"), unavailable: of("unavailable") };
}

describe("expiry_margin_seconds (default 30)", () => {
  it("signs at expiry − 31 s and refuses at expiry − 29 s with a 503 that is counted and logged; the refresh still starts at expiry − 300 s", async () => {
    const runtime = await fx.start(policy(), ENV);
    const o = await observe(runtime);
    const a = issued(0);
    const expiry = a.expiration?.getTime() ?? 0;
    expect(await refusals(o.adminUrl)).toEqual({ expiry_margin: 0, expired: 0, unavailable: 0 });
    fx.fake.sts.failAll("500");

    const started = await advanceTo(expiry - 31 * S);
    expect(started[0]).toBe(Math.round(expiry - 300 * S - (fx.random.draws[0] ?? 0) * 30 * S));
    expect(fx.profile("role").status().refreshFailures).toBe(started.length);
    expectSignedWith(await fx.send(put(HOST)), a);

    await advanceTo(expiry - 29 * S);
    const refused = await fx.send(put(HOST));
    expect(refused.outcome).toMatchObject({ kind: "refused", status: 503, reason: "credentials_unavailable" });
    if (refused.outcome.kind !== "refused") throw new Error("expected a refusal");
    expect(refused.outcome.body).toContain("<Code>ServiceUnavailable</Code>");
    expect(xmlMessage(refused.outcome.body)).toBe(
      `credentials "role" are unavailable: credentials for profile "role" (assume_role) expire at ${new Date(expiry).toISOString()}, within the 30 s expiry margin, so they are no longer used for signing; last refresh failed: STS InternalFailure: fakeaws: injected STS failure (HTTP 500)`,
    );
    // Nothing reached the fake AWS unsigned or with the old set after the margin began.
    expect(fx.fake.requests.filter((r) => r.service === "s3")).toHaveLength(1);

    await o.decided();
    expect(await refusals(o.adminUrl)).toEqual({ expiry_margin: 1, expired: 0, unavailable: 0 });
    expect(o.logLines.at(-1)).toMatchObject({
      level: "warn",
      msg: "refused",
      profile: "role",
      decision: "refused",
      reason: "credentials_unavailable",
      status: 503,
      credentialsRefusal: "expiry_margin",
    });
    expect(o.logLines.at(-2)).toMatchObject({ level: "info", msg: "signed" });
    expect(o.logLines.at(-2)).not.toHaveProperty("credentialsRefusal");

    // Past the expiry the reason is "expired".
    await advanceTo(expiry);
    expect((await fx.send(put(HOST))).outcome).toMatchObject({ kind: "refused", status: 503 });
    await o.decided();
    expect(await refusals(o.adminUrl)).toEqual({ expiry_margin: 1, expired: 1, unavailable: 0 });
  });

  it("follows a margin the policy sets (60 s): refused from expiry − 60 s", async () => {
    await fx.start(policy("expiry_margin_seconds: 60"), ENV);
    const a = issued(0);
    const expiry = a.expiration?.getTime() ?? 0;
    fx.fake.sts.failAll("500");
    await advanceTo(expiry - 61 * S);
    expectSignedWith(await fx.send(put(HOST)), a);
    await advanceTo(expiry - 59 * S);
    expect((await fx.send(put(HOST))).outcome).toMatchObject({ kind: "refused", status: 503 });
  });
});

describe("readiness: policy loaded and first credentials obtained, then ready until shutdown", () => {
  it("stays ready (/readyz 200) through an STS outage past the expiry, while requests get 503 and the metrics move", async () => {
    const runtime = await fx.start(policy(), ENV);
    const o = await observe(runtime);
    expect(await get(`${o.adminUrl}/readyz`)).toEqual({ status: 200, body: "ready\n" });
    const expiry = issued(0).expiration?.getTime() ?? 0;
    const before = parseMetrics((await get(`${o.adminUrl}/metrics`)).body);
    expect(valueOf(before, "countersign_credentials_usable", { profile: "role", source: "assume_role" })).toBe(1);
    expect(valueOf(before, "countersign_ready")).toBe(1);

    fx.fake.sts.failAll("throttle-503");
    await advanceTo(expiry + 120 * S);
    const refused = await fx.send(put(HOST));
    expect(refused.outcome).toMatchObject({ kind: "refused", status: 503, reason: "credentials_unavailable" });
    await o.decided();

    expect(await get(`${o.adminUrl}/readyz`)).toEqual({ status: 200, body: "ready\n" });
    const after = parseMetrics((await get(`${o.adminUrl}/metrics`)).body);
    expect(valueOf(after, "countersign_ready")).toBe(1);
    expect(valueOf(after, "countersign_credentials_usable", { profile: "role", source: "assume_role" })).toBe(0);
    expect(valueOf(after, "countersign_credentials_refusals_total", { reason: "expired" })).toBe(1);
    expect(fx.profile("role").status().refreshFailures).toBeGreaterThan(0);
  });

  it("is not ready until the first credentials are obtained", async () => {
    fx.fake.sts.failAll("500");
    const runtime = await fx.start(policy(), ENV);
    const o = await observe(runtime);
    const notReady = await get(`${o.adminUrl}/readyz`);
    expect(notReady.status).toBe(503);
    expect(notReady.body).toBe(
      'not ready:\n- credentials "role": no credentials for profile "role" (assume_role); last refresh failed: STS InternalFailure: fakeaws: injected STS failure (HTTP 500)\n',
    );
    fx.fake.sts.clearFailures();
    await advanceTo(fx.profile("role").status().nextRefreshAt?.getTime() ?? 0);
    expect(await get(`${o.adminUrl}/readyz`)).toEqual({ status: 200, body: "ready\n" });
  });

  it("stops being ready only for shutdown", async () => {
    const runtime = await fx.start(policy(), ENV);
    const o = await observe(runtime);
    expect(o.readiness.isReady()).toBe(true);
    o.readiness.shutDown();
    expect(await get(`${o.adminUrl}/readyz`)).toEqual({ status: 503, body: "not ready:\n- shutting down\n" });
  });
});
