/**
 * One fixture for the credential integration tests: the strict fake AWS, its STS reached through
 * a loopback gateway (the policy's `sts_endpoint` / the SDK's `AWS_ENDPOINT_URL_STS`), the real
 * profiles built by src/runtime from a policy, and the request path (ExtProcStream) in between.
 */
import type { CredentialProfile } from "../../../src/credentials/index.js";
import { createAudit, type Audit } from "../../../src/credentials/testing/audit.js";
import { buildRuntime, notReadyReasons, type Runtime } from "../../../src/runtime.js";
import { startFakeAws, type FakeAws, type RecordedRequest } from "../../fakeaws/server.js";
import type { FakeAwsAccount } from "../../fakeaws/auth.js";
import type { TestRequest } from "../../support/extProcClient.js";
import { startStsGateway, type StsGateway } from "../../ops/support/stsGateway.js";
import { forwardToFake, s3Put, s3PutBuffered } from "../../ops/support/requests.js";
import { policyFrom } from "../../support/policyFrom.js";
import { exchangeInProcess, recordedRandom, signingContext, type Outcome, type TestContext } from "./harness.js";

export interface Fixture {
  readonly fake: FakeAws;
  readonly gateway: StsGateway;
  readonly audit: Audit;
  readonly random: ReturnType<typeof recordedRandom>;
  runtime: Runtime | undefined;
  test: TestContext | undefined;
  /** Builds the runtime (first fetch of every profile in use awaited, as `serve` does). */
  start(policyText: (stsUrl: string) => string, env?: NodeJS.ProcessEnv): Promise<Runtime>;
  profile(name: string): CredentialProfile;
  /** A key the fake AWS and the STS gateway accept from now on (e.g. a set a container endpoint issued). */
  addAccount(account: FakeAwsAccount): void;
  notReady(): string[];
  /** One request through countersign; a forwarded one is sent on to the fake AWS and its record returned. */
  send(req: TestRequest, betweenHeadersAndBody?: () => Promise<void>): Promise<Sent>;
  close(): Promise<void>;
}

export type Sent = { readonly outcome: Outcome; readonly record?: RecordedRequest };

export async function startFixture(opts: { accounts: FakeAwsAccount[]; webIdentityTokens?: string[]; seed?: number }): Promise<Fixture> {
  const fake = await startFakeAws({ accounts: opts.accounts, ...(opts.webIdentityTokens ? { webIdentityTokens: opts.webIdentityTokens } : {}) });
  // The gateway accepts the static keys, every set the fake's STS issued (role chaining) and any added later.
  const added: FakeAwsAccount[] = [];
  const gateway = await startStsGateway({ fakePort: fake.port, accounts: () => [...opts.accounts, ...added, ...fake.sts.issued] });
  const audit = createAudit();
  for (const a of opts.accounts) audit.secret(a);
  const random = recordedRandom(opts.seed ?? 7);
  const fx: Fixture = {
    fake,
    gateway,
    audit,
    random,
    runtime: undefined,
    test: undefined,
    async start(policyText, env = {}) {
      const policy = policyFrom(policyText(gateway.url));
      const { runtime } = await buildRuntime(policy, { env, random: () => random.next(), logger: audit.logger, events: audit.events, hostname: "credentials-test" });
      fx.runtime = runtime;
      fx.test = signingContext(() => runtime);
      return runtime;
    },
    profile(name) {
      const p = fx.runtime?.profiles.get(name);
      if (!p) throw new Error(`no profile ${name}`);
      return p;
    },
    addAccount(account) {
      added.push(account);
      fake.addAccount(account);
      audit.secret(account);
    },
    notReady() {
      if (!fx.runtime) throw new Error("not started");
      return notReadyReasons(fx.runtime);
    },
    async send(req, between) {
      if (!fx.test) throw new Error("not started");
      const outcome = await exchangeInProcess(fx.test.ctx, req, between);
      if (outcome.kind !== "forwarded") return { outcome };
      await forwardToFake(fake.port, outcome);
      const record = fake.requests.find((r) => r.path === req.path && r.host === req.authority);
      return { outcome, ...(record ? { record } : {}) };
    },
    async close() {
      for (const p of fx.runtime?.profiles.values() ?? []) p.stop();
      for (const set of fake.sts.issued) audit.secret(set);
      await gateway.close();
      await fake.close();
    },
  };
  return fx;
}

let serial = 0;

/** A PutObject whose body hash is in x-amz-content-sha256: signed from the headers alone. */
export function put(host: string): TestRequest {
  serial += 1;
  return s3Put(host, `obj-${serial}.txt`, Buffer.from(`object ${serial}`));
}

/** A PutObject without a body hash: countersign asks for the body (BUFFERED) and signs when it arrives. */
export function putBuffered(host: string): TestRequest {
  serial += 1;
  return s3PutBuffered(host, `buffered-${serial}.txt`, Buffer.from(`buffered object ${serial}`));
}
