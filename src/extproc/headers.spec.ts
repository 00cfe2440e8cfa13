import { describe, expect, it } from "vitest";
import type { HeaderMap__Output } from "../../protos/generated/envoy/config/core/v3/HeaderMap.js";
import { decodeRequestHead, isDenial } from "./headers.js";

type Entry = readonly [key: string, raw: string | Buffer, value?: string];

/** Envoy's HeaderMap: raw_value bytes (and `value` only where a case sets it). */
function map(entries: readonly Entry[]): HeaderMap__Output {
  return { headers: entries.map(([key, raw, value]) => ({ key, raw_value: typeof raw === "string" ? Buffer.from(raw, "utf8") : raw, value: value ?? "" })) };
}

const PSEUDO: Entry[] = [
  [":method", "GET"],
  [":path", "/key"],
  [":authority", "bucket.s3.eu-west-1.amazonaws.com"],
  [":scheme", "https"],
];

const LIMITS = { maxHeaderBytes: 4096 };

describe("decodeRequestHead: a head Envoy sends", () => {
  it("reads the pseudo-headers and joins repeated headers with commas in arrival order", () => {
    const head = decodeRequestHead(map([...PSEUDO, ["x-amz-meta-a", "1"], ["accept", "a/b"], ["x-amz-meta-a", "2"], [":protocol", "websocket"]]), LIMITS);
    expect(head).toEqual({
      method: "GET",
      path: "/key",
      authority: "bucket.s3.eu-west-1.amazonaws.com",
      scheme: "https",
      headers: new Map([
        ["x-amz-meta-a", "1,2"],
        ["accept", "a/b"],
      ]),
    });
  });

  it("takes `value` when raw_value is empty (Envoy before 1.27), and UTF-8 raw_value bytes as text", () => {
    const head = decodeRequestHead(map([...PSEUDO, ["x-old", Buffer.alloc(0), "from-value"], ["x-amz-meta-name", "café"]]), LIMITS);
    expect(isDenial(head) ? head : [...head.headers]).toEqual([
      ["x-old", "from-value"],
      ["x-amz-meta-name", "café"],
    ]);
  });

  it("accepts a Host that names the :authority in another case, and a raw_value equal to its value", () => {
    const head = decodeRequestHead(map([...PSEUDO, ["host", "Bucket.S3.eu-west-1.amazonaws.com"], ["x-same", "v", "v"]]), LIMITS);
    expect(isDenial(head)).toBe(false);
  });
});

describe("decodeRequestHead: refuses with 400 InvalidRequest malformed_request", () => {
  const without = (name: string): Entry[] => PSEUDO.filter(([k]) => k !== name);
  const cases: Array<{ name: string; entries: Entry[]; message: string; limits?: { maxHeaderBytes: number } }> = [
    { name: "a value with CR/LF", entries: [...PSEUDO, ["x-evil", "a\r\nx-injected: 1"]], message: 'header "x-evil" contains CR, LF or NUL' },
    { name: "a value with NUL", entries: [...PSEUDO, ["x-evil", "a\0b"]], message: 'header "x-evil" contains CR, LF or NUL' },
    { name: "bytes that are not UTF-8", entries: [...PSEUDO, ["x-bin", Buffer.from([0x61, 0xff, 0x62])]], message: 'header "x-bin" has bytes that are not UTF-8' },
    { name: "value and raw_value that disagree", entries: [...PSEUDO, ["x-two", "raw", "value"]], message: 'header "x-two" has a value and a raw_value that disagree' },
    { name: "a head over the size limit", entries: [...PSEUDO, ["x-big", "a".repeat(200)]], limits: { maxHeaderBytes: 100 }, message: "request headers exceed 100 bytes" },
    { name: "a pseudo-header twice in another case", entries: [...PSEUDO, [":Authority", "other.example"]], message: 'pseudo-header ":authority" appears twice' },
    { name: "a pseudo-header not in lower case", entries: [...without(":authority"), [":Authority", "bucket.s3.eu-west-1.amazonaws.com"]], message: 'pseudo-header ":Authority" is not lower-case' },
    { name: "a header name that is not a lower-case token", entries: [...PSEUDO, ["X-Upper", "1"]], message: 'header name "X-Upper" is not a lower-case HTTP token' },
    { name: "no :method", entries: without(":method"), message: "request has no valid :method" },
    { name: "CONNECT", entries: [...without(":method"), [":method", "CONNECT"]], message: "CONNECT must be terminated by Envoy before ext_proc; check envoy.yaml" },
    { name: "no :path", entries: without(":path"), message: "request has no :path" },
    { name: "no :authority, even with a Host header", entries: [...without(":authority"), ["host", "bucket.s3.eu-west-1.amazonaws.com"]], message: "request has no :authority" },
    { name: "a Host naming another authority", entries: [...PSEUDO, ["host", "other.example"]], message: 'Host "other.example" differs from :authority "bucket.s3.eu-west-1.amazonaws.com"' },
    { name: "no :scheme", entries: without(":scheme"), message: "request has no :scheme" },
    { name: "a :scheme other than http(s)", entries: [...without(":scheme"), [":scheme", "ftp"]], message: ':scheme "ftp" is neither https nor http' },
    { name: "a content-length that is not a number", entries: [...PSEUDO, ["content-length", "1e3"]], message: 'content-length "1e3" is not a number' },
    { name: "content-length and transfer-encoding", entries: [...PSEUDO, ["content-length", "3"], ["transfer-encoding", "chunked"]], message: "request has both content-length and transfer-encoding; send only one" },
  ];

  it.each(cases)("$name", ({ entries, message, limits }) => {
    expect(decodeRequestHead(map(entries), limits ?? LIMITS)).toEqual({ status: 400, code: "InvalidRequest", reason: "malformed_request", message });
  });

  it("refuses a missing header map as a head without :method", () => {
    expect(decodeRequestHead(undefined, LIMITS)).toMatchObject({ status: 400, message: "request has no valid :method" });
  });
});

describe("isDenial", () => {
  it("tells a Denial from a RequestHead", () => {
    expect(isDenial({ status: 403, code: "AccessDenied", reason: "no_endpoint", message: "m" })).toBe(true);
    expect(isDenial({ method: "GET", path: "/", authority: "a", scheme: "https", headers: new Map() })).toBe(false);
    expect(isDenial(null)).toBe(false);
  });
});
