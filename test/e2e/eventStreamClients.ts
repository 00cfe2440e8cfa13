/**
 * Workloads of the bidirectional event-stream APIs, written as an application would with the AWS
 * SDK for JavaScript v3 (over HTTP/2, the only transport these operations have):
 *   - Transcribe Streaming StartStreamTranscription: PCM audio frames in, transcripts out;
 *   - Bedrock Runtime InvokeModelWithBidirectionalStream: chunks in, chunks out.
 *
 * Both run in lock step: the input waits for the answer to what it has sent before it sends
 * more. Answers can therefore only arrive while the request stream is still open, and a proxy that
 * held them back until the request ended would stall the exchange, so finishing at all proves
 * the path is bidirectional; the counts of answers received before the input ended say it again.
 */
import { BedrockRuntimeClient, InvokeModelWithBidirectionalStreamCommand, type InvokeModelWithBidirectionalStreamInput } from "@aws-sdk/client-bedrock-runtime";
import type * as http2 from "node:http2";
import { StartStreamTranscriptionCommand, TranscribeStreamingClient, type AudioStream } from "@aws-sdk/client-transcribe-streaming";
import { Hash } from "@smithy/hash-node";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { EVENT_STREAM_CONTENT_TYPE, EventStreamDecoder, STREAMING_EVENTS_PAYLOAD, stringHeader } from "../fakeaws/eventStream.js";
import { clientEnvelope } from "../support/eventStreams.js";

export const SAMPLE_RATE = 16_000;

/** `seconds` of a 440 Hz sine wave as 16-bit little-endian mono PCM, in frames of `frameMs`. */
export function pcmSineFrames(seconds: number, frameMs = 100, sampleRate = SAMPLE_RATE, hz = 440): Buffer[] {
  const samplesPerFrame = (sampleRate * frameMs) / 1000;
  const frames: Buffer[] = [];
  for (let f = 0; f < (seconds * 1000) / frameMs; f++) {
    const frame = Buffer.alloc(samplesPerFrame * 2);
    for (let i = 0; i < samplesPerFrame; i++) {
      const t = (f * samplesPerFrame + i) / sampleRate;
      frame.writeInt16LE(Math.round(Math.sin(2 * Math.PI * hz * t) * 0.5 * 32767), i * 2);
    }
    frames.push(frame);
  }
  return frames;
}

/** Resolves waits for a count of answers; rejects them all once the answers have ended. */
class AnswerCounter {
  count = 0;
  private waiters: Array<{ n: number; resolve: () => void; reject: (e: Error) => void }> = [];
  private closed: Error | undefined;

  add(): void {
    this.count += 1;
    this.waiters = this.waiters.filter((w) => (w.n <= this.count ? (w.resolve(), false) : true));
  }

  close(reason: Error): void {
    this.closed = reason;
    for (const w of this.waiters.splice(0)) w.reject(reason);
  }

  atLeast(n: number): Promise<void> {
    if (this.count >= n) return Promise.resolve();
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => this.waiters.push({ n, resolve, reject }));
  }
}

export interface TranscriptionRun {
  /** Each TranscriptEvent's first transcript, with whether it was partial. */
  transcripts: Array<{ text: string; partial: boolean }>;
  /** Transcripts received before the audio input had ended. */
  receivedBeforeInputEnded: number;
  /** The response headers the SDK read. */
  sessionId: string | undefined;
}

/**
 * StartStreamTranscription with `frames`: after every `every` frames it waits for the transcript
 * of those frames before it sends more.
 */
export async function streamTranscription(client: TranscribeStreamingClient, frames: readonly Buffer[], every: number): Promise<TranscriptionRun> {
  const answers = new AnswerCounter();
  let inputEnded = false;
  let receivedBeforeInputEnded = 0;
  async function* audio(): AsyncIterable<AudioStream> {
    for (let i = 0; i < frames.length; i++) {
      yield { AudioEvent: { AudioChunk: frames[i] } };
      if ((i + 1) % every === 0) await answers.atLeast((i + 1) / every);
    }
    inputEnded = true;
  }
  const out = await client.send(
    new StartStreamTranscriptionCommand({ LanguageCode: "en-US", MediaEncoding: "pcm", MediaSampleRateHertz: SAMPLE_RATE, AudioStream: audio() }),
  );
  const transcripts: TranscriptionRun["transcripts"] = [];
  try {
    for await (const event of out.TranscriptResultStream ?? []) {
      const result = event.TranscriptEvent?.Transcript?.Results?.[0];
      if (!result) continue;
      transcripts.push({ text: result.Alternatives?.[0]?.Transcript ?? "", partial: result.IsPartial === true });
      if (!inputEnded) receivedBeforeInputEnded += 1;
      answers.add();
    }
  } finally {
    answers.close(new Error("the transcript stream ended"));
  }
  return { transcripts, receivedBeforeInputEnded, sessionId: out.SessionId };
}

export interface BidiRun {
  /** The bytes of each output chunk, in order. */
  echoes: Buffer[];
  receivedBeforeInputEnded: number;
}

/** InvokeModelWithBidirectionalStream: each chunk waits for the echo of the one before it. */
export async function bidirectionalEcho(client: BedrockRuntimeClient, modelId: string, chunks: readonly Buffer[]): Promise<BidiRun> {
  const answers = new AnswerCounter();
  let inputEnded = false;
  let receivedBeforeInputEnded = 0;
  async function* input(): AsyncIterable<InvokeModelWithBidirectionalStreamInput> {
    for (let i = 0; i < chunks.length; i++) {
      if (i > 0) await answers.atLeast(i);
      yield { chunk: { bytes: chunks[i] } };
    }
    inputEnded = true;
  }
  const out = await client.send(new InvokeModelWithBidirectionalStreamCommand({ modelId, body: input() }));
  const echoes: Buffer[] = [];
  try {
    for await (const event of out.body ?? []) {
      if (!event.chunk?.bytes) continue;
      echoes.push(Buffer.from(event.chunk.bytes));
      if (!inputEnded) receivedBeforeInputEnded += 1;
      answers.add();
    }
  } finally {
    answers.close(new Error("the output stream ended"));
  }
  return { echoes, receivedBeforeInputEnded };
}

export interface HandSignedEventStreamOptions {
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
  service: string;
  /** host[:port] as signed and sent as :authority. */
  authority: string;
  path: string;
  /** Extra headers to sign and send (lowercase names). */
  headers?: Record<string, string>;
  /** The inner events (each already an encoded event-stream message). */
  events: readonly Buffer[];
}

export interface HandSignedEventStream {
  /** The request's head: pseudo-headers and signed headers, ready for an HTTP/2 request. */
  head: Record<string, string>;
  /** The signed outer messages, the final empty one last. */
  messages: Buffer[];
}

/**
 * Signs an event-stream request the way the SDK does (the head with
 * STREAMING-AWS4-HMAC-SHA256-EVENTS, then each message chained from it), with the SDK's own
 * signer, but builds the frames itself so a test can send them one by one or damage one.
 */
export async function handSignedEventStream(opts: HandSignedEventStreamOptions): Promise<HandSignedEventStream> {
  const signer = new SignatureV4({ credentials: opts.credentials, region: opts.region, service: opts.service, sha256: Hash.bind(null, "sha256") });
  const hostname = opts.authority.replace(/:\d+$/, "");
  const signed = await signer.sign(
    new HttpRequest({
      method: "POST",
      protocol: "https:",
      hostname,
      path: opts.path,
      headers: {
        host: opts.authority,
        "content-type": EVENT_STREAM_CONTENT_TYPE,
        "x-amz-content-sha256": STREAMING_EVENTS_PAYLOAD,
        ...opts.headers,
      },
    }),
  );
  const auth = String(signed.headers["authorization"]);
  let prior = /Signature=([0-9a-f]{64})$/.exec(auth)?.[1] ?? "";
  const messages: Buffer[] = [];
  for (const payload of [...opts.events, Buffer.alloc(0)]) {
    const date = new Date();
    const { signature } = await signer.signMessage({ message: { headers: { ":date": { type: "timestamp", value: date } }, body: payload }, priorSignature: prior }, {});
    prior = signature;
    messages.push(clientEnvelope(date.getTime(), payload, Buffer.from(signature, "hex")));
  }
  const head: Record<string, string> = { ":method": "POST", ":path": opts.path, ":authority": opts.authority, ":scheme": "https" };
  for (const [name, value] of Object.entries(signed.headers)) if (name !== "host") head[name] = String(value);
  return { head, messages };
}

export interface RawExchange {
  status: number;
  /** Response headers, as received. */
  headers: http2.IncomingHttpHeaders;
  /** The response body split into event-stream messages (or the raw error body). */
  events: Array<{ messageType: string | undefined; type: string | undefined; payload: string }>;
  body: Buffer;
  /** The request stream was reset or refused by the peer before every message was written. */
  writeError: string | undefined;
}

/**
 * Sends a hand-signed event stream over an HTTP/2 session, one message at a time (each waits for
 * the previous to be flushed, and for `beforeMessage(i)` when given; `beforeMessage(messages.length)`
 * before the end of the stream), and reads the whole answer.
 */
export async function sendEventStream(
  session: http2.ClientHttp2Session,
  stream: HandSignedEventStream,
  beforeMessage?: (index: number) => Promise<void>,
): Promise<RawExchange> {
  const req = session.request(stream.head);
  const response = new Promise<{ status: number; headers: http2.IncomingHttpHeaders }>((resolve, reject) => {
    req.once("response", (headers) => resolve({ status: Number(headers[":status"]), headers }));
    req.once("error", reject);
  });
  response.catch(() => undefined); // awaited below, after the writes
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  const ended = new Promise<void>((resolve) => req.once("close", () => resolve()));
  let writeError: string | undefined;
  try {
    for (const [index, message] of stream.messages.entries()) {
      await beforeMessage?.(index);
      if (req.destroyed || req.writableEnded) throw new Error(`the request stream closed after ${index} messages`);
      await new Promise<void>((resolve, reject) => req.write(message, (err) => (err ? reject(err) : resolve())));
    }
    await beforeMessage?.(stream.messages.length);
    req.end();
  } catch (err) {
    writeError = err instanceof Error ? err.message : String(err);
  }
  const { status, headers } = await response;
  await ended;
  const body = Buffer.concat(chunks);
  const decoded = new EventStreamDecoder().push(body);
  const events = (decoded.error === undefined ? decoded.messages : []).map((m) => ({
    messageType: stringHeader(m, ":message-type"),
    type: stringHeader(m, ":event-type") ?? stringHeader(m, ":exception-type"),
    payload: m.payload.toString("utf8"),
  }));
  return { status, headers, events, body, writeError };
}
