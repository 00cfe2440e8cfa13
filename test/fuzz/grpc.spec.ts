/**
 * The same fuzzing over gRPC against a real `countersign serve` process (dist/, `npm run build`
 * first): FUZZ_RUNS/50 streams (at least 30), each a random or malformed message sequence; then
 * one known-good request, which the process must still sign.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { PLACEHOLDER_KEY_ID, placeholderAuthorization, REAL, REAL_ENV, SECURITY_POLICY } from "../security/support/fixtures.js";
import { metricValue, scrapeMetrics } from "../security/support/admin.js";
import { until } from "../support/eventually.js";
import { connectExtProc, exchange, type TestRequest } from "../support/extProcClient.js";
import { startServe, type ServeProcess } from "../support/startServe.js";
import { FUZZ_TIMEOUT_MS, fuzzRuns, streamArb } from "./support/arbitraries.js";
import { runGrpcStream } from "./support/grpcRun.js";
import { streamProblems, transcriptProblems, type HostVerdict } from "./support/oracle.js";

const RUNS = fuzzRuns(0.02, 30);
/** Known src/ bug, pinned in test/fuzz/extProcStream.spec.ts. */
const KNOWN_HOST_BUGS: ReadonlySet<HostVerdict> = new Set(["unicode-folding"]);

/**
 * Sent after the random streams: a well-formed S3 GET to an allowed host, signed by the client as
 * an SDK would. Random streams are rarely signable, so whether one of them was signed is luck;
 * this one must be.
 */
const KNOWN_GOOD: TestRequest = {
  method: "GET",
  authority: "photos.s3.us-west-2.amazonaws.com",
  path: "/after-the-fuzz.txt",
  headers: [
    ["authorization", placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-west-2", "s3")],
    ["x-amz-date", "20240101T000000Z"],
    ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"],
    ["x-request-id", "fuzz-known-good"],
  ],
};

let serve: ServeProcess;
let client: ExternalProcessorClient;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "countersign-fuzz-"));
  const policyFile = join(dir, "policy.yaml");
  writeFileSync(policyFile, SECURITY_POLICY);
  serve = await startServe({ policyFile, args: ["--log-level", "info"], env: REAL_ENV });
  client = connectExtProc(serve.grpcAddress);
});

afterAll(async () => {
  client?.close();
  await serve?.stop();
});

describe(`countersign serve under random ext_proc streams over gRPC (${RUNS} streams)`, () => {
  it("answers every message of every stream exactly once, well-formed, ends each stream OK within 5 s, and signs only allowed hosts", async () => {
    await fc.assert(
      fc.asyncProperty(streamArb, async (msgs) => {
        const { transcript, code } = await runGrpcStream(client, msgs);
        expect(code).toBe(0);
        expect(transcript).toHaveLength(msgs.length);
        expect([...transcriptProblems(transcript), ...streamProblems(transcript, KNOWN_HOST_BUGS)]).toEqual([]);
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT_MS);

  it("is still alive and healthy afterwards: it signs a known-good request with the real key, leaves no stream open and logs no secret", async () => {
    expect(serve.proc.exitCode).toBeNull();
    expect((await fetch(`${serve.adminUrl}/healthz`)).status).toBe(200);
    const r = await exchange(client, KNOWN_GOOD);
    expect(r.kind).toBe("forwarded");
    const authorization = r.kind === "forwarded" ? r.request.headers.find(([name]) => name === "authorization")?.[1] : undefined;
    expect(authorization).toMatch(new RegExp(`^AWS4-HMAC-SHA256 Credential=${REAL.accessKeyId}/\\d{8}/us-west-2/s3/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$`));
    const line = JSON.parse(await serve.waitForLine((l) => l.includes('"requestId":"fuzz-known-good"'), 5_000)) as Record<string, unknown>;
    expect(line).toMatchObject({ decision: "signed", reason: "signed", status: 200, host: KNOWN_GOOD.authority });
    await until(async () => metricValue(await scrapeMetrics(serve.adminUrl), "countersign_extproc_streams_active") === 0, "streams_active back to 0", { timeoutMs: 5_000 });
    const logs = serve.lines.join("\n");
    for (const secret of [REAL.secretAccessKey, REAL.sessionToken, REAL.accessKeyId]) expect(logs).not.toContain(secret);
  });
});
