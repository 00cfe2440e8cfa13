/**
 * fast-check arbitraries for ext_proc traffic: request heads that are mostly plausible (so the
 * signing paths run) with every kind of defect mixed in, aws-chunked bodies, and chaotic message
 * sequences (body before headers, repeated headers, trailers, response-direction messages,
 * messages with no oneof set).
 */
import fc from "fast-check";
import { OTHER_KEY_ID, PLACEHOLDER_KEY_ID, placeholderAuthorization } from "../../security/support/fixtures.js";
import {
  awsChunkedBody,
  emptyMessage,
  header,
  requestBodyMessage,
  requestHeadersMessage,
  requestTrailersMessage,
  responseBodyMessage,
  responseHeadersMessage,
  responseTrailersMessage,
  splitAt,
  type HeaderSpec,
} from "./messages.js";
import type { ProcessingRequest__Output } from "../../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";

/** Case count: FUZZ_RUNS (make fuzz sets 100000), default 300 so `make test` stays fast. */
export function fuzzRuns(scale = 1, minimum = 1): number {
  const raw = Number(process.env.FUZZ_RUNS ?? "300");
  const runs = Number.isFinite(raw) && raw > 0 ? raw : 300;
  return Math.max(minimum, Math.round(runs * scale));
}

/**
 * Per-property time limit: the slowest properties take about 30 s for `make fuzz`'s 100,000 cases
 * on a quiet 2-core machine, close enough to vitest's default 60 s that a busy machine could pass
 * it; allow 5 ms per case, at least 60 s.
 */
export const FUZZ_TIMEOUT_MS = Math.max(60_000, fuzzRuns() * 5);

/** One shared 97 KiB value (over countersign's 96 KiB header limit), allocated once. */
export const OVERSIZED_VALUE = Buffer.alloc(97 * 1024, 0x61);

const ALLOWED_AUTHORITIES = [
  "bucket.s3.eu-west-1.amazonaws.com",
  "BUCKET.S3.EU-WEST-1.AMAZONAWS.COM",
  "bucket.s3.eu-west-1.amazonaws.com.",
  "bucket.s3.eu-west-1.amazonaws.com:443",
  "photos.s3.us-west-2.amazonaws.com",
  "a-b-c.s3.us-west-2.amazonaws.com",
  "sts.amazonaws.com",
  "bedrock-runtime.us-east-1.amazonaws.com",
  "dynamodb.eu-central-1.amazonaws.com:8443",
];

const REFUSED_AUTHORITIES = [
  "evil.example",
  "s3.amazonaws.com",
  "bucket.s3.eu-west-1.amazonaws.com.evil.example",
  "evil.example.bucket.s3.eu-west-1.amazonaws.com",
  "a.b.s3.us-west-2.amazonaws.com",
  "bucket.s3.eu-west-1.amazonaws.com:444",
  "bucket.s3.eu-west-1.amazonaws.com:0",
  "bucket.s3.eu-west-1.amazonaws.com:99999",
  "bucket.s3.eu-west-1.amazonaws.com:",
  "user@bucket.s3.eu-west-1.amazonaws.com",
  "bucket.s3.eu-west-1.amazonaws.com@evil.example",
  "bucket.s3.eu-west-1.amazonaws.com evil.example",
  "dynamodb.eu-central-1.amazonaws.com",
  "sts.amazonaws.com..",
  ".sts.amazonaws.com",
  "[::1]",
  "[::1]:443",
  "127.0.0.1",
  "sts.amazonaws.com,evil.example",
  "buc\u212Aet.s3.eu-west-1.amazonaws.com",
  "\u212A.s3.us-west-2.amazonaws.com",
  "stſ.amazonaws.com",
  "sts.amazonaws.com\u0000",
  "",
];

export const authorityArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...ALLOWED_AUTHORITIES) },
  { weight: 4, arbitrary: fc.constantFrom(...REFUSED_AUTHORITIES) },
  { weight: 1, arbitrary: fc.string({ maxLength: 40 }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.stringMatching(/^[a-z0-9-]{1,12}$/), fc.constantFrom("s3.us-west-2.amazonaws.com", "s3.eu-west-1.amazonaws.com", "amazonaws.com"))
      .map(([a, b]) => `${a}.${b}`),
  },
);

const PAYLOAD_HASHES = [
  "UNSIGNED-PAYLOAD",
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
  "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
  "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
  "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
  "STREAMING-AWS4-HMAC-SHA256-EVENTS",
  "not-a-hash",
  " UNSIGNED-PAYLOAD ",
  "",
];

const authorizationArb: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    placeholderAuthorization(PLACEHOLDER_KEY_ID, "eu-west-1", "s3"),
    placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-west-2", "s3"),
    placeholderAuthorization(OTHER_KEY_ID, "eu-west-1", "s3"),
    placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-east-1", "bedrock"),
    placeholderAuthorization(OTHER_KEY_ID, "us-east-1", "sts", "content-type;host;x-amz-date"),
    placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-east-1", "bedrock", "host;x-custom;x-amz-date"),
    "AWS4-HMAC-SHA256 Credential=broken",
    "AWS4-ECDSA-P256-SHA256 Credential=AKIDPLACEHOLDER00001/20240101/s3/aws4_request, SignedHeaders=host, Signature=00",
    "Bearer token",
    `AWS4-HMAC-SHA256 Credential=${PLACEHOLDER_KEY_ID}/20240101/eu-west-1/s3/aws4_request, Credential=${OTHER_KEY_ID}/x, SignedHeaders=host, Signature=0`,
  ),
  fc.string({ maxLength: 60 }),
);

const PATHS = ["/", "/key", "/a%20b/c?x=1&y=2", "/?list-type=2&prefix=a%2Fb", "/k?X-Amz-Credential=AKIDPLACEHOLDER00001%2F20240101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=00&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20240101T000000Z&X-Amz-SignedHeaders=host", "//double//slash/../x", "/%", "/%zz", "/ünï", "*", "", "/a?b=%", "/?=&&="];

const extraHeaderArb: fc.Arbitrary<readonly [string, string]> = fc.oneof(
  fc.constantFrom(
    ["content-type", "application/octet-stream"] as const,
    ["content-length", "5"] as const,
    ["content-length", "99999999"] as const,
    ["content-length", "-1"] as const,
    ["content-length", "5, 6"] as const,
    ["transfer-encoding", "chunked"] as const,
    ["x-amz-decoded-content-length", "5"] as const,
    ["x-amz-decoded-content-length", "x"] as const,
    ["x-amz-security-token", "placeholder-token"] as const,
    ["x-amz-date", "20240101T000000Z"] as const,
    ["x-amz-meta-owner", "team  a"] as const,
    ["x-amz-trailer", "x-amz-checksum-crc32"] as const,
    ["user-agent", "aws-sdk-js/3"] as const,
    ["x-forwarded-for", "10.0.0.1"] as const,
    ["x-envoy-original-path", "/elsewhere"] as const,
    ["x-custom", "signed by client"] as const,
    ["expect", "100-continue"] as const,
    ["host", "evil.example"] as const,
    ["x-request-id", "req-1"] as const,
  ),
  fc.tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), fc.string({ maxLength: 30 })),
);

/** A plausible request head as a list of [name, value]. */
export interface HeadSpec {
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly scheme: string;
  readonly contentSha256: string | undefined;
  readonly authorization: string | undefined;
  readonly extra: ReadonlyArray<readonly [string, string]>;
}

export const headSpecArb: fc.Arbitrary<HeadSpec> = fc.record({
  method: fc.constantFrom("GET", "PUT", "POST", "HEAD", "DELETE", "CONNECT", "get", "PO ST"),
  authority: authorityArb,
  path: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...PATHS) }, { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((s) => `/${s}`) }),
  scheme: fc.constantFrom("https", "https", "https", "http", "ftp"),
  contentSha256: fc.option(fc.constantFrom(...PAYLOAD_HASHES), { nil: undefined }),
  authorization: authorizationArb,
  extra: fc.array(extraHeaderArb, { maxLength: 5 }),
});

export function headHeaders(spec: HeadSpec): HeaderSpec[] {
  const list: HeaderSpec[] = [header(":method", spec.method), header(":path", spec.path), header(":authority", spec.authority), header(":scheme", spec.scheme)];
  if (spec.contentSha256 !== undefined) list.push(header("x-amz-content-sha256", spec.contentSha256));
  if (spec.authorization !== undefined) list.push(header("authorization", spec.authorization));
  for (const [k, v] of spec.extra) list.push(header(k, v));
  return list;
}

/** Ways a header list can be broken, each of which countersign must refuse with 400. */
export type HeadDefect =
  | "cr-in-value"
  | "lf-in-value"
  | "nul-in-value"
  | "invalid-utf8"
  | "oversized-value"
  | "too-many-bytes-in-many-headers"
  | "missing-method"
  | "missing-path"
  | "missing-authority-and-host"
  | "host-without-authority"
  | "host-differs-from-authority"
  | "missing-scheme"
  | "authority-twice-same-value"
  | "authority-twice-other-case"
  | "upper-case-pseudo-header"
  | "unknown-pseudo-header-twice"
  | "value-and-raw-value-disagree"
  | "duplicate-method"
  | "duplicate-path"
  | "duplicate-authority"
  | "duplicate-scheme"
  | "upper-case-name"
  | "empty-name"
  | "space-in-name"
  | "connect-method"
  | "bad-scheme";

export const HEAD_DEFECTS: readonly HeadDefect[] = [
  "cr-in-value",
  "lf-in-value",
  "nul-in-value",
  "invalid-utf8",
  "oversized-value",
  "too-many-bytes-in-many-headers",
  "missing-method",
  "missing-path",
  "missing-authority-and-host",
  "host-without-authority",
  "host-differs-from-authority",
  "missing-scheme",
  "authority-twice-same-value",
  "authority-twice-other-case",
  "upper-case-pseudo-header",
  "unknown-pseudo-header-twice",
  "value-and-raw-value-disagree",
  "duplicate-method",
  "duplicate-path",
  "duplicate-authority",
  "duplicate-scheme",
  "upper-case-name",
  "empty-name",
  "space-in-name",
  "connect-method",
  "bad-scheme",
];

/** A valid, allowed, signable head (GET with UNSIGNED-PAYLOAD, no body) with exactly one defect applied. */
export function defectiveHead(defect: HeadDefect, where: number, encoding: "raw" | "value"): HeaderSpec[] {
  const base: HeaderSpec[] = [
    header(":method", "GET"),
    header(":path", "/key"),
    header(":authority", "photos.s3.us-west-2.amazonaws.com"),
    header(":scheme", "https"),
    header("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
    header("x-amz-meta-a", "1"),
  ];
  const at = (n: number): number => n % (base.length + 1);
  const insert = (h: HeaderSpec): HeaderSpec[] => [...base.slice(0, at(where)), h, ...base.slice(at(where))];
  const without = (key: string): HeaderSpec[] => base.filter((h) => h.key !== key);
  const enc = (value: string | Buffer): Buffer => (typeof value === "string" ? Buffer.from(value, "latin1") : value);
  switch (defect) {
    case "cr-in-value":
      return insert({ key: "x-amz-meta-b", bytes: enc("a\rb"), encoding });
    case "lf-in-value":
      return insert({ key: "x-amz-meta-b", bytes: enc("a\nx-injected: 1"), encoding });
    case "nul-in-value":
      return insert({ key: "x-amz-meta-b", bytes: enc("a\0b"), encoding });
    case "invalid-utf8":
      return insert(header("x-amz-meta-b", Buffer.from([0x61, 0xc3, 0x28, 0xff])));
    case "oversized-value":
      return insert({ key: "x-amz-meta-big", bytes: OVERSIZED_VALUE, encoding });
    case "too-many-bytes-in-many-headers":
      return [...base, ...Array.from({ length: 25 }, (_, i) => header(`x-amz-meta-h${i}`, OVERSIZED_VALUE.subarray(0, 4096)))];
    case "missing-method":
      return without(":method");
    case "missing-path":
      return without(":path");
    case "missing-authority-and-host":
      return without(":authority");
    case "host-without-authority":
      return [...without(":authority"), header("host", "photos.s3.us-west-2.amazonaws.com")];
    case "host-differs-from-authority":
      return insert(header("host", "evil.example"));
    case "missing-scheme":
      return without(":scheme");
    case "authority-twice-same-value":
      return insert(header(":authority", "photos.s3.us-west-2.amazonaws.com"));
    case "authority-twice-other-case":
      return insert(header(":Authority", "photos.s3.us-west-2.amazonaws.com"));
    case "upper-case-pseudo-header":
      return base.map((h) => (h.key === ":authority" ? header(":AUTHORITY", "photos.s3.us-west-2.amazonaws.com") : h));
    case "unknown-pseudo-header-twice":
      return [...insert(header(":protocol", "websocket")), header(":protocol", "websocket")];
    case "value-and-raw-value-disagree":
      return insert({ key: "x-amz-meta-b", bytes: enc("shown"), encoding: "both", value: enc("hidden") });
    case "duplicate-method":
      return insert(header(":method", "PUT"));
    case "duplicate-path":
      return insert(header(":path", "/other"));
    case "duplicate-authority":
      return insert(header(":authority", "evil.example"));
    case "duplicate-scheme":
      return insert(header(":scheme", "http"));
    case "upper-case-name":
      return insert(header("X-Amz-Meta-Upper", "1"));
    case "empty-name":
      return insert(header("", "1"));
    case "space-in-name":
      return insert(header("x amz", "1"));
    case "connect-method":
      return base.map((h) => (h.key === ":method" ? header(":method", "CONNECT") : h));
    case "bad-scheme":
      return base.map((h) => (h.key === ":scheme" ? header(":scheme", "ftp") : h));
  }
}

/** A plausible body for the head: small random bytes, or aws-chunked framing; split at random points. */
export const bodyPiecesArb: fc.Arbitrary<Buffer[]> = fc.oneof(
  fc.array(fc.uint8Array({ maxLength: 64 }).map((u) => Buffer.from(u)), { minLength: 1, maxLength: 3 }),
  fc
    .tuple(
      fc.array(fc.uint8Array({ minLength: 1, maxLength: 48 }).map((u) => Buffer.from(u)), { maxLength: 3 }),
      fc.boolean(),
      fc.array(fc.nat(400), { maxLength: 4 }),
    )
    .map(([chunks, trailer, cuts]) => splitAt(awsChunkedBody(chunks, trailer ? [["x-amz-checksum-crc32", "AAAAAA=="]] : undefined), cuts)),
);

const smallHeadersArb: fc.Arbitrary<HeaderSpec[]> = fc.array(
  fc.tuple(fc.string({ maxLength: 12 }), fc.uint8Array({ maxLength: 16 }), fc.constantFrom("raw", "value", "both") as fc.Arbitrary<"raw" | "value" | "both">),
  { maxLength: 6 },
).map((hs) => hs.map(([k, v, e]) => ({ key: k, bytes: Buffer.from(v), encoding: e })));

/** Any single ext_proc message, well-formed or not. */
export const chaosMessageArb: fc.Arbitrary<{ msg: ProcessingRequest__Output; headers?: HeaderSpec[] }> = fc.oneof(
  { weight: 5, arbitrary: fc.tuple(headSpecArb, fc.boolean()).map(([h, eos]) => ({ msg: requestHeadersMessage(headHeaders(h), eos), headers: headHeaders(h) })) },
  { weight: 1, arbitrary: fc.tuple(smallHeadersArb, fc.boolean()).map(([hs, eos]) => ({ msg: requestHeadersMessage(hs, eos), headers: hs })) },
  { weight: 4, arbitrary: fc.tuple(fc.uint8Array({ maxLength: 96 }), fc.boolean()).map(([b, eos]) => ({ msg: requestBodyMessage(Buffer.from(b), eos) })) },
  { weight: 1, arbitrary: smallHeadersArb.map((hs) => ({ msg: requestTrailersMessage(hs) })) },
  { weight: 1, arbitrary: fc.tuple(smallHeadersArb, fc.boolean()).map(([hs, eos]) => ({ msg: responseHeadersMessage(hs, eos) })) },
  { weight: 1, arbitrary: fc.tuple(fc.uint8Array({ maxLength: 32 }), fc.boolean()).map(([b, eos]) => ({ msg: responseBodyMessage(Buffer.from(b), eos) })) },
  { weight: 1, arbitrary: smallHeadersArb.map((hs) => ({ msg: responseTrailersMessage(hs) })) },
  { weight: 1, arbitrary: fc.constant({ msg: emptyMessage() }) },
);

/**
 * One stream: either a plausible request (head, then its body pieces if it has one, maybe
 * trailers or response messages after) or a chaotic sequence of 1–8 arbitrary messages.
 */
export const streamArb: fc.Arbitrary<Array<{ msg: ProcessingRequest__Output; headers?: HeaderSpec[] }>> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc
      .tuple(headSpecArb, fc.option(bodyPiecesArb, { nil: undefined }), fc.array(chaosMessageArb, { maxLength: 2 }))
      .map(([head, body, tail]) => {
        const headers = headHeaders(head);
        const msgs: Array<{ msg: ProcessingRequest__Output; headers?: HeaderSpec[] }> = [{ msg: requestHeadersMessage(headers, body === undefined), headers }];
        (body ?? []).forEach((piece, i, all) => msgs.push({ msg: requestBodyMessage(piece, i === all.length - 1) }));
        return [...msgs, ...tail];
      }),
  },
  { weight: 2, arbitrary: fc.array(chaosMessageArb, { minLength: 1, maxLength: 8 }) },
);

/** One random damage to a body, or none (three times in five): a byte set, deleted or inserted. */
export type Corruption = { kind: "none" } | { kind: "flip" | "delete" | "insert"; at: number; byte: number };

export const corruptionArb: fc.Arbitrary<Corruption> = fc.oneof(
  { weight: 3, arbitrary: fc.constant({ kind: "none" as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom("flip" as const, "delete" as const, "insert" as const), at: fc.nat(), byte: fc.nat(255) }) },
);

/** `body` with `c` applied (`at` taken modulo its length); an empty body stays as it is. */
export function corrupt(body: Buffer, c: Corruption): Buffer {
  if (c.kind === "none" || body.length === 0) return body;
  const at = c.at % body.length;
  if (c.kind === "flip") {
    const copy = Buffer.from(body);
    copy[at] = c.byte;
    return copy;
  }
  if (c.kind === "delete") return Buffer.concat([body.subarray(0, at), body.subarray(at + 1)]);
  return Buffer.concat([body.subarray(0, at), Buffer.from([c.byte]), body.subarray(at)]);
}
