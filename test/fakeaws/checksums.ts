/**
 * Incremental checksums S3 accepts for flexible-checksum uploads (`x-amz-checksum-*` headers and
 * aws-chunked trailers). Values are compared the way S3 prints them: base64 of the big-endian
 * digest. CRC32 (IEEE, reflected 0xEDB88320) uses node:zlib when the runtime has it; CRC32C
 * (Castagnoli, reflected 0x82F63B78) has its own table.
 */
import { createHash, type Hash } from "node:crypto";
import * as zlib from "node:zlib";

export type ChecksumAlgorithm = "crc32" | "crc32c" | "sha1" | "sha256";

export const CHECKSUM_ALGORITHMS: readonly ChecksumAlgorithm[] = ["crc32", "crc32c", "sha1", "sha256"];

/** `x-amz-checksum-crc32` → `crc32`; anything else (crc64nvme, unknown) → undefined. */
export function checksumAlgorithmOfHeader(name: string): ChecksumAlgorithm | undefined {
  const lower = name.toLowerCase();
  if (!lower.startsWith("x-amz-checksum-")) return undefined;
  const algorithm = lower.slice("x-amz-checksum-".length);
  return (CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm) ? (algorithm as ChecksumAlgorithm) : undefined;
}

function makeCrcTable(reversedPolynomial: number): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ reversedPolynomial : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

const CRC32_TABLE = makeCrcTable(0xedb88320);
const CRC32C_TABLE = makeCrcTable(0x82f63b78);

function updateCrc(table: Uint32Array, crc: number, data: Uint8Array): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = (table[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8);
  return ~c >>> 0;
}

const nativeCrc32: ((data: Uint8Array, value?: number) => number) | undefined =
  typeof (zlib as { crc32?: unknown }).crc32 === "function" ? zlib.crc32 : undefined;

/** CRC32 (IEEE) continuing from `crc` (0 to start). */
export function crc32Update(crc: number, data: Uint8Array): number {
  return nativeCrc32 ? nativeCrc32(data, crc) >>> 0 : updateCrc(CRC32_TABLE, crc, data);
}

/** CRC32 computed by the table implementation only (lets tests compare it with node:zlib). */
export function crc32ByTable(crc: number, data: Uint8Array): number {
  return updateCrc(CRC32_TABLE, crc, data);
}

/** CRC32C (Castagnoli) continuing from `crc` (0 to start). */
export function crc32cUpdate(crc: number, data: Uint8Array): number {
  return updateCrc(CRC32C_TABLE, crc, data);
}

function crcToBase64(crc: number): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc >>> 0, 0);
  return out.toString("base64");
}

/** One running checksum; `digestBase64()` may be called once, at the end. */
export interface RunningChecksum {
  readonly algorithm: ChecksumAlgorithm;
  update(data: Uint8Array): void;
  digestBase64(): string;
}

export function createChecksum(algorithm: ChecksumAlgorithm): RunningChecksum {
  if (algorithm === "crc32" || algorithm === "crc32c") {
    const step = algorithm === "crc32" ? crc32Update : crc32cUpdate;
    let crc = 0;
    return {
      algorithm,
      update: (data) => {
        crc = step(crc, data);
      },
      digestBase64: () => crcToBase64(crc),
    };
  }
  const hash: Hash = createHash(algorithm);
  return {
    algorithm,
    update: (data) => {
      hash.update(data);
    },
    digestBase64: () => hash.digest("base64"),
  };
}

/** Convenience for whole buffers. */
export function checksumBase64(algorithm: ChecksumAlgorithm, data: Uint8Array): string {
  const c = createChecksum(algorithm);
  c.update(data);
  return c.digestBase64();
}
