/**
 * default_chain sources users run in Kubernetes and ECS, through the AWS SDK's real provider
 * chain, against loopback servers only: IRSA (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN →
 * AssumeRoleWithWebIdentity at the fake STS, reached through AWS_ENDPOINT_URL_STS), EKS Pod
 * Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) and ECS
 * (… + AWS_CONTAINER_AUTHORIZATION_TOKEN) served by a tiny container-credentials endpoint, and a
 * role chained from each. Every signed request is verified by the fake AWS.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FAKE_TIMERS } from "../../src/credentials/testing/audit.js";
import type { Credentials } from "../../src/sigv4/types.js";
import type { FakeAwsAccount } from "../fakeaws/auth.js";
import { put, startFixture, type Fixture, type Sent } from "./support/fixture.js";
import { until } from "../support/eventually.js";
import { headerOf, keyIdOf } from "./support/harness.js";

const T0 = Date.UTC(2030, 0, 1, 0, 0, 0);
const S = 1000;
const AMBIENT_HOST = "ambient.s3.eu-west-1.amazonaws.com";
const CHAINED_HOST = "chained.s3.eu-west-1.amazonaws.com";
const IRSA_ROLE = "arn:aws:iam::123456789012:role/irsa-workload";
const TOKEN_1 = `eyJhbGciOiJSUzI1NiJ9.irsa-one.${randomBytes(8).toString("hex")}`;
const TOKEN_2 = `eyJhbGciOiJSUzI1NiJ9.irsa-two.${randomBytes(8).toString("hex")}`;

const policy = (stsUrl: string): string => `version: 1
credentials:
  ambient:
    default_chain: {}
  chained:
    assume_role:
      role_arn: arn:aws:iam::123456789012:role/chained-from-ambient
      session_name: chained-test
      source: ambient
      sts_endpoint: ${stsUrl}
endpoints:
  - host: "${AMBIENT_HOST}"
    credential_signing: sigv4
    signing_service: s3
    credentials: ambient
  - host: "${CHAINED_HOST}"
    credential_signing: sigv4
    signing_service: s3
    credentials: chained
`;

let fx: Fixture;
let dir: string;

/** Nothing on this machine the chain could find first: only what each test sets. */
function clearAmbientEnv(): void {
  for (const name of [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
  ]) {
    vi.stubEnv(name, undefined);
  }
  vi.stubEnv("AWS_CONFIG_FILE", join(dir, "no-config"));
  vi.stubEnv("AWS_SHARED_CREDENTIALS_FILE", join(dir, "no-credentials"));
  vi.stubEnv("AWS_EC2_METADATA_DISABLED", "true");
  vi.stubEnv("AWS_REGION", "us-east-1");
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "countersign-chain-"));
  vi.useFakeTimers({ now: T0, toFake: [...FAKE_TIMERS] });
  fx = await startFixture({ accounts: [], webIdentityTokens: [TOKEN_1, TOKEN_2] });
  clearAmbientEnv();
});

afterEach(async () => {
  await fx.close();
  vi.useRealTimers();
  vi.unstubAllEnvs();
  rmSync(dir, { recursive: true, force: true });
  expect(fx.audit.leaks()).toEqual([]);
});

function expectSignedWith(sent: Sent, set: Credentials): void {
  expect(sent.outcome.kind).toBe("forwarded");
  expect(keyIdOf(sent.outcome)).toBe(set.accessKeyId);
  expect(headerOf(sent.outcome, "x-amz-security-token")).toBe(set.sessionToken);
  expect(sent.record).toMatchObject({ verified: true, accessKeyId: set.accessKeyId, status: 200 });
}

function issued(i: number): FakeAwsAccount {
  const set = fx.fake.sts.issued.at(i);
  if (!set) throw new Error(`the fake STS issued no set #${i}`);
  return set;
}

/**
 * Advances fake time to the profile's next attempt, then in 250 ms steps (the SDK's own retry
 * pauses are fake timers too) until the attempt has finished. Returns the time it started.
 */
async function runNextAttempt(name: string): Promise<number> {
  const profile = fx.profile(name);
  const count = (): number => profile.status().refreshSuccesses + profile.status().refreshFailures;
  const before = count();
  const at = profile.status().nextRefreshAt;
  if (!at) throw new Error("no attempt scheduled");
  await vi.advanceTimersByTimeAsync(at.getTime() - Date.now());
  const started = Date.now();
  for (let i = 0; i < 400 && count() === before; i++) {
    await until(() => count() > before, "the attempt", { timeoutMs: 20, everyMs: 1 }).catch(() => undefined);
    if (count() === before) await vi.advanceTimersByTimeAsync(250);
  }
  if (count() === before) throw new Error("the attempt never finished");
  return started;
}

describe("IRSA through the SDK default chain, against the fake STS", () => {
  beforeEach(() => {
    writeFileSync(join(dir, "token"), TOKEN_1);
    vi.stubEnv("AWS_WEB_IDENTITY_TOKEN_FILE", join(dir, "token"));
    vi.stubEnv("AWS_ROLE_ARN", IRSA_ROLE);
    vi.stubEnv("AWS_ROLE_SESSION_NAME", "irsa-session");
    vi.stubEnv("AWS_ENDPOINT_URL_STS", fx.gateway.url);
  });

  it("calls AssumeRoleWithWebIdentity unsigned with the projected token, signs with the issued set, and chains a role from it", async () => {
    await fx.start(policy);
    expect(fx.notReady()).toEqual([]);
    expect(fx.gateway.calls).toEqual([
      { action: "AssumeRoleWithWebIdentity", verified: false, anonymous: true, webIdentity: { roleArn: IRSA_ROLE, sessionName: "irsa-session", token: TOKEN_1 }, issuedKeyId: issued(0).accessKeyId, upstreamStatus: 200 },
      // The chained role's AssumeRole is signed with the IRSA set and verified by the fake's verifier.
      { action: "AssumeRole", verified: true, accessKeyId: issued(0).accessKeyId, issuedKeyId: issued(1).accessKeyId, upstreamStatus: 200 },
    ]);
    expect(issued(0).arn).toBe("arn:aws:sts::123456789012:assumed-role/irsa-workload/irsa-session");
    expect(issued(1).arn).toBe("arn:aws:sts::123456789012:assumed-role/chained-from-ambient/chained-test");
    expect(fx.profile("ambient").status().expiresAt).toEqual(issued(0).expiration);
    expectSignedWith(await fx.send(put(AMBIENT_HOST)), issued(0));
    expectSignedWith(await fx.send(put(CHAINED_HOST)), issued(1));
  });

  it("refreshes at expiry − 300 s − jitter, reading the rotated token file, and signs with the new set", async () => {
    await fx.start(policy);
    const first = issued(0);
    const expiry = first.expiration?.getTime() ?? 0;
    const at = fx.profile("ambient").status().nextRefreshAt?.getTime() ?? 0;
    expect(expiry - at).toBeGreaterThanOrEqual(300 * S);
    expect(expiry - at).toBeLessThanOrEqual(330 * S);
    writeFileSync(join(dir, "token"), TOKEN_2); // the kubelet rotates the projected token
    // Before the refresh, the old set.
    await vi.advanceTimersByTimeAsync(at - 1 - Date.now());
    expectSignedWith(await fx.send(put(AMBIENT_HOST)), first);
    await runNextAttempt("ambient");
    expect(fx.profile("ambient").status()).toMatchObject({ usable: true, refreshSuccesses: 2 });
    expect(fx.gateway.calls.filter((c) => c.anonymous).map((c) => c.webIdentity?.token)).toEqual([TOKEN_1, TOKEN_2]);
    const second = issued(-1);
    expect(second.accessKeyId).not.toBe(first.accessKeyId);
    expectSignedWith(await fx.send(put(AMBIENT_HOST)), second);
  });

  it("keeps the IRSA set while STS fails, refuses with 503 from 30 s before it expires, and recovers when STS returns", async () => {
    await fx.start(policy);
    const first = issued(0);
    const expiry = first.expiration?.getTime() ?? 0;
    // default_chain profiles stop using a set 30 s before it expires (the default expiry margin).
    const unusableAt = expiry - 30 * S;
    fx.fake.sts.failAll("500");
    while (Date.now() < unusableAt) {
      await runNextAttempt("ambient");
      if (Date.now() < unusableAt) expectSignedWith(await fx.send(put(AMBIENT_HOST)), first);
    }
    const refused = await fx.send(put(AMBIENT_HOST));
    expect(refused.outcome).toMatchObject({ kind: "refused", status: 503, reason: "credentials_unavailable" });
    if (refused.outcome.kind === "refused") {
      expect(refused.outcome.body).toMatch(
        /credentials for profile &quot;ambient&quot; \(default_chain\) expire at \S+Z, within the 30 s expiry margin, so they are no longer used for signing; last refresh failed: .*InternalFailure/,
      );
    }
    fx.fake.sts.clearFailures();
    await runNextAttempt("ambient");
    expect(fx.profile("ambient").status().usable).toBe(true);
    expectSignedWith(await fx.send(put(AMBIENT_HOST)), issued(-1));
  });
});

interface ContainerEndpoint {
  readonly url: string;
  /** The Authorization value the endpoint accepts now. */
  token: string;
  readonly sets: FakeAwsAccount[];
  readonly seen: Array<string | undefined>;
  close(): Promise<void>;
}

/** The EKS Pod Identity agent / ECS credentials endpoint, in miniature, issuing sets the fake AWS accepts. */
async function startContainerEndpoint(fixture: Fixture, token: string): Promise<ContainerEndpoint> {
  const sets: FakeAwsAccount[] = [];
  const seen: Array<string | undefined> = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers.authorization);
    if (req.url !== "/v1/credentials" || req.headers.authorization !== endpoint.token) {
      res.writeHead(401, { "content-type": "application/json" }).end(JSON.stringify({ Code: "AccessDeniedException", Message: "bad token" }));
      return;
    }
    const serial = randomBytes(8).toString("hex").toUpperCase();
    const set: FakeAwsAccount = {
      accessKeyId: `ASIAPOD${serial}`.slice(0, 20),
      secretAccessKey: randomBytes(30).toString("base64"),
      sessionToken: `pod-token-${randomBytes(32).toString("base64")}`,
      expiration: new Date(Math.floor(Date.now() / 1000) * 1000 + 3600 * S),
    };
    fixture.addAccount(set);
    sets.push(set);
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({ AccessKeyId: set.accessKeyId, SecretAccessKey: set.secretAccessKey, Token: set.sessionToken, Expiration: set.expiration?.toISOString() }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint: ContainerEndpoint = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/credentials`,
    token,
    sets,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return endpoint;
}

describe("container credentials through the SDK default chain", () => {
  let endpoint: ContainerEndpoint | undefined;

  afterEach(async () => {
    await endpoint?.close();
    endpoint = undefined;
  });

  it("EKS Pod Identity: token file sent as Authorization, set used and chained from, the rotated token and new set at refresh", async () => {
    endpoint = await startContainerEndpoint(fx, "pod-identity-token-1");
    writeFileSync(join(dir, "eks-pod-identity-token"), "pod-identity-token-1");
    vi.stubEnv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url);
    vi.stubEnv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", join(dir, "eks-pod-identity-token"));
    vi.stubEnv("AWS_ENDPOINT_URL_STS", fx.gateway.url);
    await fx.start(policy);
    expect(fx.notReady()).toEqual([]);
    expect(endpoint.seen).toEqual(["pod-identity-token-1"]);
    const first = endpoint.sets[0];
    if (!first) throw new Error("the endpoint issued nothing");
    expectSignedWith(await fx.send(put(AMBIENT_HOST)), first);
    // The chained role's AssumeRole was signed with the Pod Identity set.
    expect(fx.gateway.calls).toEqual([{ action: "AssumeRole", verified: true, accessKeyId: first.accessKeyId, issuedKeyId: issued(0).accessKeyId, upstreamStatus: 200 }]);
    expectSignedWith(await fx.send(put(CHAINED_HOST)), issued(0));

    // The agent's token rotates; the refresh at expiry − 300 s − jitter reads it again.
    endpoint.token = "pod-identity-token-2";
    writeFileSync(join(dir, "eks-pod-identity-token"), "pod-identity-token-2");
    const at = fx.profile("ambient").status().nextRefreshAt?.getTime() ?? 0;
    const expiry = first.expiration?.getTime() ?? 0;
    expect(expiry - at).toBeGreaterThanOrEqual(300 * S);
    expect(expiry - at).toBeLessThanOrEqual(330 * S);
    await runNextAttempt("ambient");
    expect(endpoint.seen).toEqual(["pod-identity-token-1", "pod-identity-token-2"]);
    const second = endpoint.sets[1];
    if (!second) throw new Error("no second set");
    expectSignedWith(await fx.send(put(AMBIENT_HOST)), second);
  });

  it("ECS: AWS_CONTAINER_AUTHORIZATION_TOKEN sent as Authorization, the set used", async () => {
    endpoint = await startContainerEndpoint(fx, "ecs-task-token");
    vi.stubEnv("AWS_CONTAINER_CREDENTIALS_FULL_URI", endpoint.url);
    vi.stubEnv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "ecs-task-token");
    vi.stubEnv("AWS_ENDPOINT_URL_STS", fx.gateway.url);
    await fx.start(policy);
    expect(endpoint.seen).toEqual(["ecs-task-token"]);
    const set = endpoint.sets[0];
    if (!set) throw new Error("the endpoint issued nothing");
    expect(fx.profile("ambient").status().expiresAt).toEqual(set.expiration);
    expectSignedWith(await fx.send(put(AMBIENT_HOST)), set);
    expectSignedWith(await fx.send(put(CHAINED_HOST)), issued(0));
  });
});
