/**
 * In-process harness for the credential integration tests: the real credential profiles
 * (src/credentials, through src/runtime's buildRuntime) behind a real ExtProcStream, requests fed
 * to it as Envoy would, and every signed request handed to the strict fake AWS on loopback, whose
 * independent verifier is the judge. Time is vitest's fake clock; I/O is real.
 */
import type { ProcessingResponse } from "../../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import type { ProcessingRequest__Output } from "../../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import { unlimitedAdmission } from "../../../src/extproc/admission.js";
import type { DecisionEvent, SigningContext } from "../../../src/extproc/context.js";
import { ExtProcStream } from "../../../src/extproc/stream.js";
import type { TestRequest } from "../../support/extProcClient.js";

export interface Forwarded {
  readonly kind: "forwarded";
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly headers: Array<[string, string]>;
  readonly body: Buffer;
  readonly bodyMode: "NONE" | "BUFFERED";
}

export interface Refused {
  readonly kind: "refused";
  readonly status: number;
  readonly body: string;
  readonly reason: string | undefined;
}

export type Outcome = Forwarded | Refused;

const BASE = { metadata_context: null, attributes: {}, observability_mode: false } as const;

function headersMessage(req: TestRequest): ProcessingRequest__Output {
  const all: Array<[string, string]> = [[":method", req.method], [":path", req.path], [":authority", req.authority], [":scheme", req.scheme ?? "https"], ...req.headers];
  return {
    ...BASE,
    request: "request_headers",
    request_headers: {
      headers: { headers: all.map(([key, v]) => ({ key, value: "", raw_value: Buffer.from(v, "utf8") })) },
      attributes: {},
      end_of_stream: !req.body || req.body.length === 0,
    },
  };
}

function bodyMessage(body: Buffer): ProcessingRequest__Output {
  return { ...BASE, request: "request_body", request_body: { body, end_of_stream: true } };
}

function text(v: Buffer | Uint8Array | string | null | undefined): string {
  if (v === null || v === undefined) return "";
  return typeof v === "string" ? v : Buffer.from(v).toString("utf8");
}

type Mutation = NonNullable<NonNullable<ProcessingResponse["request_headers"]>["response"]>["header_mutation"];

function apply(headers: Array<[string, string]>, m: Mutation): Array<[string, string]> {
  let out = headers.filter(([k]) => !(m?.remove_headers ?? []).includes(k));
  for (const opt of m?.set_headers ?? []) {
    const key = opt.header?.key ?? "";
    out = out.filter(([k]) => k !== key);
    out.push([key, text(opt.header?.raw_value)]);
  }
  return out;
}

/**
 * One request through one ExtProcStream. `betweenHeadersAndBody` runs after the headers were
 * answered and before the body is sent (only when countersign asked for the body): a test can
 * swap credentials there, as a refresh would while Envoy is still reading an upload.
 */
export async function exchangeInProcess(ctx: SigningContext, req: TestRequest, betweenHeadersAndBody?: () => Promise<void>): Promise<Outcome> {
  const stream = new ExtProcStream(ctx);
  try {
    let headers: Array<[string, string]> = [[":method", req.method], [":path", req.path], [":authority", req.authority], ...req.headers];
    let res = await stream.handle(headersMessage(req));
    let bodyMode: "NONE" | "BUFFERED" = "NONE";
    for (;;) {
      const ir = res.immediate_response;
      if (ir) {
        const reason = (ir.headers?.set_headers ?? []).find((h) => h.header?.key === "x-countersign-denial")?.header?.raw_value;
        return { kind: "refused", status: Number(ir.status?.code), body: text(ir.body), reason: reason === undefined ? undefined : text(reason) };
      }
      const common = res.request_headers?.response ?? res.request_body?.response;
      if (common?.header_mutation) headers = apply(headers, common.header_mutation);
      if (res.request_headers && res.mode_override?.request_body_mode === "BUFFERED" && req.body && req.body.length > 0) {
        bodyMode = "BUFFERED";
        await betweenHeadersAndBody?.();
        res = await stream.handle(bodyMessage(req.body));
        continue;
      }
      if (!res.request_headers && !res.request_body) throw new Error("unexpected ext_proc response");
      const pseudo = new Map(headers.filter(([k]) => k.startsWith(":")));
      return {
        kind: "forwarded",
        method: pseudo.get(":method") ?? "",
        authority: pseudo.get(":authority") ?? "",
        path: pseudo.get(":path") ?? "",
        headers: headers.filter(([k]) => !k.startsWith(":")),
        body: req.body ?? Buffer.alloc(0),
        bodyMode,
      };
    }
  } finally {
    stream.release();
  }
}

export function headerOf(o: Outcome, name: string): string | undefined {
  return o.kind === "forwarded" ? o.headers.find(([k]) => k === name)?.[1] : undefined;
}

export function keyIdOf(o: Outcome): string | undefined {
  return /Credential=([^/]+)\//.exec(headerOf(o, "authorization") ?? "")?.[1];
}

export interface TestContext {
  readonly ctx: SigningContext;
  readonly decisions: DecisionEvent[];
}

export function signingContext(snapshot: SigningContext["snapshot"]): TestContext {
  const decisions: DecisionEvent[] = [];
  return {
    decisions,
    ctx: { snapshot, now: () => new Date(), maxHeaderBytes: 96 * 1024, admission: unlimitedAdmission(), onDecision: (e) => decisions.push(e) },
  };
}

/** A deterministic stream of draws in [0, 1) (mulberry32), recorded so a test can check every delay. */
export function recordedRandom(seed: number): { readonly draws: number[]; next(): number } {
  let a = seed >>> 0;
  const draws: number[] = [];
  return {
    draws,
    next() {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
      draws.push(r);
      return r;
    },
  };
}
