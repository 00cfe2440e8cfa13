import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { chooseCrc32, crc32, crc32Combine, nativeCrc32, zlibCrc } from "./crc32.js";

describe("crc32", () => {
  const data = randomBytes(70_001);

  it("uses the native module here (its linux binary is installed by npm ci)", () => {
    expect(nativeCrc32).toBe(true);
  });

  it("gives node:zlib's values, whole and continued piece by piece", () => {
    expect(crc32(Buffer.from("hello world"))).toBe(0x0d4a1185);
    expect(crc32(new Uint8Array(0))).toBe(0);
    const whole = zlibCrc(data);
    expect(crc32(data)).toBe(whole);
    let acc = 0;
    let zacc = 0;
    let at = 0;
    for (const size of [1, 3, 12, 4093, 65_536, 356]) {
      acc = crc32(data.subarray(at, at + size), acc);
      zacc = zlibCrc(data.subarray(at, at + size), zacc);
      at += size;
    }
    expect(at).toBe(data.length);
    expect(acc).toBe(whole);
    expect(zacc).toBe(whole);
  });

  it("falls back to node:zlib when the native module cannot load", () => {
    const fallback = chooseCrc32(() => {
      throw new Error("Cannot find module '@node-rs/crc32-linux-x64-gnu'");
    });
    expect(fallback.native).toBe(false);
    expect(fallback.crc32).toBe(zlibCrc);
    expect(fallback.crc32(data.subarray(10), fallback.crc32(data.subarray(0, 10)))).toBe(crc32(data));
    expect(chooseCrc32(() => ({})).native).toBe(false);
  });

  it("takes the native module when it loads", () => {
    const calls: number[] = [];
    const chosen = chooseCrc32(() => ({ crc32: (_d: Uint8Array, initial?: number) => (calls.push(initial ?? -1), 42) }));
    expect(chosen.native).toBe(true);
    expect(chosen.crc32(data)).toBe(42);
    expect(calls).toEqual([0]);
  });

  it("combines two CRCs into the CRC of the bytes joined, as node:zlib computes it", () => {
    for (const cut of [0, 1, 12, 107, 4096, 65_536, 70_000, 70_001]) {
      const a = data.subarray(0, cut);
      const b = data.subarray(cut);
      expect(crc32Combine(zlibCrc(a), zlibCrc(b), b.length)).toBe(zlibCrc(data));
    }
    // A length past the event-stream cap agrees with the CRC of real zeros.
    const zeros = Buffer.alloc(16 * 1024 * 1024 + 3);
    expect(crc32Combine(0x12345678, zlibCrc(zeros), zeros.length)).toBe(zlibCrc(zeros, 0x12345678));
    expect(crc32Combine(zlibCrc(data), 0, 0)).toBe(zlibCrc(data));
  });
});
