/**
 * An in-memory ext_proc harness for unit tests of src/extproc: a SigningContext over a parsed
 * policy with fixed credentials (no env, no I/O), Envoy-shaped request messages, readers for the
 * answers, and a fake gRPC call for server.ts's stream loop. No sockets and no processes.
 */
import { EventEmitter } from "node:events";
import type { ProcessingResponse } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import { unlimitedAdmission, type Admission } from "../../src/extproc/admission.js";
import type { DecisionEvent, PolicySnapshot, SigningContext } from "../../src/extproc/context.js";
import type { Policy } from "../../src/policy/types.js";
import type { Credentials } from "../../src/sigv4/types.js";

export interface InProcessContext {
  readonly ctx: SigningContext;
  readonly decisions: DecisionEvent[];
}

/** A SigningContext whose every credentials entry resolves to `credentials` (or, undefined, is unusable); unlimited admission unless given one. */
export function inProcessContext(
  policy: Policy,
  credentials: Credentials | undefined,
  opts: { maxHeaderBytes?: number; now?: () => Date; admission?: Admission } = {},
): InProcessContext {
  const decisions: DecisionEvent[] = [];
  const snapshot: PolicySnapshot = {
    policy,
    credentials: (profile) =>
      credentials && policy.credentials.has(profile)
        ? { ok: true, credentials }
        : { ok: false, error: { cause: "unavailable", message: `no credentials for "${profile}" in this test` } },
  };
  return {
    decisions,
    ctx: {
      snapshot: () => snapshot,
      now: opts.now ?? (() => new Date()),
      maxHeaderBytes: opts.maxHeaderBytes ?? 96 * 1024,
      admission: opts.admission ?? unlimitedAdmission(),
      onDecision: (e) => decisions.push(e),
    },
  };
}

/** Headers an answer to request_headers or request_body sets, by name, as the text Envoy would write. */
export function headersSetBy(response: ProcessingResponse): Map<string, string> {
  const mutation = (response.request_headers ?? response.request_body)?.response?.header_mutation;
  const out = new Map<string, string>();
  for (const opt of mutation?.set_headers ?? []) out.set(opt.header?.key ?? "", Buffer.from(opt.header?.raw_value ?? "").toString("utf8"));
  return out;
}

/** Headers an answer to request_headers or request_body removes. */
export function headersRemovedBy(response: ProcessingResponse): string[] {
  return [...((response.request_headers ?? response.request_body)?.response?.header_mutation?.remove_headers ?? [])];
}

/** An immediate_response as a client sees it: status, headers and the AWS-style XML error's fields. */
export interface Refusal {
  readonly status: number;
  readonly headers: Map<string, string>;
  readonly details: string;
  readonly body: string;
  /** From the body's <Error>; undefined when the body is not that shape. */
  readonly code: string | undefined;
  readonly message: string | undefined;
  readonly requestId: string | undefined;
}

const XML_ENTITIES: Record<string, string> = { "&lt;": "<", "&gt;": ">", "&amp;": "&", "&apos;": "'", "&quot;": '"' };

/** The immediate_response of `response`, read; undefined when the request was let through. */
export function refusalOf(response: ProcessingResponse): Refusal | undefined {
  const ir = response.immediate_response;
  if (!ir) return undefined;
  const body = Buffer.from(ir.body ?? "").toString("utf8");
  const m = /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<Error><Code>([^<]*)<\/Code><Message>([^<]*)<\/Message><RequestId>([^<]*)<\/RequestId><\/Error>\n$/.exec(body);
  const text = (s: string | undefined): string | undefined => s?.replace(/&(?:lt|gt|amp|apos|quot);/g, (e) => XML_ENTITIES[e] as string);
  const headers = new Map<string, string>();
  for (const opt of ir.headers?.set_headers ?? []) headers.set(opt.header?.key ?? "", Buffer.from(opt.header?.raw_value ?? "").toString("utf8"));
  return { status: Number(ir.status?.code), headers, details: ir.details ?? "", body, code: text(m?.[1]), message: text(m?.[2]), requestId: text(m?.[3]) };
}

/**
 * A stand-in for grpc-js's ServerDuplexStream as extProcHandlers uses it: emit "data", "end",
 * "cancelled", "error" on it; read what the handler wrote and whether it ended or destroyed it.
 */
export class FakeProcessCall extends EventEmitter {
  readonly written: ProcessingResponse[] = [];
  cancelled = false;
  destroyed = false;
  ended = false;
  destroyError: Error | undefined;

  write(response: ProcessingResponse): boolean {
    this.written.push(response);
    return true;
  }

  end(): void {
    this.ended = true;
  }

  destroy(err?: Error): void {
    this.destroyed = true;
    this.destroyError = err;
  }
}
