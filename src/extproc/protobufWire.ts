/**
 * The two protobuf wire-format primitives the hand-written encoders need: the size of a varint and
 * writing one (base 128, low group first, the high bit set on every byte but the last). For
 * non-negative integers up to 2^53, as lengths are. Used by the STREAMED answer's encoder
 * (mutations.ts) and by the benchmark's load generator (bench/protocol.ts).
 */

/** Bytes the varint of `n` takes. */
export function varintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 0x80);
    bytes++;
  }
  return bytes;
}

/** Writes the varint of `n` into `into` at `at`; where the next byte goes. */
export function writeVarint(into: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    into[at++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  into[at++] = n;
  return at;
}
