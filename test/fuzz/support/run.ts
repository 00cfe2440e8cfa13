import type { ProcessingRequest__Output } from "../../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { SigningContext } from "../../../src/extproc/context.js";
import { ExtProcStream } from "../../../src/extproc/stream.js";
import { kindOfMessage, type HeaderSpec } from "./messages.js";
import type { TranscriptEntry } from "./oracle.js";

/** Longest countersign may take to answer one message in-process before the fuzz calls it a hang. */
export const MESSAGE_DEADLINE_MS = 2_000;

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** Feeds the messages, in order, to one ExtProcStream; one transcript entry per message. */
export async function runStream(ctx: SigningContext, msgs: ReadonlyArray<{ msg: ProcessingRequest__Output; headers?: readonly HeaderSpec[] }>): Promise<TranscriptEntry[]> {
  const stream = new ExtProcStream(ctx);
  const transcript: TranscriptEntry[] = [];
  for (const [i, m] of msgs.entries()) {
    const response = await withDeadline(stream.handle(m.msg), MESSAGE_DEADLINE_MS, `message ${i} (${kindOfMessage(m.msg)})`);
    transcript.push({ kind: kindOfMessage(m.msg), ...(m.headers ? { headers: m.headers } : {}), response });
  }
  return transcript;
}
