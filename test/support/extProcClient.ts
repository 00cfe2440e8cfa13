/**
 * A small Envoy-like ext_proc client for tests and benchmarks: it speaks to an ext_proc server the
 * way Envoy does (header values in raw_value only, pseudo-headers, end_of_stream, BUFFERED body
 * after a mode_override) and applies the answers with Envoy's semantics (overwrite, raw_value).
 * The full Envoy emulator lives in test/emulator; this is the minimum for protocol-level tests.
 */
import * as grpc from "@grpc/grpc-js";
import type { ProcessingRequest } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { ProcessingResponse__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { loadExtProcProtos } from "../../src/extproc/protos.js";

export interface TestRequest {
  method: string;
  authority: string;
  path: string;
  scheme?: "https" | "http";
  /** Lower-case names; repeated names allowed. */
  headers: Array<[string, string]>;
  body?: Buffer;
}

export type ExchangeResult =
  | {
      kind: "forwarded";
      /** The request as Envoy would send it upstream after applying the mutations. */
      request: { method: string; authority: string; path: string; headers: Array<[string, string]>; body: Buffer };
      responses: ProcessingResponse__Output[];
      bodyMode: "NONE" | "BUFFERED";
    }
  | { kind: "refused"; status: number; body: string; headers: Array<[string, string]>; responses: ProcessingResponse__Output[] };

export function connectExtProc(address: string): ExternalProcessorClient {
  const protos = loadExtProcProtos();
  return new protos.envoy.service.ext_proc.v3.ExternalProcessor(address, grpc.credentials.createInsecure());
}

function headerMap(req: TestRequest): ProcessingRequest["request_headers"] {
  const all: Array<[string, string]> = [
    [":method", req.method],
    [":path", req.path],
    [":authority", req.authority],
    [":scheme", req.scheme ?? "https"],
    ...req.headers,
  ];
  return {
    headers: { headers: all.map(([key, v]) => ({ key, raw_value: Buffer.from(v, "utf8") })) },
    end_of_stream: !req.body || req.body.length === 0,
  };
}

/** One request through one Process stream, Envoy style. */
export function exchange(client: ExternalProcessorClient, req: TestRequest, opts: { allowModeOverride?: boolean } = {}): Promise<ExchangeResult> {
  const allowModeOverride = opts.allowModeOverride ?? true;
  return new Promise((resolve, reject) => {
    const call = client.Process();
    const responses: ProcessingResponse__Output[] = [];
    let headers: Array<[string, string]> = [[":method", req.method], [":path", req.path], [":authority", req.authority], ...req.headers];
    let bodyMode: "NONE" | "BUFFERED" = "NONE";
    let settled = false;
    const done = (r: ExchangeResult | Error): void => {
      if (settled) return;
      settled = true;
      call.end();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    const forward = (): void => {
      const pseudo = new Map(headers.filter(([k]) => k.startsWith(":")));
      done({
        kind: "forwarded",
        request: {
          method: pseudo.get(":method") as string,
          authority: pseudo.get(":authority") as string,
          path: pseudo.get(":path") as string,
          headers: headers.filter(([k]) => !k.startsWith(":")),
          body: req.body ?? Buffer.alloc(0),
        },
        responses,
        bodyMode,
      });
    };
    call.on("data", (res: ProcessingResponse__Output) => {
      responses.push(res);
      if (res.immediate_response) {
        const ir = res.immediate_response;
        done({
          kind: "refused",
          status: Number(statusNumber(ir.status?.code)),
          body: ir.body.toString("utf8"),
          headers: (ir.headers?.set_headers ?? []).map((h) => [h.header?.key ?? "", (h.header?.raw_value ?? Buffer.alloc(0)).toString("utf8")]),
          responses,
        });
        return;
      }
      const common = res.request_headers?.response ?? res.request_body?.response;
      if (common?.header_mutation) headers = applyMutation(headers, common.header_mutation);
      if (res.request_headers) {
        const wantsBody = allowModeOverride && res.mode_override?.request_body_mode === "BUFFERED";
        if (wantsBody && req.body && req.body.length > 0) {
          bodyMode = "BUFFERED";
          call.write({ request_body: { body: req.body, end_of_stream: true } });
          return;
        }
        forward();
        return;
      }
      if (res.request_body) {
        forward();
        return;
      }
      done(new Error(`unexpected ext_proc response: ${res.response}`));
    });
    call.on("error", (err) => done(err));
    call.on("end", () => done(new Error("ext_proc stream closed before answering (Envoy would continue UNMODIFIED)")));
    call.write({ request_headers: headerMap(req) });
  });
}

type Mutation = NonNullable<NonNullable<ProcessingResponse__Output["request_headers"]>["response"]>["header_mutation"];

export function applyMutation(headers: Array<[string, string]>, m: Mutation): Array<[string, string]> {
  let out = headers.slice();
  for (const name of m?.remove_headers ?? []) out = out.filter(([k]) => k !== name);
  for (const opt of m?.set_headers ?? []) {
    const key = opt.header?.key ?? "";
    const raw = opt.header?.raw_value;
    if (opt.header?.value && raw && raw.length > 0) throw new Error(`header ${key}: both value and raw_value set (Envoy fails the request)`);
    const value = raw && raw.length > 0 ? raw.toString("utf8") : "";
    if (opt.append?.value) out.push([key, value]);
    else {
      out = out.filter(([k]) => k !== key);
      out.push([key, value]);
    }
  }
  return out;
}

const STATUS_NUMBERS: Record<string, number> = {
  OK: 200, BadRequest: 400, Unauthorized: 401, Forbidden: 403, NotFound: 404, PayloadTooLarge: 413,
  InternalServerError: 500, NotImplemented: 501, BadGateway: 502, ServiceUnavailable: 503, GatewayTimeout: 504,
};

function statusNumber(code: unknown): number {
  if (typeof code === "number") return code;
  return STATUS_NUMBERS[String(code)] ?? Number.NaN;
}
