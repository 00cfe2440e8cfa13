/**
 * Incremental decoder and verifier for S3's `aws-chunked` content encoding, written from the
 * S3 pages "Transferring Payload in Multiple Chunks" and "Including Trailing Headers".
 *
 * Framing (bytes may be split anywhere by TCP / HTTP chunking; the decoder does not care):
 *   signed:   <hex size>;chunk-signature=<64 hex>\r\n <data> \r\n … 0;chunk-signature=<sig>\r\n
 *             then `\r\n` (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)
 *             or trailer lines `name:value\r\n`… `x-amz-trailer-signature:<sig>\r\n` `\r\n` (…-TRAILER)
 *   unsigned: <hex size>\r\n <data> \r\n … 0\r\n then trailer lines and `\r\n`
 *             (STREAMING-UNSIGNED-PAYLOAD-TRAILER)
 *
 * Chunk signature = HMAC(signingKey, chunkStringToSign(date, scope, previous, sha256(data))),
 * the first "previous" being the seed signature from the Authorization header; the trailer
 * signature chains from the final (0-byte) chunk's signature. SigV4A
 * (STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD[-TRAILER]) frames the same way; its signatures are
 * ECDSA over its own strings to sign, padded with `*` (see sigv4a.ts).
 *
 * Decoded bytes are handed to `onData` as they arrive, before the chunk they belong to is
 * verified: a consumer must commit nothing until `end()` reports success.
 */
import { createHash, type Hash, type KeyObject } from "node:crypto";
import { checksumAlgorithmOfHeader, createChecksum, type ChecksumAlgorithm, type RunningChecksum } from "./checksums.js";
import {
  EMPTY_SHA256,
  STREAMING_SIGNED_PAYLOAD,
  STREAMING_SIGNED_PAYLOAD_TRAILER,
  STREAMING_UNSIGNED_PAYLOAD_TRAILER,
  canonicalTrailerText,
  chunkStringToSign,
  hmacHex,
  sha256Hex,
  signaturesEqual,
  trailerStringToSign,
} from "./verifier.js";
import { SIGV4A_CHUNK_PREFIX, SIGV4A_TRAILER_PREFIX, unpadSigV4aSignature, verifySigV4aSignature } from "./sigv4a.js";

export const STREAMING_SIGV4A_PAYLOAD = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD";
export const STREAMING_SIGV4A_PAYLOAD_TRAILER = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER";

export type StreamingPayloadMode =
  | typeof STREAMING_SIGNED_PAYLOAD
  | typeof STREAMING_SIGNED_PAYLOAD_TRAILER
  | typeof STREAMING_UNSIGNED_PAYLOAD_TRAILER
  | typeof STREAMING_SIGV4A_PAYLOAD
  | typeof STREAMING_SIGV4A_PAYLOAD_TRAILER;

export function isStreamingPayloadMode(value: string): value is StreamingPayloadMode {
  return (
    value === STREAMING_SIGNED_PAYLOAD ||
    value === STREAMING_SIGNED_PAYLOAD_TRAILER ||
    value === STREAMING_UNSIGNED_PAYLOAD_TRAILER ||
    value === STREAMING_SIGV4A_PAYLOAD ||
    value === STREAMING_SIGV4A_PAYLOAD_TRAILER
  );
}

/** True for the two SigV4A (ECDSA) chunk-signing modes. */
export function isSigV4aStreamingMode(value: string): boolean {
  return value === STREAMING_SIGV4A_PAYLOAD || value === STREAMING_SIGV4A_PAYLOAD_TRAILER;
}

export type ChunkSigning = {
  /** The request's x-amz-date, reused in every chunk string-to-sign. */
  amzDate: string;
  /** SigV4: `date/region/service/aws4_request`; SigV4A: `date/service/aws4_request`. */
  scope: string;
  /** The Authorization header's signature. */
  seedSignature: string;
} & (
  | { /** SigV4: the derived HMAC key. */ signingKey: Uint8Array }
  | { /** SigV4A: the public key derived from the secret. */ sigV4aPublicKey: KeyObject }
);

export interface AwsChunkedOptions {
  mode: StreamingPayloadMode;
  /** Required for the two signed modes. */
  signing?: ChunkSigning;
  /** Names from `x-amz-trailer` (any case); every declared trailer must arrive, and only those. */
  declaredTrailers?: readonly string[];
  /** `x-amz-decoded-content-length`; the decoded size must equal it. */
  decodedContentLength?: number;
  onData?: (data: Buffer) => void;
  /** Every chunk but the last data chunk must be at least this big. Default 8192 when signed, 0 when not. */
  minChunkSize?: number;
}

export interface ChunkedFailure {
  /** AWS-style error code: SignatureDoesNotMatch, IncompleteBody, BadDigest, InvalidChunkSizeError, InvalidRequest. */
  code: string;
  message: string;
  /** Index of the chunk that failed (0-based), when a chunk did. */
  chunkIndex?: number;
  /** The string-to-sign the verifier computed for the failing chunk or trailer. */
  stringToSign?: string;
}

export interface ChunkedOutcome {
  decodedBytes: number;
  /** Chunks whose signature was checked, including the final 0-byte chunk (0 in unsigned mode). */
  chunksVerified: number;
  /** True when the trailer signature was checked (signed trailer mode only). */
  trailerVerified: boolean;
  /** Trailer lines other than the signature, lowercase names, in arrival order. */
  trailers: Array<[string, string]>;
  /** Checksum trailers whose value matched the decoded payload (e.g. `x-amz-checksum-crc32`). */
  checksumsVerified: string[];
}

export type ChunkedResult = { ok: true; outcome: ChunkedOutcome } | { ok: false; failure: ChunkedFailure };

type State = "chunk-header" | "chunk-data" | "chunk-data-crlf" | "final-crlf" | "trailer" | "done";

const MAX_CHUNK_HEADER_BYTES = 4096;
const MAX_TRAILER_LINE_BYTES = 16 * 1024;
const MAX_TRAILER_LINES = 64;
const CHUNK_SIGNATURE_RE = /^([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]{64})$/;
/** SigV4A: hex DER, padded with `*` (checked further by unpadSigV4aSignature). */
const SIGV4A_CHUNK_SIGNATURE_RE = /^([0-9a-fA-F]{1,16});chunk-signature=([0-9a-f]+\**)$/;
const UNSIGNED_CHUNK_RE = /^([0-9a-fA-F]{1,16})(;.*)?$/;
const TRAILER_SIGNATURE = "x-amz-trailer-signature";

export class AwsChunkedDecoder {
  private readonly signed: boolean;
  private readonly withTrailer: boolean;
  private readonly sigV4a: boolean;
  private readonly minChunkSize: number;
  private readonly declared: Set<string>;
  private readonly checksums = new Map<string, RunningChecksum>();

  private state: State = "chunk-header";
  private line: Buffer[] = [];
  private lineBytes = 0;
  private crlfSeen = 0;

  private chunkIndex = 0;
  private chunkRemaining = 0;
  private chunkSize = 0;
  private chunkSignature = "";
  private chunkHash: Hash | undefined;
  private previousSignature: string;
  private lastDataChunkSize = -1;

  private decodedBytes = 0;
  private chunksVerified = 0;
  private trailerVerified = false;
  private readonly trailers: Array<[string, string]> = [];
  private trailerSignature: string | undefined;
  private failed: ChunkedFailure | undefined;

  constructor(private readonly options: AwsChunkedOptions) {
    this.signed = options.mode !== STREAMING_UNSIGNED_PAYLOAD_TRAILER;
    this.withTrailer = options.mode !== STREAMING_SIGNED_PAYLOAD && options.mode !== STREAMING_SIGV4A_PAYLOAD;
    this.sigV4a = isSigV4aStreamingMode(options.mode);
    if (options.signing && this.sigV4a !== "sigV4aPublicKey" in options.signing) {
      throw new Error(`${options.mode} needs ${this.sigV4a ? "a SigV4A public key" : "a SigV4 signing key"}`);
    }
    this.minChunkSize = options.minChunkSize ?? (this.signed ? 8192 : 0);
    if (this.signed && !options.signing) throw new Error(`${options.mode} needs signing context`);
    this.previousSignature = options.signing?.seedSignature ?? "";
    this.declared = new Set((options.declaredTrailers ?? []).map((t) => t.trim().toLowerCase()).filter((t) => t !== ""));
    for (const name of this.declared) {
      const algorithm: ChecksumAlgorithm | undefined = checksumAlgorithmOfHeader(name);
      if (algorithm) this.checksums.set(name, createChecksum(algorithm));
    }
  }

  /** The first failure, if any; once failed, further input is ignored. */
  get failure(): ChunkedFailure | undefined {
    return this.failed;
  }

  get progress(): { decodedBytes: number; chunksVerified: number } {
    return { decodedBytes: this.decodedBytes, chunksVerified: this.chunksVerified };
  }

  /** Feeds the next piece of the encoded body. */
  write(input: Uint8Array): void {
    const buf = Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
    let offset = 0;
    while (offset < buf.length && !this.failed) {
      switch (this.state) {
        case "chunk-header":
        case "final-crlf":
        case "trailer":
          offset = this.readLine(buf, offset);
          break;
        case "chunk-data":
          offset = this.readData(buf, offset);
          break;
        case "chunk-data-crlf":
          offset = this.readDataCrlf(buf, offset);
          break;
        case "done":
          this.fail("InvalidRequest", "Unexpected bytes after the end of the aws-chunked payload");
          return;
      }
    }
  }

  /** Ends the input and reports the outcome. */
  end(): ChunkedResult {
    if (this.failed) return { ok: false, failure: this.failed };
    const unsignedWithoutTrailers =
      this.state === "trailer" && !this.signed && this.lineBytes === 0 && this.trailers.length === 0;
    if (this.state !== "done" && !unsignedWithoutTrailers) {
      return this.failResult("IncompleteBody", `The aws-chunked payload ended early (while reading ${this.state})`);
    }
    if (this.options.decodedContentLength !== undefined && this.decodedBytes !== this.options.decodedContentLength) {
      return this.failResult(
        "IncompleteBody",
        `Decoded payload is ${this.decodedBytes} bytes but x-amz-decoded-content-length says ${this.options.decodedContentLength}`,
      );
    }
    const received = new Set(this.trailers.map(([n]) => n));
    for (const name of this.declared) {
      if (!received.has(name)) return this.failResult("InvalidRequest", `Trailer '${name}' was declared in x-amz-trailer but not sent`);
    }
    const checksumsVerified: string[] = [];
    for (const [name, value] of this.trailers) {
      const running = this.checksums.get(name);
      if (!running) continue;
      const actual = running.digestBase64();
      if (actual !== value) {
        return this.failResult("BadDigest", `The ${running.algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
      }
      checksumsVerified.push(name);
    }
    return {
      ok: true,
      outcome: {
        decodedBytes: this.decodedBytes,
        chunksVerified: this.chunksVerified,
        trailerVerified: this.trailerVerified,
        trailers: [...this.trailers],
        checksumsVerified,
      },
    };
  }

  // -- line-oriented states ------------------------------------------------------------------

  private readLine(buf: Buffer, offset: number): number {
    const limit = this.state === "chunk-header" ? MAX_CHUNK_HEADER_BYTES : MAX_TRAILER_LINE_BYTES;
    const newline = buf.indexOf(0x0a, offset);
    const end = newline < 0 ? buf.length : newline;
    if (end > offset) {
      this.line.push(buf.subarray(offset, end));
      this.lineBytes += end - offset;
    }
    if (this.lineBytes > limit) {
      this.fail("InvalidRequest", `aws-chunked ${this.state} line longer than ${limit} bytes`);
      return buf.length;
    }
    if (newline < 0) return buf.length;
    const raw = Buffer.concat(this.line, this.lineBytes);
    this.line = [];
    this.lineBytes = 0;
    if (raw.length === 0 || raw[raw.length - 1] !== 0x0d) {
      this.fail("InvalidRequest", `aws-chunked ${this.state} line is not terminated by CRLF`);
      return buf.length;
    }
    const text = raw.subarray(0, raw.length - 1).toString("latin1");
    if (this.state === "chunk-header") this.onChunkHeader(text);
    else if (this.state === "final-crlf") this.onFinalCrlf(text);
    else this.onTrailerLine(text);
    return newline + 1;
  }

  private onChunkHeader(text: string): void {
    const signedMatch = this.signed ? (this.sigV4a ? SIGV4A_CHUNK_SIGNATURE_RE : CHUNK_SIGNATURE_RE).exec(text) : null;
    const unsignedMatch = this.signed ? null : UNSIGNED_CHUNK_RE.exec(text);
    const sizeHex = signedMatch?.[1] ?? unsignedMatch?.[1];
    if (sizeHex === undefined) {
      this.fail(
        this.signed ? "SignatureDoesNotMatch" : "InvalidRequest",
        this.signed
          ? `Chunk ${this.chunkIndex} header is not '<hex size>;chunk-signature=<${this.sigV4a ? "hex DER padded with *" : "64 hex"}>'`
          : `Chunk ${this.chunkIndex} header is not '<hex size>'`,
      );
      return;
    }
    const size = parseInt(sizeHex, 16);
    this.chunkSize = size;
    this.chunkRemaining = size;
    this.chunkSignature = signedMatch?.[2] ?? "";
    if (size > 0 && this.lastDataChunkSize >= 0 && this.lastDataChunkSize < this.minChunkSize) {
      this.fail("InvalidChunkSizeError", `Only the last chunk is allowed to have a size less than ${this.minChunkSize} bytes`);
      return;
    }
    if (size === 0) {
      if (this.signed && !this.verifyChunk(EMPTY_SHA256)) return;
      this.chunkIndex++;
      this.state = this.withTrailer ? "trailer" : "final-crlf";
      return;
    }
    this.chunkHash = this.signed ? createHash("sha256") : undefined;
    this.state = "chunk-data";
  }

  private onFinalCrlf(text: string): void {
    if (text !== "") {
      this.fail("InvalidRequest", "Expected an empty line after the final chunk");
      return;
    }
    this.state = "done";
  }

  private onTrailerLine(text: string): void {
    if (text === "") {
      this.finishTrailers();
      return;
    }
    if (this.trailers.length >= MAX_TRAILER_LINES) {
      this.fail("InvalidRequest", "Too many trailer lines");
      return;
    }
    const colon = text.indexOf(":");
    if (colon <= 0) {
      this.fail("InvalidRequest", `Trailer line '${text.slice(0, 80)}' is not name:value`);
      return;
    }
    const name = text.slice(0, colon).trim().toLowerCase();
    const value = text.slice(colon + 1).trim();
    if (name === TRAILER_SIGNATURE) {
      if (!this.signed) {
        this.fail("InvalidRequest", `${TRAILER_SIGNATURE} is not allowed with ${STREAMING_UNSIGNED_PAYLOAD_TRAILER}`);
        return;
      }
      this.trailerSignature = value;
      return;
    }
    if (this.trailerSignature !== undefined) {
      this.fail("InvalidRequest", `Trailer '${name}' follows ${TRAILER_SIGNATURE}`);
      return;
    }
    if (!this.declared.has(name)) {
      this.fail("InvalidRequest", `Trailer '${name}' was not declared in x-amz-trailer`);
      return;
    }
    this.trailers.push([name, value]);
  }

  private finishTrailers(): void {
    if (this.signed) {
      const signing = this.options.signing as ChunkSigning;
      const trailerHash = sha256Hex(canonicalTrailerText(this.trailers));
      const stringToSign = this.sigV4a
        ? [SIGV4A_TRAILER_PREFIX, signing.amzDate, signing.scope, this.previousSignature, trailerHash].join("\n")
        : trailerStringToSign(signing.amzDate, signing.scope, this.previousSignature, trailerHash);
      if (this.trailerSignature === undefined) {
        this.fail("SignatureDoesNotMatch", `${TRAILER_SIGNATURE} is missing`, { stringToSign });
        return;
      }
      if (this.verify(signing, stringToSign, this.trailerSignature) === undefined) {
        this.fail("SignatureDoesNotMatch", "The trailer signature we calculated does not match the signature you provided.", {
          stringToSign,
        });
        return;
      }
      this.trailerVerified = true;
    }
    this.state = "done";
  }

  // -- data states ---------------------------------------------------------------------------

  private readData(buf: Buffer, offset: number): number {
    const take = Math.min(this.chunkRemaining, buf.length - offset);
    const data = buf.subarray(offset, offset + take);
    this.chunkHash?.update(data);
    for (const c of this.checksums.values()) c.update(data);
    this.decodedBytes += take;
    this.chunkRemaining -= take;
    this.options.onData?.(data);
    if (this.chunkRemaining === 0) {
      this.state = "chunk-data-crlf";
      this.crlfSeen = 0;
    }
    return offset + take;
  }

  private readDataCrlf(buf: Buffer, offset: number): number {
    while (offset < buf.length && this.crlfSeen < 2) {
      const expected = this.crlfSeen === 0 ? 0x0d : 0x0a;
      if (buf[offset] !== expected) {
        this.fail("IncompleteBody", `Chunk ${this.chunkIndex} data is not followed by CRLF (chunk longer than its declared size?)`, {
          chunkIndex: this.chunkIndex,
        });
        return buf.length;
      }
      this.crlfSeen++;
      offset++;
    }
    if (this.crlfSeen === 2) {
      if (this.signed && !this.verifyChunk((this.chunkHash as Hash).digest("hex"))) return buf.length;
      this.lastDataChunkSize = this.chunkSize;
      this.chunkIndex++;
      this.state = "chunk-header";
    }
    return offset;
  }

  /** The signature to chain from (SigV4A: without its padding) when `provided` signs `stringToSign`; else undefined. */
  private verify(signing: ChunkSigning, stringToSign: string, provided: string): string | undefined {
    if ("signingKey" in signing) return signaturesEqual(hmacHex(signing.signingKey, stringToSign), provided) ? provided : undefined;
    const unpadded = unpadSigV4aSignature(provided);
    if (unpadded === undefined) return undefined;
    return verifySigV4aSignature(signing.sigV4aPublicKey, stringToSign, unpadded) ? unpadded : undefined;
  }

  private verifyChunk(dataSha256Hex: string): boolean {
    const signing = this.options.signing as ChunkSigning;
    const stringToSign = this.sigV4a
      ? [SIGV4A_CHUNK_PREFIX, signing.amzDate, signing.scope, this.previousSignature, EMPTY_SHA256, dataSha256Hex].join("\n")
      : chunkStringToSign(signing.amzDate, signing.scope, this.previousSignature, dataSha256Hex);
    const next = this.verify(signing, stringToSign, this.chunkSignature);
    if (next === undefined) {
      this.fail("SignatureDoesNotMatch", `The chunk signature we calculated for chunk ${this.chunkIndex} does not match the signature you provided.`, {
        chunkIndex: this.chunkIndex,
        stringToSign,
      });
      return false;
    }
    this.previousSignature = next;
    this.chunksVerified++;
    return true;
  }

  private fail(code: string, message: string, extra: Partial<ChunkedFailure> = {}): void {
    if (!this.failed) this.failed = { code, message, ...extra };
  }

  private failResult(code: string, message: string): ChunkedResult {
    this.fail(code, message);
    return { ok: false, failure: this.failed as ChunkedFailure };
  }
}
