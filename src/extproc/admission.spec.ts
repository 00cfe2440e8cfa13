import { describe, expect, it } from "vitest";
import { Admission } from "./admission.js";

describe("Admission", () => {
  it("admits streams up to the limit and one more after a close", () => {
    const a = new Admission({ maxConcurrentStreams: 2, maxHeldBytes: 10 });
    expect([a.tryOpenStream(), a.tryOpenStream(), a.tryOpenStream()]).toEqual([true, true, false]);
    a.closeStream();
    expect(a.tryOpenStream()).toBe(true);
    expect(a.activeStreams).toBe(2);
  });

  it("grows reservations up to the byte limit exactly, refuses past it without changing anything, and always allows shrinking", () => {
    const a = new Admission({ maxConcurrentStreams: 10, maxHeldBytes: 100 });
    expect(a.resize(0, 60)).toBe(true);
    expect(a.resize(0, 40)).toBe(true);
    expect(a.heldBytes).toBe(100);
    expect(a.resize(40, 41)).toBe(false);
    expect(a.heldBytes).toBe(100);
    expect(a.resize(60, 10)).toBe(true);
    expect(a.resize(40, 90)).toBe(true);
    expect(a.heldBytes).toBe(100);
    expect(a.resize(90, 0)).toBe(true);
    expect(a.resize(10, 0)).toBe(true);
    expect(a.heldBytes).toBe(0);
  });
});
