/**
 * Measures countersign's resident memory the way a container limit sees it: a real `countersign
 * serve` process (dist/), started with a container's own flags and NODE_OPTIONS, idle and then with
 * its --max-held-bytes budget full of request bodies (chunk-signed uploads that stop mid-chunk, the
 * way a slow client leaves them), until countersign starts answering 503.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ProcessingResponse__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import { requestBodyMessage, requestHeadersMessage, toWire } from "../fuzz/support/messages.js";
import { refusalStatus } from "../fuzz/support/oracle.js";
import { metricValue, rssBytes, scrapeMetrics } from "../security/support/admin.js";
import { PLACEHOLDER_KEY_ID, REAL_ENV, ENV_NAMES } from "../security/support/fixtures.js";
import { chunkSignedPut, framedChunk } from "../security/support/serveFixture.js";
import { connectExtProc } from "../support/extProcClient.js";
import { startServe } from "../support/startServe.js";

export const MiB = 1024 * 1024;

export interface MemoryMeasurement {
  /** RSS after start, before any request. */
  readonly idleRss: number;
  /** Highest RSS seen while the held-bytes budget filled and stayed full. */
  readonly peakRss: number;
  /** countersign_body_bytes_held when the first 503 came. */
  readonly heldAtRefusal: number;
  /** Whether countersign answered 503 (its own limit) before the budget was exceeded. */
  readonly refused: boolean;
  /** V8 heap in use (nodejs_heap_size_used_bytes) when idle and with the budget full. */
  readonly idleHeap: number;
  readonly fullHeap: number;
}

/** The bytes one stream holds: most of one aws-chunked chunk, sent in 1 MiB messages (Envoy's buffer size). */
const CHUNK = 15 * MiB;
const MESSAGE = 1 * MiB;

function policyText(): string {
  return `version: 1
credentials:
  real:
    static:
      access_key_id_env: ${ENV_NAMES.accessKeyId}
      secret_access_key_env: ${ENV_NAMES.secretAccessKey}
      session_token_env: ${ENV_NAMES.sessionToken}
limits:
  max_buffered_body_bytes: 1048576
endpoints:
  - { host: "*.s3.us-west-2.amazonaws.com", credential_signing: sigv4, signing_service: s3, credentials: real, client_access_key_ids: [${PLACEHOLDER_KEY_ID}] }
`;
}

/**
 * Starts countersign with `args` (after `serve`) and NODE_OPTIONS, fills the held-bytes budget, and
 * returns what it measured. `maxHeldBytes` is the budget the flags give (for the loop's bound).
 */
export async function measureHeldMemory(opts: { args: readonly string[]; nodeOptions?: string; maxHeldBytes: number }): Promise<MemoryMeasurement> {
  const dir = mkdtempSync(join(tmpdir(), "countersign-memory-"));
  const policyFile = join(dir, "policy.yaml");
  writeFileSync(policyFile, policyText());
  const serve = await startServe({
    policyFile,
    args: ["--log-level", "warn", ...opts.args],
    env: { ...REAL_ENV, ...(opts.nodeOptions === undefined ? {} : { NODE_OPTIONS: opts.nodeOptions }) },
    readyPath: "/readyz",
  });
  const client = connectExtProc(serve.grpcAddress);
  const calls: Array<ReturnType<typeof client.Process>> = [];
  let peakRss = 0;
  const sample = (): void => {
    peakRss = Math.max(peakRss, rssBytes(serve.pid));
  };
  try {
    // Let start-up settle (the first GC, lazy compilation) before the idle sample.
    await new Promise((r) => setTimeout(r, 1_000));
    const idleRss = rssBytes(serve.pid);
    const idleHeap = metricValue(await scrapeMetrics(serve.adminUrl), "nodejs_heap_size_used_bytes") ?? NaN;
    sample();
    const sampler = setInterval(sample, 20);
    let refused = false;
    let heldAtRefusal = 0;
    try {
      const streams = Math.ceil(opts.maxHeldBytes / (CHUNK - MiB)) + 2;
      const framed = framedChunk(Buffer.alloc(CHUNK, 0x61));
      for (let s = 0; s < streams && !refused; s++) {
        const call = client.Process();
        call.on("error", () => undefined);
        const got: ProcessingResponse__Output[] = [];
        let waiting: (() => void) | undefined;
        call.on("data", (r: ProcessingResponse__Output) => {
          got.push(r);
          waiting?.();
        });
        /** Resolves once `count` answers have arrived (each message gets exactly one). */
        const answers = (count: number): Promise<void> =>
          got.length >= count
            ? Promise.resolve()
            : new Promise<void>((resolve, reject) => {
                const timer = setTimeout(() => reject(new Error(`no answer ${count} within 10 s`)), 10_000);
                waiting = () => {
                  if (got.length >= count) {
                    clearTimeout(timer);
                    waiting = undefined;
                    resolve();
                  }
                };
              });
        calls.push(call);
        call.write(toWire(requestHeadersMessage(chunkSignedPut(CHUNK), false)));
        await answers(1);
        for (let sent = 0; sent + MESSAGE < CHUNK && !refused; sent += MESSAGE) {
          call.write(toWire(requestBodyMessage(framed.subarray(sent, sent + MESSAGE), false)));
          await answers(got.length + 1);
          sample();
          if (refusalStatus(got.at(-1)) === 503) {
            refused = true;
            heldAtRefusal = metricValue(await scrapeMetrics(serve.adminUrl), "countersign_body_bytes_held") ?? 0;
          }
        }
      }
      // Hold the full budget for a moment, as a stalled client would.
      await new Promise((r) => setTimeout(r, 500));
      sample();
    } finally {
      clearInterval(sampler);
    }
    const fullHeap = metricValue(await scrapeMetrics(serve.adminUrl), "nodejs_heap_size_used_bytes") ?? NaN;
    return { idleRss, peakRss, heldAtRefusal, refused, idleHeap, fullHeap };
  } finally {
    for (const call of calls) call.cancel();
    client.close();
    await serve.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
