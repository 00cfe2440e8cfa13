/**
 * In-process micro-benchmarks, run as a child of bench/run.ts (prints one JSON object on stdout):
 *
 *   signing   the bare @smithy/signature-v4 sign() of an equivalent request, vs countersign's
 *             signRequest(), vs a whole ExtProcStream handling the request_headers message as the
 *             server decodes it (header decoding, policy match, plan, sign, mutation building).
 *   hashing   raw node:crypto SHA-256 (MB/s) vs the BUFFERED body path (ExtProcStream hashing and
 *             signing a 1 MiB body) vs AwsChunkedResigner fed 64 KiB messages of 64 KiB chunks,
 *             SigV4 (HMAC) and SigV4A (ECDSA by @smithy/signature-v4a, head signing included),
 *             and EventStreamResigner on signed event streams of 256 B (Bedrock-style JSON events),
 *             3200 B (Transcribe: 100 ms of 16 kHz PCM) and 64 KiB messages, each against raw
 *             SHA-256 of one message's payload.
 *
 * Variants that are compared are measured in interleaved batches (A B C A B C ...) after a
 * warm-up, and each reports the median of its batch means, so that drift hits all of them alike.
 *
 *   BENCH_MICRO_SCALE   multiplies batch counts and durations (default 1; run.ts passes 0.2 for quick runs)
 *   BENCH_MICRO_ONLY    a regular expression: only the rows whose name it matches are measured (the
 *                       others are left out of the output), e.g. "sha256-raw|crc32|event-resigner"
 */
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { HttpRequest } from "@smithy/types";
import { createHash, createHmac, createSecretKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { crc32 } from "node:zlib";
import { crc32 as resignerCrc32, nativeCrc32 } from "../src/sigv4/crc32.js";
import { HmacSha256 } from "../src/sigv4/hmacSha256.js";
import { Metrics } from "../src/admin/metrics.js";
import { unlimitedAdmission } from "../src/extproc/admission.js";
import type { DecisionEvent, PolicySnapshot, SigningContext } from "../src/extproc/context.js";
import { decodeRequestHead, isDenial } from "../src/extproc/headers.js";
import { headersContinue } from "../src/extproc/mutations.js";
import { planRequest, signInputFor } from "../src/extproc/plan.js";
import { loadExtProcProtos } from "../src/extproc/protos.js";
import { ExtProcStream } from "../src/extproc/stream.js";
import { parsePolicy } from "../src/policy/index.js";
import { Crc32 } from "@smithy/core/checksum";
import { AwsChunkedResigner, hmacChunkSigner, signRequest, startChunkedResigning, type Credentials } from "../src/sigv4/index.js";
import { eventStreamBench } from "./eventStreamBench.js";
import { AwsChunkedBody } from "./protocol.js";
import { BENCH_ACCESS_KEY_ID, BENCH_SECRET_ACCESS_KEY, CHUNK_SIZE, MESSAGE_SIZE, decodeRequest, encodeRequest, headersRequest, scenarioByName, type Scenario } from "./scenarios.js";

const here = dirname(fileURLToPath(import.meta.url));
const SCALE = Number(process.env.BENCH_MICRO_SCALE ?? "1") || 1;
const ONLY = process.env.BENCH_MICRO_ONLY ? new RegExp(process.env.BENCH_MICRO_ONLY) : undefined;

const credentials: Credentials = { accessKeyId: BENCH_ACCESS_KEY_ID, secretAccessKey: BENCH_SECRET_ACCESS_KEY };

export interface MicroResult {
  readonly name: string;
  /** Median over batches, nanoseconds per operation. */
  readonly nsPerOp: number;
  /** Spread of the batch means: (max - min) / median. */
  readonly spread: number;
  readonly batches: number;
  readonly opsPerBatch: number;
  /** Payload bytes per operation, for MB/s (10^6 bytes per second); 0 when not a throughput. */
  readonly bytesPerOp: number;
  readonly mbPerSecond: number | undefined;
}

interface Variant {
  readonly name: string;
  readonly bytesPerOp?: number;
  /** Runs the operation `n` times; may prepare untimed state first and return the timed part. */
  readonly run: (n: number) => Promise<void> | void;
  readonly prepare?: (n: number) => Promise<void> | void;
}

function repeat(n: number, fn: () => unknown): void {
  for (let i = 0; i < n; i++) fn();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

async function timeBatch(v: Variant, n: number): Promise<number> {
  await v.prepare?.(n);
  const t0 = performance.now();
  await v.run(n);
  return ((performance.now() - t0) * 1e6) / n;
}

/** Interleaved batches of each variant; batch sizes calibrated to ~batchMs each. */
async function compare(all: Variant[], opts: { warmupMs: number; batchMs: number; batches: number }): Promise<MicroResult[]> {
  const variants = ONLY ? all.filter((v) => ONLY.test(v.name)) : all;
  const sizes: number[] = [];
  for (const v of variants) {
    // Warm-up (JIT, caches) and calibration.
    let n = 1;
    let spent = 0;
    let perOp = 0;
    const until = performance.now() + opts.warmupMs * SCALE;
    while (performance.now() < until || spent === 0) {
      perOp = await timeBatch(v, n);
      spent += (perOp * n) / 1e6;
      if (perOp * n < 5e6) n *= 2;
    }
    sizes.push(Math.max(1, Math.round((opts.batchMs * 1e6) / perOp)));
  }
  const samples: number[][] = variants.map(() => []);
  const batches = Math.max(5, Math.round(opts.batches * SCALE));
  for (let b = 0; b < batches; b++) {
    for (let i = 0; i < variants.length; i++) (samples[i] as number[]).push(await timeBatch(variants[i] as Variant, sizes[i] as number));
  }
  return variants.map((v, i) => {
    const s = samples[i] as number[];
    const med = median(s);
    const bytes = v.bytesPerOp ?? 0;
    return {
      name: v.name,
      nsPerOp: med,
      spread: (Math.max(...s) - Math.min(...s)) / med,
      batches: s.length,
      opsPerBatch: sizes[i] as number,
      bytesPerOp: bytes,
      mbPerSecond: bytes > 0 ? (bytes / med) * 1e3 : undefined,
    };
  });
}

function benchContext(onDecision?: (e: DecisionEvent) => void): SigningContext {
  const parsed = parsePolicy(readFileSync(join(here, "policy.yaml"), "utf8"), "bench/policy.yaml");
  if (!parsed.ok) throw new Error(`bench/policy.yaml is invalid: ${JSON.stringify(parsed.error)}`);
  const snapshot: PolicySnapshot = { policy: parsed.policy, credentials: () => ({ ok: true, credentials }) };
  return {
    snapshot: () => snapshot,
    now: () => new Date(),
    maxHeaderBytes: 96 * 1024,
    admission: unlimitedAdmission(),
    onDecision,
  };
}

/** The headers countersign's signer receives for this scenario (what the client signed, re-dated). */
function signerHeaders(s: Scenario, payloadHash: string): Record<string, string> {
  const auth = s.head.headers.find(([k]) => k === "authorization")?.[1] ?? "";
  const clientSigned = new Set((/SignedHeaders=([^,]+)/.exec(auth)?.[1] ?? "").split(";"));
  const out: Record<string, string> = { host: s.head.authority };
  for (const [k, v] of s.head.headers) {
    if (k === "authorization" || k === "x-amz-date" || k === "content-length") continue;
    if (clientSigned.has(k) || k.startsWith("x-amz-")) out[k] = v;
  }
  out["x-amz-content-sha256"] = payloadHash;
  return out;
}

function pathAndQuery(s: Scenario): { path: string; query: Record<string, string> } {
  const [path, qs] = s.head.path.split("?") as [string, string | undefined];
  const query: Record<string, string> = {};
  for (const part of (qs ?? "").split("&").filter(Boolean)) {
    const [k, v] = part.split("=") as [string, string | undefined];
    query[decodeURIComponent(k)] = decodeURIComponent(v ?? "");
  }
  return { path, query };
}

async function signingBenchmarks(): Promise<MicroResult[]> {
  const s = scenarioByName("headers-unsigned");
  const { path, query } = pathAndQuery(s);
  const headers = signerHeaders(s, "UNSIGNED-PAYLOAD");
  const sha256 = Hash.bind(null, "sha256");
  const bare = new SignatureV4({ service: "s3", region: "eu-west-1", credentials, sha256, uriEscapePath: false, applyChecksum: false });
  const request: HttpRequest = { method: s.head.method, protocol: "https:", hostname: s.head.authority, path, query, headers };

  const headersMap = new Map(s.head.headers.filter(([k]) => !k.startsWith(":")).map(([k, v]) => [k, v] as [string, string]));
  const clientSigned = (/SignedHeaders=([^,]+)/.exec(headersMap.get("authorization") ?? "")?.[1] ?? "").split(";");

  const ctx = benchContext();
  const metrics = new Metrics();
  const ctxWithMetrics = benchContext((e) => metrics.recordDecision(e));
  const msg = decodeRequest(encodeRequest(headersRequest(s.head, s.headersEndOfStream)));
  // Sanity: the stream signs this request.
  const probe = await new ExtProcStream(ctx).handle(msg);
  if (!probe.request_headers?.response?.header_mutation) throw new Error("ExtProcStream did not sign the benchmark request");

  return compare(
    [
      {
        name: "smithy-sign-bare",
        run: async (n) => {
          for (let i = 0; i < n; i++) await bare.sign(request, { signingDate: new Date() });
        },
      },
      {
        name: "countersign-signRequest",
        run: async (n) => {
          for (let i = 0; i < n; i++) {
            await signRequest({
              method: s.head.method,
              host: s.head.authority,
              path,
              query,
              headers: headersMap,
              clientSignedHeaders: clientSigned,
              signContentLength: true,
              payloadHash: "UNSIGNED-PAYLOAD",
              service: "s3",
              region: "eu-west-1",
              credentials,
              now: new Date(),
            });
          }
        },
      },
      {
        name: "countersign-extproc-stream",
        run: async (n) => {
          for (let i = 0; i < n; i++) await new ExtProcStream(ctx).handle(msg);
        },
      },
      {
        name: "countersign-extproc-stream+metrics",
        run: async (n) => {
          for (let i = 0; i < n; i++) await new ExtProcStream(ctxWithMetrics).handle(msg);
        },
      },
    ],
    { warmupMs: 1500, batchMs: 60, batches: 25 },
  );
}

/**
 * Where countersign's per-request time goes, piece by piece, for the headers-unsigned request
 * (informational: the pieces run alone, so their sum is close to but not exactly the whole).
 */
async function breakdownBenchmarks(): Promise<MicroResult[]> {
  const s = scenarioByName("headers-unsigned");
  const ctx = benchContext();
  const msg = decodeRequest(encodeRequest(headersRequest(s.head, s.headersEndOfStream)));
  const limits = { maxHeaderBytes: ctx.maxHeaderBytes };
  const head = decodeRequestHead(msg.request_headers?.headers, limits);
  if (isDenial(head)) throw new Error(head.message);
  const { result: plan } = planRequest(head, true, ctx);
  if (isDenial(plan)) throw new Error(plan.message);
  const signInput = () => signInputFor(plan, "UNSIGNED-PAYLOAD", new Date());
  const signed = await signRequest(signInput());
  const changes = { set: signed.setHeaders, remove: signed.removeHeaders };
  const method = loadExtProcProtos().envoy.service.ext_proc.v3.ExternalProcessor.service.Process;
  const answer = headersContinue(changes);
  const noopAnswer = { request_headers: {} };
  const requestBytes = encodeRequest(headersRequest(s.head, s.headersEndOfStream));
  const sha256 = Hash.bind(null, "sha256");
  return compare(
    [
      { name: "part: decode request_headers (gRPC stack, both servers)", run: (n) => repeat(n, () => method.requestDeserialize(requestBytes)) },
      { name: "part: decodeRequestHead", run: (n) => repeat(n, () => decodeRequestHead(msg.request_headers?.headers, limits)) },
      { name: "part: planRequest", run: (n) => repeat(n, () => planRequest(head, true, ctx)) },
      { name: "part: new SignatureV4()", run: (n) => repeat(n, () => new SignatureV4({ service: "s3", region: "eu-west-1", credentials, sha256, uriEscapePath: false, applyChecksum: false })) },
      {
        name: "part: signRequest",
        run: async (n) => {
          for (let i = 0; i < n; i++) await signRequest(signInput());
        },
      },
      { name: "part: headersContinue (build answer)", run: (n) => repeat(n, () => headersContinue(changes)) },
      { name: "part: encode countersign answer (gRPC stack)", run: (n) => repeat(n, () => method.responseSerialize(answer)) },
      { name: "part: encode no-op answer (gRPC stack)", run: (n) => repeat(n, () => method.responseSerialize(noopAnswer)) },
    ],
    { warmupMs: 800, batchMs: 40, batches: 15 },
  );
}

async function hashingBenchmarks(): Promise<MicroResult[]> {
  const k64 = Buffer.alloc(64 * 1024, 0x61);
  const m1 = Buffer.alloc(1024 * 1024, 0x61);

  // BUFFERED path: streams that have had their headers answered; only the body message is timed.
  const jsonScenario = scenarioByName("json-1m");
  if (jsonScenario.body.kind !== "buffered") throw new Error("json-1m must have a buffered body");
  const jsonBody = jsonScenario.body.bytes;
  const ctx = benchContext();
  const headersMsg = decodeRequest(encodeRequest(headersRequest(jsonScenario.head, false)));
  const bodyMsg = decodeRequest(encodeRequest({ request_body: { body: jsonBody, end_of_stream: true } }));
  let ready: ExtProcStream[] = [];
  const prepareStreams = async (n: number): Promise<void> => {
    ready = [];
    for (let i = 0; i < n; i++) {
      const st = new ExtProcStream(ctx);
      const r = await st.handle(headersMsg);
      if (r.mode_override?.request_body_mode !== "BUFFERED") throw new Error("json-1m was not answered with BUFFERED");
      ready.push(st);
    }
  };

  // Chunk re-signing: 16 MiB of 64 KiB chunks, cut into 64 KiB messages (not chunk-aligned, as
  // Envoy's would not be).
  const upload = new AwsChunkedBody(16 * 1024 * 1024, CHUNK_SIZE, MESSAGE_SIZE);
  const encoded = upload.bytes();
  const pieces: Buffer[] = [];
  for (let o = 0; o < encoded.length; o += MESSAGE_SIZE) pieces.push(encoded.subarray(o, Math.min(o + MESSAGE_SIZE, encoded.length)));
  // The chain's seed, as the STREAMED path gets it: the signed head's signature, scope and key.
  const seed = await signRequest({
    method: "PUT",
    host: "bench.s3.eu-west-1.amazonaws.com",
    path: "/upload",
    query: {},
    headers: new Map([["x-amz-decoded-content-length", String(upload.decodedLength)]]),
    clientSignedHeaders: ["x-amz-decoded-content-length"],
    signContentLength: true,
    payloadHash: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
    service: "s3",
    region: "eu-west-1",
    credentials,
    now: new Date("2026-01-01T00:00:00Z"),
  });
  const resignOnce = async (): Promise<void> => {
    const r = new AwsChunkedResigner({
      seed,
      signer: hmacChunkSigner(seed.signingKey),
      trailer: false,
      maxChunkBytes: 16 * 1024 * 1024,
      decodedContentLength: upload.decodedLength,
    });
    for (const piece of pieces) {
      const out = await r.push(piece);
      if (!out.ok) throw new Error(out.error);
    }
    const end = r.finish();
    if (!end.ok) throw new Error(end.error);
  };
  await resignOnce();

  // The same upload with SigV4A chunk signatures (144-character fields): every op signs the head
  // too, as the STREAMED path does, which is one ECDSA signature more than the 257 of the chunks.
  const uploadV4a = new AwsChunkedBody(16 * 1024 * 1024, CHUNK_SIZE, MESSAGE_SIZE, `3045${"0".repeat(136)}****`);
  const encodedV4a = uploadV4a.bytes();
  const piecesV4a: Buffer[] = [];
  for (let o = 0; o < encodedV4a.length; o += MESSAGE_SIZE) piecesV4a.push(encodedV4a.subarray(o, Math.min(o + MESSAGE_SIZE, encodedV4a.length)));
  const resignV4aOnce = async (): Promise<void> => {
    const { resigner } = await startChunkedResigning(
      {
        method: "PUT",
        host: "bench.mrap.accesspoint.s3-global.amazonaws.com",
        path: "/upload",
        query: {},
        headers: new Map([["x-amz-decoded-content-length", String(uploadV4a.decodedLength)]]),
        clientSignedHeaders: ["x-amz-decoded-content-length"],
        signContentLength: true,
        payloadHash: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
        service: "s3",
        region: "*",
        algorithm: "AWS4-ECDSA-P256-SHA256",
        credentials,
        now: new Date("2026-01-01T00:00:00Z"),
      },
      { trailer: false, maxChunkBytes: 16 * 1024 * 1024, decodedContentLength: uploadV4a.decodedLength },
    );
    for (const piece of piecesV4a) {
      const out = await resigner.push(piece);
      if (!out.ok) throw new Error(out.error);
    }
    const end = resigner.finish();
    if (!end.ok) throw new Error(end.error);
  };
  await resignV4aOnce();

  // STREAMED path through ExtProcStream (informational: adds the per-message response building).
  const chunked = scenarioByName("chunked-1m");
  const chunkedHeaders = decodeRequest(encodeRequest(headersRequest({ ...chunked.head, headers: chunked.head.headers.map(([k, v]) => [k, k === "x-amz-decoded-content-length" ? String(upload.decodedLength) : k === "content-length" ? String(upload.encodedLength) : v] as const) }, false)));
  const chunkedMessages = pieces.map((piece, i) => decodeRequest(encodeRequest({ request_body: { body: piece, end_of_stream: i === pieces.length - 1 } })));
  const streamOnce = async (): Promise<void> => {
    const st = new ExtProcStream(ctx);
    const h = await st.handle(chunkedHeaders);
    if (h.mode_override?.request_body_mode !== "STREAMED") throw new Error("chunked upload was not answered with STREAMED");
    for (const m of chunkedMessages) {
      const r = await st.handle(m);
      if (!r.request_body) throw new Error("streamed body message was refused");
    }
  };
  await streamOnce();

  const events = [256, 3200, 64 * 1024].map((size) => eventStreamBench(size));
  const chainStringToSign = `AWS4-HMAC-SHA256-PAYLOAD\n20260101T000000Z\n20260101/eu-west-1/transcribe/aws4_request\n${"a".repeat(64)}\n${"b".repeat(64)}\n${"c".repeat(64)}`;
  const hmacKeyBytes = createHash("sha256").update("bench signing key").digest();
  const hmacKeyObject = createSecretKey(hmacKeyBytes);
  const hmacBlocks = new HmacSha256(hmacKeyBytes);
  for (const e of events) await e.resignOnce();

  return compare(
    [
      {
        name: "sha256-raw-64KiB",
        bytesPerOp: k64.length,
        run: (n) => {
          for (let i = 0; i < n; i++) createHash("sha256").update(k64).digest("hex");
        },
      },
      // The CRC32 of an event-stream message, as the SDK codec computes it (smithy's Crc32), as
      // node:zlib does and as the re-signer does, beside the SHA-256 of the same 64 KiB.
      {
        name: "crc32-smithy-64KiB (@smithy/core/checksum Crc32)",
        bytesPerOp: k64.length,
        run: (n) => {
          for (let i = 0; i < n; i++) {
            const c = new Crc32();
            c.update(k64);
            c.digestSync();
          }
        },
      },
      {
        name: "crc32-zlib-64KiB (node:zlib crc32)",
        bytesPerOp: k64.length,
        run: (n) => {
          for (let i = 0; i < n; i++) crc32(k64);
        },
      },
      {
        name: `crc32-resigner-64KiB (src/sigv4/crc32.ts: ${nativeCrc32 ? "@node-rs/crc32" : "node:zlib fallback"})`,
        bytesPerOp: k64.length,
        run: (n) => {
          for (let i = 0; i < n; i++) resignerCrc32(k64);
        },
      },
      // A chain signature (HMAC-SHA256 of a ~260-byte string to sign under a 32-byte signing key),
      // as node:crypto's createHmac makes it and as the re-signers do (src/sigv4/hmacSha256.ts).
      {
        name: "hmac-createHmac (node:crypto createHmac, KeyObject key)",
        bytesPerOp: 0,
        run: (n) => {
          for (let i = 0; i < n; i++) createHmac("sha256", hmacKeyObject).update(chainStringToSign, "utf8").digest("hex");
        },
      },
      {
        name: "hmac-HmacSha256 (src/sigv4/hmacSha256.ts: two one-shot hashes)",
        bytesPerOp: 0,
        run: (n) => {
          for (let i = 0; i < n; i++) hmacBlocks.hex(chainStringToSign);
        },
      },
      {
        name: "sha256-raw-1MiB",
        bytesPerOp: m1.length,
        run: (n) => {
          for (let i = 0; i < n; i++) createHash("sha256").update(m1).digest("hex");
        },
      },
      {
        name: "buffered-body-1MiB (ExtProcStream: hash + sign)",
        bytesPerOp: jsonBody.length,
        prepare: prepareStreams,
        run: async (n) => {
          for (let i = 0; i < n; i++) {
            const r = await (ready[i] as ExtProcStream).handle(bodyMsg);
            if (!r.request_body?.response?.header_mutation) throw new Error("buffered body was not signed");
          }
        },
      },
      {
        name: "chunk-resigner-16MiB (AwsChunkedResigner, 64 KiB chunks)",
        bytesPerOp: upload.decodedLength,
        run: async (n) => {
          for (let i = 0; i < n; i++) await resignOnce();
        },
      },
      {
        name: "chunk-resigner-v4a-16MiB (AwsChunkedResigner, SigV4A ECDSA, 64 KiB chunks)",
        bytesPerOp: uploadV4a.decodedLength,
        run: async (n) => {
          for (let i = 0; i < n; i++) await resignV4aOnce();
        },
      },
      // Each event row beside raw SHA-256 of one of its messages' payloads (64 KiB: the row above).
      ...events.flatMap((e) => [
        ...(e.payload.length === k64.length ? [] : [{
          name: `sha256-raw-${e.label}`,
          bytesPerOp: e.payload.length,
          run: (n: number) => {
            for (let i = 0; i < n; i++) createHash("sha256").update(e.payload).digest("hex");
          },
        }]),
        {
          name: `event-resigner-${e.label} (EventStreamResigner, ${e.messages} messages of ${e.label})`,
          bytesPerOp: e.payloadBytes,
          run: async (n: number) => {
            for (let i = 0; i < n; i++) await e.resignOnce();
          },
        },
      ]),
      {
        name: "streamed-body-16MiB (ExtProcStream: re-sign + answers)",
        bytesPerOp: upload.decodedLength,
        run: async (n) => {
          for (let i = 0; i < n; i++) await streamOnce();
        },
      },
    ],
    { warmupMs: 1500, batchMs: 100, batches: 15 },
  );
}

async function main(): Promise<void> {
  const signing = await signingBenchmarks();
  const breakdown = await breakdownBenchmarks();
  const hashing = await hashingBenchmarks();
  process.stdout.write(`${JSON.stringify({ signing, breakdown, hashing })}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`micro: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
