import { Hash } from "@smithy/hash-node";
import { getSigningKey } from "@smithy/signature-v4";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { readChunkedExample, type ChunkedUploadExample } from "../../test/fakeaws/suite.js";
import { canonicalTrailerText, hmacHex, sha256Hex, trailerStringToSign } from "../../test/fakeaws/verifier.js";
import { AwsChunkedResigner, type ChunkSigningParams } from "./awsChunkedResigner.js";
import { hmacChunkSigner } from "./chunkSigners.js";
import { signRequest, type SignInput } from "./signRequest.js";
import { startChunkedResigning } from "./startChunkedResigning.js";

const PLACEHOLDER_SIG = "0".repeat(64);
const Sha256 = Hash.bind(null, "sha256");


/** Frames `sizes` chunks of `byte` the way a chunk-signing client does, with the given signatures. */
function frame(sizes: number[], byte: string, sigs: string[], trailer?: string[]): Buffer {
  const parts: Buffer[] = [];
  sizes.forEach((size, i) => {
    parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${sigs[i] ?? PLACEHOLDER_SIG}\r\n`));
    if (size > 0) parts.push(Buffer.alloc(size, byte), Buffer.from("\r\n"));
  });
  if (trailer) parts.push(Buffer.from(trailer.map((l) => `${l}\r\n`).join("")));
  parts.push(Buffer.from("\r\n"));
  return Buffer.concat(parts);
}

function params(key: Uint8Array, over: Partial<ChunkSigningParams> = {}): ChunkSigningParams {
  return {
    signer: hmacChunkSigner(key),
    seed: {
      amzDate: "20130524T000000Z",
      scope: "20130524/us-east-1/s3/aws4_request",
      signature: "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
    },
    trailer: false,
    maxChunkBytes: 1024 * 1024,
    decodedContentLength: 66560,
    ...over,
  };
}

/** The example's request head, as countersign hands it to the signer. */
function exampleInput(ex: ChunkedUploadExample): SignInput {
  const headers = new Map(Object.entries(ex.headers));
  return {
    method: ex.method,
    host: ex.headers.host as string,
    path: ex.path,
    query: {},
    headers,
    clientSignedHeaders: [...headers.keys()],
    signContentLength: true, // the documented example signs content-length
    payloadHash: ex.headers["x-amz-content-sha256"] as string,
    service: ex.service,
    region: ex.region,
    credentials: { accessKeyId: ex.credentials.access_key_id, secretAccessKey: ex.credentials.secret_access_key },
    now: new Date("2013-05-24T00:00:00Z"),
  };
}

describe("the S3 chunked-upload example from the AWS documentation", () => {
  const ex = readChunkedExample();

  const body = { trailer: false, maxChunkBytes: 1024 * 1024, decodedContentLength: 66560 };

  it("reproduces the seed signature, its scope and signing key from the request headers", async () => {
    const out = await signRequest(exampleInput(ex));
    expect(out.signedHeaderNames).toBe(ex.expected.signed_headers);
    expect(out.signature).toBe(ex.expected.seed_signature);
    expect(out.amzDate).toBe(ex.x_amz_date);
    expect(out.scope).toBe("20130524/us-east-1/s3/aws4_request");
    expect(Buffer.from(out.signingKey)).toEqual(Buffer.from(await getSigningKey(Sha256, { accessKeyId: ex.credentials.access_key_id, secretAccessKey: ex.credentials.secret_access_key }, "20130524", ex.region, ex.service)));
    expect(out.setHeaders).toContainEqual(["authorization", ex.expected.authorization]);
  });

  it("reproduces every chunk signature, keeping the body length", async () => {
    const input = frame(ex.chunk_sizes, ex.chunk_data_byte, []);
    const { setHeaders, resigner: r } = await startChunkedResigning(exampleInput(ex), body);
    expect(setHeaders).toContainEqual(["authorization", ex.expected.authorization]);
    const out = await r.push(input);
    expect(out.ok).toBe(true);
    expect(r.finish()).toEqual({ ok: true, out: [] });
    const expected = frame(ex.chunk_sizes, ex.chunk_data_byte, ex.expected.chunk_signatures);
    expect(out.ok && Buffer.concat(out.out).equals(expected)).toBe(true);
    expect(expected.length).toBe(Number(ex.headers["content-length"]));
    expect(r.signaturesComputed).toBe(3);
    expect(r.bytesHashed).toBe(66560);
  });

  it("gives the same bytes however the body is split (property)", async () => {
    const seed = await signRequest(exampleInput(ex));
    const input = frame(ex.chunk_sizes, ex.chunk_data_byte, []);
    const whole = await new AwsChunkedResigner({ ...body, seed, signer: hmacChunkSigner(seed.signingKey) }).push(input);
    expect(whole.ok).toBe(true);
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(fc.integer({ min: 1, max: input.length - 1 }), { maxLength: 40 }), async (cuts) => {
        cuts.sort((a, b) => a - b);
        const r = new AwsChunkedResigner({ ...body, seed, signer: hmacChunkSigner(seed.signingKey) });
        const outs: Buffer[] = [];
        let prev = 0;
        for (const c of [...cuts, input.length]) {
          const o = await r.push(input.subarray(prev, c));
          if (!o.ok) return false;
          outs.push(...o.out);
          prev = c;
        }
        return r.finish().ok && whole.ok && Buffer.concat(outs).equals(Buffer.concat(whole.out));
      }),
      { numRuns: 300 },
    );
  });
});

describe("AwsChunkedResigner", () => {
  const key = Buffer.alloc(32, 7);
  const small = (over: Partial<ChunkSigningParams> = {}): AwsChunkedResigner => new AwsChunkedResigner(params(key, { decodedContentLength: 5, ...over }));

  it("splits a chunk header in the middle of chunk-signature= and still re-signs", async () => {
    const body = frame([5, 0], "x", []);
    const at = body.indexOf("chunk-sig") + 4;
    const r = small();
    const a = await r.push(body.subarray(0, at));
    const b = await r.push(body.subarray(at));
    expect(a).toEqual({ ok: true, out: [] }); // header held back until its data is hashed
    expect(b.ok && Buffer.concat(b.out).length).toBe(body.length);
    expect(r.finish().ok).toBe(true);
  });

  it("re-signs the trailer from the final chunk signature and keeps the trailer bytes", async () => {
    const body = frame([5, 0], "x", [], ["x-amz-checksum-crc32:DUoRhQ==", `x-amz-trailer-signature:${"f".repeat(64)}`]);
    const r = small({ trailer: true });
    const out = await r.push(body);
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    const forwarded = Buffer.concat(out.out);
    expect(forwarded.length).toBe(body.length);
    const text = forwarded.toString("latin1");
    expect(text).toContain("x-amz-checksum-crc32:DUoRhQ==\r\nx-amz-trailer-signature:");
    expect(text).not.toContain("f".repeat(64));
    expect(r.signaturesComputed).toBe(3);
    expect(r.finish().ok).toBe(true);
  });

  it.each([
    ["a bad hex size", "zz;chunk-signature=" + PLACEHOLDER_SIG + "\r\n", "is not a hex number"],
    ["a missing chunk-signature", "5\r\nhello\r\n", "has no chunk-signature"],
    ["a short chunk-signature", "5;chunk-signature=abc\r\nhello\r\n", "64 lower-case hex"],
    ["a chunk longer than declared", `5;chunk-signature=${PLACEHOLDER_SIG}\r\nhello!\r\n`, "longer than declared"],
    ["a header line without CRLF", `5;chunk-signature=${PLACEHOLDER_SIG}\nhello\r\n`, "does not end with CRLF"],
    ["data after the final chunk", `5;chunk-signature=${PLACEHOLDER_SIG}\r\nhello\r\n0;chunk-signature=${PLACEHOLDER_SIG}\r\n\r\nmore`, "data after the final chunk"],
    ["chunks larger than the decoded length", `6;chunk-signature=${PLACEHOLDER_SIG}\r\nhello!\r\n`, "more than x-amz-decoded-content-length"],
    ["chunks smaller than the decoded length", `4;chunk-signature=${PLACEHOLDER_SIG}\r\nhell\r\n0;chunk-signature=${PLACEHOLDER_SIG}\r\n\r\n`, "add up to 4 bytes"],
    ["an endless header line", "5".repeat(200), "too long"],
  ])("refuses %s", async (_name, body, message) => {
    const r = small();
    const out = await r.push(Buffer.from(body, "latin1"));
    expect(out.ok).toBe(false);
    expect(!out.ok && out.error).toContain(message);
    // Once failed, it stays failed.
    expect((await r.push(Buffer.from("0"))).ok).toBe(false);
  });

  it("refuses a chunk over the size limit before buffering it", async () => {
    const r = small({ maxChunkBytes: 4, decodedContentLength: 5 });
    const out = await r.push(Buffer.from(`5;chunk-signature=${PLACEHOLDER_SIG}\r\n`));
    expect(!out.ok && out.error).toContain("over the 4-byte limit");
  });

  it("signs the canonical trailer a verifier builds: sorted by name, inner whitespace folded, whatever the arrival order", async () => {
    const lines = ["X-Amz-Meta-Zeta:  two   words ", "x-amz-checksum-crc32:DUoRhQ=="];
    const body = frame([5, 0], "x", [], [...lines, `x-amz-trailer-signature:${"f".repeat(64)}`]);
    const p = params(key, { decodedContentLength: 5, trailer: true });
    const out = await new AwsChunkedResigner(p).push(body);
    expect(out.ok).toBe(true);
    if (!out.ok) return;
    const text = Buffer.concat(out.out).toString("latin1");
    // The lines go out as they came; only the signature changes.
    expect(text).toContain(`${lines.join("\r\n")}\r\nx-amz-trailer-signature:`);
    const finalChunkSig = /0;chunk-signature=([0-9a-f]{64})\r\n/.exec(text)?.[1] as string;
    const trailerSig = /x-amz-trailer-signature:([0-9a-f]{64})\r\n/.exec(text)?.[1];
    // The fake AWS's verifier, written from the spec, sharing no code with src/sigv4.
    const canonical = canonicalTrailerText(lines.map((l) => [l.slice(0, l.indexOf(":")), l.slice(l.indexOf(":") + 1)] as const));
    expect(canonical).toBe("x-amz-checksum-crc32:DUoRhQ==\nx-amz-meta-zeta:two words\n");
    expect(trailerSig).toBe(hmacHex(key, trailerStringToSign(p.seed.amzDate, p.seed.scope, finalChunkSig, sha256Hex(canonical))));
  });

  it("refuses a trailer that names a header twice, in any letter case", async () => {
    const r = small({ trailer: true });
    const out = await r.push(frame([5, 0], "x", [], ["x-amz-checksum-crc32:DUoRhQ==", "X-Amz-Checksum-CRC32:AAAAAA==", `x-amz-trailer-signature:${"f".repeat(64)}`]));
    expect(!out.ok && out.error).toContain('trailer names "x-amz-checksum-crc32" twice');
  });

  it("refuses a trailer without its signature", async () => {
    const r = small({ trailer: true });
    const out = await r.push(frame([5, 0], "x", [], ["x-amz-checksum-crc32:DUoRhQ=="]));
    expect(!out.ok && out.error).toContain("without x-amz-trailer-signature");
  });

  it.each([
    ["inside a chunk", `5;chunk-signature=${PLACEHOLDER_SIG}\r\nhel`],
    ["before the final 0-size chunk", `5;chunk-signature=${PLACEHOLDER_SIG}\r\nhello\r\n`],
  ])("refuses a body that ends %s", async (where, body) => {
    const r = small();
    expect((await r.push(Buffer.from(body))).ok).toBe(true);
    const end = r.finish();
    expect(!end.ok && end.error).toContain(where);
  });

  it("never throws and never outputs a different length on random framing (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 50 }), async (bytes, step) => {
        const r = small({ decodedContentLength: 100 });
        let total = 0;
        for (let i = 0; i < bytes.length; i += step) {
          const o = await r.push(Buffer.from(bytes.subarray(i, i + step)));
          if (!o.ok) return true;
          total += Buffer.concat(o.out).length;
        }
        return total <= bytes.length;
      }),
      { numRuns: 2000 },
    );
  });
});
