/**
 * One ext_proc stream over gRPC, the fuzz's way: write every message at once, half-close, and
 * collect what comes back, with a deadline. Unlike Envoy it does not wait for answers before
 * sending the next message; countersign answers in order regardless.
 */
import type * as grpc from "@grpc/grpc-js";
import type { ProcessingRequest__Output } from "../../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { ProcessingResponse__Output } from "../../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import type { ExternalProcessorClient } from "../../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { kindOfMessage, toWire, type HeaderSpec } from "./messages.js";
import type { TranscriptEntry } from "./oracle.js";

export interface GrpcStreamResult {
  readonly transcript: TranscriptEntry[];
  readonly responses: ProcessingResponse__Output[];
  /** gRPC status code the stream ended with (0 = OK). */
  readonly code: number;
}

export function runGrpcStream(
  client: ExternalProcessorClient,
  msgs: ReadonlyArray<{ msg: ProcessingRequest__Output; headers?: readonly HeaderSpec[] }>,
  deadlineMs = 5_000,
): Promise<GrpcStreamResult> {
  return new Promise((resolve, reject) => {
    const call = client.Process({ deadline: Date.now() + deadlineMs });
    const responses: ProcessingResponse__Output[] = [];
    call.on("data", (r: ProcessingResponse__Output) => responses.push(r));
    call.on("error", () => undefined); // the status event reports it
    call.on("status", (s: grpc.StatusObject) => {
      if (s.code === 4 /* DEADLINE_EXCEEDED */) {
        reject(new Error(`stream not finished within ${deadlineMs} ms: ${responses.length} of ${msgs.length} answers`));
        return;
      }
      resolve({
        responses,
        code: s.code,
        transcript: responses.map((response, i) => {
          const m = msgs[i];
          return { kind: m ? kindOfMessage(m.msg) : "none", ...(m?.headers ? { headers: m.headers } : {}), response };
        }),
      });
    });
    for (const m of msgs) call.write(toWire(m.msg));
    call.end();
  });
}
