/**
 * CPU-time comparison of the headers-only in-process path, for a busy machine: each variant's
 * user+system CPU (process.cpuUsage) per operation, interleaved batches, medians. Unlike wall time,
 * CPU time is not inflated by waiting for a core that other processes hold.
 *
 *   node --import tsx bench/cpuMicro.ts [BATCHES]
 */
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { unlimitedAdmission } from "../src/extproc/admission.js";
import type { PolicySnapshot, SigningContext } from "../src/extproc/context.js";
import { loadExtProcProtos } from "../src/extproc/protos.js";
import { ExtProcStream } from "../src/extproc/stream.js";
import { parsePolicy } from "../src/policy/index.js";
import { BENCH_ACCESS_KEY_ID, BENCH_SECRET_ACCESS_KEY, decodeRequest, encodeRequest, headersRequest, scenarioByName } from "./scenarios.js";

const credentials = { accessKeyId: BENCH_ACCESS_KEY_ID, secretAccessKey: BENCH_SECRET_ACCESS_KEY };
const parsed = parsePolicy(readFileSync(join(import.meta.dirname, "policy.yaml"), "utf8"), "bench/policy.yaml");
if (!parsed.ok) throw new Error("bench/policy.yaml is invalid");
const snapshot: PolicySnapshot = { policy: parsed.policy, credentials: () => ({ ok: true, credentials }) };
const ctx: SigningContext = { snapshot: () => snapshot, now: () => new Date(), maxHeaderBytes: 96 * 1024, admission: unlimitedAdmission() };
const s = scenarioByName("headers-unsigned");
const bytes = encodeRequest(headersRequest(s.head, s.headersEndOfStream));
const msg = decodeRequest(bytes);
const method = loadExtProcProtos().envoy.service.ext_proc.v3.ExternalProcessor.service.Process;
const [path, qs] = s.head.path.split("?") as [string, string];
const query = Object.fromEntries(qs.split("&").map((p) => p.split("=") as [string, string]));
const headers: Record<string, string> = { host: s.head.authority };
for (const [k, v] of s.head.headers) if (k.startsWith("x-amz-") || k.startsWith("amz-sdk")) headers[k] = v;
const bare = new SignatureV4({ service: "s3", region: "eu-west-1", credentials, sha256: Hash.bind(null, "sha256"), uriEscapePath: false, applyChecksum: false });

const variants: Record<string, () => Promise<unknown>> = {
  "bare smithy sign()": () => bare.sign({ method: "GET", protocol: "https:", hostname: s.head.authority, path, query, headers }, { signingDate: new Date() }),
  "ExtProcStream request_headers": () => new ExtProcStream(ctx).handle(msg),
  "decode + ExtProcStream + encode": async () => method.responseSerialize(await new ExtProcStream(ctx).handle(method.requestDeserialize(bytes))),
};

async function cpuPerOp(fn: () => Promise<unknown>, n: number): Promise<number> {
  const c0 = process.cpuUsage();
  for (let i = 0; i < n; i++) await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / n;
}

async function main(): Promise<void> {
  const batches = Number(process.argv[2] ?? 15);
  for (const fn of Object.values(variants)) await cpuPerOp(fn, 3000); // warm-up
  const samples = new Map<string, number[]>(Object.keys(variants).map((k) => [k, []]));
  for (let b = 0; b < batches; b++) for (const [name, fn] of Object.entries(variants)) samples.get(name)?.push(await cpuPerOp(fn, 2000));
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
  const base = med(samples.get("bare smithy sign()") ?? []);
  for (const [name, xs] of samples) process.stdout.write(`${name.padEnd(34)} ${med(xs).toFixed(1).padStart(7)} µs CPU/op  × ${(med(xs) / base).toFixed(2)} bare\n`);
}

void main();
