import fc from "fast-check";
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { HmacSha256 } from "./hmacSha256.js";

const reference = (key: Uint8Array, message: string): string => createHmac("sha256", key).update(message, "utf8").digest("hex");

describe("HmacSha256", () => {
  it("is node:crypto's HMAC-SHA256 for keys shorter than, as long as and longer than the block, and messages of any length and script", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.string({ unit: "grapheme", maxLength: 400 }), { minLength: 1, maxLength: 4 }), (key, messages) => {
        const hmac = new HmacSha256(key);
        // One instance, several messages: each is independent of the one before.
        for (const m of messages) expect(hmac.hex(m)).toBe(reference(key, m));
      }),
      { numRuns: 300 },
    );
  });

  it("at the block edges: keys of 63, 64 and 65 bytes; messages that grow its buffer", () => {
    for (const keyLength of [0, 32, 63, 64, 65, 128]) {
      const key = Buffer.alloc(keyLength, 0xa5);
      const hmac = new HmacSha256(key);
      for (const message of ["", "x", "a".repeat(55), "a".repeat(56), "é".repeat(300), "AWS4-HMAC-SHA256-PAYLOAD\n".repeat(200), "short again"]) {
        expect(hmac.hex(message)).toBe(reference(key, message));
      }
    }
  });

  it("matches RFC 4231 test case 2 (a short key) and test case 6 (a key longer than the block)", () => {
    expect(new HmacSha256(Buffer.from("Jefe")).hex("what do ya want for nothing?")).toBe("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    expect(new HmacSha256(Buffer.alloc(131, 0xaa)).hex("Test Using Larger Than Block-Size Key - Hash Key First")).toBe("60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  });
});
