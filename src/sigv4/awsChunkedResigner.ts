/**
 * Re-signs an aws-chunked body in flight, SigV4 (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`)
 * or SigV4A (`STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD[-TRAILER]`):
 *
 *   <hex size>;chunk-signature=<sig>\r\n <data> \r\n   … repeated …
 *   0;chunk-signature=<sig>\r\n \r\n                                     (no trailer)
 *   0;chunk-signature=<sig>\r\n name:value\r\n … x-amz-trailer-signature:<sig>\r\n \r\n
 *
 * Each chunk signature signs the string
 *   <algorithm>-PAYLOAD \n <x-amz-date> \n <scope> \n <previous signature> \n <sha256("")> \n <sha256(data)>
 * chained from the request's seed signature; the trailer's signs
 *   <algorithm>-TRAILER \n <x-amz-date> \n <scope> \n <final chunk signature> \n <sha256(trailer lines)>
 * The algorithm, how a string is signed and the width of a `<sig>` field are the `ChunkSigner`'s
 * (`chunkSigners.ts`): 64 hex for SigV4; for SigV4A hex DER padded with `*` to 144, the previous
 * signature chained without its padding.
 *
 * Every signature field has the same width before and after (a client's field of any other width
 * is refused), so the body keeps its exact length and chunk sizes: `content-length` and
 * `x-amz-decoded-content-length` stay true. A chunk header is held back until its data has been
 * hashed (the signature comes before the data), so memory is bounded by one chunk. Input may be
 * split anywhere. Pure: no I/O. Built by `startChunkedResigning`, which signs the head and seeds
 * the chain.
 */
import type { Result } from "../result.js";
import { createHash, type Hash } from "node:crypto";
import type { ChunkSigner } from "./chunkSigners.js";
import { EMPTY_SHA256 } from "./constants.js";

/** Where the chain starts: the re-signed request's signature, and the date and scope it was made with. */
export interface ChainStart {
  /** The request signature (unpadded), the first link of the chain. */
  readonly signature: string;
  /** `x-amz-date` of the signed request, reused by every chunk string-to-sign. */
  readonly amzDate: string;
  /** SigV4: `<date>/<region>/<service>/aws4_request`; SigV4A: `<date>/<service>/aws4_request`. */
  readonly scope: string;
}

export interface ChunkSigningParams {
  readonly seed: ChainStart;
  /** Makes every chunk and trailer signature; fixes the algorithm and the signature field's width. */
  readonly signer: ChunkSigner;
  readonly trailer: boolean;
  /** Largest chunk accepted (held in memory while it is hashed). */
  readonly maxChunkBytes: number;
  /** `x-amz-decoded-content-length`: the chunks' data must add up to exactly this. */
  readonly decodedContentLength: number;
}

/**
 * What a push or finish makes: the bytes that may be forwarded now, in order, as pieces (views of
 * the input and small new buffers) that are never joined here. The answer to Envoy is written
 * from them directly (src/extproc/mutations.ts), so each payload byte is copied once on its way
 * out. No piece is written to afterwards.
 */
export type ResignResult = Result<{ readonly out: readonly Buffer[] }>;

const NOTHING: readonly Buffer[] = [];

type State = "header" | "data" | "data-crlf" | "final-crlf" | "trailer" | "done" | "failed";

const CRLF = Buffer.from("\r\n");
const HEADER = /^([0-9a-fA-F]{1,16});chunk-signature=(.*)$/;
const TRAILER_SIGNATURE = /^x-amz-trailer-signature:([ \t]*)(.*?)([ \t]*)$/i;
/** A chunk header line's bytes besides its signature: a 16-digit size, `;chunk-signature=`, CRLF, and slack. */
const HEADER_LINE_OVERHEAD = 64;
const MAX_TRAILER_BYTES = 16 * 1024;

export class AwsChunkedResigner {
  private state: State = "header";
  private previous: string;
  /**
   * The framing line (chunk header or trailer line) read so far, copied out of the input (a line
   * may span messages; a slice would keep the whole message buffer alive).
   */
  private line: Buffer[] = [];
  private lineBytes = 0;
  private readonly maxHeaderLine: number;
  private readonly payloadPrefix: string;
  private readonly trailerPrefix: string;
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
    this.maxHeaderLine = HEADER_LINE_OVERHEAD + p.signer.fieldWidth;
    this.payloadPrefix = `${p.signer.algorithm}-PAYLOAD`;
    this.trailerPrefix = `${p.signer.algorithm}-TRAILER`;
  }

  /**
   * Feeds the next piece of the body; resolves to the bytes that may be forwarded now. Await each
   * call before the next (signing may be asynchronous).
   */
  async push(input: Buffer): Promise<ResignResult> {
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
          if (lineBytes > (this.state === "header" ? this.maxHeaderLine : MAX_TRAILER_BYTES)) {
            return this.fail(this.state === "header" ? `chunk header line is too long (expected <hex size>;chunk-signature=<${this.p.signer.fieldForm}>)` : "trailer line is too long");
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
          const r = this.state === "header" ? await this.onHeaderLine(text) : await this.onTrailerLine(text);
          if (!r.ok) return r;
          for (const piece of r.out) out.push(piece);
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
            await this.emitChunk(out);
            this.state = "header";
          }
          break;
        }
        case "done":
          return this.fail("data after the final chunk");
      }
    }
    return { ok: true, out };
  }

  /** Call at end of stream: the framing must be complete. */
  finish(): ResignResult {
    if (this.state === "failed") return this.failed();
    if (this.state !== "done") {
      const where = this.state === "data" || this.state === "data-crlf" ? "inside a chunk" : this.state === "trailer" ? "inside the trailer" : "before the final 0-size chunk";
      return this.fail(`body ended ${where}`);
    }
    return { ok: true, out: NOTHING };
  }

  private async onHeaderLine(text: string): Promise<ResignResult> {
    const m = HEADER.exec(text);
    if (!m) {
      const semi = text.indexOf(";");
      const size = semi < 0 ? text : text.slice(0, semi);
      if (!/^[0-9a-fA-F]{1,16}$/.test(size)) return this.fail(`chunk size "${clip(size)}" is not a hex number`);
      return this.fail("chunk header has no chunk-signature");
    }
    if (!this.p.signer.isField(m[2] as string)) return this.fail(`chunk-signature is not ${this.p.signer.fieldForm}`);
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
      return { ok: true, out: NOTHING };
    }
    // Final chunk: sign now over empty data.
    if (this.decodedSoFar !== this.p.decodedContentLength) {
      return this.fail(`chunks add up to ${this.decodedSoFar} bytes but x-amz-decoded-content-length says ${this.p.decodedContentLength}`);
    }
    const sig = await this.signChunk(EMPTY_SHA256);
    this.state = this.p.trailer ? "trailer" : "final-crlf";
    return { ok: true, out: [Buffer.from(`${this.sizeText};chunk-signature=${sig}\r\n`, "latin1")] };
  }

  private async onTrailerLine(text: string): Promise<ResignResult> {
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
      return { ok: true, out: NOTHING };
    }
    if (!this.p.signer.isField(sig[2] as string)) return this.fail(`x-amz-trailer-signature is not ${this.p.signer.fieldForm}`);
    if (this.trailerLines.length === 0) return this.fail("trailer has a signature but no trailing headers");
    // Canonical trailer text, as canonical headers are written: lower-case name, the value trimmed
    // with inner runs of whitespace made one space, one "\n"-terminated line each, sorted by name
    // (the client signs this form, whatever order it sends the lines in). A name given twice is
    // refused: the two lines could be joined in more than one way.
    const entries = this.trailerLines.map((l) => {
      const c = l.indexOf(":");
      return [l.slice(0, c).trim().toLowerCase(), l.slice(c + 1).replace(/[ \t]+/g, " ").trim()] as const;
    });
    entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const repeated = entries.find(([name], i) => i > 0 && entries[i - 1]?.[0] === name);
    if (repeated) return this.fail(`trailer names "${clip(repeated[0])}" twice`);
    const canonical = entries.map(([name, value]) => `${name}:${value}\n`).join("");
    const trailerHash = createHash("sha256").update(canonical, "latin1").digest("hex");
    const newSig = this.p.signer.field(await this.sign(`${this.trailerPrefix}\n${this.p.seed.amzDate}\n${this.p.seed.scope}\n${this.previous}\n${trailerHash}`));
    const sigLine = `${text.slice(0, text.length - (sig[2] as string).length - (sig[3] as string).length)}${newSig}${sig[3] as string}`;
    const out = Buffer.from(`${this.trailerLines.map((l) => `${l}\r\n`).join("")}${sigLine}\r\n`, "latin1");
    this.trailerLines = [];
    this.state = "final-crlf";
    return { ok: true, out: [out] };
  }

  /** Appends the re-signed chunk to `out` as pieces: its new header line, its data as views, CRLF. */
  private async emitChunk(out: Buffer[]): Promise<void> {
    const sig = await this.signChunk((this.hash as Hash).digest("hex"));
    out.push(Buffer.from(`${this.sizeText};chunk-signature=${sig}\r\n`, "latin1"));
    for (const piece of this.data) out.push(piece);
    out.push(CRLF);
    this.data = [];
    this.heldBytes = 0;
    this.hash = undefined;
  }

  /** Signs a chunk, chains the next link from the unpadded signature, returns the padded field. */
  private async signChunk(dataHash: string): Promise<string> {
    const sig = await this.sign(`${this.payloadPrefix}\n${this.p.seed.amzDate}\n${this.p.seed.scope}\n${this.previous}\n${EMPTY_SHA256}\n${dataHash}`);
    this.previous = sig;
    return this.p.signer.field(sig);
  }

  private sign(stringToSign: string): string | Promise<string> {
    this.signaturesComputed++;
    return this.p.signer.sign(stringToSign);
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
