/**
 * A profile target for the in-process per-request path: `ExtProcStream` handling the headers-only
 * request_headers message as the server decodes it, plus encoding its answer (what countersign does
 * per request short of the gRPC transport), in a loop.
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/profileStream.ts [SECONDS]
 *   node --import tsx bench/topFunctions.ts /tmp/prof/<file>.cpuprofile 30
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { unlimitedAdmission } from "../src/extproc/admission.js";
import type { PolicySnapshot, SigningContext } from "../src/extproc/context.js";
import { loadExtProcProtos } from "../src/extproc/protos.js";
import { ExtProcStream } from "../src/extproc/stream.js";
import { parsePolicy } from "../src/policy/index.js";
import { BENCH_ACCESS_KEY_ID, BENCH_SECRET_ACCESS_KEY, decodeRequest, encodeRequest, headersRequest, scenarioByName } from "./scenarios.js";

const seconds = Number(process.argv[2] ?? 10);
const parsed = parsePolicy(readFileSync(join(import.meta.dirname, "policy.yaml"), "utf8"), "bench/policy.yaml");
if (!parsed.ok) throw new Error("bench/policy.yaml is invalid");
const snapshot: PolicySnapshot = { policy: parsed.policy, credentials: () => ({ ok: true, credentials: { accessKeyId: BENCH_ACCESS_KEY_ID, secretAccessKey: BENCH_SECRET_ACCESS_KEY } }) };
const ctx: SigningContext = { snapshot: () => snapshot, now: () => new Date(), maxHeaderBytes: 96 * 1024, admission: unlimitedAdmission() };
const s = scenarioByName("headers-unsigned");
const bytes = encodeRequest(headersRequest(s.head, s.headersEndOfStream));
const method = loadExtProcProtos().envoy.service.ext_proc.v3.ExternalProcessor.service.Process;

async function main(): Promise<void> {
  const end = performance.now() + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) {
      const answer = await new ExtProcStream(ctx).handle(decodeRequest(bytes));
      method.responseSerialize(answer);
    }
    n += 1000;
  }
  process.stdout.write(`${n} requests, ${((seconds * 1e6) / n).toFixed(1)} µs each (wall)\n`);
}

void main();
