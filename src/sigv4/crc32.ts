/**
 * CRC-32 (IEEE, the event-stream format's checksum) for the event-stream re-signer: @node-rs/crc32
 * (native, SIMD, several times node:zlib's speed on 64 KiB) when its binary for this platform
 * loads, node:zlib's crc32 otherwise. Both give the same values and both continue from a prior
 * CRC, so a message's CRC can be computed piece by piece as its bytes arrive.
 */
import { createRequire } from "node:module";
import { crc32 as zlibCrc32 } from "node:zlib";

/** CRC-32 of `data`, continuing from `initial` (the CRC of the bytes before it; 0 to start). */
export type Crc32 = (data: Uint8Array, initial?: number) => number;

/** node:zlib's CRC-32: always there. */
export const zlibCrc: Crc32 = (data, initial = 0) => zlibCrc32(data, initial);

/** Below this many bytes node:zlib's call is cheaper than the native module's (measured: 12 B 0.19 vs 0.47 µs, 256 B the same). */
const NATIVE_FROM_BYTES = 512;

/**
 * The native CRC-32 if `load` gives it (node:zlib's still for inputs under NATIVE_FROM_BYTES), else
 * node:zlib's, with which one was chosen. `load` throws when the module (or its platform binary, an
 * optional dependency) is missing.
 */
export function chooseCrc32(load: () => unknown): { crc32: Crc32; native: boolean } {
  try {
    const mod = load() as { crc32?: unknown };
    if (typeof mod.crc32 === "function") {
      const native = mod.crc32 as (data: Uint8Array, initial?: number) => number;
      return { crc32: (data, initial = 0) => (data.length < NATIVE_FROM_BYTES ? zlibCrc32(data, initial) : native(data, initial)), native: true };
    }
  } catch {
    // No binary for this platform (or the package is missing): node:zlib does the same work.
  }
  return { crc32: zlibCrc, native: false };
}

const chosen = chooseCrc32(() => createRequire(import.meta.url)("@node-rs/crc32"));
/** The CRC-32 in use. */
export const crc32: Crc32 = chosen.crc32;
/** Whether it is the native one. */
export const nativeCrc32: boolean = chosen.native;

// crc32Combine: the CRC of A followed by B from the CRCs of A and of B and B's length, without
// reading either (zlib's crc32_combine, which Node does not expose: multiplying crc(A) by x^(8·|B|)
// modulo the CRC polynomial, with x^(2^k) precomputed). Lets the re-signer take one CRC pass over a
// payload for both the client's message CRC and the new one.
const POLY = 0xedb88320;

/** a·b modulo the polynomial (bit-reflected, as the CRC is). */
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if ((a & m) !== 0) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = (b & 1) !== 0 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** x^(2^k) modulo the polynomial, k = 0…31. */
const X2N: number[] = (() => {
  const table: number[] = [];
  let p = 0x40000000; // x^1
  table.push(p);
  for (let k = 1; k < 32; k++) table.push((p = multModP(p, p)));
  return table;
})();

/** x^(n·2^k) modulo the polynomial. */
function x2nModP(n: number, k: number): number {
  let p = 0x80000000; // x^0
  while (n !== 0) {
    if ((n & 1) !== 0) p = multModP(X2N[k & 31] as number, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/** CRC-32 of A·B from crc(A), crc(B) and B's length in bytes. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  return (multModP(x2nModP(lengthB, 3), crcA) ^ crcB) >>> 0;
}
