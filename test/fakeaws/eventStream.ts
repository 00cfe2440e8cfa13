/**
 * Signed event streams (`x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-EVENTS`), as AWS reads
 * them, written from the spec (the `application/vnd.amazon.eventstream` framing and the event
 * signing rules) and sharing no code with `src/`:
 *
 *   message  = prelude (total length u32, headers length u32, CRC32 of those 8 bytes)
 *              headers, payload, CRC32 of everything before it (all big-endian)
 *   header   = name length u8, name, type u8, value (0/1 bool, 2 u8, 3 u16, 4 u32, 5 u64,
 *              6 bytes with a u16 length, 7 string with a u16 length, 8 timestamp u64 ms, 9 uuid)
 *
 * Every outer message of a signed stream carries exactly `:date` (timestamp) and
 * `:chunk-signature` (32 raw bytes), and its payload is one encoded inner event. Its signature is
 *
 *   HMAC(signing key for the :date's day,
 *        "AWS4-HMAC-SHA256-PAYLOAD\n<:date as YYYYMMDDTHHMMSSZ>\n<day>/<region>/<service>/aws4_request\n"
 *        + "<previous signature, hex>\n<hex sha256 of the encoded :date header>\n<hex sha256 of the payload>")
 *
 * chained from the request's own (seed) signature; the stream ends with a signed message whose
 * payload is empty, and nothing may follow it.
 */
import { crc32 } from "node:zlib";
import { credentialScope, formatAmzDate, hmacHex, sha256Hex, signaturesEqual } from "./verifier.js";

export const STREAMING_EVENTS_PAYLOAD = "STREAMING-AWS4-HMAC-SHA256-EVENTS";
export const EVENT_STRING_TO_SIGN_PREFIX = "AWS4-HMAC-SHA256-PAYLOAD";
export const EVENT_STREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream";

const PRELUDE_BYTES = 12;
const MIN_MESSAGE_BYTES = PRELUDE_BYTES + 4;
/** AWS caps one event-stream message at 16 MiB (payload) and 128 KiB of headers. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024 + 128 * 1024 + MIN_MESSAGE_BYTES;
const MAX_HEADERS_BYTES = 128 * 1024;

export type EventHeaderValue =
  | { type: "bool"; value: boolean }
  | { type: "byte"; value: number }
  | { type: "short"; value: number }
  | { type: "int"; value: number }
  | { type: "long"; value: bigint }
  | { type: "bytes"; value: Buffer }
  | { type: "string"; value: string }
  | { type: "timestamp"; value: Date }
  | { type: "uuid"; value: string };

export interface EventHeader {
  name: string;
  value: EventHeaderValue;
  /** The header exactly as it was on the wire (name length … value). */
  raw: Buffer;
}

export interface EventMessage {
  headers: EventHeader[];
  payload: Buffer;
  /** The whole message as received. */
  raw: Buffer;
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: string };

function crcOf(data: Uint8Array): number {
  return crc32(data) >>> 0;
}

/** Decodes the header block of one message. */
export function decodeHeaders(block: Buffer): DecodeResult<EventHeader[]> {
  const headers: EventHeader[] = [];
  let at = 0;
  const need = (n: number): boolean => at + n <= block.length;
  while (at < block.length) {
    const start = at;
    const nameLength = block[at] as number;
    at += 1;
    if (nameLength === 0 || !need(nameLength + 1)) return { ok: false, error: `header at byte ${start}: truncated or empty name` };
    const name = block.subarray(at, at + nameLength).toString("utf8");
    at += nameLength;
    const type = block[at] as number;
    at += 1;
    let value: EventHeaderValue;
    switch (type) {
      case 0:
      case 1:
        value = { type: "bool", value: type === 0 };
        break;
      case 2:
        if (!need(1)) return { ok: false, error: `header ${name}: truncated byte` };
        value = { type: "byte", value: block.readInt8(at) };
        at += 1;
        break;
      case 3:
        if (!need(2)) return { ok: false, error: `header ${name}: truncated short` };
        value = { type: "short", value: block.readInt16BE(at) };
        at += 2;
        break;
      case 4:
        if (!need(4)) return { ok: false, error: `header ${name}: truncated int` };
        value = { type: "int", value: block.readInt32BE(at) };
        at += 4;
        break;
      case 5:
        if (!need(8)) return { ok: false, error: `header ${name}: truncated long` };
        value = { type: "long", value: block.readBigInt64BE(at) };
        at += 8;
        break;
      case 6:
      case 7: {
        if (!need(2)) return { ok: false, error: `header ${name}: truncated length` };
        const length = block.readUInt16BE(at);
        at += 2;
        if (!need(length)) return { ok: false, error: `header ${name}: value runs past the header block` };
        const bytes = Buffer.from(block.subarray(at, at + length));
        at += length;
        value = type === 6 ? { type: "bytes", value: bytes } : { type: "string", value: bytes.toString("utf8") };
        break;
      }
      case 8:
        if (!need(8)) return { ok: false, error: `header ${name}: truncated timestamp` };
        value = { type: "timestamp", value: new Date(Number(block.readBigInt64BE(at))) };
        at += 8;
        break;
      case 9:
        if (!need(16)) return { ok: false, error: `header ${name}: truncated uuid` };
        value = { type: "uuid", value: block.subarray(at, at + 16).toString("hex") };
        at += 16;
        break;
      default:
        return { ok: false, error: `header ${name}: unknown value type ${type}` };
    }
    headers.push({ name, value, raw: Buffer.from(block.subarray(start, at)) });
  }
  return { ok: true, value: headers };
}

/** Encodes one header (the inverse of decodeHeaders). */
export function encodeHeader(name: string, value: EventHeaderValue): Buffer {
  const nameBytes = Buffer.from(name, "utf8");
  if (nameBytes.length === 0 || nameBytes.length > 255) throw new Error(`event header name '${name}' must be 1–255 bytes`);
  let body: Buffer;
  let type: number;
  switch (value.type) {
    case "bool":
      type = value.value ? 0 : 1;
      body = Buffer.alloc(0);
      break;
    case "byte":
      type = 2;
      body = Buffer.alloc(1);
      body.writeInt8(value.value);
      break;
    case "short":
      type = 3;
      body = Buffer.alloc(2);
      body.writeInt16BE(value.value);
      break;
    case "int":
      type = 4;
      body = Buffer.alloc(4);
      body.writeInt32BE(value.value);
      break;
    case "long":
      type = 5;
      body = Buffer.alloc(8);
      body.writeBigInt64BE(value.value);
      break;
    case "bytes":
    case "string": {
      type = value.type === "bytes" ? 6 : 7;
      const bytes = value.type === "bytes" ? value.value : Buffer.from(value.value, "utf8");
      body = Buffer.alloc(2 + bytes.length);
      body.writeUInt16BE(bytes.length);
      bytes.copy(body, 2);
      break;
    }
    case "timestamp":
      type = 8;
      body = Buffer.alloc(8);
      body.writeBigInt64BE(BigInt(value.value.getTime()));
      break;
    case "uuid":
      type = 9;
      body = Buffer.from(value.value, "hex");
      break;
  }
  return Buffer.concat([Buffer.from([nameBytes.length]), nameBytes, Buffer.from([type]), body]);
}

/** Encodes one message: prelude, prelude CRC, headers, payload, message CRC. */
export function encodeMessage(headers: ReadonlyArray<readonly [string, EventHeaderValue]>, payload: Uint8Array): Buffer {
  return frameMessage(Buffer.concat(headers.map(([n, v]) => encodeHeader(n, v))), payload);
}

/**
 * Frames an already encoded header block and a payload into one message (prelude, both CRCs).
 * The block is taken as is, so a test can frame headers `encodeHeader` would refuse to write.
 */
export function frameMessage(headerBlock: Uint8Array, payload: Uint8Array): Buffer {
  const total = PRELUDE_BYTES + headerBlock.length + payload.length + 4;
  const out = Buffer.alloc(total);
  out.writeUInt32BE(total, 0);
  out.writeUInt32BE(headerBlock.length, 4);
  out.writeUInt32BE(crcOf(out.subarray(0, 8)), 8);
  Buffer.from(headerBlock.buffer, headerBlock.byteOffset, headerBlock.byteLength).copy(out, PRELUDE_BYTES);
  Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).copy(out, PRELUDE_BYTES + headerBlock.length);
  out.writeUInt32BE(crcOf(out.subarray(0, total - 4)), total - 4);
  return out;
}

/** A string header's value, or undefined. */
export function stringHeader(message: EventMessage, name: string): string | undefined {
  const h = message.headers.find((x) => x.name === name);
  return h?.value.type === "string" ? h.value.value : undefined;
}

/** Decodes a whole buffer of messages (the inner event of a signed message is one message). */
export function decodeMessage(bytes: Buffer): DecodeResult<EventMessage> {
  const decoder = new EventStreamDecoder();
  const out = decoder.push(bytes);
  if (out.error !== undefined) return { ok: false, error: out.error };
  if (out.messages.length !== 1 || decoder.buffered !== 0) return { ok: false, error: `expected exactly one message in ${bytes.length} bytes` };
  return { ok: true, value: out.messages[0] as EventMessage };
}

/**
 * Splits a byte stream into messages, checking both CRCs and every length. After the first
 * error it stays failed (a stream with one bad frame has no trustworthy frame boundary after it).
 */
export class EventStreamDecoder {
  private pending: Buffer = Buffer.alloc(0);
  private failed: string | undefined;

  /** Bytes received but not yet part of a whole message. */
  get buffered(): number {
    return this.pending.length;
  }

  /** The whole messages completed by `chunk`, and the error that stopped decoding, if any. */
  push(chunk: Buffer): { messages: EventMessage[]; error?: string } {
    if (this.failed !== undefined) return { messages: [], error: this.failed };
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const messages: EventMessage[] = [];
    const fail = (error: string): { messages: EventMessage[]; error: string } => {
      this.failed = error;
      return { messages, error };
    };
    while (this.pending.length >= PRELUDE_BYTES) {
      const total = this.pending.readUInt32BE(0);
      const headersLength = this.pending.readUInt32BE(4);
      const preludeCrc = this.pending.readUInt32BE(8);
      const computed = crcOf(this.pending.subarray(0, 8));
      if (preludeCrc !== computed) return fail(`prelude CRC32 mismatch: message says ${hex8(preludeCrc)}, computed ${hex8(computed)}`);
      if (total < MIN_MESSAGE_BYTES || total > MAX_MESSAGE_BYTES) return fail(`message length ${total} is outside ${MIN_MESSAGE_BYTES}..${MAX_MESSAGE_BYTES}`);
      if (headersLength > MAX_HEADERS_BYTES || PRELUDE_BYTES + headersLength + 4 > total) return fail(`headers length ${headersLength} does not fit a ${total}-byte message`);
      if (this.pending.length < total) break;
      const raw = Buffer.from(this.pending.subarray(0, total));
      this.pending = this.pending.subarray(total);
      const messageCrc = raw.readUInt32BE(total - 4);
      const computedMessage = crcOf(raw.subarray(0, total - 4));
      if (messageCrc !== computedMessage) return fail(`message CRC32 mismatch: message says ${hex8(messageCrc)}, computed ${hex8(computedMessage)}`);
      const headers = decodeHeaders(raw.subarray(PRELUDE_BYTES, PRELUDE_BYTES + headersLength));
      if (!headers.ok) return fail(headers.error);
      messages.push({ headers: headers.value, payload: raw.subarray(PRELUDE_BYTES + headersLength, total - 4), raw });
    }
    return { messages };
  }

  /** Call at the end of the body: leftover bytes are a truncated message. */
  end(): DecodeResult<void> {
    if (this.failed !== undefined) return { ok: false, error: this.failed };
    if (this.pending.length > 0) return this.fail(`the body ends inside a message (${this.pending.length} bytes left over)`);
    return { ok: true, value: undefined };
  }

  private fail(error: string): { ok: false; error: string } {
    this.failed = error;
    return { ok: false, error };
  }
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** The string to sign of one event message. */
export function eventStringToSign(amzDate: string, scope: string, previousSignature: string, dateHeaderSha256Hex: string, payloadSha256Hex: string): string {
  return [EVENT_STRING_TO_SIGN_PREFIX, amzDate, scope, previousSignature, dateHeaderSha256Hex, payloadSha256Hex].join("\n");
}

export interface EventSigning {
  region: string;
  service: string;
  /** The SigV4 signing key for a day (`YYYYMMDD`): the message's own :date picks the day. */
  signingKeyFor(day: string): Buffer;
}

/**
 * The signature (hex) a message with this `:date` header (as encoded, `dateHeaderRaw`) and payload
 * must carry after `previousSignature`, and the string to sign it is the HMAC of.
 */
export function eventSignature(
  signing: EventSigning,
  previousSignature: string,
  date: Date,
  dateHeaderRaw: Uint8Array,
  payload: Uint8Array,
): { signature: string; stringToSign: string } {
  const amzDate = formatAmzDate(date);
  const day = amzDate.slice(0, 8);
  const stringToSign = eventStringToSign(amzDate, credentialScope(day, signing.region, signing.service), previousSignature, sha256Hex(dateHeaderRaw), sha256Hex(payload));
  return { signature: hmacHex(signing.signingKeyFor(day), stringToSign), stringToSign };
}

export interface EventChainOptions extends EventSigning {
  /** The signature of the request's head: the first message's previous signature. */
  seedSignature: string;
}

export type ChainFailureCode = "malformed-frame" | "missing-signature-headers" | "signature" | "after-final" | "missing-final";

export interface ChainFailure {
  code: ChainFailureCode;
  message: string;
  /** The string to sign the fake computed, for a signature mismatch. */
  stringToSign?: string;
  /** 0-based index of the message that failed. */
  messageIndex: number;
}

export interface VerifiedEvent {
  index: number;
  /** The message's payload: an encoded inner event, or empty for the final message. */
  payload: Buffer;
  signature: string;
  date: Date;
  final: boolean;
}

/**
 * Verifies one signed event stream as its bytes arrive: frames, then each message's
 * `:chunk-signature` against the chain, then the final empty message. The first failure sticks.
 */
export class EventStreamChainVerifier {
  private readonly decoder = new EventStreamDecoder();
  private previous: string;
  private index = 0;
  private finalSeen = false;
  private failure: ChainFailure | undefined;

  constructor(private readonly opts: EventChainOptions) {
    this.previous = opts.seedSignature;
  }

  get failed(): ChainFailure | undefined {
    return this.failure;
  }

  get messagesVerified(): number {
    return this.index;
  }

  get ended(): boolean {
    return this.finalSeen;
  }

  /** Feeds body bytes; returns the messages verified by them, or the failure. */
  push(chunk: Buffer): { ok: true; events: VerifiedEvent[] } | { ok: false; failure: ChainFailure } {
    if (this.failure) return { ok: false, failure: this.failure };
    const decoded = this.decoder.push(chunk);
    const events: VerifiedEvent[] = [];
    for (const message of decoded.messages) {
      const verified = this.verifyMessage(message);
      if (!verified.ok) return { ok: false, failure: verified.failure };
      events.push(verified.event);
    }
    if (decoded.error !== undefined) return { ok: false, failure: this.fail("malformed-frame", decoded.error) };
    return { ok: true, events };
  }

  /** The body ended: it must have ended exactly after the final empty message. */
  end(): { ok: true } | { ok: false; failure: ChainFailure } {
    if (this.failure) return { ok: false, failure: this.failure };
    const decoded = this.decoder.end();
    if (!decoded.ok) return { ok: false, failure: this.fail("malformed-frame", decoded.error) };
    if (!this.finalSeen) return { ok: false, failure: this.fail("missing-final", `the event stream ended after ${this.index} messages without the final signed empty message`) };
    return { ok: true };
  }

  private verifyMessage(message: EventMessage): { ok: true; event: VerifiedEvent } | { ok: false; failure: ChainFailure } {
    if (this.finalSeen) return { ok: false, failure: this.fail("after-final", "a message follows the final empty message") };
    const names = message.headers.map((h) => h.name).sort();
    const dateHeader = message.headers.find((h) => h.name === ":date");
    const signatureHeader = message.headers.find((h) => h.name === ":chunk-signature");
    if (
      names.length !== 2 ||
      dateHeader?.value.type !== "timestamp" ||
      signatureHeader?.value.type !== "bytes" ||
      signatureHeader.value.value.length !== 32
    ) {
      return {
        ok: false,
        failure: this.fail("missing-signature-headers", `a signed event message carries exactly :date (timestamp) and :chunk-signature (32 bytes); this one has ${names.join(", ") || "no headers"}`),
      };
    }
    const date = dateHeader.value.value;
    const { signature: expected, stringToSign } = eventSignature(this.opts, this.previous, date, dateHeader.raw, message.payload);
    const provided = signatureHeader.value.value.toString("hex");
    if (!signaturesEqual(expected, provided)) {
      const failure = this.fail("signature", `the signature of event message ${this.index} does not match`);
      failure.stringToSign = stringToSign;
      return { ok: false, failure };
    }
    this.previous = provided;
    const event: VerifiedEvent = { index: this.index, payload: message.payload, signature: provided, date, final: message.payload.length === 0 };
    this.index += 1;
    if (event.final) this.finalSeen = true;
    return { ok: true, event };
  }

  private fail(code: ChainFailureCode, message: string): ChainFailure {
    this.failure = { code, message, messageIndex: this.index };
    return this.failure;
  }
}
