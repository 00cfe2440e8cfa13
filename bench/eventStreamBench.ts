/**
 * The event-stream re-signing workload of the micro-benchmarks (bench/micro.ts), shared with the
 * profile target bench/profileEventStream.ts.
 */
import { EventStreamCodec } from "@smithy/core/event-streams";
import { startEventStreamResigning, type SignInput } from "../src/sigv4/index.js";
import { BENCH_ACCESS_KEY_ID, BENCH_SECRET_ACCESS_KEY, MESSAGE_SIZE } from "./scenarios.js";

const credentials = { accessKeyId: BENCH_ACCESS_KEY_ID, secretAccessKey: BENCH_SECRET_ACCESS_KEY };

/**
 * A client's signed event stream of messages whose payloads are `size` bytes (about 4 MiB in all,
 * at least 256 messages), as the re-signer gets it: messages of 64 KiB cut into 64 KiB pieces
 * that do not line up with them (as Envoy's would not), smaller ones one message per piece (each
 * sent as it is made). One operation re-signs the whole stream, from a new seed signature.
 */
export function eventStreamBench(size: number) {
  const codec = new EventStreamCodec((b) => Buffer.from(b).toString("utf8"), (t) => Buffer.from(t, "utf8"));
  const payload = Buffer.alloc(size, 0x5a);
  const messages = Math.max(256, Math.floor((4 * 1024 * 1024) / size));
  const envelope = (body: Uint8Array, at: number): Uint8Array =>
    codec.encode({ headers: { ":date": { type: "timestamp", value: new Date(1_767_225_600_000 + at * 100) }, ":chunk-signature": { type: "binary", value: new Uint8Array(32).fill(7) } }, body });
  const frames = [...Array.from({ length: messages }, (_, i) => envelope(payload, i)), envelope(new Uint8Array(0), messages)].map((f) => Buffer.from(f));
  let pieces = frames;
  if (size >= MESSAGE_SIZE) {
    const all = Buffer.concat(frames);
    pieces = [];
    for (let o = 0; o < all.length; o += MESSAGE_SIZE) pieces.push(all.subarray(o, Math.min(o + MESSAGE_SIZE, all.length)));
  }
  const head: SignInput = {
    method: "POST",
    host: "transcribestreaming.eu-west-1.amazonaws.com",
    path: "/stream-transcription",
    query: {},
    headers: new Map([["content-type", "application/vnd.amazon.eventstream"]]),
    clientSignedHeaders: ["content-type"],
    signContentLength: true,
    payloadHash: "STREAMING-AWS4-HMAC-SHA256-EVENTS",
    service: "transcribe",
    region: "eu-west-1",
    credentials,
    now: new Date("2026-01-01T00:00:00Z"),
  };
  const label = size >= 1024 && size % 1024 === 0 ? `${size / 1024}KiB` : `${size}B`;
  return {
    label,
    payload,
    messages,
    payloadBytes: messages * size,
    resignOnce: async (): Promise<void> => {
      const { resigner } = await startEventStreamResigning(head, { maxMessageBytes: 16 * 1024 * 1024 });
      for (const piece of pieces) {
        const out = await resigner.push(piece);
        if (!out.ok) throw new Error(out.error);
      }
      const end = resigner.finish();
      if (!end.ok) throw new Error(end.error);
    },
  };
}
