/**
 * /metrics after a known mix of signed and refused requests: exact counts per label set, the
 * latency histogram's count, the bytes hashed, the stream gauge back at 0, the policy hash, the
 * credentials gauge, process metrics, and label sets that stay bounded whatever clients send.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeAws, type FakeAws } from "../fakeaws/server.js";
import { connectExtProc, exchange, type ExchangeResult, type TestRequest } from "../support/extProcClient.js";
import { eventually } from "../support/eventually.js";
import { startServe, type ServeProcess } from "../support/startServe.js";
import { tempDir } from "./support/files.js";
import { familiesNamed, scrape, samplesOf, sumOf, valueOf, type Sample } from "./support/metrics.js";
import { promtoolBinary, runTool } from "../k8s/tools.js";
import { emptyGet, forwardToFake, getCallerIdentityBody, s3GetUnsigned, s3Put, sha256Hex, stsFormPost } from "./support/requests.js";

const REAL = { accessKeyId: "AKIAOPSMETRICS000001", secretAccessKey: "ops/metrics/secret/000000000000000000001" };
const S3_HOST = "data.s3.eu-west-1.amazonaws.com";
const LOCKED_HOST = "locked.s3.eu-west-1.amazonaws.com";
const BUFFERED_BODY_SIZES = [100, 257] as const;
/** Services no policy or metric knows: each must end up as service="other". */
const RANDOM_SERVICES = ["zqxservice-a81f", "zqxservice-c7d2", "zqxservice-90be", "zqxservice-5e11"] as const;

const POLICY = `version: 1
credentials:
  main:
    static:
      access_key_id_env: OPS_A_ID
      secret_access_key_env: OPS_A_SECRET
limits:
  max_buffered_body_bytes: 4096
endpoints:
  - host: "${LOCKED_HOST}"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
    client_access_key_ids: [AKIDPLACEHOLDER000]
  - host: "*.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
  - host: "sts.amazonaws.com"
    credential_signing: sigv4
    signing_service: sts
    credentials: main
  - host: "*.ops.example"
    credential_signing: sigv4
    signing_service: auto
    region: us-east-1
    credentials: main
`;

interface Sent {
  readonly req: TestRequest;
  readonly expect: "signed" | number;
}

/** The mix: what is sent, and what countersign must answer (signed, or the refusal status). */
const MIX: readonly Sent[] = [
  ...[1, 2, 3].map((i) => ({ req: s3Put(S3_HOST, `obj-${i}.txt`, Buffer.from(`object ${i}`)), expect: "signed" as const })),
  ...[1, 2].map((i) => ({ req: s3GetUnsigned(S3_HOST, `/obj-${i}.txt`), expect: "signed" as const })),
  ...BUFFERED_BODY_SIZES.map((n) => ({ req: stsFormPost(getCallerIdentityBody(n)), expect: "signed" as const })),
  ...RANDOM_SERVICES.map((svc) => ({ req: emptyGet("api.ops.example", "us-east-1", svc), expect: "signed" as const })),
  { req: s3Put("example.com", "x", Buffer.from("nope")), expect: 403 },
  { req: s3GetUnsigned("bucket.s3.us-west-2.amazonaws.com", "/k"), expect: 403 },
  { req: s3GetUnsigned(LOCKED_HOST, "/k", { keyId: "AKIDSOMEBODYELSE00" }), expect: 403 },
  { req: stsFormPost(Buffer.alloc(16, 0x61), { declaredLength: 8192 }), expect: 413 },
];

/** Exactly the countersign_requests_total series the mix must produce. */
const EXPECTED_REQUESTS: ReadonlyArray<[Record<string, string>, number]> = [
  [{ decision: "signed", reason: "signed", payload_mode: "client-hash", service: "s3" }, 3],
  [{ decision: "signed", reason: "signed", payload_mode: "unsigned-payload", service: "s3" }, 2],
  [{ decision: "signed", reason: "signed", payload_mode: "buffered-body", service: "sts" }, 2],
  [{ decision: "signed", reason: "signed", payload_mode: "empty-body", service: "other" }, 4],
  [{ decision: "refused", reason: "no_endpoint", payload_mode: "none", service: "none" }, 2],
  [{ decision: "refused", reason: "key_id_not_allowed", payload_mode: "none", service: "none" }, 1],
  [{ decision: "refused", reason: "body_too_large", payload_mode: "buffered-body", service: "sts" }, 1],
];

let fake: FakeAws;
let cs: ServeProcess;
let policyFile: string;
const results: ExchangeResult[] = [];
let samples: Sample[];

beforeAll(async () => {
  fake = await startFakeAws({ accounts: [REAL] });
  policyFile = join(tempDir("metrics"), "policy.yaml");
  writeFileSync(policyFile, POLICY);
  cs = await startServe({ shutdownGraceSeconds: 2, policyFile, env: { OPS_A_ID: REAL.accessKeyId, OPS_A_SECRET: REAL.secretAccessKey } });
  const client = connectExtProc(cs.grpcAddress);
  for (const { req } of MIX) results.push(await exchange(client, req));
  client.close();
  // The stream gauge drops when the server sees each stream end; give the last one a moment.
  samples = await eventually(async () => {
    const s = await scrape(cs.adminUrl);
    return valueOf(s, "countersign_extproc_streams_active") === 0 ? s : undefined;
  }, "countersign_extproc_streams_active to return to 0", { timeoutMs: 5_000 });
});

afterAll(async () => {
  await cs?.stop();
  await fake?.close();
});

describe("countersign /metrics after a known mix of requests", () => {
  it("the mix was decided as designed, and every signed request verifies at the fake AWS with the real key", async () => {
    expect(results.map((r) => (r.kind === "forwarded" ? "signed" : r.status))).toEqual(MIX.map((m) => m.expect));
    for (const r of results) {
      if (r.kind !== "forwarded" || r.request.authority.endsWith(".ops.example")) continue;
      await forwardToFake(fake.port, r.request);
      expect(fake.requests.at(-1)).toMatchObject({ verified: true, accessKeyId: REAL.accessKeyId });
    }
  });

  it("countersign_requests_total has exactly one series per (decision, reason, payload_mode, service) seen, with the exact counts", () => {
    const series = samplesOf(samples, "countersign_requests_total").map((s) => [s.labels, s.value]);
    expect(series).toHaveLength(EXPECTED_REQUESTS.length);
    expect(series).toEqual(expect.arrayContaining(EXPECTED_REQUESTS.map(([labels, n]) => [labels, n])));
  });

  it("the signing-latency histogram counted every request once, per payload mode", () => {
    expect(sumOf(samples, "countersign_signing_duration_seconds_count")).toBe(MIX.length);
    const perMode = Object.fromEntries(samplesOf(samples, "countersign_signing_duration_seconds_count").map((s) => [s.labels.payload_mode, s.value]));
    expect(perMode).toEqual({ "client-hash": 3, "unsigned-payload": 2, "buffered-body": 3, "empty-body": 4, none: 3 });
    // The +Inf bucket of each mode equals its count.
    const infBuckets = samplesOf(samples, "countersign_signing_duration_seconds_bucket", { le: "+Inf" });
    expect(infBuckets).toHaveLength(Object.keys(perMode).length);
    for (const s of infBuckets) {
      expect(s.value).toBe(perMode[s.labels.payload_mode as string]);
    }
  });

  it("countersign_body_bytes_hashed_total equals the bytes of the buffered bodies signed (the 413 was refused before its body)", () => {
    expect(valueOf(samples, "countersign_body_bytes_hashed_total")).toBe(BUFFERED_BODY_SIZES.reduce((a, b) => a + b, 0));
    expect(valueOf(samples, "countersign_chunks_resigned_total")).toBe(0);
  });

  it("one stream per request was opened, none is left open, and no stream ended in a gRPC error", () => {
    expect(valueOf(samples, "countersign_extproc_streams_total")).toBe(MIX.length);
    expect(valueOf(samples, "countersign_extproc_streams_active")).toBe(0);
    expect(samplesOf(samples, "countersign_grpc_errors_total")).toEqual([]);
  });

  it("countersign_policy_info is 1 for the first 16 hex characters of the policy file's SHA-256, and the load counted as a success (the other results exported at 0)", () => {
    const hash16 = sha256Hex(readFileSync(policyFile)).slice(0, 16);
    expect(samplesOf(samples, "countersign_policy_info")).toEqual([{ name: "countersign_policy_info", labels: { sha256: hash16 }, value: 1 }]);
    expect(samplesOf(samples, "countersign_policy_reloads_total")).toEqual([
      { name: "countersign_policy_reloads_total", labels: { result: "success" }, value: 1 },
      { name: "countersign_policy_reloads_total", labels: { result: "invalid" }, value: 0 },
      { name: "countersign_policy_reloads_total", labels: { result: "unreadable" }, value: 0 },
    ]);
    const loadedAt = valueOf(samples, "countersign_policy_loaded_timestamp_seconds") ?? 0;
    expect(Math.abs(loadedAt - Date.now() / 1000)).toBeLessThan(120);
  });

  it("countersign's metric families pass promtool check metrics (Prometheus's naming, unit, help and type conventions)", async () => {
    const res = await fetch(`${cs.adminUrl}/metrics`);
    // Only countersign_ families: three of prom-client's default nodejs_* gauges end in _total,
    // which promtool reports, and they are prom-client's to rename.
    const families = familiesNamed(await res.text(), "countersign_");
    expect(families).toContain("# TYPE countersign_requests_total counter\ncountersign_requests_total{");
    expect(families).not.toContain("nodejs_");
    const r = runTool(promtoolBinary(), ["check", "metrics"], { input: families });
    expect(r.status, r.transcript).toBe(0);
  });

  it("countersign_credentials_usable{profile,source} is 1 for the static profile, with no expiry for static keys, and the process is ready", () => {
    expect(samplesOf(samples, "countersign_credentials_usable")).toEqual([
      { name: "countersign_credentials_usable", labels: { profile: "main", source: "static" }, value: 1 },
    ]);
    expect(samplesOf(samples, "countersign_credentials_expiry_seconds")).toEqual([]);
    expect(valueOf(samples, "countersign_ready")).toBe(1);
  });

  it("exports process and Node.js runtime metrics", () => {
    for (const name of ["process_cpu_user_seconds_total", "process_resident_memory_bytes", "process_start_time_seconds", "nodejs_heap_size_used_bytes", "nodejs_eventloop_lag_seconds"]) {
      expect(samplesOf(samples, name).length, name).toBeGreaterThan(0);
    }
  });

  it("keeps label sets bounded: random client services become service=\"other\", and no host, key id or service name from a request appears in /metrics", async () => {
    const text = await (await fetch(`${cs.adminUrl}/metrics`)).text();
    const bounded = new Set(["s3", "sts", "other", "none"]);
    for (const s of samplesOf(samples, "countersign_requests_total")) expect(bounded.has(s.labels.service as string)).toBe(true);
    for (const leak of [...RANDOM_SERVICES, "ops.example", "example.com", S3_HOST, "AKIDSOMEBODYELSE00", "AKIDPLACEHOLDER000", REAL.accessKeyId]) {
      expect(text).not.toContain(leak);
    }
  });
});
