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

/**
 * The native CRC-32 if `load` gives it, else node:zlib's, with which one was chosen. `load` throws
 * when the module (or its platform binary, an optional dependency) is missing.
 */
export function chooseCrc32(load: () => unknown): { crc32: Crc32; native: boolean } {
  try {
    const mod = load() as { crc32?: unknown };
    if (typeof mod.crc32 === "function") {
      const native = mod.crc32 as (data: Uint8Array, initial?: number) => number;
      return { crc32: (data, initial = 0) => native(data, initial), native: true };
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
