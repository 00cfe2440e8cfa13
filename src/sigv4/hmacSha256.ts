/**
 * HMAC-SHA256 under one key for many short messages: the chain signatures of a re-signed body
 * (one per aws-chunked chunk or event-stream message), each under the same signing key.
 *
 * It is RFC 2104's construction, SHA-256(K ⊕ opad ‖ SHA-256(K ⊕ ipad ‖ message)), with both
 * SHA-256s done by node:crypto's one-shot `hash()`. The key blocks are built once, so each
 * signature costs two one-shot hashes. On Node 20 that is about two thirds of the cost of
 * `createHmac`, which sets up a new HMAC context, and looks its digest up, on every call (3.05
 * against 4.75 µs in the 2026-12-07 14:21 full run; bench/micro.ts's "hmac-*" rows). hmacSha256.spec.ts checks the result against `createHmac` for keys and
 * messages of every length class. A key longer than the 64-byte block is first hashed, as RFC 2104
 * says; SigV4 signing keys are 32 bytes.
 */
import { hash } from "node:crypto";

const BLOCK_BYTES = 64;
const DIGEST_BYTES = 32;
const IPAD = 0x36;
const OPAD = 0x5c;

export class HmacSha256 {
  /** K ⊕ ipad, followed by room for the message (grown when a message does not fit). */
  private inner: Buffer;
  /** K ⊕ opad, followed by the inner digest. */
  private readonly outer = Buffer.alloc(BLOCK_BYTES + DIGEST_BYTES);

  constructor(key: Uint8Array) {
    const k = key.length > BLOCK_BYTES ? hash("sha256", key, "buffer") : key;
    this.inner = Buffer.alloc(BLOCK_BYTES + 512);
    for (let i = 0; i < BLOCK_BYTES; i++) {
      const b = i < k.length ? (k[i] as number) : 0;
      this.inner[i] = b ^ IPAD;
      this.outer[i] = b ^ OPAD;
    }
  }

  /** The HMAC of `message` (UTF-8), as 64 lower-case hex digits. */
  hex(message: string): string {
    // At most 3 UTF-8 bytes for each UTF-16 unit.
    if (BLOCK_BYTES + message.length * 3 > this.inner.length) {
      const grown = Buffer.alloc(BLOCK_BYTES + message.length * 3);
      this.inner.copy(grown, 0, 0, BLOCK_BYTES);
      this.inner = grown;
    }
    const n = this.inner.write(message, BLOCK_BYTES, "utf8");
    // Hex output: node:crypto makes a string faster than a Buffer; the digest goes back in as bytes.
    this.outer.write(hash("sha256", this.inner.subarray(0, BLOCK_BYTES + n), "hex"), BLOCK_BYTES, "hex");
    return hash("sha256", this.outer, "hex");
  }
}
