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
 * from the one before it (the first from the request's seed signature):
 *
 *   HMAC(signing key, AWS4-HMAC-SHA256-PAYLOAD \n <message time> \n <scope of the message's day>
 *        \n <prior signature> \n <sha256(encoded :date header)> \n <sha256(payload)>)
 *
 * (@smithy/signature-v4's `signEvent`, the SDK's own event signer, builds the same string; the
 * tests check both against an independent checker). It is computed synchronously with node:crypto, the signing key imported
 * once, as the aws-chunked re-signer does: no promise step per message. Framing and CRCs are
 * @smithy/core's EventStreamCodec, the codec the AWS SDK itself uses: every message is decoded and
 * both its CRCs checked by it before anything is signed or forwarded.
 *
 * The client's `:date` is kept: the signature covers it, AWS reads the message's time from it, and
 * a timestamp is always 8 bytes, so with a 32-byte signature each re-signed envelope has exactly
 * the client's length (the header block must be the codec's length for one of each). Only the 32
 * signature bytes and the message CRC change, so the re-signed envelope is the client's bytes
 * with the new signature written where the codec decoded the old one and the message CRC
 * recomputed (node:zlib's crc32, which smithy's Crc32 also wraps): prelude, prelude CRC, header
 * order, `:date` and payload are untouched.
 *
 * Memory is bounded by one message: input may be split anywhere, several messages may come in one
 * piece, and at most one incomplete message is held. Pure apart from the signing-key look-up for a
 * message dated on another day than the request: no I/O.
 */
import { EventStreamCodec } from "@smithy/core/event-streams";
import type { MessageHeaderValue } from "@smithy/types";
import { createHmac, createSecretKey, hash, type KeyObject } from "node:crypto";
import { crc32 } from "node:zlib";
import type { ResignResult } from "./awsChunkedResigner.js";
import type { SignatureChainSeed } from "./types.js";

export interface EventStreamParams {
  /** The re-signed request's signature, date, scope and signing key: the first message chains from it. */
  readonly seed: SignatureChainSeed;
  /**
   * The signing key for another day of the same region and service (`YYYYMMDD`), for a message
   * whose `:date` is not on the request's day (a stream open across midnight UTC).
   */
  readonly signingKeyFor: (shortDate: string) => Promise<Uint8Array>;
  /** Largest message accepted (held in memory until it is complete). */
  readonly maxMessageBytes: number;
}

/** The event-stream format's own limit on one message (prelude to message CRC). */
export const EVENT_STREAM_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Prelude: total length, headers length, prelude CRC; then at least the message CRC. */
const PRELUDE_BYTES = 12;
const MIN_MESSAGE_BYTES = 16;
const CRC_BYTES = 4;
const SIGNATURE_BYTES = 32;
const H_DATE = ":date";
const H_SIGNATURE = ":chunk-signature";
const EVENT_PREFIX = "AWS4-HMAC-SHA256-PAYLOAD";
/** Signing keys kept per stream (one per day a message was dated on; a stream spans one or two). */
const MAX_KEYS = 4;

const codec = new EventStreamCodec(
  (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"),
  (text) => Buffer.from(text, "utf8"),
);

/** The codec's header block for exactly one `:date` and one 32-byte `:chunk-signature`: its length. */
const SIGNED_HEADERS_BYTES = codec.formatHeaders({
  [H_DATE]: { type: "timestamp", value: new Date(0) },
  [H_SIGNATURE]: { type: "binary", value: new Uint8Array(SIGNATURE_BYTES) },
}).byteLength;

/** A decoded client envelope whose headers are right, ready to sign. */
interface Checked {
  readonly message: Buffer;
  /** The message is a copy of the input's bytes, this re-signer's to change. */
  readonly owned: boolean;
  readonly date: MessageHeaderValue;
  /** Where the codec found the client's 32 signature bytes in `message`. */
  readonly signatureAt: number;
  readonly body: Uint8Array;
  /** The message's time as SigV4 writes it (YYYYMMDD'T'HHMMSS'Z'). */
  readonly longDate: string;
}

/** smithy's formatting of a signing date: ISO 8601 without milliseconds, separators removed. */
function formatLongDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
}

export class EventStreamResigner {
  private previous: string;
  /** Signing keys imported once, by the day (`YYYYMMDD`) of the messages they sign. */
  private readonly keys = new Map<string, KeyObject>();
  /** The scope after its date: `/<region>/<service>/aws4_request`. */
  private readonly scopeTail: string;
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
  private lastSecond = Number.NaN;
  private lastLongDate = "";

  constructor(private readonly p: EventStreamParams) {
    this.previous = p.seed.signature;
    const slash = p.seed.scope.indexOf("/");
    this.scopeTail = slash < 0 ? "" : p.seed.scope.slice(slash);
    this.keys.set(p.seed.amzDate.slice(0, 8), createSecretKey(p.seed.signingKey));
  }

  /**
   * Feeds the next piece of the body; resolves to the bytes that may be forwarded now. The piece
   * must not be changed afterwards: part of it may be held until its message is complete. It is
   * never written to (a re-signed message is a copy).
   */
  async push(input: Buffer): Promise<ResignResult> {
    if (this.error !== undefined) return this.failed();
    const out: Buffer[] = [];
    let i = 0;
    while (i < input.length) {
      if (this.done) return this.fail("bytes follow the final empty message");
      if (this.pendingBytes === 0 && input.length - i >= PRELUDE_BYTES) {
        // A message that starts in this piece: read its prelude in place, and re-sign it without
        // holding it when the whole message is here.
        const total = this.checkPrelude(input.subarray(i, i + PRELUDE_BYTES));
        if (total === undefined) return this.failed();
        if (input.length - i >= total) {
          const r = await this.resign(input.subarray(i, i + total), false);
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
        const r = await this.resign(message, true);
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

  /**
   * One complete client envelope → the same envelope with a new `:chunk-signature`. Synchronous
   * unless the message is dated on a day whose signing key this stream has not needed yet.
   */
  private resign(message: Buffer, owned: boolean): ResignResult | Promise<ResignResult> {
    const checked = this.check(message, owned);
    if (!("message" in checked)) return checked;
    const shortDate = checked.longDate.slice(0, 8);
    const key = this.keys.get(shortDate);
    if (key !== undefined) return this.sign(checked, shortDate, key);
    return this.p.signingKeyFor(shortDate).then(
      (bytes) => {
        if (this.keys.size >= MAX_KEYS) this.keys.clear();
        const imported = createSecretKey(bytes);
        this.keys.set(shortDate, imported);
        return this.sign(checked, shortDate, imported);
      },
      () => this.fail(`no signing key for a message dated ${shortDate}`),
    );
  }

  /** Decodes the envelope (the codec checks both CRCs) and checks its headers. */
  private check(message: Buffer, owned: boolean): Checked | ResignResult {
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
    const headersLength = message.readUInt32BE(4);
    if (headersLength !== SIGNED_HEADERS_BYTES) {
      // Both headers have fixed sizes, so only a header block of another length gets here: the
      // decoded headers keep the last of each name, and a repeated (or cut) one was dropped.
      const resigned = message.length - headersLength + SIGNED_HEADERS_BYTES;
      return this.fail(`message headers are not exactly one ${H_DATE} and one ${H_SIGNATURE} (duplicate or truncated header; the re-signed message would be ${resigned} bytes, not the client's ${message.length})`);
    }
    // The codec hands binary header values out as views of the message: the signature's place.
    const signatureAt = signature.value.byteOffset - message.byteOffset;
    if (signature.value.buffer !== message.buffer || signatureAt < PRELUDE_BYTES || signatureAt + SIGNATURE_BYTES > PRELUDE_BYTES + headersLength) {
      return this.fail(`${H_SIGNATURE} header is not where the message's header block is`);
    }
    return { message, owned, date, signatureAt, body, longDate: this.longDateOf(date.value) };
  }

  /** Signs a checked envelope with the key of its day and writes the new signature and CRC. */
  private sign(c: Checked, shortDate: string, key: KeyObject): ResignResult {
    // The `:date` header as the codec encodes it (what the SDK's signer hashes), and the payload.
    const dateHash = hash("sha256", codec.formatHeaders({ [H_DATE]: c.date }), "hex");
    const payloadHash = hash("sha256", c.body, "hex");
    const stringToSign = `${EVENT_PREFIX}\n${c.longDate}\n${shortDate}${this.scopeTail}\n${this.previous}\n${dateHash}\n${payloadHash}`;
    const mac = createHmac("sha256", key).update(stringToSign, "utf8").digest();
    // Same length, same prelude (and prelude CRC), header names, date and payload: write the new
    // signature over the client's and recompute the message CRC. The input is never written to.
    const out = c.owned ? c.message : Buffer.from(c.message);
    mac.copy(out, c.signatureAt);
    const crcAt = out.length - CRC_BYTES;
    out.writeUInt32BE(crc32(out.subarray(0, crcAt)), crcAt);
    this.previous = mac.toString("hex");
    this.signaturesComputed++;
    this.bytesHashed += c.body.byteLength;
    if (c.body.byteLength === 0) this.done = true;
    return { ok: true, out };
  }

  /** The message's time as SigV4 writes it; consecutive messages mostly fall in the same second. */
  private longDateOf(date: Date): string {
    const second = Math.floor(date.getTime() / 1000);
    if (second !== this.lastSecond) {
      this.lastSecond = second;
      this.lastLongDate = formatLongDate(date);
    }
    return this.lastLongDate;
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
