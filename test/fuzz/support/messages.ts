/**
 * ext_proc request messages as Envoy would send them (and as Envoy never should), built as the
 * decoded `ProcessingRequest__Output` that ExtProcStream.handle takes in-process, and convertible
 * to the wire form a gRPC client writes.
 */
import type { HeaderMap__Output } from "../../../protos/generated/envoy/config/core/v3/HeaderMap.js";
import type { ProcessingRequest, ProcessingRequest__Output } from "../../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";

/** How a header's value travels: `raw_value` (Envoy ≥ 1.27), `value` (older Envoy), or both (never valid). */
export type HeaderEncoding = "raw" | "value" | "both";

export interface HeaderSpec {
  readonly key: string;
  readonly bytes: Buffer;
  readonly encoding: HeaderEncoding;
  /** With encoding "both": a `value` other than `bytes` (value and raw_value that disagree). */
  readonly value?: Buffer;
}

export type MessageKind =
  | "request_headers"
  | "request_body"
  | "request_trailers"
  | "response_headers"
  | "response_body"
  | "response_trailers"
  | "none";

export function header(key: string, value: string | Buffer, encoding: HeaderEncoding = "raw"): HeaderSpec {
  return { key, bytes: typeof value === "string" ? Buffer.from(value, "utf8") : value, encoding };
}

function headerValues(headers: readonly HeaderSpec[]): HeaderMap__Output {
  return {
    headers: headers.map((h) => ({
      key: h.key,
      // `value` is a proto string: bytes that are not UTF-8 would not survive it, so latin1 keeps one char per byte.
      value: h.encoding === "raw" ? "" : (h.value ?? h.bytes).toString("latin1"),
      raw_value: h.encoding === "value" ? Buffer.alloc(0) : h.bytes,
    })),
  };
}

const BASE = { metadata_context: null, attributes: {}, observability_mode: false } as const;

export function requestHeadersMessage(headers: readonly HeaderSpec[], endOfStream: boolean): ProcessingRequest__Output {
  return { ...BASE, request: "request_headers", request_headers: { headers: headerValues(headers), attributes: {}, end_of_stream: endOfStream } };
}

export function responseHeadersMessage(headers: readonly HeaderSpec[], endOfStream: boolean): ProcessingRequest__Output {
  return { ...BASE, request: "response_headers", response_headers: { headers: headerValues(headers), attributes: {}, end_of_stream: endOfStream } };
}

export function requestBodyMessage(body: Buffer, endOfStream: boolean): ProcessingRequest__Output {
  return { ...BASE, request: "request_body", request_body: { body, end_of_stream: endOfStream } };
}

export function responseBodyMessage(body: Buffer, endOfStream: boolean): ProcessingRequest__Output {
  return { ...BASE, request: "response_body", response_body: { body, end_of_stream: endOfStream } };
}

export function requestTrailersMessage(trailers: readonly HeaderSpec[]): ProcessingRequest__Output {
  return { ...BASE, request: "request_trailers", request_trailers: { trailers: headerValues(trailers) } };
}

export function responseTrailersMessage(trailers: readonly HeaderSpec[]): ProcessingRequest__Output {
  return { ...BASE, request: "response_trailers", response_trailers: { trailers: headerValues(trailers) } };
}

/** A message with none of the oneof members set. */
export function emptyMessage(): ProcessingRequest__Output {
  return { ...BASE };
}

export function kindOfMessage(msg: ProcessingRequest__Output): MessageKind {
  return msg.request ?? "none";
}

/** The same message as a gRPC client writes it (no oneof discriminator, no defaults). */
export function toWire(msg: ProcessingRequest__Output): ProcessingRequest {
  switch (msg.request) {
    case "request_headers":
      return { request_headers: msg.request_headers };
    case "response_headers":
      return { response_headers: msg.response_headers };
    case "request_body":
      return { request_body: msg.request_body };
    case "response_body":
      return { response_body: msg.response_body };
    case "request_trailers":
      return { request_trailers: msg.request_trailers };
    case "response_trailers":
      return { response_trailers: msg.response_trailers };
    default:
      return {};
  }
}

/** The standard request head of a test: pseudo-headers first, then the given headers. */
export function requestHead(
  method: string,
  authority: string,
  path: string,
  headers: ReadonlyArray<readonly [string, string]>,
  scheme = "https",
): HeaderSpec[] {
  return [
    header(":method", method),
    header(":path", path),
    header(":authority", authority),
    header(":scheme", scheme),
    ...headers.map(([k, v]) => header(k, v)),
  ];
}

/**
 * aws-chunked framing with placeholder chunk signatures, as an SDK writes it:
 * `<hex>;chunk-signature=<64 hex>\r\n<data>\r\n … 0;chunk-signature=…\r\n[trailer]\r\n`.
 */
/** `sig`: the client's signature field, 64 hex for SigV4 (the default), 144 padded characters for SigV4A. */
export function awsChunkedBody(chunks: readonly Buffer[], trailer: ReadonlyArray<readonly [string, string]> | undefined, sig = "f".repeat(64)): Buffer {
  const parts: Buffer[] = [];
  for (const c of chunks) {
    if (c.length === 0) continue;
    parts.push(Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`, "latin1"), c, Buffer.from("\r\n", "latin1"));
  }
  parts.push(Buffer.from(`0;chunk-signature=${sig}\r\n`, "latin1"));
  if (trailer) {
    for (const [k, v] of trailer) parts.push(Buffer.from(`${k}:${v}\r\n`, "latin1"));
    parts.push(Buffer.from(`x-amz-trailer-signature:${sig}\r\n`, "latin1"));
  }
  parts.push(Buffer.from("\r\n", "latin1"));
  return Buffer.concat(parts);
}

/** Splits `body` at the given cut points (any order, duplicates and out-of-range cuts ignored). */
export function splitAt(body: Buffer, cuts: readonly number[]): Buffer[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < body.length))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    pieces.push(body.subarray(start, p));
    start = p;
  }
  pieces.push(body.subarray(start));
  return pieces;
}
