/**
 * Signed event streams for tests, on top of the fake AWS's event-stream module
 * (test/fakeaws/eventStream.ts: the one test-side decoder, encoder and chain verifier, written from
 * the spec with node:crypto and zlib.crc32 and sharing no code with src/sigv4 or the libraries src
 * uses for framing), plus the AWS SDK's own signing of a client stream (the SDK's event-stream
 * payload handler and @smithy/signature-v4, as Transcribe streaming uses them).
 */
import { eventStreamPayloadHandlerProvider } from "@aws-sdk/eventstream-handler-node";
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { FinalizeHandlerArguments, HttpRequest } from "@smithy/types";
import { PassThrough, Readable } from "node:stream";
import { EventStreamChainVerifier, EventStreamDecoder, encodeMessage, eventSignature, type EventHeader, type EventSigning, type EventMessage } from "../fakeaws/eventStream.js";
import { deriveSigningKey } from "../fakeaws/verifier.js";

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
  readonly payload: Buffer;
  /** The decoded envelope, headers in wire order. */
  readonly message: EventMessage;
  /** The encoded `:date` header, as signed. */
  readonly dateHeader: EventHeader;
}

/**
 * Splits a stream of envelopes with the fake's decoder (both CRCs, every length) and requires each
 * to carry exactly `:date` (timestamp) and a 32-byte `:chunk-signature`; throws on anything else.
 */
export function oracleFrames(wire: Buffer): OracleFrame[] {
  const decoder = new EventStreamDecoder();
  const decoded = decoder.push(wire);
  if (decoded.error !== undefined) throw new Error(decoded.error);
  const ended = decoder.end();
  if (!ended.ok) throw new Error(ended.error);
  let offset = 0;
  return decoded.messages.map((message) => {
    const at = offset;
    offset += message.raw.length;
    const [date, signature] = [":date", ":chunk-signature"].map((n) => message.headers.find((h) => h.name === n));
    if (message.headers.length !== 2 || date?.value.type !== "timestamp" || signature?.value.type !== "bytes" || signature.value.value.length !== 32) {
      throw new Error(`envelope at ${at} carries ${message.headers.map((h) => `${h.name} (${h.value.type})`).join(", ")}, not exactly :date and a 32-byte :chunk-signature`);
    }
    return { offset: at, length: message.raw.length, dateMs: date.value.value.getTime(), signature: signature.value.value, payload: message.payload, message, dateHeader: date };
  });
}

function signingOf(p: ChainParams): EventSigning {
  return { region: p.region, service: p.service, signingKeyFor: (day) => deriveSigningKey(p.secretAccessKey, day, p.region, p.service) };
}

/** The signature each frame must carry, chained from `seedSignature`. */
export function oracleSignatures(frames: readonly OracleFrame[], p: ChainParams): string[] {
  const signing = signingOf(p);
  let prior = p.seedSignature;
  return frames.map((f) => {
    prior = eventSignature(signing, prior, new Date(f.dateMs), f.dateHeader.raw, f.payload).signature;
    return prior;
  });
}

/**
 * What a correct re-signer must forward for a client stream: every envelope as sent (headers in
 * their order, same :date, same payload), re-encoded by the fake's encoder with the chained signature.
 */
export function oracleResign(wire: Buffer, p: ChainParams): Buffer {
  const frames = oracleFrames(wire);
  const signatures = oracleSignatures(frames, p);
  return Buffer.concat(
    frames.map((f, i) =>
      encodeMessage(
        f.message.headers.map((h) => [h.name, h.name === ":chunk-signature" ? { type: "bytes", value: Buffer.from(signatures[i] as string, "hex") } : h.value] as const),
        f.payload,
      ),
    ),
  );
}

/**
 * Checks a forwarded stream as AWS would, with the fake's chain verifier: framing, CRCs, every
 * signature in the chain, the final empty message and nothing after it. Returns the inner
 * payloads (the final empty one left out).
 */
export function verifyEventStream(wire: Buffer, p: ChainParams): Buffer[] {
  const verifier = new EventStreamChainVerifier({ ...signingOf(p), seedSignature: p.seedSignature });
  const pushed = verifier.push(wire);
  if (!pushed.ok) throw new Error(`${pushed.failure.code} at message ${pushed.failure.messageIndex}: ${pushed.failure.message}`);
  const ended = verifier.end();
  if (!ended.ok) throw new Error(`${ended.failure.code} at message ${ended.failure.messageIndex}: ${ended.failure.message}`);
  return pushed.events.filter((e) => !e.final).map((e) => Buffer.from(e.payload));
}

const utf8 = {
  toUtf8: (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8"),
  fromUtf8: (s: string) => Buffer.from(s, "utf8"),
};

/** An inner event as Transcribe's AudioStream serialises it: an AudioEvent carrying `audio`. */
export function audioEvent(audio: Uint8Array): Buffer {
  return encodeMessage(
    [
      [":message-type", { type: "string", value: "event" }],
      [":event-type", { type: "string", value: "AudioEvent" }],
      [":content-type", { type: "string", value: "application/octet-stream" }],
    ],
    audio,
  );
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
 * One client envelope, encoded by the fake's encoder: `:date` then `:chunk-signature` (any 32
 * bytes: countersign never checks the placeholder's), then `payload`.
 */
export function clientEnvelope(dateMs: number, payload: Uint8Array, signature: Uint8Array = Buffer.alloc(32, 0xab)): Buffer {
  return encodeMessage(
    [
      [":date", { type: "timestamp", value: new Date(dateMs) }],
      [":chunk-signature", { type: "bytes", value: Buffer.from(signature) }],
    ],
    payload,
  );
}
