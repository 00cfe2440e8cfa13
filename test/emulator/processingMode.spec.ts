import { describe, expect, it } from "vitest";
import {
  effectiveModeOverride,
  overrideIsAllowed,
  type ProcessingMode,
  shouldRemoveContentLength,
  toProcessingMode,
} from "./processingMode.js";

const CONFIGURED: ProcessingMode = toProcessingMode({
  request_header_mode: "SEND",
  response_header_mode: "SKIP",
  request_body_mode: "BUFFERED",
  request_trailer_mode: "SKIP",
  response_trailer_mode: "SKIP",
});

describe("effectiveModeOverride", () => {
  it("sets request_body_mode to NONE when the override omits it", () => {
    const got = effectiveModeOverride(toProcessingMode({ request_trailer_mode: "SKIP" }), CONFIGURED);
    expect(got.request_body_mode).toBe("NONE");
  });

  it("keeps the current header and trailer modes for DEFAULT and takes explicit ones", () => {
    const got = effectiveModeOverride(toProcessingMode({ response_header_mode: "SEND", request_body_mode: 1 }), CONFIGURED);
    expect(got).toEqual({ ...CONFIGURED, response_header_mode: "SEND", request_body_mode: "STREAMED" });
  });
});

describe("overrideIsAllowed", () => {
  it("accepts anything without an allow-list and compares every field but request_header_mode with one", () => {
    const candidate = { ...CONFIGURED, request_header_mode: "SKIP" as const };
    expect(overrideIsAllowed(candidate, [])).toBe(true);
    expect(overrideIsAllowed(candidate, [CONFIGURED])).toBe(true);
    expect(overrideIsAllowed({ ...CONFIGURED, request_body_mode: "STREAMED" }, [CONFIGURED])).toBe(false);
  });
});

describe("shouldRemoveContentLength", () => {
  it.each([
    ["NONE", "SEND", false],
    ["STREAMED", "SEND", true],
    ["BUFFERED_PARTIAL", "SEND", true],
    ["FULL_DUPLEX_STREAMED", "SEND", true],
    ["BUFFERED", "SEND", false],
    ["BUFFERED", "SKIP", true],
  ] as const)("body %s with request headers %s → %s", (body, headers, expected) => {
    const mode = { ...CONFIGURED, request_body_mode: body, request_header_mode: headers };
    expect(shouldRemoveContentLength(mode)).toBe(expected);
  });
});
