/**
 * Wire helpers for the load generator: it sends pre-encoded ext_proc messages and only scans the
 * top level of each answer, so that almost all of its CPU goes to gRPC itself and the server, not
 * the client, is what the benchmark measures.
 *
 * Field numbers are those of envoy/service/ext_proc/v3/external_processor.proto and
 * envoy/extensions/filters/http/ext_proc/v3/processing_mode.proto.
 */

import { varintBytes, writeVarint } from "../src/extproc/protobufWire.js";

/** gRPC method path of the ExternalProcessor.Process bidi stream. */
export const PROCESS_METHOD = "/envoy.service.ext_proc.v3.ExternalProcessor/Process";

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** ProcessingRequest.request_body = 4 (HttpBody: body = 1, end_of_stream = 2). */
const REQUEST_BODY_FIELD = 4;

/** What one ProcessingResponse answers, read from its top-level fields only. */
export type ResponseKind = "request_headers" | "request_body" | "immediate_response" | "other";

export interface ScannedResponse {
  readonly kind: ResponseKind;
  /** mode_override.request_body_mode (0 NONE, 1 STREAMED, 2 BUFFERED), when present. */
  readonly requestBodyMode: number | undefined;
}

export const BODY_MODE_STREAMED = 1;
export const BODY_MODE_BUFFERED = 2;

const KIND_BY_FIELD: Record<number, ResponseKind> = { 1: "request_headers", 3: "request_body", 7: "immediate_response" };
const MODE_OVERRIDE_FIELD = 9;
const REQUEST_BODY_MODE_FIELD = 3;

interface Cursor {
  pos: number;
}

function readVarint(buf: Buffer, c: Cursor): number {
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (c.pos >= buf.length) throw new Error("truncated varint");
    const b = buf[c.pos++] as number;
    result += (b & 0x7f) * scale;
    if (b < 0x80) return result;
    scale *= 128;
  }
  throw new Error("varint longer than 10 bytes");
}

/** Visits the top-level fields of one protobuf message; `onLen` gets length-delimited payload bounds. */
function forEachField(buf: Buffer, start: number, end: number, onField: (field: number, wire: number, valueStart: number, valueEnd: number, varint: number) => void): void {
  const c: Cursor = { pos: start };
  while (c.pos < end) {
    const tag = readVarint(buf, c);
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    switch (wire) {
      case WIRE_VARINT: {
        const v = readVarint(buf, c);
        onField(field, wire, c.pos, c.pos, v);
        break;
      }
      case WIRE_LEN: {
        const len = readVarint(buf, c);
        const valueStart = c.pos;
        c.pos += len;
        if (c.pos > end) throw new Error("length-delimited field runs past the message");
        onField(field, wire, valueStart, c.pos, 0);
        break;
      }
      case WIRE_I64:
        c.pos += 8;
        break;
      case WIRE_I32:
        c.pos += 4;
        break;
      default:
        throw new Error(`unsupported wire type ${wire}`);
    }
  }
}

/** Reads which response this is and any request body mode override. Cheap: no full decode. */
export function scanResponse(buf: Buffer): ScannedResponse {
  let kind: ResponseKind = "other";
  let requestBodyMode: number | undefined;
  forEachField(buf, 0, buf.length, (field, wire, valueStart, valueEnd) => {
    const k = KIND_BY_FIELD[field];
    if (k !== undefined && wire === WIRE_LEN) kind = k;
    if (field === MODE_OVERRIDE_FIELD && wire === WIRE_LEN) {
      requestBodyMode = 0;
      forEachField(buf, valueStart, valueEnd, (inner, innerWire, _s, _e, v) => {
        if (inner === REQUEST_BODY_MODE_FIELD && innerWire === WIRE_VARINT) requestBodyMode = v;
      });
    }
  });
  return { kind, requestBodyMode };
}

/** Length of an encoded `request_body` ProcessingRequest carrying `bodyLength` bytes. */
export function requestBodyMessageLength(bodyLength: number, endOfStream: boolean): number {
  const inner = 1 + varintBytes(bodyLength) + bodyLength + (endOfStream ? 2 : 0);
  return 1 + varintBytes(inner) + inner;
}

/**
 * Encodes ProcessingRequest{request_body{body, end_of_stream}}; `fill` writes the body bytes at
 * the given offset of the returned buffer (so large bodies are written once, in place).
 */
export function encodeRequestBody(bodyLength: number, endOfStream: boolean, fill: (dst: Buffer, offset: number) => void): Buffer {
  const inner = 1 + varintBytes(bodyLength) + bodyLength + (endOfStream ? 2 : 0);
  const out = Buffer.allocUnsafe(1 + varintBytes(inner) + inner);
  let o = 0;
  out[o++] = (REQUEST_BODY_FIELD << 3) | WIRE_LEN;
  o = writeVarint(out, o, inner);
  out[o++] = (1 << 3) | WIRE_LEN;
  o = writeVarint(out, o, bodyLength);
  fill(out, o);
  o += bodyLength;
  if (endOfStream) {
    out[o] = (2 << 3) | WIRE_VARINT;
    out[o + 1] = 1;
  }
  return out;
}

export function encodeRequestBodyFrom(body: Buffer, endOfStream: boolean): Buffer {
  return encodeRequestBody(body.length, endOfStream, (dst, offset) => body.copy(dst, offset));
}

/**
 * An aws-chunked body (STREAMING-AWS4-HMAC-SHA256-PAYLOAD, no trailer) of `decodedLength` bytes in
 * `chunkSize` chunks with placeholder signatures, cut into request_body messages of `messageSize`
 * bytes. Messages are produced on demand, so a 1 GiB upload never sits in memory.
 */
export class AwsChunkedBody {
  readonly encodedLength: number;
  readonly messageCount: number;
  private readonly frame: Buffer;
  private readonly tailFrame: Buffer;
  private readonly fullChunks: number;
  private readonly finalFrame: Buffer;

  constructor(
    readonly decodedLength: number,
    readonly chunkSize: number,
    readonly messageSize: number,
    /** The client's chunk-signature field: 64 hex (SigV4), or a SigV4A signature padded with `*` to 144. */
    placeholder = "0123456789abcdef".repeat(4),
  ) {
    const data = Buffer.alloc(chunkSize, 0x61);
    this.frame = Buffer.concat([Buffer.from(`${chunkSize.toString(16)};chunk-signature=${placeholder}\r\n`, "latin1"), data, Buffer.from("\r\n")]);
    this.fullChunks = Math.floor(decodedLength / chunkSize);
    const rest = decodedLength - this.fullChunks * chunkSize;
    this.tailFrame =
      rest === 0
        ? Buffer.alloc(0)
        : Buffer.concat([Buffer.from(`${rest.toString(16)};chunk-signature=${placeholder}\r\n`, "latin1"), data.subarray(0, rest), Buffer.from("\r\n")]);
    this.finalFrame = Buffer.concat([this.tailFrame, Buffer.from(`0;chunk-signature=${placeholder}\r\n\r\n`, "latin1")]);
    this.encodedLength = this.fullChunks * this.frame.length + this.finalFrame.length;
    this.messageCount = Math.ceil(this.encodedLength / messageSize);
  }

  /** The i-th request_body message, encoded; the last one has end_of_stream. */
  message(i: number): Buffer {
    const start = i * this.messageSize;
    const len = Math.min(this.messageSize, this.encodedLength - start);
    return encodeRequestBody(len, i === this.messageCount - 1, (dst, offset) => this.copyRange(dst, offset, start, len));
  }

  /** The whole encoded body (only for small bodies). */
  bytes(): Buffer {
    const out = Buffer.allocUnsafe(this.encodedLength);
    this.copyRange(out, 0, 0, this.encodedLength);
    return out;
  }

  private copyRange(dst: Buffer, dstOffset: number, start: number, len: number): void {
    const framesEnd = this.fullChunks * this.frame.length;
    let p = start;
    let o = dstOffset;
    const end = start + len;
    while (p < end) {
      if (p < framesEnd) {
        const inFrame = p % this.frame.length;
        const n = Math.min(this.frame.length - inFrame, end - p, framesEnd - p);
        this.frame.copy(dst, o, inFrame, inFrame + n);
        p += n;
        o += n;
      } else {
        const inFinal = p - framesEnd;
        const n = end - p;
        this.finalFrame.copy(dst, o, inFinal, inFinal + n);
        p += n;
        o += n;
      }
    }
  }
}
