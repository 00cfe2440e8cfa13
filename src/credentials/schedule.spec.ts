import { describe, expect, it } from "vitest";
import { refreshDelayMs, retryCeilingMs, retryDelayMs } from "./schedule.js";

const HOUR = 3_600_000;

describe("refreshDelayMs", () => {
  it("schedules at expiry − refreshBefore when the jitter draw is 0", () => {
    expect(refreshDelayMs(HOUR, 0, 300_000, 0)).toBe(HOUR - 300_000);
  });

  it("starts up to 10% of refreshBefore earlier with the largest jitter draw", () => {
    expect(refreshDelayMs(HOUR, 0, 300_000, 1)).toBe(HOUR - 330_000);
    expect(refreshDelayMs(HOUR, 0, 300_000, 0.5)).toBe(HOUR - 315_000);
  });

  it("never schedules sooner than 1 s, even when the window has already begun", () => {
    expect(refreshDelayMs(HOUR, HOUR - 310_000, 300_000, 1)).toBe(1_000);
  });

  it("caps delays at the largest setTimeout delay", () => {
    expect(refreshDelayMs(100 * 24 * HOUR, 0, 300_000, 0)).toBe(2_147_483_647);
  });
});

describe("retryDelayMs", () => {
  it("ceilings double from 1 s and stop at 60 s", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8, 50].map(retryCeilingMs)).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000,
    ]);
  });

  it("draws uniformly below the ceiling (full jitter)", () => {
    expect(retryDelayMs(4, 0.25, undefined)).toBe(2_000);
    expect(retryDelayMs(10, 0.5, undefined)).toBe(30_000);
  });

  it("waits at least 100 ms when the draw is 0", () => {
    expect(retryDelayMs(1, 0, undefined)).toBe(100);
  });

  it("never retries later than the expiry of the credentials still held", () => {
    expect(retryDelayMs(7, 1, 12_000)).toBe(12_000);
    expect(retryDelayMs(7, 1, 120_000)).toBe(60_000);
  });

  it("ignores an expiry that has already passed", () => {
    expect(retryDelayMs(7, 1, -5_000)).toBe(60_000);
  });
});
