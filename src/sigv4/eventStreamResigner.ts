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
 * tests check both against an independent checker). It is computed synchronously, with the
 * signing key's HMAC blocks set up once (./hmacSha256.ts: two one-shot node:crypto hashes per
 * message): no promise step per message.
 *
 * Streaming, each payload byte touched as few times as possible: the 12-byte prelude is read here
 * and its CRC checked at once (a corrupt length is refused before any wait for the bytes it
 * announces); the small header block is collected and decoded by @smithy/core's HeaderMarshaller,
 * the header codec the AWS SDK itself uses, and checked before any payload byte is taken (a block
 * byte for byte like the last one decoded, but for the `:date` value and the signature, has the
 * same two headers in the same places and is not decoded again: its time is read where the codec
 * read the last one's); payload
 * pieces, as they arrive, go to the SHA-256 hash and the running message CRC and are kept as views
 * of the input (never written to). When the message CRC has come and matches, the message is signed
 * and written out: the prelude unchanged, the header block with the new signature, the payload and
 * the new message CRC. The payload's CRC is computed once, as it arrives; the client's message CRC
 * and the new one are each the header block's CRC combined with it (crc32Combine, zlib's
 * crc32_combine: no second pass over the payload). What a push completes is handed out as pieces
 * (the new header block, views of the payload, the new CRC), never joined here: the answer's
 * encoder copies each payload byte once (src/extproc/mutations.ts). CRC-32 is ./crc32.ts
 * (@node-rs/crc32, SIMD; node:zlib's when the native module cannot load).
 *
 * The client's `:date` is kept: the signature covers it, AWS reads the message's time from it, and
 * a timestamp is always 8 bytes, so with a 32-byte signature each re-signed envelope has exactly
 * the client's length (the header block must be the codec's length for one of each). Only the 32
 * signature bytes and the message CRC change, so the re-signed envelope is the client's bytes
 * with the new signature written where the codec decoded the old one and the message CRC
 * recomputed: prelude, prelude CRC, header order, `:date` and payload are untouched.
 *
 * Memory is bounded by one message: input may be split anywhere, several messages may come in one
 * piece, and at most one incomplete message is held (its header block copied, its payload as
 * views of the pieces it came in). Pure apart from the signing-key look-up for a
 * message dated on another day than the request: no I/O.
 */
import { HeaderMarshaller } from "@smithy/core/event-streams";
import type { MessageHeaders } from "@smithy/types";
import { createHash, hash, type Hash } from "node:crypto";
import type { ResignResult } from "./awsChunkedResigner.js";
import { crc32, crc32Combine } from "./crc32.js";
import { HmacSha256 } from "./hmacSha256.js";
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

const toUtf8 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8");
const fromUtf8 = (text: string): Uint8Array => Buffer.from(text, "utf8");
/** The SDK's header codec: it reads the client's header blocks. */
const headerCodec = new HeaderMarshaller(toUtf8, fromUtf8);

/** The codec's header block for exactly one `:date` and one 32-byte `:chunk-signature`: its length. */
const SIGNED_HEADERS_BYTES = headerCodec.format({
  [H_DATE]: { type: "timestamp", value: new Date(0) },
  [H_SIGNATURE]: { type: "binary", value: new Uint8Array(SIGNATURE_BYTES) },
}).byteLength;

/** An encoded header's bytes before its value: name length (1), name, value type (1). */
const headerLead = (name: string): number => 1 + name.length + 1;
/** The encoded `:date` header (a timestamp: 8 bytes), as the signature hashes it. */
const DATE_HEADER_BYTES = headerLead(H_DATE) + 8;
/** Where the 32-byte value of `:chunk-signature` starts in its encoded header (after a 2-byte length). */
const SIGNATURE_VALUE_AT = headerLead(H_SIGNATURE) + 2;
/** Where the 8-byte value of `:date` starts in its encoded header. */
const DATE_VALUE_AT = headerLead(H_DATE);
/** The largest time a Date holds, in milliseconds either side of 1970 (ECMAScript's TimeClip). */
const MAX_TIME_MS = 8.64e15;

/** Where the current message is. */
const Phase = { Prelude: 0, Headers: 1, Payload: 2, Crc: 3 } as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/** smithy's formatting of a signing date: ISO 8601 without milliseconds, separators removed. */
function formatLongDate(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, "Z").replace(/[-:]/g, "");
}

export class EventStreamResigner {
  private previous: string;
  /** Signing keys set up once, by the day (`YYYYMMDD`) of the messages they sign. */
  private readonly keys = new Map<string, HmacSha256>();
  /** The scope after its date: `/<region>/<service>/aws4_request`. */
  private readonly scopeTail: string;
  private done = false;
  private error: string | undefined;

  // The current message.
  private phase: Phase = Phase.Prelude;
  /** Bytes of it received so far. */
  private received = 0;
  /** The fixed-size field being read (its prelude, then its message CRC), when it straddles pieces. */
  private readonly fieldBytes = Buffer.alloc(PRELUDE_BYTES);
  private fieldHave = 0;
  /** Its prelude and header block: this re-signer's own copy, where the new signature is written (reused). */
  private head: Buffer = Buffer.alloc(0);
  private headHave = 0;
  /** Payload bytes still to come. */
  private payloadLeft = 0;
  private payloadBytes = 0;
  /** Its payload so far: views of the input pieces. */
  private payload: Buffer[] = [];
  /** SHA-256 of the payload so far, started when a second piece comes (one piece: hashed at once). */
  private payloadHash: Hash | undefined;
  /** CRC-32 of the client's prelude and header block. */
  private headCrc = 0;
  /** CRC-32 of the payload so far (the message CRC is the two combined: one pass over the payload). */
  private payloadCrc = 0;
  /** Its checked headers. */
  private longDate = "";
  private signatureAt = 0;
  /** Where its encoded `:date` header is in `head`. */
  private dateAt = 0;
  /**
   * The last header block (with its prelude) that the codec decoded and that passed every check;
   * a block equal to it but for the `:date` value and the signature is not decoded again.
   */
  private shape: Buffer | undefined;

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
    this.keys.set(p.seed.amzDate.slice(0, 8), new HmacSha256(p.seed.signingKey));
  }

  /**
   * Feeds the next piece of the body; resolves to the bytes that may be forwarded now (every
   * message this piece completes, re-signed, as pieces in order). The piece must not be changed
   * afterwards: part of it may be held until its message is complete. It is never written to.
   */
  async push(input: Buffer): Promise<ResignResult> {
    if (this.error !== undefined) return this.failed();
    const out: Buffer[] = [];
    let i = 0;
    const n = input.length;
    while (i < n) {
      if (this.done) return this.fail("bytes follow the final empty message");
      switch (this.phase) {
        case Phase.Prelude: {
          const prelude = this.readField(input, i, PRELUDE_BYTES);
          this.received += prelude.next - i;
          i = prelude.next;
          if (prelude.bytes === undefined) continue;
          if (!this.startMessage(prelude.bytes)) return this.failed();
          break;
        }
        case Phase.Headers: {
          const take = Math.min(this.head.length - this.headHave, n - i);
          input.copy(this.head, this.headHave, i, i + take);
          i += take;
          this.headHave += take;
          this.received += take;
          if (this.headHave === this.head.length && !this.checkHeaders()) return this.failed();
          break;
        }
        case Phase.Payload: {
          const take = Math.min(this.payloadLeft, n - i);
          const piece = input.subarray(i, i + take);
          i += take;
          this.received += take;
          if (this.payload.length === 1) {
            this.payloadHash = createHash("sha256").update(this.payload[0] as Buffer);
          }
          this.payloadHash?.update(piece);
          // After the hash, which brings the piece into the cache at its slower pace.
          this.payloadCrc = crc32(piece, this.payloadCrc);
          this.payload.push(piece);
          this.payloadLeft -= take;
          if (this.payloadLeft === 0) this.phase = Phase.Crc;
          break;
        }
        case Phase.Crc: {
          const crc = this.readField(input, i, CRC_BYTES);
          this.received += crc.next - i;
          i = crc.next;
          if (crc.bytes === undefined) continue;
          const expected = crc.bytes.readUInt32BE(0);
          const actual = crc32Combine(this.headCrc, this.payloadCrc, this.payloadBytes);
          if (expected !== actual) {
            // The SDK codec's wording for the same mismatch.
            return this.fail(`message is corrupt (The message checksum (${actual}) did not match the expected value of ${expected})`);
          }
          const signed = this.resign();
          const r = signed instanceof Promise ? await signed : signed;
          if (r === undefined) return this.failed();
          for (const part of r) out.push(part);
          break;
        }
      }
    }
    this.heldBytes = this.received;
    return { ok: true, out };
  }

  /**
   * Reads a fixed-size field (the prelude, the message CRC) from `input` at `i`: its bytes once all
   * have come (a view of the input when they come in one piece, else this re-signer's copy), or
   * undefined while some are still to come; `next` is where the input continues.
   */
  private readField(input: Buffer, i: number, size: number): { bytes: Buffer | undefined; next: number } {
    if (this.fieldHave === 0 && input.length - i >= size) return { bytes: input.subarray(i, i + size), next: i + size };
    const take = Math.min(size - this.fieldHave, input.length - i);
    input.copy(this.fieldBytes, this.fieldHave, i, i + take);
    this.fieldHave += take;
    if (this.fieldHave < size) return { bytes: undefined, next: i + take };
    this.fieldHave = 0;
    return { bytes: this.fieldBytes.subarray(0, size), next: i + take };
  }

  /** Call at end of stream: the final empty message must have come, and nothing after it. */
  finish(): ResignResult {
    if (this.error !== undefined) return this.failed();
    if (!this.done) {
      return this.fail(this.received > 0 ? `body ended inside a message (${this.received} of its bytes received)` : "body ended without the final empty message");
    }
    return { ok: true, out: [] };
  }

  /** Checks a prelude and sets up the message it starts; false: failed. */
  private startMessage(prelude: Buffer): boolean {
    // Checked at once: a corrupt length must not make countersign wait for (and hold) up to the
    // size cap first.
    if (crc32(prelude.subarray(0, 8)) !== prelude.readUInt32BE(8)) {
      this.fail("message prelude CRC does not match");
      return false;
    }
    const total = prelude.readUInt32BE(0);
    const headers = prelude.readUInt32BE(4);
    if (total < MIN_MESSAGE_BYTES) {
      this.fail(`message length ${total} is shorter than the ${MIN_MESSAGE_BYTES}-byte minimum`);
      return false;
    }
    if (total > this.p.maxMessageBytes) {
      this.fail(`message of ${total} bytes is over the ${this.p.maxMessageBytes}-byte limit`);
      return false;
    }
    if (headers > total - MIN_MESSAGE_BYTES) {
      this.fail(`headers length ${headers} does not fit in a message of ${total} bytes`);
      return false;
    }
    // Its own ArrayBuffer (not the shared pool): the header codec's views cannot reach past it.
    // Kept for the next message when that one's header block is as long (the usual case): the
    // output takes a copy of it.
    if (this.head.length !== PRELUDE_BYTES + headers) this.head = Buffer.alloc(PRELUDE_BYTES + headers);
    prelude.copy(this.head, 0, 0, PRELUDE_BYTES);
    this.headHave = PRELUDE_BYTES;
    this.payloadBytes = total - MIN_MESSAGE_BYTES - headers;
    this.payloadLeft = this.payloadBytes;
    this.phase = Phase.Headers;
    if (headers === 0) return this.checkHeaders();
    return true;
  }

  /** Checks the complete header block and reads the message's time; false: failed. */
  private checkHeaders(): boolean {
    const head = this.head;
    let time: number;
    if (this.shape !== undefined && sameShape(head, this.shape, this.dateAt + DATE_VALUE_AT, this.signatureAt)) {
      // The last block the codec decoded and passed had exactly these bytes but for the `:date`
      // value and the signature: the same two headers, in the same places. Only the time is new,
      // read as the codec reads it (an int64 of milliseconds, made a Date).
      time = timeClip(Number(head.readBigInt64BE(this.dateAt + DATE_VALUE_AT)));
    } else {
      const decoded = this.decodeHeaders(head);
      if (decoded === false) return false;
      time = decoded;
    }
    if (Number.isNaN(time)) return this.refuse(`${H_DATE} header is not a valid time`);
    this.longDate = this.longDateOf(time);
    this.headCrc = crc32(head);
    this.phase = this.payloadLeft > 0 ? Phase.Payload : Phase.Crc;
    return true;
  }

  /**
   * Decodes a header block with the SDK's codec and checks it: the message's time (NaN: not a valid
   * one), or false (failed). Sets where `:date` and the signature are, and keeps the block as
   * the shape the next messages' blocks are compared with.
   */
  private decodeHeaders(head: Buffer): number | false {
    const headersLength = head.length - PRELUDE_BYTES;
    let headers: MessageHeaders;
    try {
      headers = headerCodec.parse(new DataView(head.buffer, head.byteOffset + PRELUDE_BYTES, headersLength));
    } catch (err) {
      return this.refuse(`message is corrupt (${err instanceof Error ? err.message : String(err)})`);
    }
    const date = headers[H_DATE];
    const signature = headers[H_SIGNATURE];
    if (date === undefined) return this.refuse(`message has no ${H_DATE} header`);
    if (date.type !== "timestamp") return this.refuse(`${H_DATE} header is a ${date.type}, not a timestamp`);
    if (signature === undefined) return this.refuse(`message has no ${H_SIGNATURE} header`);
    if (signature.type !== "binary" || signature.value.byteLength !== SIGNATURE_BYTES) {
      return this.refuse(`${H_SIGNATURE} header is not ${SIGNATURE_BYTES} bytes of binary`);
    }
    for (const name of Object.keys(headers)) {
      if (name !== H_DATE && name !== H_SIGNATURE) return this.refuse(`message carries header "${clip(name)}" besides ${H_DATE} and ${H_SIGNATURE}`);
    }
    if (headersLength !== SIGNED_HEADERS_BYTES) {
      // Both headers have fixed sizes, so only a header block of another length gets here: the
      // decoded headers keep the last of each name, and a repeated (or cut) one was dropped.
      const client = head.readUInt32BE(0);
      const resigned = client - headersLength + SIGNED_HEADERS_BYTES;
      return this.refuse(`message headers are not exactly one ${H_DATE} and one ${H_SIGNATURE} (duplicate or truncated header; the re-signed message would be ${resigned} bytes, not the client's ${client})`);
    }
    // The codec hands binary header values out as views of the block: the signature's place.
    const signatureAt = signature.value.byteOffset - head.byteOffset;
    if (signature.value.buffer !== head.buffer || signatureAt < PRELUDE_BYTES || signatureAt + SIGNATURE_BYTES > head.length) {
      return this.refuse(`${H_SIGNATURE} header is not where the message's header block is`);
    }
    // Exactly the two headers and nothing else, so `:date` is the 15 bytes before or after the
    // signature's header: the bytes the client hashed, and the bytes the codec would write for the
    // decoded time (a valid Date is a whole number of milliseconds, exactly an int64).
    const signatureHeaderAt = signatureAt - SIGNATURE_VALUE_AT;
    this.dateAt = signatureHeaderAt === PRELUDE_BYTES ? signatureAt + SIGNATURE_BYTES : PRELUDE_BYTES;
    this.signatureAt = signatureAt;
    this.shape = Buffer.from(head);
    return date.value.getTime();
  }

  /**
   * The complete, checked message → its re-signed bytes (views; undefined: failed). Synchronous
   * unless the message is dated on a day whose signing key this stream has not needed yet.
   */
  private resign(): Buffer[] | undefined | Promise<Buffer[] | undefined> {
    const shortDate = this.longDate.slice(0, 8);
    const key = this.keys.get(shortDate);
    if (key !== undefined) return this.sign(shortDate, key);
    return this.p.signingKeyFor(shortDate).then(
      (bytes) => {
        if (this.keys.size >= MAX_KEYS) this.keys.clear();
        const key = new HmacSha256(bytes);
        this.keys.set(shortDate, key);
        return this.sign(shortDate, key);
      },
      () => {
        this.fail(`no signing key for a message dated ${shortDate}`);
        return undefined;
      },
    );
  }

  /** Signs the message with the key of its day; its new bytes, and readies the next message. */
  private sign(shortDate: string, key: HmacSha256): Buffer[] {
    const head = this.head;
    const payload = this.payload;
    // The encoded `:date` header (what the SDK's signer hashes: its codec's encoding of the same
    // time), and the payload.
    const dateHash = hash("sha256", head.subarray(this.dateAt, this.dateAt + DATE_HEADER_BYTES), "hex");
    const payloadHash = this.payloadHash !== undefined ? this.payloadHash.digest("hex") : hash("sha256", payload.length === 1 ? (payload[0] as Buffer) : Buffer.alloc(0), "hex");
    const stringToSign = `${EVENT_PREFIX}\n${this.longDate}\n${shortDate}${this.scopeTail}\n${this.previous}\n${dateHash}\n${payloadHash}`;
    const signature = key.hex(stringToSign);
    // Same length, same prelude (and prelude CRC), header names, date and payload: the new
    // signature over the client's, in this re-signer's copy of the header block, and a new CRC.
    head.write(signature, this.signatureAt, "hex");
    const tail = Buffer.allocUnsafe(CRC_BYTES);
    tail.writeUInt32BE(crc32Combine(crc32(head), this.payloadCrc, this.payloadBytes), 0);
    this.previous = signature;
    this.signaturesComputed++;
    this.bytesHashed += this.payloadBytes;
    if (this.payloadBytes === 0) this.done = true;
    this.reset();
    // The header block is copied (into the shared pool, cheap): this buffer serves the next message.
    payload.unshift(Buffer.from(head));
    payload.push(tail);
    return payload;
  }

  /** Ready for the next message. */
  private reset(): void {
    this.phase = Phase.Prelude;
    this.received = 0;
    this.heldBytes = 0;
    this.headHave = 0;
    this.payload = [];
    this.payloadHash = undefined;
    this.payloadLeft = 0;
    this.payloadBytes = 0;
    this.fieldHave = 0;
    this.payloadCrc = 0;
  }

  /** The message's time as SigV4 writes it; consecutive messages mostly fall in the same second. */
  private longDateOf(time: number): string {
    const second = Math.floor(time / 1000);
    if (second !== this.lastSecond) {
      this.lastSecond = second;
      this.lastLongDate = formatLongDate(new Date(time));
    }
    return this.lastLongDate;
  }

  private fail(message: string): ResignResult {
    this.error = message;
    this.reset();
    return { ok: false, error: message };
  }

  /** Fails the stream; false, for the checks to return (whether they passed, or in place of the time they read). */
  private refuse(message: string): false {
    this.fail(message);
    return false;
  }

  private failed(): ResignResult {
    return { ok: false, error: this.error ?? "" };
  }
}

/** A number of milliseconds as `new Date(ms).getTime()` has it: NaN outside a Date's range. */
function timeClip(ms: number): number {
  return Math.abs(ms) <= MAX_TIME_MS ? ms : Number.NaN;
}

/**
 * Whether two header blocks (with their preludes) are the same but for the `:date` value (8 bytes
 * at `dateValueAt`) and the signature (32 bytes at `signatureAt`). The preludes are not compared:
 * the total length differs with the payload, and the rest was checked by the time this is asked.
 */
function sameShape(head: Buffer, shape: Buffer, dateValueAt: number, signatureAt: number): boolean {
  if (head.length !== shape.length) return false;
  for (let i = PRELUDE_BYTES; i < head.length; i++) {
    if (i >= dateValueAt && i < dateValueAt + 8) continue;
    if (i >= signatureAt && i < signatureAt + SIGNATURE_BYTES) continue;
    if (head[i] !== shape[i]) return false;
  }
  return true;
}

function clip(s: string): string {
  return s.length > 24 ? `${s.slice(0, 24)}…` : s;
}
