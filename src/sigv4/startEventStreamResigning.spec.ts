import { describe, expect, it } from "vitest";
import { audioEvent, oracleResign, sdkSignedEventStream } from "../../test/support/eventStreams.js";
import { ALGORITHM_V4A, STREAMING_EVENTS } from "./constants.js";
import { signRequest, type SignInput } from "./signRequest.js";
import { startEventStreamResigning } from "./startEventStreamResigning.js";

const input: SignInput = {
  method: "POST",
  host: "bedrock-runtime.us-east-1.amazonaws.com",
  path: "/model/amazon.nova-sonic-v1%3A0/invoke-with-bidirectional-stream",
  query: {},
  headers: new Map([["content-type", "application/vnd.amazon.eventstream"]]),
  clientSignedHeaders: ["host", "content-type"],
  signContentLength: true,
  payloadHash: STREAMING_EVENTS,
  service: "bedrock",
  region: "us-east-1",
  credentials: { accessKeyId: "AKIASTARTEVENTS00001", secretAccessKey: "c3RhcnRFdmVudFN0cmVhbVJlc2lnbmluZyBzcGVj" },
  now: new Date("2024-05-01T12:00:00Z"),
};

describe("startEventStreamResigning", () => {
  it("returns the seed-signed head's header changes, the same as signRequest's, with the EVENTS literal as payload hash", async () => {
    const started = await startEventStreamResigning(input, { maxMessageBytes: 1024 });
    const signed = await signRequest(input);
    expect(started.setHeaders).toEqual(signed.setHeaders);
    expect(started.removeHeaders).toEqual(signed.removeHeaders);
    expect(new Map(started.setHeaders).get("x-amz-content-sha256")).toBe(STREAMING_EVENTS);
  });

  it("returns a re-signer chained from that seed signature, with the request's credentials, region and service", async () => {
    const { resigner } = await startEventStreamResigning(input, { maxMessageBytes: 1024 });
    const seedSignature = (await signRequest(input)).signature;
    const wire = await sdkSignedEventStream([audioEvent(Buffer.from('{"event":{"sessionStart":{}}}'))], {
      accessKeyId: "AKIDPLACEHOLDER00001",
      secretAccessKey: "placeholder",
      seedSignature: "f".repeat(64),
      region: "us-east-1",
      service: "bedrock",
    });
    const out = await resigner.push(wire);
    expect(out.ok && Buffer.concat(out.out)).toEqual(oracleResign(wire, { seedSignature, secretAccessKey: input.credentials.secretAccessKey, region: "us-east-1", service: "bedrock" }));
    expect(resigner.finish()).toEqual({ ok: true, out: [] });
    expect(resigner.signaturesComputed).toBe(2);
  });

  it("applies the limits to the re-signer", async () => {
    const { resigner } = await startEventStreamResigning(input, { maxMessageBytes: 20 });
    const wire = await sdkSignedEventStream([audioEvent(Buffer.from("x"))], { accessKeyId: "AKIDPLACEHOLDER00001", secretAccessKey: "p", seedSignature: "f".repeat(64), region: "us-east-1", service: "bedrock" });
    const out = await resigner.push(wire);
    expect(!out.ok && out.error).toMatch(/^message of \d+ bytes is over the 20-byte limit$/);
  });

  it("refuses a SigV4A signing input: the chain is HMAC", async () => {
    await expect(startEventStreamResigning({ ...input, algorithm: ALGORITHM_V4A }, { maxMessageBytes: 1024 })).rejects.toThrow("event streams are signed with SigV4 only (the chain is HMAC)");
  });
});
