/**
 * Real Envoy ends every ext_proc stream cleanly (envoy.yaml's runtime layer turns on
 * `envoy.reloadable_features.ext_proc_graceful_grpc_close`): it half-closes the stream and
 * countersign answers with an OK status, instead of Envoy resetting it.
 *
 * Why it matters: countersign's HTTP/2 server is Node's nghttp2, which takes incoming stream resets
 * for an attack (CVE-2023-44487 mitigation: a bucket of 1,000, refilled at 33 a second) and then
 * sends GOAWAY. With a reset per request, any load above 33 requests/s drained it, and the requests
 * Envoy had just opened on the closing connection failed with 500 (found by `make soak`).
 */
import https from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TunnelAgent } from "../support/tunnelAgent.js";
import { plan, type Mode, type Planned } from "../soak/workload.js";
import { startStack, type Stack } from "./harness.js";

const EXT_PROC = "http.tls_decap.ext_proc.countersign.";
const CLUSTER = "cluster.countersign.";

let stack: Stack;
let agent: TunnelAgent;
beforeAll(async () => {
  stack = await startStack({ logLevel: "warn" });
  agent = new TunnelAgent({ host: "127.0.0.1", port: Number(new URL(stack.proxyUrl).port) }, { keepAlive: true, maxSockets: 16, ca: stack.caPem });
});
afterAll(async () => {
  agent?.destroy();
  await stack?.close();
});

function send(p: Planned): Promise<number> {
  const r = p.request;
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = https.request({ agent, host: r.authority, port: 443, method: r.method, path: r.path, headers: Object.fromEntries(r.headers) }, (res) => {
      answered = true;
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    // Envoy closes the connection after refusing an upload it did not read whole (413).
    req.on("error", (err) => answered || reject(err));
    req.end(r.body);
  });
}

async function envoyStats(): Promise<Record<string, number>> {
  return (stack.envoy as NonNullable<Stack["envoy"]>).stats();
}

/** Envoy's counters once every ext_proc stream it started has finished closing (the close follows the answer). */
async function settledStats(): Promise<Record<string, number>> {
  for (let i = 0; ; i++) {
    const s = await envoyStats();
    const open = (s[`${EXT_PROC}streams_started`] ?? 0) - (s[`${EXT_PROC}streams_closed`] ?? 0) - (s[`${EXT_PROC}streams_failed`] ?? 0);
    if (open === 0 || i >= 40) return s;
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("ext_proc streams between real Envoy and countersign", () => {
  it("end without a stream reset, in every body mode and on refusals", async () => {
    const before = await settledStats();
    const modes: Array<[Mode, number[], number]> = [
      ["UNSIGNED-PAYLOAD", [0, 1], 200],
      ["hex-sha256", [0, 1], 200],
      ["empty-payload", [0, 1], 200],
      ["BUFFERED", [0, 1], 200],
      ["STREAMING-PAYLOAD", [0, 1], 200],
      ["STREAMING-PAYLOAD-TRAILER", [0, 1], 200],
      ["STREAMING-UNSIGNED-TRAILER", [0, 1], 200],
    ];
    for (const [mode, variants, status] of modes) for (const v of variants) expect({ mode, v, status: await send(plan(mode, v)) }).toEqual({ mode, v, status });
    // Refusals: a placeholder key the endpoint does not allow (403), SigV4a (400), a malformed signed event stream (400), a body over the limit (413).
    expect(await Promise.all([1, 2, 3, 4].map((v) => send(plan("refused", v))))).toEqual([403, 400, 400, 413]);

    const after = await settledStats();
    const delta = (name: string): number => (after[name] ?? 0) - (before[name] ?? 0);
    expect({
      started: delta(`${EXT_PROC}streams_started`),
      closed: delta(`${EXT_PROC}streams_closed`),
      failed: delta(`${EXT_PROC}streams_failed`),
      resetsSentToCountersign: delta(`${CLUSTER}http2.tx_reset`),
    }).toEqual({ started: 18, closed: 18, failed: 0, resetsSentToCountersign: 0 });
  });

  it("carry 1,500 requests at 16 in flight on one connection to countersign: no GOAWAY, no failed request", { timeout: 180_000 }, async () => {
    const before = await settledStats();
    const p = plan("hex-sha256", 7);
    const statuses = new Map<number, number>();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < 1_500) {
          next++;
          const status = await send(p).catch(() => -1);
          statuses.set(status, (statuses.get(status) ?? 0) + 1);
        }
      }),
    );
    const after = await settledStats();
    const delta = (name: string): number => (after[name] ?? 0) - (before[name] ?? 0);
    expect(Object.fromEntries(statuses)).toEqual({ 200: 1_500 });
    expect({
      connectionsToCountersign: after[`${CLUSTER}upstream_cx_total`],
      goawaysFromCountersign: after[`${CLUSTER}upstream_cx_close_notify`] ?? 0,
      streamsFailed: delta(`${EXT_PROC}streams_failed`),
      resetsSentToCountersign: delta(`${CLUSTER}http2.tx_reset`),
    }).toEqual({ connectionsToCountersign: 1, goawaysFromCountersign: 0, streamsFailed: 0, resetsSentToCountersign: 0 });
  });
});
