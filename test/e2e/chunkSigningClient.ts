/**
 * A chunk-signing S3 client, as minio-go and the Java/.NET SDKs behave over plain-HTTP sidecars:
 * PutObject with x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER], every chunk
 * signed with the (placeholder) key and chained from the seed. It streams the body, so a 100 MiB
 * upload never sits in memory. Signing math from @smithy/signature-v4, not from src/.
 */
import { createHash, createHmac } from "node:crypto";
import https from "node:https";
import { Readable } from "node:stream";
import { crc32 } from "node:zlib";
import { Hash } from "@smithy/hash-node";
import { getSigningKey, SignatureV4 } from "@smithy/signature-v4";
import type { Agent } from "node:http";

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
}

export interface UploadResult {
  status: number;
  body: string;
  chunks: number;
  framedLength: number;
  crc32: string;
}

function framedLength(size: number, chunkSize: number, trailerBytes: number): number {
  const header = (n: number): number => n.toString(16).length + ";chunk-signature=".length + 64 + 2;
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

export async function chunkedPut(u: ChunkedUpload): Promise<UploadResult> {
  const literal = u.trailer ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
  const makeChunk = chunkMaker(u.byteAt, u.chunkSize);
  // CRC32 of the whole object, for the trailer (computed in a first pass, chunk by chunk).
  let crc = 0;
  if (u.trailer) for (let off = 0; off < u.size; off += u.chunkSize) crc = crc32(makeChunk(off, Math.min(u.chunkSize, u.size - off)), crc);
  const crcB64 = Buffer.alloc(4);
  crcB64.writeUInt32BE(crc >>> 0);
  const checksum = crcB64.toString("base64");
  const trailerLine = `x-amz-checksum-crc32:${checksum}`;
  const trailerBytes = u.trailer ? `${trailerLine}\r\nx-amz-trailer-signature:${"0".repeat(64)}\r\n\r\n`.length : 0;
  const contentLength = framedLength(u.size, u.chunkSize, trailerBytes);

  const headers: Record<string, string> = {
    host: u.host,
    "content-encoding": "aws-chunked",
    ...(u.contentLength === false ? {} : { "content-length": String(contentLength) }),
    "x-amz-content-sha256": literal,
    "x-amz-decoded-content-length": String(u.size),
    "x-amz-storage-class": "STANDARD",
  };
  if (u.trailer) headers["x-amz-trailer"] = "x-amz-checksum-crc32";
  const signer = new SignatureV4({ service: "s3", region: u.region, credentials: u.credentials, sha256: Sha256, uriEscapePath: false, applyChecksum: false });
  const now = new Date();
  const signed = await signer.sign({ method: "PUT", protocol: "https:", hostname: u.host, path: u.path, query: {}, headers }, { signingDate: now });
  const auth = signed.headers.authorization as string;
  const amzDate = signed.headers["x-amz-date"] as string;
  const scope = /Credential=[^/]+\/([^,]+),/.exec(auth)?.[1] as string;
  let prev = /Signature=([0-9a-f]{64})/.exec(auth)?.[1] as string;
  const key = await getSigningKey(Sha256, u.credentials, amzDate.slice(0, 8), u.region, "s3");
  const sign = (sts: string): string => createHmac("sha256", key).update(sts).digest("hex");
  const chunkSig = (data: Buffer): string => {
    prev = sign(["AWS4-HMAC-SHA256-PAYLOAD", amzDate, scope, prev, EMPTY, createHash("sha256").update(data).digest("hex")].join("\n"));
    return prev;
  };

  let chunks = 0;
  async function* frames(): AsyncGenerator<Buffer> {
    for (let off = 0; off < u.size; off += u.chunkSize) {
      const data = makeChunk(off, Math.min(u.chunkSize, u.size - off));
      chunks++;
      yield Buffer.concat([Buffer.from(`${data.length.toString(16)};chunk-signature=${chunkSig(data)}\r\n`), data, Buffer.from("\r\n")]);
    }
    chunks++;
    const finalSig = chunkSig(Buffer.alloc(0));
    if (!u.trailer) {
      yield Buffer.from(`0;chunk-signature=${finalSig}\r\n\r\n`);
      return;
    }
    const trailerSig = sign(["AWS4-HMAC-SHA256-TRAILER", amzDate, scope, finalSig, createHash("sha256").update(`${trailerLine}\n`).digest("hex")].join("\n"));
    yield Buffer.from(`0;chunk-signature=${finalSig}\r\n${trailerLine}\r\nx-amz-trailer-signature:${trailerSig}\r\n\r\n`);
  }

  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: u.host, port: 443, method: "PUT", path: u.path, headers: signed.headers as Record<string, string>, agent: u.agent, ca: u.ca, servername: u.host },
      (res) => {
        const parts: Buffer[] = [];
        res.on("data", (d: Buffer) => parts.push(d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString(), chunks, framedLength: contentLength, crc32: checksum }));
      },
    );
    req.on("error", reject);
    Readable.from(frames()).pipe(req);
  });
}
