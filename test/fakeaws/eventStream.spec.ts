import { Readable } from "node:stream";
import { StartStreamTranscriptionCommand, TranscribeStreamingClient, type AudioStream } from "@aws-sdk/client-transcribe-streaming";
import { HttpResponse, type HttpRequest } from "@smithy/protocol-http";
import { beforeAll, describe, expect, it } from "vitest";
import {
  EventStreamChainVerifier,
  EventStreamDecoder,
  STREAMING_EVENTS_PAYLOAD,
  decodeMessage,
  encodeMessage,
  eventStringToSign,
  stringHeader,
  type EventHeaderValue,
  type EventMessage,
} from "./eventStream.js";
import { credentialScope, deriveSigningKey, formatAmzDate, hmacHex, parseAuthorizationHeader, sha256Hex } from "./verifier.js";

const KEYS = { accessKeyId: "AKIDEVENTSTREAMTEST1", secretAccessKey: "event/stream/secret/key/for/tests/only00" };
const REGION = "us-west-2";
const SERVICE = "transcribe";

interface Captured {
  headers: Record<string, string>;
  body: Buffer;
  seed: string;
}

/**
 * What the AWS SDK for JavaScript v3 itself sends for StartStreamTranscription: its own signer
 * signs the head and every event (a request handler that reads the whole body and answers an
 * empty event stream stands in for the network).
 */
async function sdkSignedStream(frames: Buffer[], credentials = KEYS): Promise<Captured> {
  let captured: Captured | undefined;
  const client = new TranscribeStreamingClient({
    region: REGION,
    credentials,
    requestHandler: {
      handle: async (request: HttpRequest) => {
        const parts: Buffer[] = [];
        for await (const chunk of request.body as Readable) parts.push(Buffer.from(chunk as Uint8Array));
        const auth = parseAuthorizationHeader(request.headers["authorization"] ?? "");
        if (!auth.ok) throw new Error(auth.error);
        captured = { headers: request.headers, body: Buffer.concat(parts), seed: auth.value.signature };
        return { response: new HttpResponse({ statusCode: 200, headers: { "content-type": "application/vnd.amazon.eventstream" }, body: Readable.from([]) }) };
      },
    },
  });
  async function* audio(): AsyncIterable<AudioStream> {
    for (const frame of frames) yield { AudioEvent: { AudioChunk: frame } };
  }
  try {
    const out = await client.send(new StartStreamTranscriptionCommand({ LanguageCode: "en-US", MediaEncoding: "pcm", MediaSampleRateHertz: 16000, AudioStream: audio() }));
    for await (const event of out.TranscriptResultStream ?? []) void event;
  } finally {
    client.destroy();
  }
  if (!captured) throw new Error("the SDK sent nothing");
  return captured;
}

function verifierFor(seed: string, secret = KEYS.secretAccessKey): EventStreamChainVerifier {
  return new EventStreamChainVerifier({ seedSignature: seed, region: REGION, service: SERVICE, signingKeyFor: (day) => deriveSigningKey(secret, day, REGION, SERVICE) });
}

function messagesOf(body: Buffer): EventMessage[] {
  const decoded = new EventStreamDecoder().push(body);
  if (decoded.error !== undefined) throw new Error(decoded.error);
  return decoded.messages;
}

/** Re-encodes a message with its headers and a new payload (both CRCs correct). */
function reencode(message: EventMessage, payload: Buffer, changeHeader?: (name: string, v: EventHeaderValue) => EventHeaderValue): Buffer {
  return encodeMessage(
    message.headers.map((h) => [h.name, changeHeader ? changeHeader(h.name, h.value) : h.value] as const),
    payload,
  );
}

const FRAMES = [Buffer.alloc(3200, 1), Buffer.alloc(3200, 2), Buffer.from("third frame"), Buffer.alloc(1, 0)];

let sdk: Captured;
beforeAll(async () => {
  sdk = await sdkSignedStream(FRAMES);
});

describe("EventStreamChainVerifier on a stream the AWS SDK's own signer produced", () => {
  it("the SDK declared the events mode and signed its head with the known key", () => {
    expect(sdk.headers["x-amz-content-sha256"]).toBe(STREAMING_EVENTS_PAYLOAD);
    expect(sdk.headers["authorization"]).toContain(`Credential=${KEYS.accessKeyId}/`);
    expect(sdk.headers["authorization"]).toContain(`/${REGION}/${SERVICE}/aws4_request`);
  });

  it("verifies every AudioEvent and the final empty message, chained from the head's signature", () => {
    const v = verifierFor(sdk.seed);
    const pushed = v.push(sdk.body);
    expect(pushed.ok).toBe(true);
    if (!pushed.ok) return;
    expect(v.end()).toEqual({ ok: true });
    expect(pushed.events.map((e) => e.final)).toEqual([false, false, false, false, true]);
    const inner = pushed.events.slice(0, -1).map((e) => {
      const m = decodeMessage(e.payload);
      if (!m.ok) throw new Error(m.error);
      return { type: stringHeader(m.value, ":event-type"), bytes: m.value.payload };
    });
    expect(inner).toEqual(FRAMES.map((f) => ({ type: "AudioEvent", bytes: f })));
  });

  it("verifies the same stream fed one byte at a time", () => {
    const v = verifierFor(sdk.seed);
    let events = 0;
    for (let i = 0; i < sdk.body.length; i++) {
      const r = v.push(sdk.body.subarray(i, i + 1));
      if (!r.ok) throw new Error(r.failure.message);
      events += r.events.length;
    }
    expect(events).toBe(FRAMES.length + 1);
    expect(v.end()).toEqual({ ok: true });
  });

  it("its string to sign is the spec's: prefix, :date, scope, previous signature, sha256 of the encoded :date header, sha256 of the payload", () => {
    const [first] = messagesOf(sdk.body);
    if (!first) throw new Error("no message");
    const dateHeader = first.headers.find((h) => h.name === ":date");
    if (dateHeader?.value.type !== "timestamp") throw new Error("no :date");
    const amzDate = formatAmzDate(dateHeader.value.value);
    const sts = eventStringToSign(amzDate, credentialScope(amzDate.slice(0, 8), REGION, SERVICE), sdk.seed, sha256Hex(dateHeader.raw), sha256Hex(first.payload));
    expect(sts.split("\n")[0]).toBe("AWS4-HMAC-SHA256-PAYLOAD");
    const signature = first.headers.find((h) => h.name === ":chunk-signature")?.value;
    expect(signature?.type === "bytes" && signature.value.toString("hex")).toBe(hmacHex(deriveSigningKey(KEYS.secretAccessKey, amzDate.slice(0, 8), REGION, SERVICE), sts));
  });
});

describe("EventStreamChainVerifier refuses every tampering", () => {
  const failureOf = (body: Buffer, seed = sdk.seed, secret = KEYS.secretAccessKey): { code: string; messageIndex: number } | undefined => {
    const v = verifierFor(seed, secret);
    const pushed = v.push(body);
    const result = pushed.ok ? v.end() : pushed;
    return result.ok ? undefined : { code: result.failure.code, messageIndex: result.failure.messageIndex };
  };
  const withMessage = (index: number, replace: (m: EventMessage) => Buffer | Buffer[]): Buffer =>
    Buffer.concat(messagesOf(sdk.body).flatMap((m, i) => (i === index ? replace(m) : [m.raw])));

  it("another secret: the first message fails", () => {
    expect(failureOf(sdk.body, sdk.seed, "another/secret")).toEqual({ code: "signature", messageIndex: 0 });
  });

  it("another seed signature: the first message fails", () => {
    expect(failureOf(sdk.body, "0".repeat(64))).toEqual({ code: "signature", messageIndex: 0 });
  });

  it("one payload byte changed (both CRCs recomputed): that message fails", () => {
    const body = withMessage(2, (m) => {
      const p = Buffer.from(m.payload);
      p[p.length - 5] = (p[p.length - 5] as number) ^ 1;
      return reencode(m, p);
    });
    expect(failureOf(body)).toEqual({ code: "signature", messageIndex: 2 });
  });

  it("the :date moved by one second (CRCs recomputed): that message fails", () => {
    const body = withMessage(1, (m) => reencode(m, m.payload, (n, v) => (n === ":date" && v.type === "timestamp" ? { type: "timestamp", value: new Date(v.value.getTime() + 1000) } : v)));
    expect(failureOf(body)).toEqual({ code: "signature", messageIndex: 1 });
  });

  it("a payload byte changed without fixing the CRC: a malformed frame", () => {
    const body = withMessage(1, (m) => {
      const raw = Buffer.from(m.raw);
      raw[raw.length - 10] = (raw[raw.length - 10] as number) ^ 0xff;
      return raw;
    });
    expect(failureOf(body)).toEqual({ code: "malformed-frame", messageIndex: 1 });
  });

  it("a prelude length changed: a malformed frame", () => {
    const body = withMessage(0, (m) => {
      const raw = Buffer.from(m.raw);
      raw.writeUInt32BE(raw.readUInt32BE(0) + 1, 0);
      return raw;
    });
    expect(failureOf(body)).toEqual({ code: "malformed-frame", messageIndex: 0 });
  });

  it("two messages swapped: the first out of place fails", () => {
    const ms = messagesOf(sdk.body);
    const body = Buffer.concat([ms[0], ms[2], ms[1], ...ms.slice(3)].map((m) => (m as EventMessage).raw));
    expect(failureOf(body)).toEqual({ code: "signature", messageIndex: 1 });
  });

  it("a message dropped: the next one fails", () => {
    expect(failureOf(withMessage(1, () => []))).toEqual({ code: "signature", messageIndex: 1 });
  });

  it("the final empty message missing: refused at the end", () => {
    const ms = messagesOf(sdk.body);
    expect(failureOf(Buffer.concat(ms.slice(0, -1).map((m) => m.raw)))).toEqual({ code: "missing-final", messageIndex: FRAMES.length });
  });

  it("a message after the final one: refused", () => {
    const ms = messagesOf(sdk.body);
    expect(failureOf(Buffer.concat([sdk.body, (ms[0] as EventMessage).raw]))).toEqual({ code: "after-final", messageIndex: FRAMES.length + 1 });
  });

  it("the body cut inside a message: refused at the end", () => {
    expect(failureOf(sdk.body.subarray(0, sdk.body.length - 3))).toEqual({ code: "malformed-frame", messageIndex: FRAMES.length });
  });

  it("an unsigned message (no :chunk-signature): refused", () => {
    const body = withMessage(0, (m) => encodeMessage(m.headers.filter((h) => h.name === ":date").map((h) => [h.name, h.value] as const), m.payload));
    expect(failureOf(body)).toEqual({ code: "missing-signature-headers", messageIndex: 0 });
  });
});

describe("encodeMessage / EventStreamDecoder", () => {
  it("round-trips every header type", () => {
    const headers: Array<[string, EventHeaderValue]> = [
      ["t", { type: "bool", value: true }],
      ["f", { type: "bool", value: false }],
      ["b", { type: "byte", value: -3 }],
      ["s", { type: "short", value: 300 }],
      ["i", { type: "int", value: -70000 }],
      ["l", { type: "long", value: 1n << 40n }],
      ["y", { type: "bytes", value: Buffer.from([0, 1, 2]) }],
      [":event-type", { type: "string", value: "TranscriptEvent" }],
      [":date", { type: "timestamp", value: new Date(1_700_000_000_123) }],
      ["u", { type: "uuid", value: "00112233445566778899aabbccddeeff" }],
    ];
    const decoded = decodeMessage(encodeMessage(headers, Buffer.from("payload")));
    expect(decoded.ok).toBe(true);
    if (!decoded.ok) return;
    expect(decoded.value.headers.map((h) => [h.name, h.value])).toEqual(headers);
    expect(decoded.value.payload.toString()).toBe("payload");
  });
});
