/**
 * Signed event streams (`x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-EVENTS`) through real
 * Envoy and countersign, in proxy mode (CONNECT, then TLS with ALPN h2 inside the tunnel), with
 * the AWS SDK for JavaScript v3 as a workload uses it:
 *   - Transcribe Streaming StartStreamTranscription: seconds of PCM audio, transcripts back while
 *     the audio is still being sent;
 *   - Bedrock Runtime InvokeModelWithBidirectionalStream: each chunk echoed while the stream is open.
 * The workload signs with the placeholder key; countersign gives the head a new seed signature
 * and re-signs every message's :chunk-signature in flight, the final empty message included. The
 * fake AWS (HTTP/2 for these hosts) verifies the head and every message with the REAL key.
 * A damaged frame is refused by countersign with 400, and nothing from it on reaches AWS.
 *
 * Endpoint mode is not covered: the shipped endpoint_in listener rewrites every host to S3.
 */
import * as http2 from "node:http2";
import * as tls from "node:tls";
import { BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import { TranscribeStreamingClient } from "@aws-sdk/client-transcribe-streaming";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defaultHttp2Host, type RecordedRequest } from "../fakeaws/server.js";
import { transcriptText } from "../fakeaws/eventStreamServices.js";
import { untilPasses } from "../support/eventually.js";
import { audioEvent } from "../support/eventStreams.js";
import {
  bidirectionalEcho,
  handSignedEventStream,
  pcmSineFrames,
  sendEventStream,
  streamTranscription,
  type HandSignedEventStream,
  type RawExchange,
} from "./eventStreamClients.js";
import { PLACEHOLDER, REAL, startStack, type Stack } from "./harness.js";
import { connectTunnel, http2ProxiedHandler } from "./http2Clients.js";

const TRANSCRIBE_HOST = "transcribestreaming.us-west-2.amazonaws.com";

const POLICY = `version: 1
credentials:
  workload:
    static:
      access_key_id_env: COUNTERSIGN_AWS_ACCESS_KEY_ID
      secret_access_key_env: COUNTERSIGN_AWS_SECRET_ACCESS_KEY
endpoints:
  - host: "transcribestreaming.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: transcribe
    credentials: workload
    client_access_key_ids: [${PLACEHOLDER.accessKeyId}]
  - host: "bedrock-runtime.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: bedrock
    credentials: workload
    client_access_key_ids: [${PLACEHOLDER.accessKeyId}]
`;

let stack: Stack;
beforeAll(async () => {
  // Bedrock Runtime speaks HTTP/2 here too (its bidirectional stream is HTTP/2 only at AWS).
  stack = await startStack({ policy: POLICY, fakeOptions: { http2Hosts: (host) => defaultHttp2Host(host) || host.startsWith("bedrock-runtime.") } });
});
afterAll(async () => {
  await stack?.close();
});

async function counters(): Promise<Record<string, number>> {
  if (!stack.envoy) throw new Error("these tests need real Envoy");
  return stack.envoy.stats();
}

function grew(before: Record<string, number>, after: Record<string, number>, names: string[]): Record<string, number> {
  return Object.fromEntries(names.map((n) => [n, (after[n] ?? 0) - (before[n] ?? 0)]));
}

const DOWNSTREAM_H2 = ["http.connect_in.downstream_rq_http1_total", "http.tls_decap.downstream_rq_http2_total", "http.tls_decap.downstream_rq_http1_total"];

describe("signed event streams through real Envoy (proxy mode, HTTP/2 both sides)", () => {
  it("Transcribe StartStreamTranscription: 3 s of audio in 30 frames, every message re-signed and verified with the real key, transcripts back while the audio is still being sent", async () => {
    const h2 = http2ProxiedHandler(stack);
    const client = new TranscribeStreamingClient({ region: "us-west-2", credentials: PLACEHOLDER, requestHandler: h2.handler, maxAttempts: 1 });
    const frames = pcmSineFrames(3);
    const before = await counters();
    const start = stack.fake.requests.length;
    let run;
    try {
      run = await streamTranscription(client, frames, 5);
    } finally {
      client.destroy();
    }
    // One transcript per 5 verified frames, each sent back before the audio ended, then the final one.
    expect(run.transcripts).toEqual([
      ...[5, 10, 15, 20, 25, 30].map((n) => ({ text: transcriptText(n, n * 3200), partial: true })),
      { text: transcriptText(30, 96000), partial: false },
    ]);
    expect(run.receivedBeforeInputEnded).toBe(6);
    expect(stack.fake.requests.slice(start)).toHaveLength(1);
    expect(stack.fake.requests[start]).toMatchObject({
      operation: "StartStreamTranscription",
      service: "transcribe",
      httpVersion: "2.0",
      verified: true,
      accessKeyId: REAL.accessKeyId,
      payloadMode: "STREAMING-AWS4-HMAC-SHA256-EVENTS",
      // 30 AudioEvents and the final empty message, each :chunk-signature chained from the new seed.
      eventStream: { messagesVerified: 31, finalVerified: true, inputEvents: 30, inputBytes: 96000, outputEvents: 7, outputEventsBeforeInputEnded: 6, inputAborted: false },
    });
    expect(h2.sockets.map((s) => s.alpnProtocol)).toEqual(["h2"]);
    const after = await counters();
    expect(grew(before, after, DOWNSTREAM_H2)).toEqual({
      "http.connect_in.downstream_rq_http1_total": 1,
      "http.tls_decap.downstream_rq_http2_total": 1,
      "http.tls_decap.downstream_rq_http1_total": 0,
    });
    // Upstream: HTTP/2 to AWS (the fake recorded 2.0); Envoy never opened an HTTP/1.1 connection there.
    expect(after["cluster.aws_upstream.upstream_cx_http2_total"]).toBeGreaterThan(0);
    expect(after["cluster.aws_upstream.upstream_cx_http1_total"] ?? 0).toBe(0);
  });

  it("Bedrock InvokeModelWithBidirectionalStream: each chunk echoed while the stream is open, every message verified with the real key", async () => {
    const h2 = http2ProxiedHandler(stack);
    const client = new BedrockRuntimeClient({ region: "us-west-2", credentials: PLACEHOLDER, requestHandler: h2.handler, maxAttempts: 1 });
    const chunks = Array.from({ length: 5 }, (_, i) => Buffer.from(JSON.stringify({ turn: i, text: "x".repeat(100 * i) })));
    const start = stack.fake.requests.length;
    let run;
    try {
      run = await bidirectionalEcho(client, "amazon.nova-sonic-v1:0", chunks);
    } finally {
      client.destroy();
    }
    expect(run.echoes).toEqual(chunks);
    expect(run.receivedBeforeInputEnded).toBe(4);
    expect(stack.fake.requests.slice(start)).toHaveLength(1);
    expect(stack.fake.requests[start]).toMatchObject({
      operation: "InvokeModelWithBidirectionalStream",
      service: "bedrock",
      httpVersion: "2.0",
      verified: true,
      accessKeyId: REAL.accessKeyId,
      // Each echo went out as its chunk was verified, before the final empty message arrived.
      eventStream: { messagesVerified: 6, finalVerified: true, inputEvents: 5, outputEvents: 5, outputEventsBeforeInputEnded: 5 },
    });
    expect(h2.sockets.map((s) => s.alpnProtocol)).toEqual(["h2"]);
  });

  it("a frame whose bytes no longer match its CRC, mid-stream: countersign answers 400, and AWS got the 4 messages before it and nothing after", async () => {
    const stream = await placeholderSignedTranscription(10);
    const damaged = Buffer.from(stream.messages[4] as Buffer);
    damaged[damaged.length - 100] = (damaged[damaged.length - 100] as number) ^ 0x55; // an audio byte; the message CRC now fails
    stream.messages[4] = damaged;
    const goodBytes = stream.messages.slice(0, 4).reduce((n, m) => n + m.length, 0);
    const start = stack.fake.requests.length;
    const exchange = await sendHeldBack(stream, async (index) => {
      // The damaged frame goes only once AWS has verified the 4 before it.
      if (index === 4) await untilPasses(() => expect(stack.fake.requests[start]?.eventStream?.messagesVerified).toBe(4), "the fake AWS verified 4 messages");
    });
    expect(exchange.status).toBe(400);
    expect(exchange.headers["x-countersign-denial"]).toBeDefined();
    const rec = await endedRecord(start);
    expect(rec).toMatchObject({ verified: false, accessKeyId: REAL.accessKeyId, eventStream: { messagesVerified: 4, inputEvents: 4, finalVerified: false, inputAborted: true } });
    // Nothing of the damaged frame or after it reached AWS (not one byte, so no half frame either).
    expect(rec.wireBodyBytes).toBe(goodBytes);
    expect(rec.eventStream?.failure).toBeUndefined();
  });

  it("a stream that ends without the final empty message: countersign answers 400 and AWS never sees the request end cleanly", async () => {
    const stream = await placeholderSignedTranscription(3);
    stream.messages.pop();
    const start = stack.fake.requests.length;
    const exchange = await sendHeldBack(stream, async (index) => {
      // The stream ends only once AWS has verified the 3 messages before the end.
      if (index === 3) await untilPasses(() => expect(stack.fake.requests[start]?.eventStream?.messagesVerified).toBe(3), "the fake AWS verified 3 messages");
    });
    expect(exchange.status).toBe(400);
    expect(exchange.headers["x-countersign-denial"]).toBeDefined();
    const rec = await endedRecord(start);
    // The 3 audio events were re-signed and verified; the end of the body was not passed on, so
    // AWS saw the stream cut off rather than a stream that ended without its final message.
    expect(rec).toMatchObject({ verified: false, eventStream: { messagesVerified: 3, finalVerified: false, inputAborted: true } });
    expect(rec.eventStream?.failure).toBeUndefined();
  });
});

/** A Transcribe stream of `frames` 100 ms audio frames, signed by the workload with the placeholder key. */
function placeholderSignedTranscription(frames: number): Promise<HandSignedEventStream> {
  return handSignedEventStream({
    credentials: PLACEHOLDER,
    region: "us-west-2",
    service: "transcribe",
    authority: TRANSCRIBE_HOST,
    path: "/stream-transcription",
    headers: { "x-amzn-transcribe-language-code": "en-US", "x-amzn-transcribe-sample-rate": "16000", "x-amzn-transcribe-media-encoding": "pcm" },
    events: pcmSineFrames(frames / 10).map(audioEvent),
  });
}

/**
 * Sends a hand-signed stream in proxy mode (CONNECT, TLS, h2) while the fake AWS holds its whole
 * answer until the request has ended: countersign's own refusal is then the first answer.
 */
async function sendHeldBack(stream: HandSignedEventStream, beforeMessage?: (index: number) => Promise<void>): Promise<RawExchange> {
  stack.fake.eventStreams.holdAnswerUntilInputEnds = true;
  const session = http2.connect(`https://${TRANSCRIBE_HOST}`, {
    createConnection: () => tls.connect({ socket: connectTunnel(stack.proxyUrl, `${TRANSCRIBE_HOST}:443`), servername: TRANSCRIBE_HOST, ALPNProtocols: ["h2"], ca: stack.caPem }),
  });
  try {
    return await sendEventStream(session, stream, beforeMessage);
  } finally {
    session.close();
    stack.fake.eventStreams.holdAnswerUntilInputEnds = false;
  }
}

/** The fake's record of the one request since `start`, once its request body has ended. */
async function endedRecord(start: number): Promise<RecordedRequest> {
  const rec = await untilPasses(() => {
    const r = stack.fake.requests[start];
    expect(r?.eventStream?.inputEnded).toBe(true);
    return r as RecordedRequest;
  }, "the fake AWS saw the request end");
  expect(stack.fake.requests.slice(start)).toHaveLength(1);
  return rec;
}
