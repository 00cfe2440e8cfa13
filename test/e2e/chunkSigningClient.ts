/**
 * A chunk-signing S3 client, as minio-go and the Java/.NET SDKs behave over plain-HTTP sidecars:
 * PutObject with x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], every chunk
 * signed with the (placeholder) key and chained from the seed. It streams the body, so a 100 MiB
 * upload never sits in memory. Signing math from @smithy/signature-v4, not from src/.
 *
 * With `regionSet`, SigV4A as the CRT-based SDKs send it (STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD
 * [-TRAILER]): the head signed by @smithy/signature-v4a, each chunk and the trailer ECDSA-signed
 * by the same library with the key it derived for the head, written padded with `*` to 144
 * characters (aws-c-auth's form), each link chained from the previous signature unpadded.
 */
import { createHash, createHmac } from "node:crypto";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import { Hash } from "@smithy/hash-node";
import { getSigningKey, SignatureV4 } from "@smithy/signature-v4";
import { SignatureV4a } from "@smithy/signature-v4a";
import type { Agent } from "node:http";
import { httpsExchange } from "./clients.js";

const Sha256 = Hash.bind(null, "sha256");
const EMPTY = createHash("sha256").digest("hex");

export interface ChunkedUpload {
  host: string;
  path: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  size: number;
  chunkSize: number;
  trailer: boolean;
  agent: Agent;
  ca: string;
  /** Byte at offset i of the object. */
  byteAt?: (i: number) => number;
  /** false: send the framed body with transfer-encoding: chunked and no content-length (default true). */
  contentLength?: boolean;
  /** Sign with SigV4A for this region set (sent as x-amz-region-set) instead of SigV4 for `region`. */
  regionSet?: string;
  /** SigV4A: send this chunk's (0-based) signature without its `*` padding, as a broken client would. */
  unpadChunk?: number;
}

export interface UploadResult {
  status: number;
  body: string;
  chunks: number;
  framedLength: number;
  crc32: string;
}

const V4A_FIELD_WIDTH = 144;

function framedLength(size: number, chunkSize: number, trailerBytes: number, sigWidth: number): number {
  const header = (n: number): number => n.toString(16).length + ";chunk-signature=".length + sigWidth + 2;
  let total = 0;
  for (let left = size; left > 0; left -= chunkSize) {
    const n = Math.min(chunkSize, left);
    total += header(n) + n + 2;
  }
  return total + header(0) + (trailerBytes > 0 ? trailerBytes : 2);
}

/**
 * Bytes [offset, offset + n) of the object. The default content repeats every 256 bytes, so its
 * chunks are views into one pattern buffer: a 1 GiB upload costs no per-byte work in the client.
 */
function chunkMaker(byteAt: ((i: number) => number) | undefined, chunkSize: number): (offset: number, n: number) => Buffer {
  if (byteAt) {
    return (offset, n) => {
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = byteAt(offset + i);
      return b;
    };
  }
  const pattern = Buffer.allocUnsafe(chunkSize + 256);
  for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31 + 7) & 0xff;
  return (offset, n) => pattern.subarray(offset % 256, (offset % 256) + n);
}

/** smithy's ECDSA step (private in its d.ts): hex DER of a string under a derived key. */
interface EcdsaStep {
  getSignature(privateKey: Uint8Array, stringToSign: string): Promise<string>;
}

export async function chunkedPut(u: ChunkedUpload): Promise<UploadResult> {
  const v4a = u.regionSet !== undefined;
  const algorithm = v4a ? "AWS4-ECDSA-P256-SHA256" : "AWS4-HMAC-SHA256";
  const sigWidth = v4a ? V4A_FIELD_WIDTH : 64;
  const literal = `STREAMING-${algorithm}-PAYLOAD${u.trailer ? "-TRAILER" : ""}`;
  const makeChunk = chunkMaker(u.byteAt, u.chunkSize);
  // CRC32 of the whole object, for the trailer (computed in a first pass, chunk by chunk).
  let crc = 0;
  if (u.trailer) for (let off = 0; off < u.size; off += u.chunkSize) crc = crc32(makeChunk(off, Math.min(u.chunkSize, u.size - off)), crc);
  const crcB64 = Buffer.alloc(4);
  crcB64.writeUInt32BE(crc >>> 0);
  const checksum = crcB64.toString("base64");
  const trailerLine = `x-amz-checksum-crc32:${checksum}`;
  const trailerBytes = u.trailer ? `${trailerLine}\r\nx-amz-trailer-signature:${"0".repeat(sigWidth)}\r\n\r\n`.length : 0;
  const contentLength = framedLength(u.size, u.chunkSize, trailerBytes, sigWidth);

  const headers: Record<string, string> = {
    host: u.host,
    "content-encoding": "aws-chunked",
    ...(u.contentLength === false ? {} : { "content-length": String(contentLength) }),
    "x-amz-content-sha256": literal,
    "x-amz-decoded-content-length": String(u.size),
    "x-amz-storage-class": "STANDARD",
  };
  if (u.trailer) headers["x-amz-trailer"] = "x-amz-checksum-crc32";
  const init = { service: "s3", region: u.regionSet ?? u.region, credentials: u.credentials, sha256: Sha256, uriEscapePath: false, applyChecksum: false };
  const now = new Date();
  const request = { method: "PUT", protocol: "https:", hostname: u.host, path: u.path, query: {}, headers };
  let sign: (sts: string) => Promise<string>;
  let signed: { headers: Record<string, string> };
  if (v4a) {
    const signer = new SignatureV4a(init);
    const ecdsa = signer as unknown as EcdsaStep;
    const smithy = ecdsa.getSignature.bind(signer);
    let privateKey: Uint8Array | undefined;
    ecdsa.getSignature = (k, sts) => {
      privateKey = k;
      return smithy(k, sts);
    };
    signed = (await signer.sign(request, { signingDate: now })) as { headers: Record<string, string> };
    sign = (sts) => smithy(privateKey as Uint8Array, sts);
  } else {
    signed = (await new SignatureV4(init).sign(request, { signingDate: now })) as { headers: Record<string, string> };
    const key = await getSigningKey(Sha256, u.credentials, (signed.headers["x-amz-date"] as string).slice(0, 8), u.region, "s3");
    sign = (sts) => Promise.resolve(createHmac("sha256", key).update(sts).digest("hex"));
  }
  const auth = signed.headers.authorization as string;
  const amzDate = signed.headers["x-amz-date"] as string;
  const scope = /Credential=[^/]+\/([^,]+),/.exec(auth)?.[1] as string;
  let prev = /Signature=([0-9a-f]+)$/.exec(auth)?.[1] as string;
  const field = (sig: string, index: number): string => (v4a && index !== u.unpadChunk ? sig.padEnd(V4A_FIELD_WIDTH, "*") : sig);
  let signedChunks = 0;
  const chunkSig = async (data: Buffer): Promise<string> => {
    prev = await sign([`${algorithm}-PAYLOAD`, amzDate, scope, prev, EMPTY, createHash("sha256").update(data).digest("hex")].join("\n"));
    return field(prev, signedChunks++);
  };

  let chunks = 0;
  async function* frames(): AsyncGenerator<Buffer> {
    for (let off = 0; off < u.size; off += u.chunkSize) {
      const data = makeChunk(off, Math.min(u.chunkSize, u.size - off));
      chunks++;
      yield Buffer.concat([Buffer.from(`${data.length.toString(16)};chunk-signature=${await chunkSig(data)}\r\n`), data, Buffer.from("\r\n")]);
    }
    chunks++;
    const finalSig = await chunkSig(Buffer.alloc(0));
    if (!u.trailer) {
      yield Buffer.from(`0;chunk-signature=${finalSig}\r\n\r\n`);
      return;
    }
    const trailerSig = field(await sign([`${algorithm}-TRAILER`, amzDate, scope, prev, createHash("sha256").update(`${trailerLine}\n`).digest("hex")].join("\n")), -1);
    yield Buffer.from(`0;chunk-signature=${finalSig}\r\n${trailerLine}\r\nx-amz-trailer-signature:${trailerSig}\r\n\r\n`);
  }

  return httpsExchange(
    { host: u.host, port: 443, method: "PUT", path: u.path, headers: signed.headers, agent: u.agent, ca: u.ca, servername: u.host },
    (req) => Readable.from(frames()).pipe(req),
    ({ status, body }) => ({ status, body, chunks, framedLength: contentLength, crc32: checksum }),
  );
}
