import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AwsChunkedDecoder } from "../../test/fakeaws/awsChunked.js";
import { deriveSigV4aPrivateKey, publicKeyFromPoint, sigV4aPublicKey, sigV4aStringToSign, unpadSigV4aSignature, verifySigV4aSignature } from "../../test/fakeaws/sigv4a.js";
import { readSigV4aChunkedVector } from "../../test/fakeaws/suite.js";
import type { AwsChunkedResigner } from "./awsChunkedResigner.js";
import { STREAMING_SIGNED_V4A, STREAMING_SIGNED_V4A_TRAILER } from "./constants.js";
import type { SignInput } from "./signRequest.js";
import { startChunkedResigning } from "./startChunkedResigning.js";

const vector = readSigV4aChunkedVector();
const vectorKey = publicKeyFromPoint(vector.public_key);
/** A client's chunk signature field as aws-c-auth writes it: hex DER, `*` up to 144 characters. */
const CLIENT_FIELD = `3044${"0".repeat(136)}****`;
const TRAILERS = vector.trailer_headers.map(([n, v]) => `${n}:${v}`);

function frame(sizes: number[], byte: string, field: string, trailer?: string[]): Buffer {
  const parts: Buffer[] = [];
  for (const size of sizes) {
    parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${field}\r\n`));
    if (size > 0) parts.push(Buffer.alloc(size, byte), Buffer.from("\r\n"));
  }
  if (trailer) parts.push(Buffer.from([...trailer, `x-amz-trailer-signature:${field}`].map((l) => `${l}\r\n`).join("")));
  parts.push(Buffer.from("\r\n"));
  return Buffer.concat(parts);
}

function vectorInput(trailer: boolean): SignInput {
  const headers = new Map(Object.entries(vector.headers));
  if (trailer) headers.set("x-amz-trailer", TRAILERS.map((l) => l.slice(0, l.indexOf(":"))).join(","));
  return {
    method: vector.method,
    host: vector.headers.host as string,
    path: vector.path,
    query: {},
    headers,
    clientSignedHeaders: [...headers.keys()],
    signContentLength: true,
    payloadHash: trailer ? STREAMING_SIGNED_V4A_TRAILER : STREAMING_SIGNED_V4A,
    service: vector.service,
    region: vector.region_set,
    algorithm: "AWS4-ECDSA-P256-SHA256",
    credentials: { accessKeyId: vector.credentials.access_key_id, secretAccessKey: vector.credentials.secret_access_key },
    now: new Date("2013-05-24T00:00:00Z"),
  };
}

async function start(trailer: boolean, maxChunkBytes = 1024 * 1024): Promise<{ resigner: AwsChunkedResigner; seed: string }> {
  const { resigner, setHeaders } = await startChunkedResigning(vectorInput(trailer), { trailer, maxChunkBytes, decodedContentLength: 66560 });
  const authorization = setHeaders.find(([n]) => n === "authorization")?.[1] ?? "";
  return { resigner, seed: authorization.slice(authorization.indexOf("Signature=") + "Signature=".length) };
}

async function resign(resigner: AwsChunkedResigner, body: Buffer): Promise<Buffer> {
  const out = await resigner.push(body);
  if (!out.ok) throw new Error(out.error);
  expect(resigner.finish()).toEqual({ ok: true, out: [] });
  return Buffer.concat(out.out);
}

/** The signature fields of a re-signed body, in order (chunks, then the trailer's). */
function fields(body: Buffer): string[] {
  return [...body.toString("latin1").matchAll(/(?:;chunk-signature=|x-amz-trailer-signature:)([^\r]*)\r\n/g)].map((m) => m[1] as string);
}

describe("SigV4A chunk re-signing, checked against aws-c-auth's SigV4A chunked-signing vectors", () => {
  it("signs the seed over the vector's canonical request, under the key the vector's public key belongs to", async () => {
    const { seed } = await start(false);
    expect(verifySigV4aSignature(vectorKey, sigV4aStringToSign(vector.x_amz_date, "20130524/s3/aws4_request", vector.expected.canonical_request), seed)).toBe(true);
  });

  it("writes every chunk signature padded with * to 144 characters, each verifying over the vector's string to sign chained from the previous signature unpadded", async () => {
    const { resigner, seed } = await start(false);
    const client = frame(vector.chunk_sizes, vector.chunk_data_byte, CLIENT_FIELD);
    const out = await resign(resigner, client);
    expect(out.length).toBe(client.length);
    const sigs = fields(out);
    expect(sigs).toHaveLength(3);
    let previous = seed;
    sigs.forEach((field, i) => {
      expect(field).toHaveLength(vector.expected.padded_signature_length);
      expect(field).toMatch(/^30[0-9a-f]+\**$/);
      const unpadded = unpadSigV4aSignature(field) as string;
      const stringToSign = `${vector.expected.chunk_string_to_sign_before_previous}${previous}${vector.expected.chunk_string_to_sign_after_previous[i] as string}`;
      expect(verifySigV4aSignature(vectorKey, stringToSign, unpadded)).toBe(true);
      // Chained from the padded field instead, it would not verify: the chain is unpadded.
      if (field !== unpadded) expect(verifySigV4aSignature(vectorKey, stringToSign.replace(previous, `${previous}*`), unpadded)).toBe(false);
      previous = unpadded;
    });
    expect(resigner.signaturesComputed).toBe(3);
  });

  it("signs the trailer over the vector's trailer string to sign, chained from the final chunk's signature unpadded", async () => {
    const { resigner, seed } = await start(true);
    expect(verifySigV4aSignature(vectorKey, sigV4aStringToSign(vector.x_amz_date, "20130524/s3/aws4_request", vector.expected.trailer_canonical_request), seed)).toBe(true);
    const client = frame(vector.chunk_sizes, vector.chunk_data_byte, CLIENT_FIELD, TRAILERS);
    const out = await resign(resigner, client);
    expect(out.length).toBe(client.length);
    const sigs = fields(out);
    expect(sigs).toHaveLength(4);
    const finalChunk = unpadSigV4aSignature(sigs[2] as string) as string;
    const trailerField = sigs[3] as string;
    expect(trailerField).toHaveLength(144);
    const stringToSign = `${vector.expected.trailer_string_to_sign_before_previous}${finalChunk}${vector.expected.trailer_string_to_sign_after_previous}`;
    expect(verifySigV4aSignature(vectorKey, stringToSign, unpadSigV4aSignature(trailerField) as string)).toBe(true);
    expect(out.toString("latin1")).toContain("first:1st\r\nsecond:2nd\r\nthird:3rd\r\nx-amz-trailer-signature:30");
  });
});

describe("SigV4A chunk re-signing: the fake AWS's independent verifier, the chain's width, refusals", () => {
  const key = sigV4aPublicKey(vector.credentials.access_key_id, vector.credentials.secret_access_key);

  async function verifiedByFake(trailer: boolean, mutate: (out: Buffer) => Buffer = (b) => b): Promise<ReturnType<AwsChunkedDecoder["end"]>> {
    const { resigner, seed } = await start(trailer);
    const out = mutate(await resign(resigner, frame(vector.chunk_sizes, vector.chunk_data_byte, CLIENT_FIELD, trailer ? TRAILERS : undefined)));
    const decoder = new AwsChunkedDecoder({
      mode: trailer ? STREAMING_SIGNED_V4A_TRAILER : STREAMING_SIGNED_V4A,
      signing: { amzDate: vector.x_amz_date, scope: "20130524/s3/aws4_request", seedSignature: seed, sigV4aPublicKey: key },
      declaredTrailers: trailer ? ["first", "second", "third"] : [],
      decodedContentLength: 66560,
    });
    decoder.write(out);
    return decoder.end();
  }

  it.each([false, true])("is accepted by the fake AWS's verifier (trailer: %s)", async (trailer) => {
    const result = await verifiedByFake(trailer);
    expect(result.ok && { chunks: result.outcome.chunksVerified, trailer: result.outcome.trailerVerified, bytes: result.outcome.decodedBytes }).toEqual({ chunks: 3, trailer, bytes: 66560 });
  });

  it("is refused by the fake AWS's verifier when one data byte changes after re-signing", async () => {
    const result = await verifiedByFake(false, (out) => {
      const copy = Buffer.from(out);
      copy[copy.indexOf("\r\n") + 100] = 0x62; // "b" in chunk 0's data
      return copy;
    });
    expect(!result.ok && { code: result.failure.code, chunk: result.failure.chunkIndex }).toEqual({ code: "SignatureDoesNotMatch", chunk: 0 });
  });

  it.each([
    ["an unpadded signature (142 hex)", `30${"0".repeat(140)}`, "is not 144 characters"],
    ["a SigV4 (64 hex) signature", "0".repeat(64), "is not 144 characters"],
    ["padding longer than 144", `${CLIENT_FIELD}*`, "is not 144 characters"],
    ["padding inside the hex", `30*${"0".repeat(140)}*`, "is not 144 characters"],
    ["upper-case hex", `3044${"A".repeat(136)}****`, "is not 144 characters"],
  ])("refuses a chunk whose signature field is %s, so the length it was computed with would not hold", async (_name, field, message) => {
    const { resigner } = await start(false);
    const out = await resigner.push(frame([5, 0], "x", field));
    expect(!out.ok && out.error).toContain(message);
  });

  it("refuses an unpadded trailer signature", async () => {
    const { resigner } = await start(true);
    const body = frame(vector.chunk_sizes, vector.chunk_data_byte, CLIENT_FIELD, TRAILERS);
    const text = body.toString("latin1");
    const at = text.lastIndexOf(CLIENT_FIELD);
    const unpadded = Buffer.from(`${text.slice(0, at)}${CLIENT_FIELD.replace(/\*+$/, "")}\r\n\r\n`, "latin1");
    const out = await resigner.push(unpadded);
    expect(!out.ok && out.error).toBe('x-amz-trailer-signature is not 144 characters: a hex DER ECDSA signature padded with "*" (as aws-c-auth writes it)');
  });

  it("keeps the private key out of what it returns and of its own enumerable state", async () => {
    const { resigner } = await start(true);
    const out = await resign(resigner, frame(vector.chunk_sizes, vector.chunk_data_byte, CLIENT_FIELD, TRAILERS));
    const d = deriveSigV4aPrivateKey(vector.credentials.access_key_id, vector.credentials.secret_access_key).d.toString(16).padStart(64, "0");
    expect(out.toString("latin1")).not.toContain(d);
    expect(JSON.stringify(resigner)).not.toContain(d);
    expect(JSON.stringify(resigner)).not.toContain(vector.credentials.secret_access_key);
  });

  it("gives bodies the fake AWS accepts however the body is split (property)", async () => {
    const client = frame([300, 200, 0], "z", CLIENT_FIELD, TRAILERS);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: client.length - 1 }), { maxLength: 30 }), async (cuts) => {
        cuts.sort((a, b) => a - b);
        const { resigner, setHeaders } = await startChunkedResigning(vectorInput(true), { trailer: true, maxChunkBytes: 1024, decodedContentLength: 500 });
        const auth = setHeaders.find(([n]) => n === "authorization")?.[1] ?? "";
        const decoder = new AwsChunkedDecoder({
          mode: STREAMING_SIGNED_V4A_TRAILER,
          signing: { amzDate: vector.x_amz_date, scope: "20130524/s3/aws4_request", seedSignature: auth.slice(auth.indexOf("Signature=") + 10), sigV4aPublicKey: key },
          declaredTrailers: ["first", "second", "third"],
          decodedContentLength: 500,
          minChunkSize: 0,
        });
        let prev = 0;
        let length = 0;
        for (const c of [...cuts, client.length]) {
          const o = await resigner.push(client.subarray(prev, c));
          if (!o.ok) return false;
          for (const piece of o.out) {
            decoder.write(piece);
            length += piece.length;
          }
          prev = c;
        }
        const end = decoder.end();
        return resigner.finish().ok && length === client.length && end.ok && end.outcome.chunksVerified === 3 && end.outcome.trailerVerified;
      }),
      { numRuns: 40 },
    );
  });
});
