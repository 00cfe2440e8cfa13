/**
 * CPU time per request_headers of two builds of countersign, loaded in one process and run in
 * interleaved batches (A B bare A B bare ...), beside the bare @smithy/signature-v4 sign() of the
 * same request; then CPU time per STREAMED upload (a 16 MiB chunk-signed body in 64 KiB pieces
 * through ExtProcStream, each answer serialized as that build's server serializes it, and framed
 * as grpc-js frames it), A B A B .... On a busy machine, CPU time in one process is the comparison that other work
 * disturbs least: both builds get the same cores, the same moments and the same noise.
 *
 *   mkdir -p .tmp/base && git archive <rev> | tar -x -C .tmp/base
 *   ln -s "$PWD/node_modules" .tmp/base/node_modules && (cd .tmp/base && npm run build)
 *   npm run build
 *   node --import tsx bench/compareBuilds.ts .tmp/base/dist dist [BATCHES]
 *
 * A build directory is a `npm run build` output (`dist/`, holding src/ and protos/). Both builds
 * get this tree's bench/policy.yaml and a SigningContext of today's shape (an `admission`, and
 * credentials as a Result): revisions older than that need their own harness.
 */
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { readFileSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { ProcessingResponse } from "../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import type * as AdmissionModule from "../src/extproc/admission.js";
import type { PolicySnapshot, SigningContext } from "../src/extproc/context.js";
import type * as ProtosModule from "../src/extproc/protos.js";
import type * as StreamModule from "../src/extproc/stream.js";
import type * as PolicyModule from "../src/policy/index.js";
import { AwsChunkedBody } from "./protocol.js";
import { BENCH_ACCESS_KEY_ID, BENCH_SECRET_ACCESS_KEY, CHUNK_SIZE, MESSAGE_SIZE, decodeRequest, encodeRequest, headersRequest, scenarioByName } from "./scenarios.js";

const ROOT = join(import.meta.dirname, "..");
const credentials = { accessKeyId: BENCH_ACCESS_KEY_ID, secretAccessKey: BENCH_SECRET_ACCESS_KEY };

interface Build {
  readonly name: string;
  readonly ctx: SigningContext;
  readonly ExtProcStream: typeof StreamModule.ExtProcStream;
  /** How the build's server serializes an answer (builds before answerSerializer: protobufjs alone). */
  readonly serialize: (answer: ProcessingResponse) => Buffer;
}

type Serializer = (answer: ProcessingResponse) => Buffer;

async function loadBuild(dir: string): Promise<Build> {
  const root = isAbsolute(dir) ? dir : resolve(ROOT, dir);
  const load = async <T>(path: string): Promise<T> => (await import(pathToFileURL(join(root, path)).href)) as T;
  const admission = await load<typeof AdmissionModule>("src/extproc/admission.js");
  const stream = await load<typeof StreamModule>("src/extproc/stream.js");
  const policy = await load<typeof PolicyModule>("src/policy/index.js");
  const protos = await load<typeof ProtosModule>("src/extproc/protos.js");
  const mutations = await load<{ answerSerializer?: (generic: Serializer) => Serializer }>("src/extproc/mutations.js");
  const generic: Serializer = protos.loadExtProcProtos().envoy.service.ext_proc.v3.ExternalProcessor.service.Process.responseSerialize;
  const parsed = policy.parsePolicy(readFileSync(join(ROOT, "bench/policy.yaml"), "utf8"), "bench/policy.yaml");
  if (!parsed.ok) throw new Error(`bench/policy.yaml is invalid for the build in ${dir}`);
  const snapshot: PolicySnapshot = { policy: parsed.policy, credentials: () => ({ ok: true, credentials }) };
  const ctx: SigningContext = { snapshot: () => snapshot, now: () => new Date(), maxHeaderBytes: 96 * 1024, admission: admission.unlimitedAdmission() };
  return { name: dir, ctx, ExtProcStream: stream.ExtProcStream, serialize: mutations.answerSerializer ? mutations.answerSerializer(generic) : generic };
}

async function cpuPerOp(fn: () => Promise<unknown>, n: number): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function main(): Promise<void> {
  const [dirA, dirB, batchArg] = process.argv.slice(2);
  if (!dirA || !dirB) throw new Error("usage: node --import tsx bench/compareBuilds.ts BUILD_A BUILD_B [BATCHES]");
  const batches = Number(batchArg ?? 10);
  const builds = [await loadBuild(dirA), await loadBuild(dirB)];

  const s = scenarioByName("headers-unsigned");
  const msg = decodeRequest(encodeRequest(headersRequest(s.head, s.headersEndOfStream)));
  for (const b of builds) {
    const probe = await new b.ExtProcStream(b.ctx).handle(msg);
    if (!probe.request_headers?.response?.header_mutation) throw new Error(`the build in ${b.name} did not sign the benchmark request`);
  }
  const [path, qs] = s.head.path.split("?") as [string, string | undefined];
  const query = Object.fromEntries((qs ?? "").split("&").filter(Boolean).map((p) => p.split("=") as [string, string]));
  const headers: Record<string, string> = { host: s.head.authority };
  for (const [k, v] of s.head.headers) if (k.startsWith("x-amz-") || k.startsWith("amz-sdk")) headers[k] = v;
  const bare = new SignatureV4({ service: "s3", region: "eu-west-1", credentials, sha256: Hash.bind(null, "sha256"), uriEscapePath: false, applyChecksum: false });

  const variants: Array<[string, () => Promise<unknown>]> = [
    ["bare smithy sign()", () => bare.sign({ method: s.head.method, protocol: "https:", hostname: s.head.authority, path, query, headers }, { signingDate: new Date() })],
    ...builds.map((b): [string, () => Promise<unknown>] => [`${b.name}: ExtProcStream`, () => new b.ExtProcStream(b.ctx).handle(msg)]),
  ];
  for (const [, fn] of variants) await cpuPerOp(fn, 3000); // warm-up
  const samples = variants.map((): number[] => []);
  for (let i = 0; i < batches; i++) for (const [j, [, fn]] of variants.entries()) (samples[j] as number[]).push(await cpuPerOp(fn, 1500));
  const med = samples.map(median);
  const bareUs = med[0] as number;
  for (const [j, [name]] of variants.entries()) {
    process.stdout.write(`${name.padEnd(40)} ${(med[j] as number).toFixed(1).padStart(7)} µs CPU/op  ${((med[j] as number) / bareUs).toFixed(2)} × bare\n`);
  }
  process.stdout.write(`B ÷ A: ${((med[2] as number) / (med[1] as number)).toFixed(3)}\n`);
  await compareStreamed(builds, batches);
}

/** The STREAMED upload comparison: CPU ms per 16 MiB body, median of interleaved batches. */
async function compareStreamed(builds: readonly Build[], batches: number): Promise<void> {
  const upload = new AwsChunkedBody(16 * 1024 * 1024, CHUNK_SIZE, MESSAGE_SIZE);
  const encoded = upload.bytes();
  const s = scenarioByName("chunked-1m");
  const lengths = (k: string, v: string): string => (k === "x-amz-decoded-content-length" ? String(upload.decodedLength) : k === "content-length" ? String(upload.encodedLength) : v);
  const head = decodeRequest(encodeRequest(headersRequest({ ...s.head, headers: s.head.headers.map(([k, v]) => [k, lengths(k, v)] as const) }, false)));
  const messages: Array<ReturnType<typeof decodeRequest>> = [];
  for (let o = 0; o < encoded.length; o += MESSAGE_SIZE) {
    const end = Math.min(o + MESSAGE_SIZE, encoded.length);
    messages.push(decodeRequest(encodeRequest({ request_body: { body: encoded.subarray(o, end), end_of_stream: end === encoded.length } })));
  }
  const once = async (b: Build): Promise<void> => {
    const st = new b.ExtProcStream(b.ctx);
    if ((await st.handle(head)).mode_override?.request_body_mode !== "STREAMED") throw new Error(`the build in ${b.name} did not stream the upload`);
    for (const m of messages) {
      const wire = b.serialize(await st.handle(m));
      const framed = Buffer.allocUnsafe(wire.length + 5); // grpc-js's frame: a fresh buffer and a copy
      wire.copy(framed, 5);
    }
  };
  for (const b of builds) await cpuPerOp(() => once(b), 5); // warm-up
  const samples = builds.map((): number[] => []);
  for (let i = 0; i < batches; i++) for (const [j, b] of builds.entries()) (samples[j] as number[]).push(await cpuPerOp(() => once(b), 3));
  const med = samples.map(median);
  for (const [j, b] of builds.entries()) process.stdout.write(`${`${b.name}: STREAMED 16 MiB`.padEnd(40)} ${((med[j] as number) / 1000).toFixed(1).padStart(7)} ms CPU/upload\n`);
  process.stdout.write(`STREAMED B ÷ A: ${((med[1] as number) / (med[0] as number)).toFixed(3)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`compareBuilds: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
