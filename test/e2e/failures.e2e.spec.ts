/**
 * Failure behaviour through REAL Envoy (the shipped envoy/envoy.yaml, `failure_mode_allow: false`,
 * `message_timeout: 2s`): countersign not running, killed mid-stream, restarted on the same port,
 * an ext_proc server slower than message_timeout, and one answering with a gRPC error status.
 *
 * Every case checks the three witnesses against each other:
 *   - the client: the exact status and body Envoy answers (502, or 504 for a late answer, with the
 *     AWS-style XML body of envoy.yaml's local_reply_config);
 *   - the fake AWS: nothing new arrives, or only requests signed with the REAL key — never the
 *     placeholder signature, never unsigned;
 *   - Envoy's own ext_proc counters (`http.<listener>.ext_proc.countersign.*`, summed over the two
 *     signing listeners, and `cluster.countersign.*`) against countersign's /metrics where both
 *     count the same thing (streams opened and open, requests signed).
 * Waits are polls with generous deadlines, never fixed sleeps: the box is shared and busy.
 */
import { randomInt, createHash, createHmac } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import https from "node:https";
import net from "node:net";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { Hash } from "@smithy/hash-node";
import { getSigningKey, SignatureV4 } from "@smithy/signature-v4";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProcessingRequest__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { ProcessingResponse } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import { loadExtProcProtos } from "../../src/extproc/protos.js";
import { loadEmulatorConfig } from "../emulator/config.js";
import { FakeExtProc } from "../emulator/support/fakeExtProc.js";
import { scrape, sumOf, valueOf } from "../ops/support/metrics.js";
import { untilPasses } from "../support/eventually.js";
import { startServe, type ServeProcess } from "../support/startServe.js";
import { proxiedAgent, s3Client, stsClient } from "./clients.js";
import { PLACEHOLDER, REAL, startStack, type Stack, type StackOptions } from "./harness.js";
import { SHIPPED_ENVOY_YAML } from "./realEnvoy.js";

/** envoy/envoy.yaml's ext_proc message_timeout (2 s). */
const MESSAGE_TIMEOUT_MS = loadEmulatorConfig(SHIPPED_ENVOY_YAML).extProc.messageTimeoutMs;
const BUCKET_HOST = "e2e-bucket.s3.eu-west-1.amazonaws.com";
const TEST_TIMEOUT_MS = 180_000;
/** How the checks below wait: a retry every 100 ms, for up to 30 s. */
const POLL = { timeoutMs: 30_000, everyMs: 100 } as const;

// ===== the cases ================================================================================

describe("countersign not running: Envoy's ext_proc cluster points at a closed loopback port", () => {
  it("answers 502 with an AWS-style XML error on both signing listeners, forwards nothing, and signs again as soon as countersign listens there", async () => {
    const address = await closedLoopbackAddress();
    await withStack({ extProcAddress: address }, async (stack) => {
      const start = stack.fake.requests.length;
      const envoy0 = await envoySnapshot(stack);

      // Proxy mode (CONNECT, tls_decap), endpoint mode (plain_sign) and a real SDK client.
      expect(await placeholderSigned(stack, { method: "GET", path: "/absent.txt" })).toEqual(LOCAL_REPLY_502);
      const viaEndpoint = await fetch(`${stack.endpointUrl}/e2e-bucket/absent.txt`, { signal: AbortSignal.timeout(60_000) });
      expect({ status: viaEndpoint.status, body: await viaEndpoint.text() }).toEqual(LOCAL_REPLY_502);
      // The SDK reads the XML: its error is named after the code, with the message a person can act on.
      await expect(s3Client(stack).send(new GetObjectCommand({ Bucket: "e2e-bucket", Key: "absent.txt" }))).rejects.toMatchObject({
        name: "SigningUnavailable",
        message: expect.stringContaining("ext_proc_error_gRPC_error_14"),
        $metadata: { httpStatusCode: 502 },
      });

      expect(forwardedSince(stack, start)).toEqual([]);
      // Envoy counts a stream started (and its headers message sent) for every request although
      // no connection was ever made; the stream fails with gRPC UNAVAILABLE (14).
      await expectEnvoyMoved(stack, envoy0, {
        extProc: { streams_started: 3, stream_msgs_sent: 3, streams_failed: 3, server_half_closed: 3, immediate_responses_sent: 3 },
        cluster: { upstream_cx_connect_fail: 3 },
      });
      await untilPasses(() => expect(stack.envoy?.output()).toContain("Received gRPC error on stream: 14"), "Envoy logs the gRPC error", POLL);
      // The stack's own countersign (on another port) saw none of it.
      expect((await countersignCounts(stack.serve.adminUrl)).streamsTotal).toBe(0);

      // countersign comes up on that address: no Envoy restart, the next stream connects.
      const late = await startCountersign(stack, address);
      try {
        await untilPasses(async () => {
          await stsClient(stack).send(new GetCallerIdentityCommand({}));
        }, "a request is signed once countersign listens", POLL);
        await expectSignedRoundsAgree(stack, late, 3);
      } finally {
        await late.stop();
      }
    });
  }, TEST_TIMEOUT_MS);
});

describe("countersign killed (SIGKILL) mid-stream", () => {
  it("while it holds a BUFFERED upload (headers answered, body awaited): 502 with the XML error, connection closed, nothing forwarded", async () => {
    await withStack({}, async (stack) => {
      const start = stack.fake.requests.length;
      const envoy0 = await envoySnapshot(stack);
      // No x-amz-content-sha256: countersign must hash the body, so it answers the headers with
      // mode_override BUFFERED and Envoy holds the request until the whole body is there.
      const headers = await placeholderHeaders({ method: "PUT", path: "/killed/buffered.bin", headers: { "content-length": "100000", "content-type": "application/octet-stream" } });
      const held = holdRequest(stack, { method: "PUT", path: "/killed/buffered.bin", headers, firstPart: Buffer.alloc(10_000, "a") });
      try {
        await untilPasses(async () => {
          const cs = await countersignCounts(stack.serve.adminUrl);
          const moved = diff(envoy0, await envoySnapshot(stack));
          expect({ active: cs.streamsActive, total: cs.streamsTotal, answered: moved.extProc.stream_msgs_received }).toEqual({ active: 1, total: 1, answered: 1 });
        }, "countersign holds the stream, Envoy has its headers answer", POLL);
        // Both sides count the same one open stream before the kill.
        await expectOpenStreamsAgree(stack, envoy0, { streams: 1 });

        await sigkill(stack.serve);
        expect(await held.response).toEqual({ ...LOCAL_REPLY_502, connection: "close" });
      } finally {
        held.destroy();
      }
      expect(forwardedSince(stack, start)).toEqual([]);
      await expectEnvoyMoved(stack, envoy0, {
        extProc: { streams_started: 1, stream_msgs_sent: 1, stream_msgs_received: 1, streams_failed: 1, server_half_closed: 1, immediate_responses_sent: 1 },
        cluster: { upstream_cx_destroy_remote_with_active_rq: 1 },
      });
      // Real Envoy reports the dropped connection as INTERNAL (13); the emulator says UNAVAILABLE (14).
      await untilPasses(() => expect(stack.envoy?.output()).toMatch(/Received gRPC error on stream: 13, message upstream_reset_after_response_started\{connection_termination\}/), "Envoy logs the gRPC error", POLL);
    });
  }, TEST_TIMEOUT_MS);

  it("in the middle of a chunk-signed upload (STREAMED): 502, and AWS got only what countersign had re-signed with the REAL key, never completed", async () => {
    await withStack({ fakeOptions: { discardBodies: true } }, async (stack) => {
      const start = stack.fake.requests.length;
      const envoy0 = await envoySnapshot(stack);
      const path = "/killed/chunked.bin";
      const upload = await chunkSignedStart({ path, chunkSize: 64 * 1024, partialBytes: 1000 });
      const held = holdRequest(stack, { method: "PUT", path, headers: upload.headers, firstPart: upload.firstPart });
      try {
        // countersign re-signed chunk 1 (Envoy forwarded it) and holds the first 1000 bytes of chunk 2.
        await untilPasses(async () => {
          const cs = await countersignCounts(stack.serve.adminUrl);
          expect({ wire: stack.fake.requests[start]?.wireBodyBytes, held: cs.heldBytes, active: cs.streamsActive }).toEqual({ wire: upload.firstChunkFramedBytes, held: 1000, active: 1 });
        }, "chunk 1 reached AWS and countersign holds the partial chunk 2", POLL);
        await expectOpenStreamsAgree(stack, envoy0, { streams: 1 });

        await sigkill(stack.serve);
        expect(await held.response).toEqual({ ...LOCAL_REPLY_502, connection: "close" });
      } finally {
        held.destroy();
      }
      // One request reached AWS: its headers signed with the REAL key (the seed signature verified,
      // or the fake would have answered 403), its body cut after the one chunk countersign
      // re-signed. It never completed, so nothing was stored.
      const seen = forwardedSince(stack, start);
      expect(seen).toEqual([{ accessKeyId: REAL.accessKeyId, placeholderSeen: false, verified: false, errorCode: undefined, wireBodyBytes: upload.firstChunkFramedBytes }]);
      expect(stack.fake.requests[start]?.status).not.toBe(200);
      expect(stack.fake.s3.getObject("e2e-bucket", "killed/chunked.bin")).toBeUndefined();
      await expectEnvoyMoved(stack, envoy0, {
        extProc: { streams_started: 1, stream_msgs_sent: 2, stream_msgs_received: 2, streams_failed: 1, server_half_closed: 1, immediate_responses_sent: 1 },
        cluster: { upstream_cx_destroy_remote_with_active_rq: 1 },
      });
    });
  }, TEST_TIMEOUT_MS);

  it("after it signed the headers of an SDK streaming upload whose body never crosses gRPC: the upload completes, verified with the REAL key", async () => {
    await withStack({}, async (stack) => {
      const start = stack.fake.requests.length;
      const envoy0 = await envoySnapshot(stack);
      const body = new PassThrough();
      // The SDK's default for a stream of known length: STREAMING-UNSIGNED-PAYLOAD-TRAILER (body mode NONE).
      const put = s3Client(stack).send(new PutObjectCommand({ Bucket: "e2e-bucket", Key: "killed/none.bin", Body: body, ContentLength: 200_000 }));
      body.write(Buffer.alloc(50_000, "x"));
      await untilPasses(async () => {
        expect(stack.fake.requests.length - start).toBe(1);
        expect((await countersignCounts(stack.serve.adminUrl)).streamsActive).toBe(0);
      }, "the signed headers reached AWS and Envoy closed its ext_proc stream", POLL);
      const cs = await countersignCounts(stack.serve.adminUrl);
      expect({ streamsTotal: cs.streamsTotal, signed: cs.signed }).toEqual({ streamsTotal: 1, signed: 1 });
      await expectEnvoyMoved(stack, envoy0, { extProc: { streams_started: cs.streamsTotal, stream_msgs_sent: 1, stream_msgs_received: 1, streams_closed: cs.signed }, cluster: { upstream_rq_active: 0 } });

      await sigkill(stack.serve);
      body.end(Buffer.alloc(150_000, "y"));
      const out = await put;
      expect(out.$metadata.httpStatusCode).toBe(200);
      expect(forwardedSince(stack, start)).toEqual([{ accessKeyId: REAL.accessKeyId, placeholderSeen: false, verified: true, errorCode: undefined, wireBodyBytes: expect.any(Number) as number }]);
      expect(stack.fake.requests[start]?.payloadMode).toBe("STREAMING-UNSIGNED-PAYLOAD-TRAILER");
      expect(stack.fake.s3.getObject("e2e-bucket", "killed/none.bin")?.size).toBe(200_000);
      // The kill moved nothing in Envoy's ext_proc counters: the stream had already ended.
      await expectEnvoyMoved(stack, envoy0, { extProc: { streams_started: 1, stream_msgs_sent: 1, stream_msgs_received: 1, streams_closed: 1 } });
    });
  }, TEST_TIMEOUT_MS);
});

describe("countersign restarted on the same --listen address", () => {
  it.each(["SIGTERM", "SIGKILL"] as const)("stopped with %s: 502 while it is down, then Envoy reconnects and requests are signed again", async (signal) => {
    const address = await closedLoopbackAddress();
    await withStack({ serveArgs: ["--listen", address] }, async (stack) => {
      await stsClient(stack).send(new GetCallerIdentityCommand({}));
      expect(await stack.serve.stop(signal)).toBe(signal === "SIGTERM" ? 0 : null);

      const start = stack.fake.requests.length;
      const envoy0 = await envoySnapshot(stack);
      expect(await placeholderSigned(stack, { method: "GET", path: "/while-down.txt" })).toEqual(LOCAL_REPLY_502);
      // STS (query protocol) looks for <ErrorResponse>, so its SDK error is "Unknown", but it carries the message.
      await expect(stsClient(stack).send(new GetCallerIdentityCommand({}))).rejects.toMatchObject({ message: expect.stringContaining("countersign (the signing sidecar) could not sign"), $metadata: { httpStatusCode: 502 } });
      expect(forwardedSince(stack, start)).toEqual([]);
      await expectEnvoyMoved(stack, envoy0, {
        extProc: { streams_started: 2, stream_msgs_sent: 2, streams_failed: 2, server_half_closed: 2, immediate_responses_sent: 2 },
        cluster: { upstream_cx_connect_fail: 2 },
      });

      const restarted = await startCountersign(stack, address);
      try {
        await untilPasses(async () => {
          await stsClient(stack).send(new GetCallerIdentityCommand({}));
        }, "a request is signed after the restart", POLL);
        await expectSignedRoundsAgree(stack, restarted, 3);
      } finally {
        await restarted.stop();
      }
    });
  }, TEST_TIMEOUT_MS);
});

describe("an ext_proc server slower than message_timeout", () => {
  it(`answers 504 with the XML error after message_timeout (${MESSAGE_TIMEOUT_MS} ms) and ignores the late answer: nothing is forwarded`, async () => {
    const slow = await LateExtProc.start();
    try {
      await withStack({ extProcAddress: slow.address }, async (stack) => {
        const start = stack.fake.requests.length;
        const envoy0 = await envoySnapshot(stack);
        const t0 = Date.now();
        expect(await placeholderSigned(stack, { method: "GET", path: "/slow.txt" })).toEqual(LOCAL_REPLY_504);
        // Envoy's timer never fires early; no upper bound is asserted (a busy box may be slow).
        expect(Date.now() - t0).toBeGreaterThanOrEqual(MESSAGE_TIMEOUT_MS - 100);

        // The server got the headers, never answered in time, and answered CONTINUE without any
        // mutation (the placeholder signature as it is) once Envoy had half-closed the stream.
        await untilPasses(() => expect(slow.streams).toEqual([{ messages: 1, closedBy: "end", lateAnswerWritten: true }]), "the late answer was written", POLL);
        expect(forwardedSince(stack, start)).toEqual([]);
        // A timeout counts as a stream Envoy closed, not a failed one; the late answer is not received.
        await expectEnvoyMoved(stack, envoy0, {
          extProc: { streams_started: 1, stream_msgs_sent: 1, message_timeouts: 1, streams_closed: 1, immediate_responses_sent: 1 },
          cluster: {},
        });
        expect((await countersignCounts(stack.serve.adminUrl)).streamsTotal).toBe(0);
      });
    } finally {
      await slow.close();
    }
  }, TEST_TIMEOUT_MS);

  it("countersign itself frozen (SIGSTOP) past message_timeout: 504, nothing forwarded; once thawed it still counts its late answer as signed — only Envoy's message_timeouts shows the drop", async () => {
    await withStack({}, async (stack) => {
      const start = stack.fake.requests.length;
      const envoy0 = await envoySnapshot(stack);
      stack.serve.proc.kill("SIGSTOP");
      let outcome: ClientOutcome;
      try {
        outcome = await placeholderSigned(stack, { method: "GET", path: "/frozen.txt" });
      } finally {
        stack.serve.proc.kill("SIGCONT");
      }
      expect(outcome).toEqual(LOCAL_REPLY_504);
      expect(forwardedSince(stack, start)).toEqual([]);

      // Thawed, countersign reads the stream Envoy gave up on (headers, half-close and reset in
      // one read), signs the request, logs it as signed with status 200 and finds no one to answer.
      await untilPasses(async () => {
        const cs = await countersignCounts(stack.serve.adminUrl);
        expect({ opened: cs.streamsTotal, open: cs.streamsActive, signed: cs.signed, refused: cs.refused }).toEqual({ opened: 1, open: 0, signed: 1, refused: 0 });
      }, "countersign has handled the stale stream", POLL);
      // The first (and only) decision line of this countersign's life.
      expect(JSON.parse(await stack.serve.waitForLine((l) => l.includes('"decision":'), 30_000))).toMatchObject({ method: "GET", host: BUCKET_HOST, decision: "signed", status: 200 });
      await expectEnvoyMoved(stack, envoy0, {
        extProc: { streams_started: 1, stream_msgs_sent: 1, message_timeouts: 1, streams_closed: 1, immediate_responses_sent: 1 },
      });
      // And it serves the next requests as usual.
      await expectSignedRoundsAgree(stack, stack.serve, 2);
    });
  }, TEST_TIMEOUT_MS);
});

describe("an ext_proc server answering with a gRPC error status", () => {
  let fake: FakeExtProc;
  let stack: Stack;
  beforeAll(async () => {
    fake = await FakeExtProc.start();
    stack = await startStack({ extProcAddress: fake.address });
  });
  afterAll(async () => {
    await stack?.close();
    await fake?.close();
  });

  it.each([
    ["INTERNAL", grpc.status.INTERNAL],
    ["UNAVAILABLE", grpc.status.UNAVAILABLE],
    ["RESOURCE_EXHAUSTED", grpc.status.RESOURCE_EXHAUSTED],
    ["PERMISSION_DENIED", grpc.status.PERMISSION_DENIED],
    ["UNKNOWN", grpc.status.UNKNOWN],
  ])("%s: 502 with the XML error (status_on_error), nothing forwarded", async (_name, code) => {
    fake.setScript(async (s) => {
      await s.next(30_000);
      s.fail(code, "scripted failure");
    });
    const start = stack.fake.requests.length;
    const envoy0 = await envoySnapshot(stack);
    expect(await placeholderSigned(stack, { method: "PUT", path: "/grpc-error.txt", body: Buffer.from("hello") })).toEqual(LOCAL_REPLY_502);
    expect(forwardedSince(stack, start)).toEqual([]);
    // The scripted server saw exactly what Envoy counts: one stream, one message (the headers).
    expect(fake.streams.map((s) => s.received.length)).toEqual([1]);
    expect(fake.scriptErrors).toEqual([]);
    await expectEnvoyMoved(stack, envoy0, {
      extProc: { streams_started: 1, stream_msgs_sent: 1, streams_failed: 1, server_half_closed: 1, immediate_responses_sent: 1 },
      cluster: {},
    });
    await untilPasses(() => expect(stack.envoy?.output()).toContain(`Received gRPC error on stream: ${code}, message scripted%20failure{via_upstream}`), "Envoy logs the gRPC status", POLL);
    expect((await countersignCounts(stack.serve.adminUrl)).streamsTotal).toBe(0);
  }, TEST_TIMEOUT_MS);
});

// ===== what the client sees =====================================================================

interface ClientOutcome {
  status: number;
  body: string;
  /** The `connection` response header, when Envoy sends one. */
  connection?: string;
}

/**
 * Envoy's own replies when countersign fails: status_on_error 502, or 504 for message_timeout, each
 * with the AWS-style XML body envoy.yaml's local_reply_config gives them.
 */
const LOCAL_REPLY_502: ClientOutcome = { status: 502, body: expect.stringMatching(/^<\?xml [^>]*>\n<Error><Code>SigningUnavailable<\/Code><Message>countersign \(the signing sidecar\) could not sign this request, so it was not sent to AWS \(ext_proc_error_gRPC_error_\d+/) as unknown as string };
const LOCAL_REPLY_504: ClientOutcome = { status: 504, body: expect.stringMatching(/^<\?xml [^>]*>\n<Error><Code>SigningTimeout<\/Code><Message>countersign \(the signing sidecar\) did not answer in time/) as unknown as string };

function outcomeOf(status: number, headers: IncomingHttpHeaders, body: string): ClientOutcome {
  if (headers["content-length"] !== undefined && Number(headers["content-length"]) !== Buffer.byteLength(body)) throw new Error(`content-length ${headers["content-length"]} but ${Buffer.byteLength(body)} bytes`);
  return { status, body, ...(headers.connection !== undefined ? { connection: headers.connection } : {}) };
}

async function placeholderHeaders(r: { method: string; path: string; headers?: Record<string, string>; body?: Buffer }): Promise<Record<string, string>> {
  const headers: Record<string, string> = { host: BUCKET_HOST, ...r.headers };
  if (r.body) headers["content-length"] = String(r.body.length);
  const signer = new SignatureV4({ service: "s3", region: "eu-west-1", credentials: PLACEHOLDER, sha256: Hash.bind(null, "sha256"), uriEscapePath: false, applyChecksum: false });
  const signed = await signer.sign({ method: r.method, protocol: "https:", hostname: BUCKET_HOST, path: r.path, query: {}, headers, body: r.body ?? "" });
  return signed.headers as Record<string, string>;
}

/** One request signed with the PLACEHOLDER key, through Envoy's CONNECT listener. */
async function placeholderSigned(stack: Stack, r: { method: string; path: string; body?: Buffer }): Promise<ClientOutcome> {
  const headers = await placeholderHeaders({ ...r, ...(r.body ? { headers: { "x-amz-content-sha256": createHash("sha256").update(r.body).digest("hex") } } : {}) });
  const held = holdRequest(stack, { method: r.method, path: r.path, headers, firstPart: r.body ?? Buffer.alloc(0) });
  held.end();
  try {
    return await held.response;
  } finally {
    held.destroy();
  }
}

interface HeldRequest {
  /** The answer, or a rejection if the connection failed without one. */
  readonly response: Promise<ClientOutcome>;
  /** Finishes the body. */
  end(): void;
  destroy(): void;
}

/** Sends the headers and `firstPart` of the body through the proxy and keeps the request open. */
function holdRequest(stack: Stack, r: { method: string; path: string; headers: Record<string, string>; firstPart: Buffer }): HeldRequest {
  const agent = proxiedAgent(stack);
  let req: ReturnType<typeof https.request> | undefined;
  const response = new Promise<ClientOutcome>((resolve, reject) => {
    req = https.request({ host: BUCKET_HOST, port: 443, method: r.method, path: r.path, headers: r.headers, agent, ca: stack.caPem, servername: BUCKET_HOST, timeout: 120_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve(outcomeOf(res.statusCode ?? 0, res.headers, Buffer.concat(parts).toString())));
      res.on("error", reject);
    });
    req.on("timeout", () => req?.destroy(new Error("no answer within 120 s")));
    req.on("error", reject);
    if (r.firstPart.length > 0) req.write(r.firstPart);
  });
  return {
    response,
    end: () => req?.end(),
    destroy: () => {
      req?.destroy();
      agent.destroy();
    },
  };
}

/**
 * The start of a chunk-signed S3 upload (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) signed with the
 * PLACEHOLDER key: chunk 1 whole, then chunk 2's header and `partialBytes` of its data. The
 * declared lengths promise more, so the request stays open.
 */
async function chunkSignedStart(u: { path: string; chunkSize: number; partialBytes: number }): Promise<{ headers: Record<string, string>; firstPart: Buffer; firstChunkFramedBytes: number }> {
  const sha256 = Hash.bind(null, "sha256");
  const data = Buffer.alloc(u.chunkSize, "c");
  const headers = await placeholderHeaders({
    method: "PUT",
    path: u.path,
    headers: {
      "content-encoding": "aws-chunked",
      "content-length": String(10 * u.chunkSize),
      "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
      "x-amz-decoded-content-length": String(8 * u.chunkSize),
    },
  });
  const auth = headers.authorization ?? "";
  const amzDate = headers["x-amz-date"] ?? "";
  const scope = /Credential=[^/]+\/([^,]+),/.exec(auth)?.[1] ?? "";
  let previous = /Signature=([0-9a-f]{64})/.exec(auth)?.[1] ?? "";
  const key = await getSigningKey(sha256, PLACEHOLDER, amzDate.slice(0, 8), "eu-west-1", "s3");
  const emptyHash = createHash("sha256").digest("hex");
  const chunkHeader = (chunk: Buffer): Buffer => {
    previous = createHmac("sha256", key)
      .update(["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scope, previous, emptyHash, createHash("sha256").update(chunk).digest("hex")].join("\n"))
      .digest("hex");
    return Buffer.from(`${chunk.length.toString(16)};chunk-signature=${previous}\r\n`);
  };
  const first = Buffer.concat([chunkHeader(data), data, Buffer.from("\r\n")]);
  const second = Buffer.concat([chunkHeader(data), data.subarray(0, u.partialBytes)]);
  return { headers, firstPart: Buffer.concat([first, second]), firstChunkFramedBytes: first.length };
}

// ===== what reached AWS =========================================================================

/** What reached the fake AWS since `start`, reduced to what matters for failing closed. */
function forwardedSince(stack: Stack, start: number): Array<{ accessKeyId?: string; placeholderSeen: boolean; verified: boolean; errorCode?: string; wireBodyBytes: number }> {
  return stack.fake.requests.slice(start).map((r) => ({
    accessKeyId: r.accessKeyId,
    placeholderSeen: JSON.stringify(r.headers).includes(PLACEHOLDER.accessKeyId),
    verified: r.verified,
    errorCode: r.errorCode,
    wireBodyBytes: r.wireBodyBytes,
  }));
}

// ===== Envoy's counters and countersign's metrics ===============================================

interface EnvoySnapshot {
  /** `http.{tls_decap,plain_sign}.ext_proc.countersign.<name>`, summed over the two listeners. */
  extProc: Record<string, number>;
  /** `cluster.countersign.<name>` (the gRPC connections and streams to countersign). */
  cluster: Record<string, number>;
}

const EXT_PROC_STAT = /^http\.[^.]+\.ext_proc\.countersign\.([a-z0-9_]+)$/;
const CLUSTER_STAT = /^cluster\.countersign\.([a-z0-9_]+)$/;

async function envoySnapshot(stack: Stack): Promise<EnvoySnapshot> {
  if (!stack.envoy) throw new Error("these tests need real Envoy");
  const out: EnvoySnapshot = { extProc: {}, cluster: {} };
  for (const [name, value] of Object.entries(await stack.envoy.stats())) {
    const ext = EXT_PROC_STAT.exec(name)?.[1];
    if (ext !== undefined) out.extProc[ext] = (out.extProc[ext] ?? 0) + value;
    const cluster = CLUSTER_STAT.exec(name)?.[1];
    if (cluster !== undefined) out.cluster[cluster] = value;
  }
  return out;
}

/** What moved between two snapshots (ext_proc: every non-zero change; cluster: every change). */
function diff(a: EnvoySnapshot, b: EnvoySnapshot): EnvoySnapshot {
  const moved = (x: Record<string, number>, y: Record<string, number>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const k of new Set([...Object.keys(x), ...Object.keys(y)])) {
      const d = (y[k] ?? 0) - (x[k] ?? 0);
      if (d !== 0) out[k] = d;
    }
    return out;
  };
  return { extProc: moved(a.extProc, b.extProc), cluster: moved(a.cluster, b.cluster) };
}

/**
 * Waits until Envoy's ext_proc counters moved by exactly `want.extProc` (every other ext_proc
 * counter unchanged) and the named `cluster.countersign.*` stats by exactly `want.cluster`.
 */
async function expectEnvoyMoved(stack: Stack, before: EnvoySnapshot, want: { extProc: Record<string, number>; cluster?: Record<string, number> }): Promise<void> {
  await untilPasses(async () => {
    const moved = diff(before, await envoySnapshot(stack));
    const cluster = Object.fromEntries(Object.keys(want.cluster ?? {}).map((k) => [k, moved.cluster[k] ?? 0]));
    expect({ extProc: moved.extProc, cluster }).toEqual({ extProc: want.extProc, cluster: want.cluster ?? {} });
  }, "Envoy's counters settle", POLL);
}

interface CountersignCounts {
  streamsTotal: number;
  streamsActive: number;
  signed: number;
  refused: number;
  heldBytes: number;
}

async function countersignCounts(adminUrl: string): Promise<CountersignCounts> {
  const s = await scrape(adminUrl);
  return {
    streamsTotal: valueOf(s, "countersign_extproc_streams_total") ?? 0,
    streamsActive: valueOf(s, "countersign_extproc_streams_active") ?? 0,
    signed: sumOf(s, "countersign_requests_total", { decision: "signed" }),
    refused: sumOf(s, "countersign_requests_total", { decision: "refused" }),
    heldBytes: valueOf(s, "countersign_body_bytes_held") ?? 0,
  };
}

/**
 * Open streams as each side counts them: countersign's streams_total/streams_active against
 * Envoy's streams_started and its open requests on the countersign cluster (one per stream).
 */
async function expectOpenStreamsAgree(stack: Stack, envoy0: EnvoySnapshot, want: { streams: number }): Promise<void> {
  const cs = await countersignCounts(stack.serve.adminUrl);
  const now = await envoySnapshot(stack);
  const opened = diff(envoy0, now).extProc.streams_started;
  expect({ countersign: { opened: cs.streamsTotal, open: cs.streamsActive }, envoy: { opened, open: now.cluster.upstream_rq_active } }).toEqual({
    countersign: { opened: want.streams, open: want.streams },
    envoy: { opened: want.streams, open: want.streams },
  });
}

/**
 * `rounds` SDK requests through a countersign that is up, and one it refuses (a placeholder key
 * the S3 endpoints do not accept): each signed one is verified with the REAL key by the fake AWS,
 * the refused one never reaches it, and Envoy's counters move exactly as countersign's do —
 * streams opened and closed, and countersign's refusal as Envoy's one immediate response.
 */
async function expectSignedRoundsAgree(stack: Stack, serve: ServeProcess, rounds: number): Promise<void> {
  await untilPasses(async () => expect((await countersignCounts(serve.adminUrl)).streamsActive).toBe(0), "streams from the polling have closed", POLL);
  const start = stack.fake.requests.length;
  const envoy0 = await envoySnapshot(stack);
  const cs0 = await countersignCounts(serve.adminUrl);
  for (let i = 0; i < rounds; i++) await stsClient(stack).send(new GetCallerIdentityCommand({}));
  const otherWorkload = s3Client(stack, { credentials: { accessKeyId: "AKIDOTHERWORKLOAD00", secretAccessKey: "other-placeholder" } });
  await expect(otherWorkload.send(new GetObjectCommand({ Bucket: "e2e-bucket", Key: "k" }))).rejects.toMatchObject({ name: "InvalidAccessKeyId", $metadata: { httpStatusCode: 403 } });
  expect(forwardedSince(stack, start)).toEqual(Array.from({ length: rounds }, () => ({ accessKeyId: REAL.accessKeyId, placeholderSeen: false, verified: true, errorCode: undefined, wireBodyBytes: expect.any(Number) as number })));
  await untilPasses(async () => expect((await countersignCounts(serve.adminUrl)).streamsActive).toBe(0), "countersign's streams have closed", POLL);
  const cs1 = await countersignCounts(serve.adminUrl);
  const counted = { streams: cs1.streamsTotal - cs0.streamsTotal, signed: cs1.signed - cs0.signed, refused: cs1.refused - cs0.refused };
  expect(counted).toEqual({ streams: rounds + 1, signed: rounds, refused: 1 });
  await expectEnvoyMoved(stack, envoy0, {
    extProc: { streams_started: counted.streams, stream_msgs_sent: counted.streams, stream_msgs_received: counted.streams, streams_closed: counted.streams, immediate_responses_sent: counted.refused },
  });
}

// ===== processes and servers ====================================================================

async function withStack(opts: StackOptions, run: (stack: Stack) => Promise<void>): Promise<void> {
  const stack = await startStack(opts);
  try {
    await run(stack);
  } catch (err) {
    throw new Error(`${err instanceof Error ? err.message : String(err)}\n${stack.envoy?.output() ?? ""}`, { cause: err });
  } finally {
    await stack.close();
  }
}

/** A second `countersign serve` with the stack's policy and real key, listening on `address`. */
function startCountersign(stack: Stack, address: string): Promise<ServeProcess> {
  return startServe({
    policyFile: join(stack.dir, "policy.yaml"),
    args: ["--listen", address, "--log-level", "info"],
    env: { COUNTERSIGN_AWS_ACCESS_KEY_ID: REAL.accessKeyId, COUNTERSIGN_AWS_SECRET_ACCESS_KEY: REAL.secretAccessKey },
  });
}

async function sigkill(serve: ServeProcess): Promise<void> {
  expect(await serve.stop("SIGKILL")).toBeNull();
}

/**
 * host:port on an address of its own in 127.0.0.0/8 where nothing listens (checked): another
 * test on this box cannot take the port between a stop and a restart, as it could on 127.0.0.1.
 */
async function closedLoopbackAddress(): Promise<string> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const host = `127.${randomInt(1, 255)}.${randomInt(1, 255)}.${randomInt(2, 255)}`;
    const port = randomInt(20_000, 60_000);
    if (await connectionRefused(host, port)) return `${host}:${port}`;
  }
  throw new Error("no closed loopback address found in 20 attempts");
}

function connectionRefused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code === "ECONNREFUSED"));
  });
}

interface LateStream {
  messages: number;
  closedBy?: "end" | "cancelled";
  lateAnswerWritten: boolean;
}

/**
 * An ext_proc server that never answers in time: it reads every message and answers only once
 * Envoy has given up on the stream — with a bare CONTINUE, no header mutation, so a late answer
 * Envoy accepted would send the placeholder signature to AWS. The write happens even after
 * Envoy's half-close, as a slow server's queued answer would.
 */
class LateExtProc {
  readonly streams: LateStream[] = [];
  private constructor(
    private readonly server: grpc.Server,
    readonly address: string,
  ) {}

  static async start(): Promise<LateExtProc> {
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
    const late = new LateExtProc(server, `127.0.0.1:${port}`);
    server.addService(loadExtProcProtos().envoy.service.ext_proc.v3.ExternalProcessor.service, {
      Process: (call: grpc.ServerDuplexStream<ProcessingRequest__Output, ProcessingResponse>) => late.onStream(call),
    });
    return late;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.tryShutdown(() => resolve());
      setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 5_000).unref();
    });
  }

  private onStream(call: grpc.ServerDuplexStream<ProcessingRequest__Output, ProcessingResponse>): void {
    const record: LateStream = { messages: 0, lateAnswerWritten: false };
    this.streams.push(record);
    let answered = false;
    const answerLate = (how: "end" | "cancelled"): void => {
      if (answered) return;
      answered = true;
      record.closedBy = how;
      if (!call.cancelled && !call.destroyed) {
        call.write({ request_headers: { response: {} } });
        record.lateAnswerWritten = true;
        call.end();
      }
    };
    call.on("data", () => record.messages++);
    call.on("end", () => answerLate("end"));
    call.on("cancelled", () => answerLate("cancelled"));
    call.on("error", () => answerLate("cancelled"));
  }
}
