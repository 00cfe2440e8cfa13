import { describe, expect, it } from "vitest";
import { Admission, unlimitedAdmission } from "./admission.js";

describe("Admission", () => {
  it("admits streams up to the limit and one more after a release", () => {
    const a = new Admission({ maxConcurrentStreams: 2, maxHeldBytes: 10 });
    const [first, second, third] = [a.reserve(), a.reserve(), a.reserve()];
    expect([first.admitted, second.admitted, third.admitted]).toEqual([true, true, false]);
    first.release();
    expect(a.reserve().admitted).toBe(true);
    expect(a.activeStreams).toBe(2);
  });

  it("grows reservations up to the byte limit exactly, refuses past it without changing anything, and always allows shrinking", () => {
    const a = new Admission({ maxConcurrentStreams: 10, maxHeldBytes: 100 });
    const x = a.reserve();
    const y = a.reserve();
    expect(x.hold(60)).toBe(true);
    expect(y.hold(40)).toBe(true);
    expect(a.heldBytes).toBe(100);
    expect(y.hold(41)).toBe(false);
    expect(a.heldBytes).toBe(100);
    expect(x.hold(10)).toBe(true);
    expect(y.hold(90)).toBe(true);
    expect(a.heldBytes).toBe(100);
    expect(y.hold(0)).toBe(true);
    expect(x.hold(0)).toBe(true);
    expect(a.heldBytes).toBe(0);
  });
});

describe("Reservation", () => {
  it("takes a slot when one is free, holds bytes against the budget, and gives both back on its first release only", () => {
    const a = new Admission({ maxConcurrentStreams: 1, maxHeldBytes: 100 });
    const r = a.reserve();
    expect(r.admitted).toBe(true);
    expect(a.reserve().admitted).toBe(false);
    expect([r.hold(60), r.hold(101), a.heldBytes]).toEqual([true, false, 60]);
    r.release();
    r.release();
    expect([a.activeStreams, a.heldBytes]).toEqual([0, 0]);
    expect(r.hold(10)).toBe(true); // after release a hold changes nothing
    expect(a.heldBytes).toBe(0);
  });

  it("a reservation refused a slot gives back no one else's when released", () => {
    const a = new Admission({ maxConcurrentStreams: 1, maxHeldBytes: 100 });
    a.reserve();
    a.reserve().release();
    expect(a.activeStreams).toBe(1);
  });

  it("unlimitedAdmission admits every stream and every byte", () => {
    const a = unlimitedAdmission();
    const r = a.reserve();
    expect([r.admitted, r.hold(Number.MAX_SAFE_INTEGER)]).toEqual([true, true]);
  });
});
