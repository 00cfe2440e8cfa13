import { expect } from "vitest";
import { REAL, type Stack } from "./harness.js";

/**
 * Asserts that the fake AWS received at least one request since `start` (an index into its
 * request log) and verified every one of them, signed with the real key and answered without an
 * error; returns their operations, in order.
 */
export function expectAllVerifiedSince(stack: Stack, start: number): string[] {
  const seen = stack.fake.requests.slice(start);
  expect(seen.length).toBeGreaterThan(0);
  for (const r of seen) {
    expect({ op: r.operation, verified: r.verified, key: r.accessKeyId, error: r.errorCode, msg: r.errorMessage }).toEqual({
      op: r.operation,
      verified: true,
      key: REAL.accessKeyId,
      error: undefined,
      msg: undefined,
    });
  }
  return seen.map((r) => r.operation ?? "");
}
