/**
 * The fake AWS's bidirectional event-stream operations over HTTP/2 (TLS, ALPN h2), driven
 * directly by the AWS SDK for JavaScript v3 with the real key (no proxy): it verifies the head and
 * every event, answers while the request is open, and refuses a wrong key, a broken chain and
 * HTTP/2 for hosts that do not speak it.
 */
import "reflect-metadata";
import * as http2 from "node:http2";
import * as tls from "node:tls";
import { BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import { TranscribeStreamingClient } from "@aws-sdk/client-transcribe-streaming";
import { NodeHttp2Handler } from "@smithy/node-http-handler";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCa, createLeaf } from "../../src/certs/certificates.js";
import { bidirectionalEcho, handSignedEventStream, pcmSineFrames, sendEventStream, streamTranscription } from "../e2e/eventStreamClients.js";
import { audioEvent } from "../support/eventStreams.js";
import { encodeMessage } from "./eventStream.js";
import { transcriptText } from "./eventStreamServices.js";
import { defaultHttp2Host, startFakeAws, type FakeAws } from "./server.js";

const REAL = { accessKeyId: "AKIAFAKEAWSEVENTS001", secretAccessKey: "real/secret/for/event/streams/000000001" };
const WRONG = { accessKeyId: REAL.accessKeyId, secretAccessKey: "not-the-real-secret-000000000000000000" };
const TRANSCRIBE_HOST = "transcribestreaming.us-west-2.amazonaws.com";
const BEDROCK_HOST = "bedrock-runtime.us-west-2.amazonaws.com";

let fake: FakeAws;
let caPem: string;

beforeAll(async () => {
  const ca = await createCa({ commonName: "fake AWS test CA" });
  const leaf = await createLeaf({ ca, hosts: [TRANSCRIBE_HOST, BEDROCK_HOST, "s3.us-west-2.amazonaws.com"] });
  caPem = ca.certPem;
  fake = await startFakeAws({
    accounts: [REAL],
    tls: { certPem: leaf.certPem, keyPem: leaf.keyPem },
    http2Hosts: (host) => defaultHttp2Host(host) || host.startsWith("bedrock-runtime."),
  });
});
afterAll(async () => {
  await fake?.close();
});

function connectFake(host: string, alpn: string[] = ["h2"]): tls.TLSSocket {
  return tls.connect({ host: "127.0.0.1", port: fake.port, servername: host, ALPNProtocols: alpn, ca: caPem });
}

function h2Handler(): NodeHttp2Handler {
  return new NodeHttp2Handler({ requestTimeout: 60_000, nodeHttp2ConnectOptions: { createConnection: (authority: URL) => connectFake(authority.hostname) } });
}

describe("fake Transcribe Streaming (StartStreamTranscription over HTTP/2)", () => {
  it("verifies the head and every AudioEvent with the real key and answers each 5 frames while the audio is still arriving", async () => {
    const client = new TranscribeStreamingClient({ region: "us-west-2", credentials: REAL, requestHandler: h2Handler() });
    const frames = pcmSineFrames(2);
    const start = fake.requests.length;
    try {
      const run = await streamTranscription(client, frames, 5);
      expect(run.transcripts).toEqual([
        ...[5, 10, 15, 20].map((n) => ({ text: transcriptText(n, n * 3200), partial: true })),
        { text: transcriptText(20, 64000), partial: false },
      ]);
      expect(run.receivedBeforeInputEnded).toBe(4);
    } finally {
      client.destroy();
    }
    expect(fake.requests.slice(start)).toHaveLength(1);
    expect(fake.requests[start]).toMatchObject({
      operation: "StartStreamTranscription",
      service: "transcribe",
      httpVersion: "2.0",
      verified: true,
      accessKeyId: REAL.accessKeyId,
      payloadMode: "STREAMING-AWS4-HMAC-SHA256-EVENTS",
      eventStream: { messagesVerified: 21, finalVerified: true, inputEvents: 20, inputBytes: 64000, outputEvents: 5, outputEventsBeforeInputEnded: 4 },
    });
  });

  it("refuses a head signed with another secret (403), and verifies nothing", async () => {
    const client = new TranscribeStreamingClient({ region: "us-west-2", credentials: WRONG, requestHandler: h2Handler(), maxAttempts: 1 });
    const start = fake.requests.length;
    try {
      await expect(streamTranscription(client, pcmSineFrames(0.2), 5)).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    } finally {
      client.destroy();
    }
    expect(fake.requests[start]).toMatchObject({ status: 403, verified: false, failure: "signature" });
    expect(fake.requests[start]?.eventStream).toBeUndefined();
  });

  it("a message whose payload was changed after signing: the events before it are answered, then a BadRequestException event, and the request is not verified", async () => {
    const session = http2.connect(`https://${TRANSCRIBE_HOST}`, { createConnection: () => connectFake(TRANSCRIBE_HOST) });
    const frames = pcmSineFrames(1);
    const stream = await handSignedEventStream({
      credentials: REAL,
      region: "us-west-2",
      service: "transcribe",
      authority: TRANSCRIBE_HOST,
      path: "/stream-transcription",
      headers: { "x-amzn-transcribe-language-code": "en-US", "x-amzn-transcribe-sample-rate": "16000", "x-amzn-transcribe-media-encoding": "pcm" },
      events: frames.map(audioEvent),
    });
    // Message 6: same frame, one audio byte changed, both CRCs right: only the signature can tell.
    stream.messages[6] = encodeMessage(
      [
        [":date", { type: "timestamp", value: new Date() }],
        [":chunk-signature", { type: "bytes", value: (stream.messages[6] as Buffer).subarray(35 + 8 + 4, 35 + 8 + 4 + 32) }],
      ],
      audioEvent(Buffer.concat([Buffer.from([1]), (frames[6] as Buffer).subarray(1)])),
    );
    const start = fake.requests.length;
    let exchange;
    try {
      exchange = await sendEventStream(session, stream);
    } finally {
      session.close();
    }
    expect(exchange.status).toBe(200);
    expect(exchange.events.map((e) => `${e.messageType}:${e.type}`)).toEqual(["event:TranscriptEvent", "exception:BadRequestException"]);
    expect(fake.requests[start]).toMatchObject({
      verified: false,
      errorCode: "BadRequestException",
      failure: "chunk-signature",
      eventStream: { messagesVerified: 6, inputEvents: 6, finalVerified: false, failure: { code: "signature", messageIndex: 6 } },
    });
  });
});

describe("fake Bedrock Runtime InvokeModelWithBidirectionalStream over HTTP/2", () => {
  it("echoes each chunk while the stream is open, every event verified with the real key", async () => {
    const client = new BedrockRuntimeClient({ region: "us-west-2", credentials: REAL, requestHandler: h2Handler() });
    const chunks = ["first", "second", "third"].map((s) => Buffer.from(JSON.stringify({ s })));
    const start = fake.requests.length;
    try {
      const run = await bidirectionalEcho(client, "amazon.nova-sonic-v1:0", chunks);
      expect(run.echoes).toEqual(chunks);
      expect(run.receivedBeforeInputEnded).toBe(2);
    } finally {
      client.destroy();
    }
    expect(fake.requests[start]).toMatchObject({
      operation: "InvokeModelWithBidirectionalStream",
      service: "bedrock",
      httpVersion: "2.0",
      verified: true,
      eventStream: { messagesVerified: 4, finalVerified: true, inputEvents: 3, outputEvents: 3 },
    });
  });
});

describe("ALPN", () => {
  it("h2 only for the hosts it is told; S3 stays HTTP/1.1", async () => {
    const alpnOf = (host: string): Promise<string | false> =>
      new Promise((resolve, reject) => {
        const s = connectFake(host, ["h2", "http/1.1"]);
        s.once("secureConnect", () => {
          resolve(s.alpnProtocol ?? false);
          s.destroy();
        });
        s.once("error", reject);
      });
    expect(await alpnOf(TRANSCRIBE_HOST)).toBe("h2");
    expect(await alpnOf(BEDROCK_HOST)).toBe("h2");
    expect(await alpnOf("s3.us-west-2.amazonaws.com")).toBe("http/1.1");
    expect(defaultHttp2Host(BEDROCK_HOST)).toBe(false);
  });

  it("offers no session to resume, so every handshake picks the protocol by its server name (a resumed one would have none)", async () => {
    const handshake = (session?: Buffer): Promise<{ alpn: string | false; reused: boolean; session: Buffer | undefined }> =>
      new Promise((resolve, reject) => {
        const s = tls.connect({ host: "127.0.0.1", port: fake.port, servername: TRANSCRIBE_HOST, ALPNProtocols: ["h2", "http/1.1"], ca: caPem, ...(session ? { session } : {}) });
        let ticket: Buffer | undefined;
        s.on("session", (t: Buffer) => (ticket = t));
        s.once("secureConnect", () => {
          // TLS 1.3 tickets arrive after the handshake: give them one round trip.
          s.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
          s.once("data", () => {
            resolve({ alpn: s.alpnProtocol ?? false, reused: s.isSessionReused(), session: ticket ?? s.getSession() });
            s.destroy();
          });
        });
        s.once("error", reject);
      });
    const first = await handshake();
    const second = await handshake(first.session);
    expect([first.alpn, second.alpn, second.reused]).toEqual(["h2", "h2", false]);
  });
});
