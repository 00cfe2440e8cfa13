/**
 * One request through one ext_proc Process stream, the way Envoy drives it, for every body mode
 * countersign can ask for: NONE (signed from the headers), BUFFERED (the whole body in one message,
 * signed in the body answer) and STREAMED (the body in pieces; each answer carries the re-signed
 * bytes so far, and their concatenation is what Envoy forwards). test/support/extProcClient.ts
 * covers NONE and BUFFERED only.
 */
import type { ProcessingResponse__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { applyMutation } from "../support/extProcClient.js";
import type { UpstreamRequest } from "../ops/support/requests.js";

export interface SoakRequest {
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  /** Lower-case names, pseudo-headers excluded. */
  readonly headers: Array<[string, string]>;
  readonly body: Buffer;
  /** STREAMED bodies are sent in pieces of at most this many bytes (Envoy's buffer slices). */
  readonly pieceBytes: number;
}

export type BodyMode = "NONE" | "BUFFERED" | "STREAMED";

export type Outcome =
  | { readonly kind: "forwarded"; readonly request: UpstreamRequest; readonly bodyMode: BodyMode }
  | { readonly kind: "refused"; readonly status: number; readonly body: string };

const STATUS_NUMBERS: Readonly<Record<string, number>> = {
  BadRequest: 400, Forbidden: 403, PayloadTooLarge: 413, InternalServerError: 500, NotImplemented: 501, ServiceUnavailable: 503,
};

function statusNumber(code: unknown): number {
  if (typeof code === "number") return code;
  return STATUS_NUMBERS[String(code)] ?? Number.NaN;
}

export function pieces(body: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += size) out.push(body.subarray(off, Math.min(body.length, off + size)));
  return out;
}

/** Drives one stream to its end; rejects on a protocol surprise (wrong answer kind, stream closed early, deadline). */
export function exchangeAnyMode(client: ExternalProcessorClient, req: SoakRequest, deadlineMs = 30_000): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const call = client.Process({ deadline: Date.now() + deadlineMs });
    let headers: Array<[string, string]> = [[":method", req.method], [":path", req.path], [":authority", req.authority], ...req.headers];
    let bodyMode: BodyMode = "NONE";
    let expectedBodyAnswers = 0;
    const forwardedBody: Buffer[] = [];
    let settled = false;
    const done = (r: Outcome | Error): void => {
      if (settled) return;
      settled = true;
      call.end();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const forward = (body: Buffer): void => {
      const pseudo = new Map(headers.filter(([k]) => k.startsWith(":")));
      const method = pseudo.get(":method");
      const authority = pseudo.get(":authority");
      const path = pseudo.get(":path");
      if (method === undefined || authority === undefined || path === undefined) {
        done(new Error("a pseudo-header went missing after the mutations"));
        return;
      }
      done({ kind: "forwarded", request: { method, authority, path, headers: headers.filter(([k]) => !k.startsWith(":")), body }, bodyMode });
    };
    const hasBody = req.body.length > 0;

    call.on("data", (res: ProcessingResponse__Output) => {
      if (res.immediate_response) {
        const ir = res.immediate_response;
        done({ kind: "refused", status: statusNumber(ir.status?.code), body: ir.body.toString("utf8") });
        return;
      }
      if (res.request_headers) {
        if (res.request_headers.response?.header_mutation) headers = applyMutation(headers, res.request_headers.response.header_mutation);
        const mode = res.mode_override?.request_body_mode;
        if (!hasBody || mode === undefined || mode === "NONE") {
          forward(req.body);
          return;
        }
        if (mode === "BUFFERED") {
          bodyMode = "BUFFERED";
          expectedBodyAnswers = 1;
          call.write({ request_body: { body: req.body, end_of_stream: true } });
          return;
        }
        if (mode === "STREAMED") {
          bodyMode = "STREAMED";
          const parts = pieces(req.body, req.pieceBytes);
          expectedBodyAnswers = parts.length;
          parts.forEach((p, i) => call.write({ request_body: { body: p, end_of_stream: i === parts.length - 1 } }));
          return;
        }
        done(new Error(`unexpected mode_override request_body_mode ${String(mode)}`));
        return;
      }
      if (res.request_body) {
        const common = res.request_body.response;
        if (bodyMode === "BUFFERED") {
          if (common?.header_mutation) headers = applyMutation(headers, common.header_mutation);
          forward(req.body);
          return;
        }
        if (bodyMode === "STREAMED") {
          const bm = common?.body_mutation;
          if (common?.header_mutation && ((common.header_mutation.set_headers?.length ?? 0) > 0 || (common.header_mutation.remove_headers?.length ?? 0) > 0)) {
            done(new Error("header mutation in a STREAMED body answer (Envoy drops it)"));
            return;
          }
          if (bm?.body) forwardedBody.push(bm.body);
          else if (!bm?.clear_body) {
            done(new Error("a STREAMED body answer without a body mutation (Envoy would forward the placeholder-signed piece)"));
            return;
          }
          expectedBodyAnswers--;
          if (expectedBodyAnswers === 0) forward(Buffer.concat(forwardedBody));
          return;
        }
        done(new Error("a body answer before any body was sent"));
        return;
      }
      done(new Error(`unexpected ext_proc answer: ${res.response}`));
    });
    call.on("error", (err) => done(err));
    call.on("end", () => done(new Error("ext_proc stream closed before the request was decided")));
    call.write({
      request_headers: {
        headers: { headers: [[":scheme", "https"] as [string, string], ...headers].map(([key, v]) => ({ key, raw_value: Buffer.from(v, "utf8") })) },
        end_of_stream: !hasBody,
      },
    });
  });
}
