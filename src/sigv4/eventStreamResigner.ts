/**
 * Re-signs a signed event stream in flight (x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-EVENTS:
 * Transcribe streaming, Bedrock's bidirectional streams, Lex streaming).
 *
 * The body is a sequence of event-stream messages. Each one the client sends is an envelope:
 *
 *   prelude (total length, headers length, prelude CRC32) · headers · payload · message CRC32
 *   headers: `:date` (timestamp) and `:chunk-signature` (binary, 32 bytes)
 *   payload: the inner event, itself an encoded event-stream message, forwarded byte for byte
 *
 * and the stream ends with one envelope whose payload is empty. Each `:chunk-signature` chains
 * from the one before it (the first from the request's seed signature) over the `:date` header
 * and the payload; the string to sign and the HMAC are @smithy/signature-v4's own event signing
 * (`EventMessageSigner`, built by `startEventStreamResigning`). Framing and CRCs are
 * @smithy/core's EventStreamCodec, the codec the AWS SDK itself uses.
 *
 * The client's `:date` is kept: the signature covers it, AWS reads the message's time from it, and
 * a timestamp is always 8 bytes, so with a 32-byte signature each re-signed envelope has exactly
 * the client's length (checked for every message). Memory is bounded by one message: input may
 * be split anywhere, several messages may come in one piece, and at most one incomplete message is
 * held. Pure apart from the signer it is given: no I/O.
 */
import { EventStreamCodec } from "@smithy/core/event-streams";
import type { MessageHeaderValue } from "@smithy/types";
import { crc32 } from "node:zlib";
import type { ResignResult } from "./awsChunkedResigner.js";

/** Signs one event-stream message whose only signed header is its `:date`, chaining from `priorSignature`. */
export interface EventMessageSigner {
  /** The message's new signature, 64 lower-case hex characters. */
  sign(date: Date, payload: Uint8Array, priorSignature: string): Promise<string>;
}

export interface EventStreamParams {
  /** The re-signed request's signature: the first message chains from it. */
  readonly seedSignature: string;
  readonly signer: EventMessageSigner;
  /** Largest message accepted (held in memory until it is complete). */
  readonly maxMessageBytes: number;
}

/** The event-stream format's own limit on one message (prelude to message CRC). */
export const EVENT_STREAM_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Prelude: total length, headers length, prelude CRC; then at least the message CRC. */
const PRELUDE_BYTES = 12;
const MIN_MESSAGE_BYTES = 16;
const SIGNATURE_BYTES = 32;
const H_DATE = ":date";
const H_SIGNATURE = ":chunk-signature";

const codec = new EventStreamCodec(
  (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"),
  (text) => Buffer.from(text, "utf8"),
);

export class EventStreamResigner {
  private previous: string;
  /**
   * The current, incomplete message: its pieces so far, views of the input (copied once, joined,
   * when the message is complete; a view keeps at most one input piece alive besides).
   */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** The current message's total length, once its prelude has been read (0 before). */
  private expected = 0;
  private done = false;
  private error: string | undefined;
  /** Messages re-signed so far (the final empty one included). */
  signaturesComputed = 0;
  /** Payload bytes hashed so far. */
  bytesHashed = 0;
  /** Bytes of the current, incomplete message held in memory. */
  heldBytes = 0;

  constructor(private readonly p: EventStreamParams) {
    this.previous = p.seedSignature;
  }

  /**
   * Feeds the next piece of the body; resolves to the bytes that may be forwarded now. The piece
   * must not be changed afterwards: part of it may be held until its message is complete.
   */
  async push(input: Buffer): Promise<ResignResult> {
    if (this.error !== undefined) return this.failed();
    const out: Buffer[] = [];
    let i = 0;
    while (i < input.length) {
      if (this.done) return this.fail("bytes follow the final empty message");
      if (this.pendingBytes === 0 && input.length - i >= PRELUDE_BYTES) {
        // A message that starts in this piece: read its prelude in place, and re-sign it without a
        // copy when the whole message is here.
        const total = this.checkPrelude(input.subarray(i, i + PRELUDE_BYTES));
        if (total === undefined) return this.failed();
        if (input.length - i >= total) {
          const r = await this.resign(input.subarray(i, i + total));
          if (!r.ok) return r;
          out.push(r.out);
          i += total;
          continue;
        }
        this.expected = total;
      }
      const need = (this.expected === 0 ? PRELUDE_BYTES : this.expected) - this.pendingBytes;
      const take = Math.min(need, input.length - i);
      this.pending.push(input.subarray(i, i + take));
      this.pendingBytes += take;
      this.heldBytes = this.pendingBytes;
      i += take;
      if (this.expected === 0) {
        if (this.pendingBytes < PRELUDE_BYTES) break;
        const total = this.checkPrelude(Buffer.concat(this.pending, this.pendingBytes));
        if (total === undefined) return this.failed();
        this.expected = total;
      }
      if (this.pendingBytes === this.expected) {
        const message = Buffer.concat(this.pending, this.pendingBytes);
        this.pending = [];
        this.pendingBytes = 0;
        this.expected = 0;
        this.heldBytes = 0;
        const r = await this.resign(message);
        if (!r.ok) return r;
        out.push(r.out);
      }
    }
    return { ok: true, out: out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out) };
  }

  /** Call at end of stream: the final empty message must have come, and nothing after it. */
  finish(): ResignResult {
    if (this.error !== undefined) return this.failed();
    if (!this.done) {
      return this.fail(this.pendingBytes > 0 ? `body ended inside a message (${this.pendingBytes} of its bytes received)` : "body ended without the final empty message");
    }
    return { ok: true, out: Buffer.alloc(0) };
  }

  /** The message's total length from a prelude whose CRC is right, or undefined (failed). */
  private checkPrelude(prelude: Buffer): number | undefined {
    // The codec checks the prelude too, but only once the whole message is here: a corrupt length
    // must not make countersign wait for (and hold) up to the size cap first.
    if (crc32(prelude.subarray(0, 8)) !== prelude.readUInt32BE(8)) {
      this.fail("message prelude CRC does not match");
      return undefined;
    }
    const total = prelude.readUInt32BE(0);
    const headers = prelude.readUInt32BE(4);
    if (total < MIN_MESSAGE_BYTES) {
      this.fail(`message length ${total} is shorter than the ${MIN_MESSAGE_BYTES}-byte minimum`);
      return undefined;
    }
    if (total > this.p.maxMessageBytes) {
      this.fail(`message of ${total} bytes is over the ${this.p.maxMessageBytes}-byte limit`);
      return undefined;
    }
    if (headers > total - MIN_MESSAGE_BYTES) {
      this.fail(`headers length ${headers} does not fit in a message of ${total} bytes`);
      return undefined;
    }
    return total;
  }

  /** One complete client envelope → the same envelope with a new `:chunk-signature`. */
  private async resign(message: Buffer): Promise<ResignResult> {
    let decoded: ReturnType<EventStreamCodec["decode"]>;
    try {
      decoded = codec.decode(message);
    } catch (err) {
      return this.fail(`message is corrupt (${err instanceof Error ? err.message : String(err)})`);
    }
    const { headers, body } = decoded;
    const date = headers[H_DATE];
    const signature = headers[H_SIGNATURE];
    if (date === undefined) return this.fail(`message has no ${H_DATE} header`);
    if (date.type !== "timestamp") return this.fail(`${H_DATE} header is a ${date.type}, not a timestamp`);
    if (Number.isNaN(date.value.getTime())) return this.fail(`${H_DATE} header is not a valid time`);
    if (signature === undefined) return this.fail(`message has no ${H_SIGNATURE} header`);
    if (signature.type !== "binary" || signature.value.byteLength !== SIGNATURE_BYTES) {
      return this.fail(`${H_SIGNATURE} header is not ${SIGNATURE_BYTES} bytes of binary`);
    }
    for (const name of Object.keys(headers)) {
      if (name !== H_DATE && name !== H_SIGNATURE) return this.fail(`message carries header "${clip(name)}" besides ${H_DATE} and ${H_SIGNATURE}`);
    }
    const newSignature = await this.p.signer.sign(date.value, body, this.previous);
    const sigHeader: MessageHeaderValue = { type: "binary", value: Buffer.from(newSignature, "hex") };
    const encoded = codec.encode({ headers: { [H_DATE]: date, [H_SIGNATURE]: sigHeader }, body });
    if (encoded.byteLength !== message.length) {
      // Both headers have fixed sizes, so only a header block of another length gets here: the
      // decoded headers keep the last of each name, and a repeated (or cut) one was dropped.
      return this.fail(`message headers are not exactly one ${H_DATE} and one ${H_SIGNATURE} (duplicate or truncated header; the re-signed message would be ${encoded.byteLength} bytes, not the client's ${message.length})`);
    }
    this.previous = newSignature;
    this.signaturesComputed++;
    this.bytesHashed += body.byteLength;
    if (body.byteLength === 0) this.done = true;
    return { ok: true, out: Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength) };
  }

  private fail(message: string): ResignResult {
    this.error = message;
    this.pending = [];
    this.pendingBytes = 0;
    this.heldBytes = 0;
    return { ok: false, error: message };
  }

  private failed(): ResignResult {
    return { ok: false, error: this.error ?? "" };
  }
}

function clip(s: string): string {
  return s.length > 24 ? `${s.slice(0, 24)}…` : s;
}
