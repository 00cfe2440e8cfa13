/**
 * Re-signs an aws-chunked body in flight (STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]).
 *
 *   <hex size>;chunk-signature=<64 hex>\r\n <data> \r\n   … repeated …
 *   0;chunk-signature=<64 hex>\r\n \r\n                                     (no trailer)
 *   0;chunk-signature=<64 hex>\r\n name:value\r\n … x-amz-trailer-signature:<64 hex>\r\n \r\n
 *
 * Each chunk signature is HMAC(signing key, string-to-sign) with the string-to-sign
 *   AWS4-HMAC-SHA256-PAYLOAD \n <x-amz-date> \n <scope> \n <previous signature> \n <sha256("")> \n <sha256(data)>
 * chained from the request's seed signature; the trailer's is
 *   AWS4-HMAC-SHA256-TRAILER \n <x-amz-date> \n <scope> \n <final chunk signature> \n <sha256(trailer lines)>
 *
 * Every signature is 64 hex characters before and after, so the body keeps its exact length and
 * chunk sizes. A chunk header is held back until its data has been hashed (the signature comes
 * before the data), so memory is bounded by one chunk. Input may be split anywhere.
 * Pure: no I/O. Built by `startChunkedResigning`, which signs the head and seeds the chain.
 */
import type { Result } from "../result.js";
import { createHash, createHmac, createSecretKey, type Hash, type KeyObject } from "node:crypto";
import { EMPTY_SHA256 } from "./constants.js";
import type { SignatureChainSeed } from "./types.js";

export interface ChunkSigningParams {
  /** The re-signed request's signature, date, scope and signing key (`signRequest`'s output). */
  readonly seed: SignatureChainSeed;
  readonly trailer: boolean;
  /** Largest chunk accepted (held in memory while it is hashed). */
  readonly maxChunkBytes: number;
  /** `x-amz-decoded-content-length`: the chunks' data must add up to exactly this. */
  readonly decodedContentLength: number;
}

export type ResignResult = Result<{ readonly out: Buffer }>;

type State = "header" | "data" | "data-crlf" | "final-crlf" | "trailer" | "done" | "failed";

const CRLF = Buffer.from("\r\n");
const HEADER = /^([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})$/;
const TRAILER_SIGNATURE = /^x-amz-trailer-signature:([ \t]*)([0-9a-f]{64})([ \t]*)$/i;
const MAX_HEADER_LINE = 128;
const MAX_TRAILER_BYTES = 16 * 1024;
const PAYLOAD_PREFIX = "AWS4-HMAC-SHA256-PAYLOAD";
const TRAILER_PREFIX = "AWS4-HMAC-SHA256-TRAILER";

export class AwsChunkedResigner {
  private state: State = "header";
  private previous: string;
  /**
   * The framing line (chunk header or trailer line) read so far, copied out of the input (a line
   * may span messages; a slice would keep the whole message buffer alive).
   */
  private line: Buffer[] = [];
  private lineBytes = 0;
  /** The signing key, imported once for every chunk's HMAC. */
  private readonly key: KeyObject;
  private sizeText = "";
  private remaining = 0;
  private crlfSeen = 0;
  private data: Buffer[] = [];
  private hash: Hash | undefined;
  private trailerLines: string[] = [];
  private trailerBytes = 0;
  private decodedSoFar = 0;
  private error = "";
  /** Chunk and trailer signatures re-computed so far. */
  signaturesComputed = 0;
  /** Data bytes hashed so far. */
  bytesHashed = 0;
  /** Bytes of the current chunk held in memory until its signature can be computed. */
  heldBytes = 0;

  constructor(private readonly p: ChunkSigningParams) {
    this.previous = p.seed.signature;
    this.key = createSecretKey(p.seed.signingKey);
  }

  /** Feeds the next piece of the body; returns the bytes that may be forwarded now. */
  push(input: Buffer): ResignResult {
    if (this.state === "failed") return this.failed();
    const out: Buffer[] = [];
    let i = 0;
    while (i < input.length) {
      switch (this.state) {
        case "header":
        case "trailer": {
          const nl = input.indexOf(0x0a, i);
          const end = nl < 0 ? input.length : nl + 1;
          const piece = input.subarray(i, end);
          const lineBytes = this.lineBytes + piece.length;
          i = end;
          if (lineBytes > (this.state === "header" ? MAX_HEADER_LINE : MAX_TRAILER_BYTES)) {
            return this.fail(this.state === "header" ? "chunk header line is too long (expected <hex size>;chunk-signature=<64 hex>)" : "trailer line is too long");
          }
          if (nl < 0) {
            // The line goes on in the next message: keep a copy of this part, not the message.
            this.line.push(Buffer.from(piece));
            this.lineBytes = lineBytes;
            break;
          }
          // A whole line inside this message (the common case) is read where it is, uncopied.
          const bytes = this.line.length === 0 ? piece : Buffer.concat([...this.line, piece], lineBytes);
          this.line = [];
          this.lineBytes = 0;
          if (bytes.length < 2 || bytes[bytes.length - 2] !== 0x0d) return this.fail("chunk framing line does not end with CRLF");
          const text = bytes.toString("latin1", 0, bytes.length - 2);
          const r = this.state === "header" ? this.onHeaderLine(text) : this.onTrailerLine(text);
          if (!r.ok) return r;
          if (r.out.length > 0) out.push(r.out);
          break;
        }
        case "data": {
          const take = Math.min(this.remaining, input.length - i);
          const piece = input.subarray(i, i + take);
          (this.hash as Hash).update(piece);
          this.data.push(piece);
          this.heldBytes += take;
          this.remaining -= take;
          this.bytesHashed += take;
          i += take;
          if (this.remaining === 0) this.state = "data-crlf";
          break;
        }
        case "data-crlf":
        case "final-crlf": {
          if (input[i] !== CRLF[this.crlfSeen]) {
            return this.fail(
              this.state === "data-crlf"
                ? `chunk of declared size 0x${this.sizeText} is longer than declared (no CRLF after its data)`
                : "final chunk is not followed by CRLF",
            );
          }
          i++;
          if (++this.crlfSeen < 2) break;
          this.crlfSeen = 0;
          if (this.state === "final-crlf") {
            this.state = "done";
            out.push(CRLF);
          } else {
            this.emitChunk(out);
            this.state = "header";
          }
          break;
        }
        case "done":
          return this.fail("data after the final chunk");
      }
    }
    return { ok: true, out: out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out) };
  }

  /** Call at end of stream: the framing must be complete. */
  finish(): ResignResult {
    if (this.state === "failed") return this.failed();
    if (this.state !== "done") {
      const where = this.state === "data" || this.state === "data-crlf" ? "inside a chunk" : this.state === "trailer" ? "inside the trailer" : "before the final 0-size chunk";
      return this.fail(`body ended ${where}`);
    }
    return { ok: true, out: Buffer.alloc(0) };
  }

  private onHeaderLine(text: string): ResignResult {
    const m = HEADER.exec(text);
    if (!m) {
      const semi = text.indexOf(";");
      const size = semi < 0 ? text : text.slice(0, semi);
      if (!/^[0-9a-fA-F]{1,16}$/.test(size)) return this.fail(`chunk size "${clip(size)}" is not a hex number`);
      if (!text.slice(semi).startsWith(";chunk-signature=")) return this.fail("chunk header has no chunk-signature");
      return this.fail("chunk-signature is not 64 lower-case hex characters");
    }
    const size = parseInt(m[1] as string, 16);
    if (size > this.p.maxChunkBytes) return this.fail(`chunk of ${size} bytes is over the ${this.p.maxChunkBytes}-byte limit`);
    this.decodedSoFar += size;
    if (this.decodedSoFar > this.p.decodedContentLength) {
      return this.fail(`chunks add up to more than x-amz-decoded-content-length (${this.p.decodedContentLength})`);
    }
    this.sizeText = m[1] as string;
    if (size > 0) {
      this.remaining = size;
      this.hash = createHash("sha256");
      this.data = [];
      this.heldBytes = 0;
      this.state = "data";
      return { ok: true, out: Buffer.alloc(0) };
    }
    // Final chunk: sign now over empty data.
    if (this.decodedSoFar !== this.p.decodedContentLength) {
      return this.fail(`chunks add up to ${this.decodedSoFar} bytes but x-amz-decoded-content-length says ${this.p.decodedContentLength}`);
    }
    const sig = this.signChunk(EMPTY_SHA256);
    this.state = this.p.trailer ? "trailer" : "final-crlf";
    return { ok: true, out: Buffer.from(`${this.sizeText};chunk-signature=${sig}\r\n`, "latin1") };
  }

  private onTrailerLine(text: string): ResignResult {
    this.trailerBytes += text.length + 2;
    if (this.trailerBytes > MAX_TRAILER_BYTES) return this.fail("trailer is too long");
    if (text === "") {
      return this.fail("trailer ended without x-amz-trailer-signature");
    }
    const sig = TRAILER_SIGNATURE.exec(text);
    if (!sig) {
      const colon = text.indexOf(":");
      if (colon <= 0) return this.fail(`trailer line "${clip(text)}" is not name:value`);
      this.trailerLines.push(text);
      return { ok: true, out: Buffer.alloc(0) };
    }
    if (this.trailerLines.length === 0) return this.fail("trailer has a signature but no trailing headers");
    // Canonical trailer text: lower-case name, trimmed value, one "\n"-terminated line each.
    const canonical = this.trailerLines
      .map((l) => {
        const c = l.indexOf(":");
        return `${l.slice(0, c).trim().toLowerCase()}:${l.slice(c + 1).trim()}\n`;
      })
      .join("");
    const trailerHash = createHash("sha256").update(canonical, "latin1").digest("hex");
    const newSig = this.hmac(`${TRAILER_PREFIX}\n${this.p.seed.amzDate}\n${this.p.seed.scope}\n${this.previous}\n${trailerHash}`);
    const sigLine = `${text.slice(0, text.length - (sig[2] as string).length - (sig[3] as string).length)}${newSig}${sig[3] as string}`;
    const out = Buffer.from(`${this.trailerLines.map((l) => `${l}\r\n`).join("")}${sigLine}\r\n`, "latin1");
    this.trailerLines = [];
    this.state = "final-crlf";
    return { ok: true, out };
  }

  /** Appends the re-signed chunk to `out` as pieces (the data is copied once, when `push` joins them). */
  private emitChunk(out: Buffer[]): void {
    const sig = this.signChunk((this.hash as Hash).digest("hex"));
    out.push(Buffer.from(`${this.sizeText};chunk-signature=${sig}\r\n`, "latin1"));
    for (const piece of this.data) out.push(piece);
    out.push(CRLF);
    this.data = [];
    this.heldBytes = 0;
    this.hash = undefined;
  }

  private signChunk(dataHash: string): string {
    const sig = this.hmac(`${PAYLOAD_PREFIX}\n${this.p.seed.amzDate}\n${this.p.seed.scope}\n${this.previous}\n${EMPTY_SHA256}\n${dataHash}`);
    this.previous = sig;
    return sig;
  }

  private hmac(stringToSign: string): string {
    this.signaturesComputed++;
    return createHmac("sha256", this.key).update(stringToSign, "utf8").digest("hex");
  }

  private fail(message: string): ResignResult {
    this.state = "failed";
    this.error = message;
    this.data = [];
    this.heldBytes = 0;
    return { ok: false, error: message };
  }

  private failed(): ResignResult {
    return { ok: false, error: this.error };
  }
}

function clip(s: string): string {
  return s.length > 24 ? `${s.slice(0, 24)}…` : s;
}
