/**
 * The fake's bidirectional event-stream operations. The request's head is verified by the server
 * (auth.ts); here each request event is verified against the chain as it arrives, and answered
 * while the request is still open:
 *
 *   - Transcribe Streaming `StartStreamTranscription` (`POST /stream-transcription`): AudioEvent
 *     in; a partial TranscriptEvent after every `transcriptEvery` verified audio events, and a
 *     final one after the signed empty message, each naming what was verified so far.
 *   - Bedrock Runtime `InvokeModelWithBidirectionalStream`
 *     (`POST /model/{modelId}/invoke-with-bidirectional-stream`): each `chunk` event in is echoed
 *     back as a `chunk` event out at once.
 *
 * A broken chain (bad frame, bad signature, a missing final message) ends the response with an
 * exception event — `:message-type exception`, a JSON `{"Message": …}` payload, and as
 * `:exception-type` Transcribe's `BadRequestException` (what it sends for a mismatched event
 * signature) or, for Bedrock, `ValidationException` (the input error its model declares) — and
 * nothing after the failure is read as events.
 */
import { randomUUID } from "node:crypto";
import { decodeMessage, encodeMessage, stringHeader, type ChainFailure, type EventHeaderValue, type EventStreamChainVerifier } from "./eventStream.js";

export const EVENT_STREAM_OPERATIONS = {
  transcribe: { operation: "StartStreamTranscription", path: /^\/stream-transcription$/ },
  bedrockBidi: { operation: "InvokeModelWithBidirectionalStream", path: /^\/model\/[^/]+\/invoke-with-bidirectional-stream$/ },
} as const;

export type EventStreamOperation = keyof typeof EVENT_STREAM_OPERATIONS;

/** What one event-stream request did, for the test to read from the fake's record. */
export interface EventStreamRecord {
  /** Signed messages whose signature verified (the final empty one included). */
  messagesVerified: number;
  /** The signed empty message arrived and verified, and the body ended right after it. */
  finalVerified: boolean;
  /** Inner events received (AudioEvent / chunk), all verified. */
  inputEvents: number;
  /** Audio bytes (Transcribe) or decoded chunk bytes (Bedrock) in those events. */
  inputBytes: number;
  /** Events the fake sent back. */
  outputEvents: number;
  /** Of those, how many were sent before the request body had ended. */
  outputEventsBeforeInputEnded: number;
  /** The request body ended (cleanly or not). */
  inputEnded: boolean;
  /** The request stream was cut off (reset or aborted) instead of ending. */
  inputAborted: boolean;
  failure?: { code: ChainFailure["code"]; message: string; messageIndex: number; stringToSign?: string };
  /** The `:exception-type` sent on failure. */
  exception?: string;
}

export function newEventStreamRecord(): EventStreamRecord {
  return { messagesVerified: 0, finalVerified: false, inputEvents: 0, inputBytes: 0, outputEvents: 0, outputEventsBeforeInputEnded: 0, inputEnded: false, inputAborted: false };
}

/** Where the response goes: the head, then event bytes as they are made. */
export interface EventResponseSink {
  head(headers: Record<string, string>): void;
  write(bytes: Buffer): void;
  end(): void;
}

export function eventStreamOperationOf(api: string, method: string, rawPath: string): EventStreamOperation | undefined {
  if (method !== "POST") return undefined;
  if (api === "transcribe-streaming" && EVENT_STREAM_OPERATIONS.transcribe.path.test(rawPath)) return "transcribe";
  if (api === "bedrock-runtime" && EVENT_STREAM_OPERATIONS.bedrockBidi.path.test(rawPath)) return "bedrockBidi";
  return undefined;
}

const str = (value: string): EventHeaderValue => ({ type: "string", value });

function eventMessage(eventType: string, payload: unknown): Buffer {
  return encodeMessage(
    [
      [":message-type", str("event")],
      [":event-type", str(eventType)],
      [":content-type", str("application/json")],
    ],
    Buffer.from(JSON.stringify(payload)),
  );
}

function exceptionMessage(exceptionType: string, message: string): Buffer {
  return encodeMessage(
    [
      [":message-type", str("exception")],
      [":exception-type", str(exceptionType)],
      [":content-type", str("application/json")],
    ],
    Buffer.from(JSON.stringify({ Message: message })),
  );
}

/** What the fake says about a verified prefix of the audio: the test parses it back. */
export function transcriptText(audioEvents: number, audioBytes: number): string {
  return `verified ${audioEvents} audio events ${audioBytes} bytes`;
}

function transcriptEvent(resultNumber: number, audioEvents: number, audioBytes: number, partial: boolean, sampleRate: number): Buffer {
  const seconds = audioBytes / 2 / sampleRate;
  return eventMessage("TranscriptEvent", {
    Transcript: {
      Results: [
        {
          ResultId: `result-${resultNumber}`,
          StartTime: 0,
          EndTime: seconds,
          IsPartial: partial,
          Alternatives: [{ Transcript: transcriptText(audioEvents, audioBytes), Items: [] }],
        },
      ],
    },
  });
}

/** The base64 `bytes` of a Bedrock `chunk` event's JSON payload ("" when it has none). */
function chunkBytesOf(payload: Buffer): string {
  try {
    const part = JSON.parse(payload.toString("utf8")) as { bytes?: unknown };
    return typeof part.bytes === "string" ? part.bytes : "";
  } catch {
    return "";
  }
}

export interface ServeEventStreamOptions {
  operation: EventStreamOperation;
  chain: EventStreamChainVerifier;
  body: AsyncIterable<Buffer>;
  sink: EventResponseSink;
  record: EventStreamRecord;
  requestId: string;
  /** The request's headers (lowercase names), for the echoed Transcribe settings. */
  header(name: string): string | undefined;
  /** Transcribe: a partial transcript after this many verified audio events. Default 5. */
  transcriptEvery?: number;
}

/** Streams one verified event-stream exchange; resolves when the response has ended. */
export async function serveEventStream(opts: ServeEventStreamOptions): Promise<void> {
  const { chain, sink, record } = opts;
  const transcribe = opts.operation === "transcribe";
  const exceptionType = transcribe ? "BadRequestException" : "ValidationException";
  const sampleRate = Number(opts.header("x-amzn-transcribe-sample-rate") ?? "16000") || 16000;
  sink.head({
    "content-type": "application/vnd.amazon.eventstream",
    "x-amzn-requestid": opts.requestId,
    ...(transcribe
      ? {
          "x-amzn-transcribe-session-id": opts.header("x-amzn-transcribe-session-id") ?? randomUUID(),
          "x-amzn-transcribe-language-code": opts.header("x-amzn-transcribe-language-code") ?? "en-US",
          "x-amzn-transcribe-sample-rate": String(sampleRate),
          "x-amzn-transcribe-media-encoding": opts.header("x-amzn-transcribe-media-encoding") ?? "pcm",
        }
      : {}),
  });
  const every = opts.transcriptEvery ?? 5;
  let results = 0;
  const send = (bytes: Buffer): void => {
    record.outputEvents += 1;
    if (!record.inputEnded) record.outputEventsBeforeInputEnded += 1;
    sink.write(bytes);
  };
  const fail = (failure: ChainFailure): void => {
    record.failure = {
      code: failure.code,
      message: failure.message,
      messageIndex: failure.messageIndex,
      ...(failure.stringToSign ? { stringToSign: failure.stringToSign } : {}),
    };
    const text =
      failure.code === "signature"
        ? `The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. (event message ${failure.messageIndex})`
        : `Invalid event stream: ${failure.message}`;
    record.exception = exceptionType;
    send(exceptionMessage(exceptionType, text));
  };

  let failed = false;
  try {
    for await (const chunk of opts.body) {
      if (failed) continue; // drain: nothing after a failure is read as events
      const pushed = chain.push(chunk);
      if (!pushed.ok) {
        failed = true;
        fail(pushed.failure);
        continue;
      }
      for (const event of pushed.events) {
        record.messagesVerified = chain.messagesVerified;
        if (event.final) {
          record.finalVerified = true;
          continue;
        }
        const inner = decodeMessage(event.payload);
        const innerType = inner.ok ? stringHeader(inner.value, ":event-type") : undefined;
        const expected = transcribe ? "AudioEvent" : "chunk";
        if (!inner.ok || innerType !== expected) {
          failed = true;
          record.finalVerified = false;
          record.exception = exceptionType;
          record.failure = { code: "malformed-frame", message: `event ${event.index} is not a ${expected} event`, messageIndex: event.index };
          send(exceptionMessage(exceptionType, `Invalid event: expected ${expected}`));
          break;
        }
        record.inputEvents += 1;
        if (transcribe) {
          record.inputBytes += inner.value.payload.length;
          if (record.inputEvents % every === 0) send(transcriptEvent(++results, record.inputEvents, record.inputBytes, true, sampleRate));
        } else {
          const bytes = chunkBytesOf(inner.value.payload);
          record.inputBytes += Buffer.from(bytes, "base64").length;
          send(eventMessage("chunk", { bytes }));
        }
      }
    }
  } catch {
    // The request stream was reset (e.g. the proxy refused it mid-stream): no end to check.
    record.inputAborted = true;
  } finally {
    record.inputEnded = true;
  }
  if (!failed && !record.inputAborted) {
    const ended = chain.end();
    if (!ended.ok) {
      record.finalVerified = false;
      fail(ended.failure);
    } else if (transcribe) {
      send(transcriptEvent(results + 1, record.inputEvents, record.inputBytes, false, sampleRate));
    }
  }
  sink.end();
}
