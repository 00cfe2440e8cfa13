/**
 * The test helpers on top of the fake AWS's event-stream module agree with the AWS SDK's own
 * signing, and each one refuses what it must: the oracle the re-signer specs compare against has
 * to be able to fail.
 */
import { describe, expect, it } from "vitest";
import { audioEvent, clientEnvelope, oracleFrames, oracleResign, sdkSignedEventStream, verifyEventStream, type ChainParams } from "./eventStreams.js";

const SIGNING = { accessKeyId: "AKIDPLACEHOLDER00001", secretAccessKey: "placeholder/secret/000000000000000000000", seedSignature: "c".repeat(64), region: "us-west-2", service: "transcribe" };
const CHAIN: ChainParams = { seedSignature: SIGNING.seedSignature, secretAccessKey: SIGNING.secretAccessKey, region: SIGNING.region, service: SIGNING.service };

describe("test/support/eventStreams on the fake's codec and chain", () => {
  it("re-signing the SDK's stream under the SDK's own chain gives back the SDK's bytes, which verify", async () => {
    const wire = await sdkSignedEventStream([audioEvent(Buffer.from("one")), audioEvent(Buffer.alloc(300, 2))], SIGNING);
    expect(oracleResign(wire, CHAIN).equals(wire)).toBe(true);
    expect(verifyEventStream(wire, CHAIN)).toEqual([audioEvent(Buffer.from("one")), audioEvent(Buffer.alloc(300, 2))]);
    const frames = oracleFrames(wire);
    expect(frames.map((f) => [f.offset, f.length])).toEqual([
      [0, frames[0]?.length],
      [frames[0]?.length, frames[1]?.length],
      [(frames[0]?.length ?? 0) + (frames[1]?.length ?? 0), wire.length - (frames[0]?.length ?? 0) - (frames[1]?.length ?? 0)],
    ]);
    expect(frames[2]?.payload.length).toBe(0);
  });

  it("verifyEventStream refuses another seed, a changed signature, a missing final message", async () => {
    const wire = await sdkSignedEventStream([audioEvent(Buffer.from("x"))], SIGNING);
    expect(() => verifyEventStream(wire, { ...CHAIN, seedSignature: "d".repeat(64) })).toThrow("signature at message 0: the signature of event message 0 does not match");
    const frames = oracleFrames(wire);
    const tampered = Buffer.from(wire);
    const at = (frames[1]?.offset ?? 0) + 40;
    tampered[at] = (tampered[at] as number) ^ 1;
    expect(() => verifyEventStream(tampered, CHAIN)).toThrow(/^malformed-frame at message 1: message CRC32 mismatch/);
    expect(() => verifyEventStream(wire.subarray(0, frames[0]?.length), CHAIN)).toThrow("missing-final at message 1: the event stream ended after 1 messages without the final signed empty message");
  });

  it("oracleFrames refuses a truncated stream and an envelope with other headers", () => {
    const one = clientEnvelope(1_714_564_800_000, Buffer.from("p"));
    expect(oracleFrames(one)).toMatchObject([{ offset: 0, length: one.length, dateMs: 1_714_564_800_000, signature: Buffer.alloc(32, 0xab), payload: Buffer.from("p") }]);
    expect(() => oracleFrames(one.subarray(0, one.length - 1))).toThrow("the body ends inside a message (" + String(one.length - 1) + " bytes left over)");
    expect(() => oracleFrames(clientEnvelope(0, Buffer.from("p"), Buffer.alloc(31)))).toThrow("envelope at 0 carries :date (timestamp), :chunk-signature (bytes), not exactly :date and a 32-byte :chunk-signature");
  });

  it("oracleResign keeps each envelope's :date and payload and replaces only the signature", () => {
    const wire = Buffer.concat([clientEnvelope(1_714_564_800_000, Buffer.from("a")), clientEnvelope(1_714_564_801_000, new Uint8Array(0))]);
    const out = oracleResign(wire, CHAIN);
    expect(out.length).toBe(wire.length);
    const [before, after] = [oracleFrames(wire), oracleFrames(out)];
    expect(after.map((f) => [f.offset, f.dateMs, f.payload.toString()])).toEqual(before.map((f) => [f.offset, f.dateMs, f.payload.toString()]));
    expect(after.map((f) => f.signature.equals(Buffer.alloc(32, 0xab)))).toEqual([false, false]);
    expect(verifyEventStream(out, CHAIN)).toEqual([Buffer.from("a")]);
  });
});
