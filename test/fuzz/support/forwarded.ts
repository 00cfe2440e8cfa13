/**
 * What a STREAMED body's answers forwarded, up to the first refusal, checked on the way: every
 * answer before it replaces the bytes, never more in total than received so far; the refusal is a
 * 400 with the given details; and every answer after it is refused too (nothing more goes out).
 */
import { expect } from "vitest";
import { bodyReplacement, refusalDetails, refusalStatus, responseKinds, type TranscriptEntry } from "./oracle.js";

export function forwardedUntilRefusal(bodyAnswers: readonly TranscriptEntry[], pieces: readonly Buffer[], refusalDetail: string): { forwarded: Buffer; refusedAt: number } {
  let refusedAt = -1;
  let received = 0;
  const out: Buffer[] = [];
  for (const [i, e] of bodyAnswers.entries()) {
    received += pieces[i]?.length ?? 0;
    if (refusedAt >= 0) {
      expect(responseKinds(e.response)[0], `body answer ${i} follows the refusal`).toBe("immediate_response");
      continue;
    }
    if (responseKinds(e.response)[0] === "immediate_response") {
      refusedAt = i;
      expect(refusalStatus(e.response)).toBe(400);
      expect(refusalDetails(e.response)).toBe(refusalDetail);
      continue;
    }
    const bytes = bodyReplacement(e.response);
    expect(bytes, `body answer ${i} must replace the bytes`).toBeDefined();
    out.push(bytes as Buffer);
    expect(Buffer.concat(out).length).toBeLessThanOrEqual(received);
  }
  return { forwarded: Buffer.concat(out), refusedAt };
}
