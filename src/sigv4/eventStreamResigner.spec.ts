import { createHash } from "node:crypto";
import { crc32 } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
// One envelope from a raw header block (possibly malformed) and a payload, framed by the fake AWS.
import { frameMessage as envelope } from "../../test/fakeaws/eventStream.js";
import { audioEvent, clientEnvelope, oracleFrames, oracleResign, sdkSignedEventStream, verifyEventStream, type ChainParams } from "../../test/support/eventStreams.js";
import { STREAMING_EVENTS } from "./constants.js";
import { EventStreamResigner } from "./eventStreamResigner.js";
import { signRequest, type SignInput } from "./signRequest.js";
import { startEventStreamResigning } from "./startEventStreamResigning.js";

const REAL = { accessKeyId: "AKIAEVENTSTREAM00001", secretAccessKey: "ZXZlbnRTdHJlYW1SZXNpZ25lclJlYWxTZWNyZXQ=" };
const PLACEHOLDER = { accessKeyId: "AKIDPLACEHOLDER00001", secretAccessKey: "placeholder/placeholder/placeholder/0000" };
const REGION = "us-west-2";
const SERVICE = "transcribe";

const input: SignInput = {
  method: "POST",
  host: "transcribestreaming.us-west-2.amazonaws.com:8443",
  path: "/stream-transcription",
  query: {},
  headers: new Map([["content-type", "application/vnd.amazon.eventstream"], ["x-amz-transcribe-language-code", "en-US"]]),
  clientSignedHeaders: ["host", "content-type", "x-amz-transcribe-language-code"],
  signContentLength: true,
  payloadHash: STREAMING_EVENTS,
  service: SERVICE,
  region: REGION,
  credentials: REAL,
  now: new Date("2024-05-01T12:00:00Z"),
};

/** A re-signer as stream.ts builds it, and the chain parameters the real AWS would check it with. */
async function start(maxMessageBytes = 1024 * 1024): Promise<{ resigner: EventStreamResigner; chain: ChainParams }> {
  const started = await startEventStreamResigning(input, { maxMessageBytes });
  const auth = new Map(started.setHeaders).get("authorization") ?? "";
  const seedSignature = /Signature=([0-9a-f]{64})$/.exec(auth)?.[1] ?? "";
  return { resigner: started.resigner, chain: { seedSignature, secretAccessKey: REAL.secretAccessKey, region: REGION, service: SERVICE } };
}

async function feed(resigner: EventStreamResigner, pieces: readonly Buffer[]): Promise<{ ok: true; out: Buffer } | { ok: false; error: string; forwarded: Buffer }> {
  const out: Buffer[] = [];
  for (const piece of pieces) {
    const r = await resigner.push(piece);
    if (!r.ok) return { ok: false, error: r.error, forwarded: Buffer.concat(out) };
    out.push(...r.out);
  }
  const end = resigner.finish();
  if (!end.ok) return { ok: false, error: end.error, forwarded: Buffer.concat(out) };
  return { ok: true, out: Buffer.concat(out) };
}

/** 100 ms of 16 kHz 16-bit PCM, as Transcribe clients send it. */
const audio = (n: number, fill: number) => Buffer.alloc(3200, fill).fill(n, 0, 1);

let wire: Buffer;
/** A short stream, to split at every offset. */
let small: Buffer;
const clientSeed = "c".repeat(64);
beforeAll(async () => {
  const signing = { ...PLACEHOLDER, seedSignature: clientSeed, region: REGION, service: SERVICE };
  wire = await sdkSignedEventStream([audioEvent(audio(1, 0x11)), audioEvent(audio(2, 0x22)), audioEvent(Buffer.from("short"))], signing);
  small = await sdkSignedEventStream([audioEvent(Buffer.alloc(40, 1)), audioEvent(Buffer.from("x"))], signing);
});

describe("EventStreamResigner on the AWS SDK's own signed event stream", () => {
  it("the SDK's stream is what the independent checker expects: placeholder-signed, chained from the client's seed, ending empty", () => {
    const payloads = verifyEventStream(wire, { seedSignature: clientSeed, secretAccessKey: PLACEHOLDER.secretAccessKey, region: REGION, service: SERVICE });
    expect(payloads.map((p) => p.length)).toEqual([audioEvent(audio(1, 0)).length, audioEvent(audio(2, 0)).length, audioEvent(Buffer.from("short")).length]);
  });

  it("in one piece: every message re-signed with the real key, chained from the new seed, same bytes otherwise", async () => {
    const { resigner, chain } = await start();
    const r = await feed(resigner, [wire]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.out.length).toBe(wire.length);
    expect(r.out).toEqual(oracleResign(wire, chain));
    const payloads = verifyEventStream(r.out, chain);
    expect(payloads.map((p) => Buffer.from(p))).toEqual(oracleFrames(wire).slice(0, -1).map((f) => Buffer.from(f.payload)));
    expect(resigner.signaturesComputed).toBe(4);
    expect(resigner.bytesHashed).toBe(payloads.reduce((n, p) => n + p.length, 0));
    expect(resigner.heldBytes).toBe(0);
  });

  it("split at every offset into two pieces: the same output, the complete messages forwarded first", async () => {
    const { chain } = await start();
    const want = oracleResign(small, chain);
    for (let cut = 0; cut <= small.length; cut++) {
      const { resigner } = await start();
      const first = await resigner.push(small.subarray(0, cut));
      const second = await resigner.push(small.subarray(cut));
      expect(first.ok && second.ok).toBe(true);
      if (!first.ok || !second.ok) return;
      expect(resigner.finish().ok).toBe(true);
      // What is forwarded early is exactly the complete messages before the cut.
      const complete = oracleFrames(small).filter((f) => f.offset + f.length <= cut).reduce((n, f) => n + f.length, 0);
      expect(Buffer.concat(first.out).length).toBe(complete);
      expect(Buffer.concat([...first.out, ...second.out]).equals(want)).toBe(true);
    }
  });

  it("one byte at a time: the same output, holding at most the current message", async () => {
    const { resigner, chain } = await start();
    const out: Buffer[] = [];
    let maxHeld = 0;
    for (let i = 0; i < wire.length; i++) {
      const r = await resigner.push(wire.subarray(i, i + 1));
      expect(r.ok).toBe(true);
      if (r.ok) out.push(...r.out);
      maxHeld = Math.max(maxHeld, resigner.heldBytes);
    }
    expect(resigner.finish().ok).toBe(true);
    expect(Buffer.concat(out)).toEqual(oracleResign(wire, chain));
    expect(maxHeld).toBe(Math.max(...oracleFrames(wire).map((f) => f.length)) - 1);
  });

  it("an empty piece forwards nothing and changes nothing", async () => {
    const { resigner, chain } = await start();
    expect(await resigner.push(Buffer.alloc(0))).toEqual({ ok: true, out: [] });
    const r = await feed(resigner, [wire]);
    expect(r.ok && r.out.equals(oracleResign(wire, chain))).toBe(true);
  });
});

function hdr(name: string, type: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([name.length]), Buffer.from(name, "latin1"), Buffer.from([type]), value]);
}
const int64 = (n: bigint): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(n);
  return b;
};
const DATE = hdr(":date", 8, int64(1714564800000n));
const sigValue = (n = 32) => Buffer.concat([Buffer.from([n >> 8, n & 0xff]), Buffer.alloc(n, 0xab)]);
const SIG = hdr(":chunk-signature", 6, sigValue());
const FINAL = envelope(Buffer.concat([DATE, SIG]), Buffer.alloc(0));
const INNER = Buffer.from(audioEvent(Buffer.from("inner")));
const duplicate = (resigned: number, client: number) =>
  `message headers are not exactly one :date and one :chunk-signature (duplicate or truncated header; the re-signed message would be ${resigned} bytes, not the client's ${client})`;

describe("EventStreamResigner refuses a corrupt stream and forwards nothing more", () => {
  const good = envelope(Buffer.concat([DATE, SIG]), INNER);
  const flip = (b: Buffer, at: number) => {
    const c = Buffer.from(b);
    c[at] = (c[at] as number) ^ 0x01;
    return c;
  };
  const cases: Array<{ name: string; wire: () => Buffer; error: string | RegExp; forwarded?: number }> = [
    { name: "bad prelude CRC", wire: () => flip(good, 9), error: "message prelude CRC does not match" },
    { name: "a length flipped (prelude CRC catches it before any wait)", wire: () => flip(good, 2), error: "message prelude CRC does not match" },
    { name: "bad message CRC", wire: () => flip(good, good.length - 1), error: /^message is corrupt \(The message checksum \(\d+\) did not match the expected value of \d+\)$/ },
    { name: "a payload byte changed", wire: () => flip(good, good.length - 8), error: /^message is corrupt \(The message checksum/ },
    { name: "no :chunk-signature", wire: () => envelope(DATE, INNER), error: "message has no :chunk-signature header" },
    { name: "no :date", wire: () => envelope(SIG, INNER), error: "message has no :date header" },
    { name: "a :chunk-signature of 31 bytes", wire: () => envelope(Buffer.concat([DATE, hdr(":chunk-signature", 6, sigValue(31))]), INNER), error: ":chunk-signature header is not 32 bytes of binary" },
    { name: "a :chunk-signature as a string", wire: () => envelope(Buffer.concat([DATE, hdr(":chunk-signature", 7, sigValue())]), INNER), error: ":chunk-signature header is not 32 bytes of binary" },
    { name: "a :date past the largest Date", wire: () => envelope(Buffer.concat([hdr(":date", 8, int64(8_640_000_000_000_001n)), SIG]), INNER), error: ":date header is not a valid time" },
    { name: "a :date before the earliest Date", wire: () => envelope(Buffer.concat([SIG, hdr(":date", 8, int64(-8_640_000_000_000_001n))]), INNER), error: ":date header is not a valid time" },
    { name: "a :date of the largest int64", wire: () => envelope(Buffer.concat([hdr(":date", 8, int64(2n ** 63n - 1n)), SIG]), INNER), error: ":date header is not a valid time" },
    { name: "a header named :datf where :date should be", wire: () => envelope(Buffer.concat([hdr(":datf", 8, int64(1714564800000n)), SIG]), INNER), error: "message has no :date header" },
    { name: "a header named :chunk-signaturf", wire: () => envelope(Buffer.concat([DATE, hdr(":chunk-signaturf", 6, sigValue())]), INNER), error: "message has no :chunk-signature header" },
    { name: "a :date as a string", wire: () => envelope(Buffer.concat([hdr(":date", 7, Buffer.from([0, 1, 0x31])), SIG]), INNER), error: ":date header is a string, not a timestamp" },
    { name: "a duplicate :chunk-signature", wire: () => envelope(Buffer.concat([DATE, SIG, SIG]), INNER), error: duplicate(good.length, good.length + SIG.length) },
    { name: "a duplicate :date", wire: () => envelope(Buffer.concat([DATE, DATE, SIG]), INNER), error: duplicate(good.length, good.length + DATE.length) },
    { name: "another header", wire: () => envelope(Buffer.concat([DATE, SIG, hdr("x-extra", 7, Buffer.from([0, 1, 0x31]))]), INNER), error: 'message carries header "x-extra" besides :date and :chunk-signature' },
    { name: "an unknown header type", wire: () => envelope(Buffer.concat([DATE, SIG, hdr("x", 42, Buffer.alloc(0))]), INNER), error: /^message is corrupt \(Unrecognized header type tag/ },
    { name: "bytes after the final empty message", wire: () => Buffer.concat([good, FINAL, Buffer.from([0])]), error: "bytes follow the final empty message" },
    { name: "a second stream after the final empty message", wire: () => Buffer.concat([FINAL, good]), error: "bytes follow the final empty message" },
    { name: "end of stream without the final empty message", wire: () => good, error: "body ended without the final empty message", forwarded: good.length },
    { name: "end of stream inside a message", wire: () => Buffer.concat([good, FINAL.subarray(0, 20)]), error: "body ended inside a message (20 of its bytes received)", forwarded: good.length },
    { name: "end of stream inside a prelude", wire: () => Buffer.concat([good, FINAL.subarray(0, 5)]), error: "body ended inside a message (5 of its bytes received)", forwarded: good.length },
  ];

  it.each(cases)("$name", async ({ wire: make, error, forwarded }) => {
    const { resigner } = await start();
    const r = await feed(resigner, [make()]);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    if (typeof error === "string") expect(r.error).toBe(error);
    else expect(r.error).toMatch(error);
    expect(r.forwarded.length).toBe(forwarded ?? 0);
    // Failed for good: whatever comes next is refused with the same error, nothing forwarded.
    expect(await resigner.push(FINAL)).toEqual({ ok: false, error: r.error });
    expect(resigner.heldBytes).toBe(0);
  });

  // The same messages after a good one: a header block that is not the first is compared with the
  // last one the codec decoded, and decoded again only when it differs outside the :date value and
  // the signature. Each is refused the same way.
  it.each(cases.filter((c) => c.forwarded === undefined && !c.name.includes("final")))("$name, after a good message", async ({ wire: make, error }) => {
    const { resigner } = await start();
    const r = await feed(resigner, [good, make()]);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    if (typeof error === "string") expect(r.error).toBe(error);
    else expect(r.error).toMatch(error);
    expect(r.forwarded.length).toBe(good.length);
  });

  it("an error refuses the whole piece it is in; earlier pieces were forwarded", async () => {
    const { resigner } = await start();
    const r = await feed(resigner, [Buffer.concat([good, FINAL]), Buffer.from([0])]);
    expect(r).toMatchObject({ ok: false, error: "bytes follow the final empty message" });
    expect(!r.ok && r.forwarded.length).toBe(good.length + FINAL.length);
  });

  it("a bad header block is refused as soon as it is complete, before any of its payload comes", async () => {
    const bad = envelope(Buffer.concat([DATE, SIG, hdr("x-extra", 7, Buffer.from([0, 1, 0x31]))]), Buffer.alloc(4096, 1));
    const headersEnd = 12 + bad.readUInt32BE(4);
    const { resigner } = await start();
    expect(await resigner.push(bad.subarray(0, headersEnd - 1))).toEqual({ ok: true, out: [] });
    expect(resigner.heldBytes).toBe(headersEnd - 1);
    expect(await resigner.push(bad.subarray(headersEnd - 1, headersEnd))).toEqual({ ok: false, error: 'message carries header "x-extra" besides :date and :chunk-signature' });
    expect(resigner.heldBytes).toBe(0);
  });

  it("a message CRC split over pieces is checked once its last byte comes", async () => {
    const { resigner } = await start();
    const r1 = await feed(resigner, [good.subarray(0, good.length - 2), good.subarray(good.length - 2), FINAL]);
    expect(r1.ok).toBe(true);
    const bad = flip(good, good.length - 1);
    const { resigner: second } = await start();
    expect(await second.push(bad.subarray(0, bad.length - 1))).toEqual({ ok: true, out: [] });
    expect(second.heldBytes).toBe(bad.length - 1);
    const r2 = await second.push(bad.subarray(bad.length - 1));
    expect(r2.ok).toBe(false);
    if (!r2.ok) expect(r2.error).toMatch(/^message is corrupt \(The message checksum \(\d+\) did not match the expected value of \d+\)$/);
  });

  it("a total length under 16 is refused from its prelude", async () => {
    const b = Buffer.alloc(12);
    b.writeUInt32BE(12, 0);
    b.writeUInt32BE(0, 4);
    b.writeUInt32BE(crc32(b.subarray(0, 8)), 8);
    const { resigner } = await start();
    expect(await resigner.push(b)).toEqual({ ok: false, error: "message length 12 is shorter than the 16-byte minimum" });
  });

  it("a headers length that does not fit the message is refused from its prelude", async () => {
    const b = Buffer.from(good.subarray(0, 12));
    b.writeUInt32BE(good.length, 4);
    b.writeUInt32BE(crc32(b.subarray(0, 8)), 8);
    const { resigner } = await start();
    expect(await resigner.push(b)).toEqual({ ok: false, error: `headers length ${good.length} does not fit in a message of ${good.length} bytes` });
  });

  it("a message over the size cap is refused from its prelude, before its bytes are held", async () => {
    const { resigner } = await start(good.length - 1);
    expect(await resigner.push(good.subarray(0, 12))).toEqual({ ok: false, error: `message of ${good.length} bytes is over the ${good.length - 1}-byte limit` });
    expect(resigner.heldBytes).toBe(0);
  });

  it("a message exactly at the size cap is re-signed", async () => {
    const { resigner } = await start(good.length);
    const r = await feed(resigner, [good, FINAL]);
    expect(r.ok).toBe(true);
  });

  it("keeps the client's :date: the re-signed envelope's headers differ only in the signature's 32 bytes", async () => {
    const { resigner, chain } = await start();
    const r = await feed(resigner, [good, FINAL]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const [a, b] = [oracleFrames(Buffer.concat([good, FINAL])), oracleFrames(r.out)];
    expect(b.map((f) => f.dateMs)).toEqual(a.map((f) => f.dateMs));
    expect(b.map((f) => createHash("sha256").update(f.payload).digest("hex"))).toEqual(a.map((f) => createHash("sha256").update(f.payload).digest("hex")));
    expect(verifyEventStream(r.out, chain)).toHaveLength(1);
  });
});

describe("EventStreamResigner signs each message with the key and scope of its own day", () => {
  // The request is signed at 2024-05-01T12:00:00Z; a stream open across midnight UTC carries
  // messages dated the next day, whose scope and signing key are that day's.
  const beforeMidnight = Date.UTC(2024, 4, 1, 23, 59, 59, 900);
  const afterMidnight = Date.UTC(2024, 4, 2, 0, 0, 0, 100);
  const crossing = () => Buffer.concat([clientEnvelope(beforeMidnight, Buffer.from("a")), clientEnvelope(afterMidnight, Buffer.from("b")), clientEnvelope(afterMidnight + 1000, new Uint8Array(0))]);

  it("a stream across midnight UTC: each message chained under its own day's scope and key", async () => {
    const { resigner, chain } = await start();
    const wire = crossing();
    const r = await feed(resigner, [wire]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.out).toEqual(oracleResign(wire, chain));
    expect(verifyEventStream(r.out, chain)).toHaveLength(2);
  });

  it("no key for a message's day: refused, nothing of that piece forwarded, and refused for good", async () => {
    const signed = await signRequest(input);
    const resigner = new EventStreamResigner({
      seed: { signature: signed.signature, amzDate: signed.amzDate, scope: signed.scope, signingKey: signed.signingKey },
      signingKeyFor: () => Promise.reject(new Error("derivation failed")),
      maxMessageBytes: 1024,
    });
    const wire = crossing();
    const first = oracleFrames(wire)[0]?.length ?? 0;
    expect(await resigner.push(wire.subarray(0, first))).toMatchObject({ ok: true });
    expect(await resigner.push(wire.subarray(first))).toEqual({ ok: false, error: "no signing key for a message dated 20240502" });
    expect(await resigner.push(FINAL)).toEqual({ ok: false, error: "no signing key for a message dated 20240502" });
  });
});

describe("EventStreamResigner changes only the signature and the message CRC", () => {
  it("keeps the client's header order (:chunk-signature before :date) byte for byte", async () => {
    const { resigner, chain } = await start();
    const wire = Buffer.concat([envelope(Buffer.concat([SIG, DATE]), INNER), FINAL]);
    const r = await feed(resigner, [wire]);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.out).toEqual(oracleResign(wire, chain));
    expect(r.out.subarray(12, 12 + SIG.length - 32)).toEqual(SIG.subarray(0, SIG.length - 32));
  });

  it("never writes to the pieces it is given, whole messages or split ones", async () => {
    const { resigner, chain } = await start();
    const pieces = [Buffer.from(wire.subarray(0, 100)), Buffer.from(wire.subarray(100))];
    const copies = pieces.map((p) => Buffer.from(p));
    const r = await feed(resigner, pieces);
    expect(r.ok && r.out.equals(oracleResign(wire, chain))).toBe(true);
    expect(pieces).toEqual(copies);
  });
});
