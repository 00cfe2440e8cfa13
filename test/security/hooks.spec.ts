/**
 * In-process robustness of the stream loop (src/extproc/server.ts + stream.ts): a failing decision
 * hook (metrics or logging) must neither lose the answer nor leave the stream's admission slot and
 * held bytes taken.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { Admission } from "../../src/extproc/admission.js";
import { loadExtProcProtos } from "../../src/extproc/protos.js";
import { startExtProcServer, type ExtProcServer } from "../../src/extproc/server.js";
import { runGrpcStream } from "../fuzz/support/grpcRun.js";
import { requestBodyMessage, requestHeadersMessage } from "../fuzz/support/messages.js";
import { headersSet } from "../fuzz/support/oracle.js";
import { inProcessContext } from "../support/extProcHarness.js";
import { policyFrom } from "../support/policyFrom.js";
import { REAL, SECURITY_POLICY } from "./support/fixtures.js";
import { bufferedPut, unsignedPayloadGet } from "./support/serveFixture.js";

const admission = new Admission({ maxConcurrentStreams: 10, maxHeldBytes: 1024 * 1024 });
let server: ExtProcServer;
let client: ExternalProcessorClient;
let hookCalls = 0;

beforeAll(async () => {
  const { ctx } = inProcessContext(policyFrom(SECURITY_POLICY), REAL);
  server = await startExtProcServer("127.0.0.1:0", {
    ...ctx,
    admission,
    onDecision: () => {
      hookCalls++;
      throw new Error("the metrics backend is broken");
    },
  });
  client = new (loadExtProcProtos().envoy.service.ext_proc.v3.ExternalProcessor)(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  await server?.shutdown(0);
});

describe("a decision hook that throws", () => {
  it("still answers headers-only and buffered requests with their signatures, and frees every stream slot and held byte", async () => {
    const signed = await runGrpcStream(client, [{ msg: requestHeadersMessage(unsignedPayloadGet(), true) }]);
    expect(headersSet(signed.responses[0]).get("authorization")).toMatch(/^AWS4-HMAC-SHA256 /);
    const buffered = await runGrpcStream(client, [
      { msg: requestHeadersMessage(bufferedPut(100), false) },
      { msg: requestBodyMessage(Buffer.alloc(100, 0x61), true) },
    ]);
    expect(headersSet(buffered.responses[1]).get("authorization")).toMatch(/^AWS4-HMAC-SHA256 /);
    expect(hookCalls).toBe(2);
    for (let i = 0; i < 50 && admission.activeStreams > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect([admission.activeStreams, admission.heldBytes]).toEqual([0, 0]);
  });
});
