import { describe, expect, it } from "vitest";
import { AwsChunkedResigner } from "./awsChunkedResigner.js";
import { hmacChunkSigner } from "./chunkSigners.js";
import { STREAMING_SIGNED } from "./constants.js";
import { signRequest, type SignInput } from "./signRequest.js";
import { startChunkedResigning } from "./startChunkedResigning.js";

const input: SignInput = {
  method: "PUT",
  host: "photos.s3.us-west-2.amazonaws.com",
  path: "/key",
  query: {},
  headers: new Map([
    ["x-amz-decoded-content-length", "5"],
    ["content-length", "180"],
  ]),
  clientSignedHeaders: ["host"],
  signContentLength: true,
  payloadHash: STREAMING_SIGNED,
  service: "s3",
  region: "us-west-2",
  credentials: { accessKeyId: "AKIASTARTCHUNKED0001", secretAccessKey: "c3RhcnRDaHVua2VkUmVzaWduaW5nIHNwZWM=" },
  now: new Date("2024-05-01T12:00:00Z"),
};
const body = { trailer: false, maxChunkBytes: 1024, decodedContentLength: 5 };
const wire = Buffer.from(`5;chunk-signature=${"0".repeat(64)}\r\nhello\r\n0;chunk-signature=${"0".repeat(64)}\r\n\r\n`);

describe("startChunkedResigning", () => {
  it("returns the seed-signed head's header changes, the same as signRequest's", async () => {
    const started = await startChunkedResigning(input, body);
    const signed = await signRequest(input);
    expect(started.setHeaders).toEqual(signed.setHeaders);
    expect(started.removeHeaders).toEqual(signed.removeHeaders);
  });

  it("returns a re-signer chained from that seed signature, scope and key", async () => {
    const { resigner } = await startChunkedResigning(input, body);
    const seed = await signRequest(input);
    const reference = new AwsChunkedResigner({ ...body, seed, signer: hmacChunkSigner(seed.signingKey) });
    const out = await resigner.push(wire);
    expect(out).toEqual(await reference.push(wire));
    expect(out.ok && Buffer.concat(out.out).length).toBe(wire.length);
    expect(resigner.finish()).toEqual({ ok: true, out: [] });
    expect(resigner.signaturesComputed).toBe(2);
  });

  it("applies the body's limits to the re-signer", async () => {
    const { resigner } = await startChunkedResigning(input, { ...body, maxChunkBytes: 4 });
    const out = await resigner.push(wire);
    expect(!out.ok && out.error).toContain("over the 4-byte limit");
  });
});
