import { describe, expect, it } from "vitest";
import { EMPTY_SHA256 } from "./constants.js";
import { selectPayloadMode } from "./payloadMode.js";

const HASH = "9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e";

describe("selectPayloadMode with credential_signing sigv4 (auto-detect)", () => {
  it("signs a client hex hash as sent, lower-cased, without the body", () => {
    expect(selectPayloadMode({ signing: "sigv4", contentSha256: HASH.toUpperCase(), endOfStream: false })).toEqual({
      kind: "header",
      name: "client-hash",
      payloadHash: HASH,
    });
  });
  it("signs UNSIGNED-PAYLOAD headers only", () => {
    expect(selectPayloadMode({ signing: "sigv4", contentSha256: "UNSIGNED-PAYLOAD", endOfStream: false })).toEqual({
      kind: "header",
      name: "unsigned-payload",
      payloadHash: "UNSIGNED-PAYLOAD",
    });
  });
  it("signs STREAMING-UNSIGNED-PAYLOAD-TRAILER with the literal and leaves the body alone", () => {
    expect(selectPayloadMode({ signing: "sigv4", contentSha256: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", endOfStream: false })).toEqual({
      kind: "header",
      name: "streaming-unsigned-trailer",
      payloadHash: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    });
  });
  it.each([
    ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD", false, "streaming-signed"],
    ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", true, "streaming-signed-trailer"],
  ])("re-signs chunks for %s", (value, trailer, name) => {
    expect(selectPayloadMode({ signing: "sigv4", contentSha256: value, endOfStream: false })).toEqual({
      kind: "chunked",
      name,
      payloadHash: value,
      trailer,
    });
  });
  it.each(["STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"])(
    "refuses SigV4A streaming %s as sigv4a_streaming",
    (value) => {
      const m = selectPayloadMode({ signing: "sigv4", contentSha256: value, endOfStream: false });
      expect(m).toMatchObject({ kind: "refuse", reason: "sigv4a_streaming" });
    },
  );
  it("signs the empty-payload hash when there is no header and no body", () => {
    expect(selectPayloadMode({ signing: "sigv4", contentSha256: undefined, endOfStream: true })).toEqual({
      kind: "header",
      name: "empty-body",
      payloadHash: EMPTY_SHA256,
    });
  });
  it("buffers and hashes the body when there is no header but a body follows", () => {
    expect(selectPayloadMode({ signing: "sigv4", contentSha256: undefined, endOfStream: false })).toEqual({ kind: "buffer", name: "buffered-body" });
  });
  it("re-signs signed event streams message by message", () => {
    expect(selectPayloadMode({ signing: "sigv4", contentSha256: "STREAMING-AWS4-HMAC-SHA256-EVENTS", endOfStream: false })).toEqual({
      kind: "eventstream",
      name: "streaming-events",
      payloadHash: "STREAMING-AWS4-HMAC-SHA256-EVENTS",
    });
  });
  it("refuses a signed event stream under sigv4:no_body, whose UNSIGNED-PAYLOAD would forward placeholder-signed messages", () => {
    expect(selectPayloadMode({ signing: "sigv4:no_body", contentSha256: "STREAMING-AWS4-HMAC-SHA256-EVENTS", endOfStream: false })).toMatchObject({
      kind: "refuse",
      reason: "event_stream_unsigned",
    });
  });
  it.each(["abc", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85", "UNSIGNED-PAYLOADX", "streaming-aws4-hmac-sha256-payload"])(
    "refuses a malformed value %s as invalid_content_sha256",
    (value) => {
      expect(selectPayloadMode({ signing: "sigv4", contentSha256: value, endOfStream: false })).toMatchObject({ kind: "refuse", reason: "invalid_content_sha256" });
    },
  );
});

describe("selectPayloadMode with sigv4:body", () => {
  it("always hashes the body, even when the client sent a hash", () => {
    expect(selectPayloadMode({ signing: "sigv4:body", contentSha256: HASH, endOfStream: false })).toEqual({ kind: "buffer", name: "buffered-body" });
    expect(selectPayloadMode({ signing: "sigv4:body", contentSha256: "UNSIGNED-PAYLOAD", endOfStream: false })).toEqual({ kind: "buffer", name: "buffered-body" });
  });
  it("uses the empty hash with no body", () => {
    expect(selectPayloadMode({ signing: "sigv4:body", contentSha256: HASH, endOfStream: true })).toMatchObject({ payloadHash: EMPTY_SHA256 });
  });
  it("refuses aws-chunked bodies it cannot hash as a whole", () => {
    expect(selectPayloadMode({ signing: "sigv4:body", contentSha256: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", endOfStream: false })).toMatchObject({ kind: "refuse", reason: "streaming_body_not_hashable" });
  });
});

describe("selectPayloadMode with sigv4:no_body", () => {
  it("signs UNSIGNED-PAYLOAD whatever the client sent", () => {
    expect(selectPayloadMode({ signing: "sigv4:no_body", contentSha256: HASH, endOfStream: false })).toMatchObject({ payloadHash: "UNSIGNED-PAYLOAD" });
    expect(selectPayloadMode({ signing: "sigv4:no_body", contentSha256: undefined, endOfStream: true })).toMatchObject({ payloadHash: "UNSIGNED-PAYLOAD" });
  });
  it("keeps STREAMING-UNSIGNED-PAYLOAD-TRAILER, whose framing S3 decodes", () => {
    expect(selectPayloadMode({ signing: "sigv4:no_body", contentSha256: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", endOfStream: false })).toMatchObject({
      payloadHash: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
    });
  });
  it("refuses a chunk-signed body and says why", () => {
    const m = selectPayloadMode({ signing: "sigv4:no_body", contentSha256: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", endOfStream: false });
    expect(m).toMatchObject({ kind: "refuse", reason: "chunk_signed_body_unsigned" });
    expect(m.kind === "refuse" && m.message).toContain("aws-chunked framing");
  });
});
