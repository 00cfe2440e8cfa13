/**
 * Signed event streams for tests: the AWS SDK's own signing of a client stream (the SDK's
 * event-stream payload handler and @smithy/signature-v4, as Transcribe streaming uses them), and
 * an independent checker written from the event-stream and SigV4 specifications with node:crypto
 * and zlib.crc32 only: it shares no code with src/sigv4 or the libraries src uses for framing.
 *
 * Envelope (all integers big-endian):
 *   total length u32 · headers length u32 · CRC32(first 8 bytes) u32 · headers · payload · CRC32(all before) u32
 * Header: name length u8 · name · type u8 · value; type 6 binary (u16 length · bytes),
 * 7 string (u16 length · UTF-8), 8 timestamp (i64 milliseconds).
 * Message signature: HMAC-SHA256(signing key of the message's date, string to sign)
 *   AWS4-HMAC-SHA256-PAYLOAD \n <date, YYYYMMDD'T'HHMMSS'Z'> \n <YYYYMMDD>/<region>/<service>/aws4_request \n
 *   <prior signature> \n hex(SHA256(encoded :date header)) \n hex(SHA256(payload))
 */
import { eventStreamPayloadHandlerProvider } from "@aws-sdk/eventstream-handler-node";
import { EventStreamCodec } from "@smithy/core/event-streams";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { FinalizeHandlerArguments, HttpRequest } from "@smithy/types";
import { createHash, createHmac } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { crc32 } from "node:zlib";

export interface ChainParams {
  /** The signature the first message chains from. */
  readonly seedSignature: string;
  readonly secretAccessKey: string;
  readonly region: string;
  readonly service: string;
}

export interface OracleFrame {
  /** Where the envelope starts in the stream, and its length. */
  readonly offset: number;
  readonly length: number;
  readonly dateMs: number;
  readonly signature: Buffer;
  /** Offset of the signature's 32 bytes within the envelope. */
  readonly signatureAt: number;
  readonly payload: Buffer;
}

/** Splits a stream of envelopes, checking both CRCs and the two headers; throws on anything else. */
export function oracleFrames(wire: Buffer): OracleFrame[] {
  const frames: OracleFrame[] = [];
  let at = 0;
  while (at < wire.length) {
    if (wire.length - at < 16) throw new Error(`truncated envelope at ${at}`);
    const total = wire.readUInt32BE(at);
    const headersLength = wire.readUInt32BE(at + 4);
    if (crc32(wire.subarray(at, at + 8)) !== wire.readUInt32BE(at + 8)) throw new Error(`prelude CRC mismatch at ${at}`);
    if (total < 16 || at + total > wire.length) throw new Error(`envelope length ${total} at ${at} does not fit`);
    if (crc32(wire.subarray(at, at + total - 4)) !== wire.readUInt32BE(at + total - 4)) throw new Error(`message CRC mismatch at ${at}`);
    let h = at + 12;
    const end = h + headersLength;
    let dateMs: number | undefined;
    let signature: Buffer | undefined;
    let signatureAt = 0;
    while (h < end) {
      const nameLength = wire.readUInt8(h);
      const name = wire.toString("utf8", h + 1, h + 1 + nameLength);
      const type = wire.readUInt8(h + 1 + nameLength);
      const v = h + 2 + nameLength;
      if (name === ":date" && type === 8 && dateMs === undefined) {
        dateMs = Number(wire.readBigInt64BE(v));
        h = v + 8;
      } else if (name === ":chunk-signature" && type === 6 && signature === undefined) {
        const len = wire.readUInt16BE(v);
        signature = wire.subarray(v + 2, v + 2 + len);
        signatureAt = v + 2 - at;
        h = v + 2 + len;
      } else {
        throw new Error(`unexpected header ${name} (type ${type}) at ${h}`);
      }
    }
    if (h !== end || dateMs === undefined || signature?.length !== 32) throw new Error(`envelope at ${at} lacks :date or a 32-byte :chunk-signature`);
    frames.push({ offset: at, length: total, dateMs, signature, signatureAt, payload: wire.subarray(end, at + total - 4) });
    at += total;
  }
  return frames;
}

function amzDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

function signingKey(secret: string, shortDate: string, region: string, service: string): Buffer {
  let key: Buffer | string = `AWS4${secret}`;
  for (const part of [shortDate, region, service, "aws4_request"]) key = createHmac("sha256", key).update(part).digest();
  return key as Buffer;
}

/** The `:date` header as signed: name length, name, type 8, the i64 milliseconds. */
function dateHeaderBytes(ms: number): Buffer {
  const b = Buffer.alloc(1 + 5 + 1 + 8);
  b.writeUInt8(5, 0);
  b.write(":date", 1, "latin1");
  b.writeUInt8(8, 6);
  b.writeBigInt64BE(BigInt(ms), 7);
  return b;
}

/** The signature each frame must carry, chained from `seedSignature`. */
export function oracleSignatures(frames: readonly OracleFrame[], p: ChainParams): string[] {
  let prior = p.seedSignature;
  return frames.map((f) => {
    const date = amzDate(f.dateMs);
    const shortDate = date.slice(0, 8);
    const stringToSign = [
      "AWS4-HMAC-SHA256-PAYLOAD",
      date,
      `${shortDate}/${p.region}/${p.service}/aws4_request`,
      prior,
      createHash("sha256").update(dateHeaderBytes(f.dateMs)).digest("hex"),
      createHash("sha256").update(f.payload).digest("hex"),
    ].join("\n");
    prior = createHmac("sha256", signingKey(p.secretAccessKey, shortDate, p.region, p.service)).update(stringToSign).digest("hex");
    return prior;
  });
}

/**
 * What a correct re-signer must forward for a client stream: every envelope as sent, with its
 * signature replaced by the chained one and its message CRC recomputed.
 */
export function oracleResign(wire: Buffer, p: ChainParams): Buffer {
  const frames = oracleFrames(wire);
  const signatures = oracleSignatures(frames, p);
  const out = Buffer.from(wire);
  frames.forEach((f, i) => {
    Buffer.from(signatures[i] as string, "hex").copy(out, f.offset + f.signatureAt);
    out.writeUInt32BE(crc32(out.subarray(f.offset, f.offset + f.length - 4)), f.offset + f.length - 4);
  });
  return out;
}

/**
 * Checks a forwarded stream as AWS would: framing, CRCs, every signature in the chain, the final
 * empty message and nothing after it. Returns the inner payloads (the final empty one left out).
 */
export function verifyEventStream(wire: Buffer, p: ChainParams): Buffer[] {
  const frames = oracleFrames(wire);
  const expected = oracleSignatures(frames, p);
  frames.forEach((f, i) => {
    if (f.signature.toString("hex") !== expected[i]) throw new Error(`message ${i}: signature ${f.signature.toString("hex")} is not the chained ${expected[i]}`);
  });
  const last = frames[frames.length - 1];
  if (last === undefined || last.payload.length !== 0) throw new Error("stream does not end with the final empty message");
  if (frames.slice(0, -1).some((f) => f.payload.length === 0)) throw new Error("an empty message before the end");
  return frames.slice(0, -1).map((f) => Buffer.from(f.payload));
}

const utf8 = {
  toUtf8: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8"),
  fromUtf8: (s: string) => Buffer.from(s, "utf8"),
};
const innerCodec = new EventStreamCodec(utf8.toUtf8, utf8.fromUtf8);

/** An inner event as Transcribe's AudioStream serialises it: an AudioEvent carrying `audio`. */
export function audioEvent(audio: Uint8Array): Uint8Array {
  return innerCodec.encode({
    headers: {
      ":message-type": { type: "string", value: "event" },
      ":event-type": { type: "string", value: "AudioEvent" },
      ":content-type": { type: "string", value: "application/octet-stream" },
    },
    body: audio,
  });
}

export interface SdkSigning {
  readonly seedSignature: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  readonly service: string;
}

/**
 * Signs `events` (encoded inner messages) as the AWS SDK does for a signed event stream: the
 * SDK's event-stream payload handler with @smithy/signature-v4 as its message signer, chained
 * from the request's Authorization signature, and the final empty message the SDK's serialiser
 * ends every stream with. Returns the bytes the SDK would put on the wire.
 */
export async function sdkSignedEventStream(events: readonly Uint8Array[], s: SdkSigning): Promise<Buffer> {
  const signer = new SignatureV4({
    service: s.service,
    region: s.region,
    credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey },
    sha256: Hash.bind(null, "sha256"),
  });
  const handler = eventStreamPayloadHandlerProvider({
    messageSigner: () => Promise.resolve(signer),
    utf8Encoder: utf8.toUtf8,
    utf8Decoder: utf8.fromUtf8,
  });
  const request = {
    method: "POST",
    protocol: "https:",
    hostname: "transcribestreaming.us-west-2.amazonaws.com",
    path: "/stream-transcription",
    query: {},
    headers: { authorization: `AWS4-HMAC-SHA256 Credential=${s.accessKeyId}/20240501/${s.region}/${s.service}/aws4_request, SignedHeaders=host, Signature=${s.seedSignature}` },
    body: Readable.from([...events, new Uint8Array(0)], { objectMode: true }),
  } as unknown as HttpRequest;
  const frames: Buffer[] = [];
  await handler.handle(
    async (args: FinalizeHandlerArguments<object>) => {
      const body = (args.request as HttpRequest).body as PassThrough;
      for await (const frame of body) frames.push(Buffer.from(frame as Uint8Array));
      return { output: { $metadata: {} }, response: {} };
    },
    { input: {}, request },
  );
  return Buffer.concat(frames);
}

/**
 * One client envelope built from the spec (test-side framing, CRCs by zlib.crc32): `:date` then
 * `:chunk-signature` (any 32 bytes: countersign never checks the placeholder's), then `payload`.
 */
export function clientEnvelope(dateMs: number, payload: Uint8Array, signature: Uint8Array = Buffer.alloc(32, 0xab)): Buffer {
  const sigHeader = Buffer.concat([Buffer.from([16]), Buffer.from(":chunk-signature", "latin1"), Buffer.from([6, 0, signature.length]), signature]);
  const headers = Buffer.concat([dateHeaderBytes(dateMs), sigHeader]);
  const total = 12 + headers.length + payload.length + 4;
  const b = Buffer.alloc(total);
  b.writeUInt32BE(total, 0);
  b.writeUInt32BE(headers.length, 4);
  b.writeUInt32BE(crc32(b.subarray(0, 8)), 8);
  headers.copy(b, 12);
  Buffer.from(payload).copy(b, 12 + headers.length);
  b.writeUInt32BE(crc32(b.subarray(0, total - 4)), total - 4);
  return b;
}
