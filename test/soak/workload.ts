/**
 * The soak's request mix: one builder per payload mode, each with what must come of it — signed
 * and verified by the fake AWS in the expected mode, or refused by countersign with the expected
 * status and AWS error code. Requests are what a workload's SDK sends through Envoy: signed with a
 * placeholder key whose signatures (seed, chunk and trailer) countersign discards.
 *
 * The object key names the mode (and, for chunk-signed uploads, the chunk count), so that what the
 * fake AWS recorded can be checked against the plan without knowing which request it came from
 * (`checkRecord`).
 */
import { createHash, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import type { RecordedRequest } from "../fakeaws/server.js";
import { placeholderAuthorization, sha256Hex } from "../ops/support/requests.js";

export const BUCKET_HOST = "soak.s3.eu-west-1.amazonaws.com";
export const REFUSED_HOST = "not-in-policy.s3.eu-west-1.amazonaws.com";
export const WRONG_KEY_ID = "AKIDSOMEONEELSE00000";
export const MAX_BUFFERED = 1024 * 1024;

export const MODES = [
  "UNSIGNED-PAYLOAD",
  "hex-sha256",
  "empty-payload",
  "BUFFERED",
  "STREAMING-PAYLOAD",
  "STREAMING-PAYLOAD-TRAILER",
  "STREAMING-UNSIGNED-TRAILER",
  "refused",
] as const;
export type Mode = (typeof MODES)[number];

/** One HTTP request as the workload sends it to the AWS host (through Envoy). */
export interface SoakRequest {
  readonly method: string;
  readonly authority: string;
  /** Path and query, as sent. */
  readonly path: string;
  /** Lower-case names; `host` comes from `authority`. */
  readonly headers: Array<[string, string]>;
  readonly body: Buffer;
}

export type Expectation =
  | {
      readonly kind: "signed";
      /** What the fake AWS records as the payload mode. */
      readonly payloadMode: string;
      readonly status: number;
      /** aws-chunked: chunks (final one included) the fake must verify, and whether a trailer. */
      readonly chunks?: number;
      readonly trailer?: boolean;
    }
  | { readonly kind: "refused"; readonly status: number; readonly code: string; readonly why: string };

export interface Planned {
  readonly mode: Mode;
  readonly request: SoakRequest;
  readonly expect: Expectation;
}

const AMZ_DATE = "20240101T000000Z";
const EMPTY_SHA256 = createHash("sha256").digest("hex");
const SIGNED_STREAMING = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const SIGNED_STREAMING_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
const UNSIGNED_STREAMING_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/** One shared 2 MiB body for the over-the-limit refusal. */
const OVERSIZED = Buffer.alloc(2 * MAX_BUFFERED, 0x62);

function randInt(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

function request(method: string, path: string, headers: Array<[string, string]>, body: Buffer, authority = BUCKET_HOST): SoakRequest {
  return { method, authority, path, headers, body };
}

function basicHeaders(signed: string[], extra: Array<[string, string]>, keyId?: string): Array<[string, string]> {
  const names = [...new Set(["host", "x-amz-date", ...signed, ...extra.map(([k]) => k)])];
  return [["authorization", placeholderAuthorization("eu-west-1", "s3", names, keyId)], ["x-amz-date", AMZ_DATE], ...extra];
}

function crc32Trailer(data: Buffer): string {
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data) >>> 0);
  return `x-amz-checksum-crc32:${crc.toString("base64")}`;
}

/** An aws-chunked body chunk-signed with a placeholder chain (countersign re-signs every chunk). */
function awsChunkedSigned(data: Buffer, chunkSize: number, trailer: boolean): { body: Buffer; chunks: number } {
  let prev = "0".repeat(64);
  const sig = (hash: string): string => {
    prev = createHash("sha256").update(`placeholder\n${prev}\n${hash}`).digest("hex");
    return prev;
  };
  const parts: Buffer[] = [];
  let chunks = 0;
  for (let off = 0; off < data.length; off += chunkSize) {
    const d = data.subarray(off, Math.min(data.length, off + chunkSize));
    chunks++;
    parts.push(Buffer.from(`${d.length.toString(16)};chunk-signature=${sig(sha256Hex(d))}\r\n`), d, Buffer.from("\r\n"));
  }
  chunks++;
  const finalSig = sig(EMPTY_SHA256);
  if (!trailer) parts.push(Buffer.from(`0;chunk-signature=${finalSig}\r\n\r\n`));
  else parts.push(Buffer.from(`0;chunk-signature=${finalSig}\r\n${crc32Trailer(data)}\r\nx-amz-trailer-signature:${sig("trailer")}\r\n\r\n`));
  return { body: Buffer.concat(parts), chunks };
}

/** An aws-chunked body without chunk signatures and a CRC32 trailer: what AWS SDKs send by default. */
function awsChunkedUnsigned(data: Buffer, chunkSize: number): Buffer {
  const parts: Buffer[] = [];
  for (let off = 0; off < data.length; off += chunkSize) {
    const d = data.subarray(off, Math.min(data.length, off + chunkSize));
    parts.push(Buffer.from(`${d.length.toString(16)}\r\n`), d, Buffer.from("\r\n"));
  }
  parts.push(Buffer.from(`0\r\n${crc32Trailer(data)}\r\n\r\n`));
  return Buffer.concat(parts);
}

function streamingHeaders(literal: string, body: Buffer, decodedSize: number, trailer: boolean): Array<[string, string]> {
  return basicHeaders(
    [],
    [
      ["x-amz-content-sha256", literal],
      ["content-encoding", "aws-chunked"],
      ["content-length", String(body.length)],
      ["x-amz-decoded-content-length", String(decodedSize)],
      ...(trailer ? ([["x-amz-trailer", "x-amz-checksum-crc32"]] as Array<[string, string]>) : []),
    ],
  );
}

/** The path segment that names a mode in object keys. */
function slug(mode: Mode): string {
  return mode.toLowerCase();
}

/**
 * Request `variant` of `mode`, with a fresh random body. Keys are `/<mode>/v<variant>.bin`
 * (`…-c<chunks>.bin` for chunk-signed uploads); the list request asks for the prefix `<mode>/`.
 */
export function plan(mode: Mode, variant: number): Planned {
  const key = `/${slug(mode)}/v${variant}.bin`;
  switch (mode) {
    case "UNSIGNED-PAYLOAD": {
      const body = randomBytes(randInt(0, 32 * 1024));
      const headers = basicHeaders(["x-amz-content-sha256"], [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"], ["content-length", String(body.length)]]);
      return { mode, request: request("PUT", key, headers, body), expect: { kind: "signed", payloadMode: "UNSIGNED-PAYLOAD", status: 200 } };
    }
    case "hex-sha256": {
      const body = randomBytes(randInt(1, 32 * 1024));
      const headers = basicHeaders([], [["x-amz-content-sha256", sha256Hex(body)], ["content-length", String(body.length)]]);
      return { mode, request: request("PUT", key, headers, body), expect: { kind: "signed", payloadMode: "SHA256", status: 200 } };
    }
    case "empty-payload": {
      // A bucket-level GET (ListObjectsV2) with no body and no x-amz-content-sha256.
      const headers = basicHeaders([], []);
      return { mode, request: request("GET", `/?list-type=2&prefix=${slug(mode)}%2F`, headers, Buffer.alloc(0)), expect: { kind: "signed", payloadMode: "SHA256", status: 200 } };
    }
    case "BUFFERED": {
      const body = randomBytes(randInt(1, 256 * 1024));
      const headers = basicHeaders([], [["content-length", String(body.length)]]);
      return { mode, request: request("PUT", key, headers, body), expect: { kind: "signed", payloadMode: "SHA256", status: 200 } };
    }
    case "STREAMING-PAYLOAD":
    case "STREAMING-PAYLOAD-TRAILER": {
      const trailer = mode === "STREAMING-PAYLOAD-TRAILER";
      const size = randInt(1, 256 * 1024);
      const { body, chunks } = awsChunkedSigned(randomBytes(size), randInt(8, 64) * 1024, trailer);
      const literal = trailer ? SIGNED_STREAMING_TRAILER : SIGNED_STREAMING;
      return {
        mode,
        request: request("PUT", `/${slug(mode)}/v${variant}-c${chunks}.bin`, streamingHeaders(literal, body, size, trailer), body),
        expect: { kind: "signed", payloadMode: literal, status: 200, chunks, trailer },
      };
    }
    case "STREAMING-UNSIGNED-TRAILER": {
      const size = randInt(1, 256 * 1024);
      const body = awsChunkedUnsigned(randomBytes(size), randInt(8, 64) * 1024);
      return { mode, request: request("PUT", key, streamingHeaders(UNSIGNED_STREAMING_TRAILER, body, size, true), body), expect: { kind: "signed", payloadMode: UNSIGNED_STREAMING_TRAILER, status: 200 } };
    }
    case "refused":
      return refused(variant, key);
  }
}

/** Refusals cycle through five reasons, each with its status and AWS error code. */
function refused(n: number, key: string): Planned {
  const mode = "refused" as const;
  const small = Buffer.from("refuse me");
  switch (n % 5) {
    case 0:
      return {
        mode,
        request: request("PUT", key, basicHeaders([], [["x-amz-content-sha256", sha256Hex(small)], ["content-length", String(small.length)]]), small, REFUSED_HOST),
        expect: { kind: "refused", status: 403, code: "AccessDenied", why: "host outside the policy" },
      };
    case 1:
      return {
        mode,
        request: request("PUT", key, basicHeaders([], [["x-amz-content-sha256", sha256Hex(small)], ["content-length", String(small.length)]], WRONG_KEY_ID), small),
        expect: { kind: "refused", status: 403, code: "InvalidAccessKeyId", why: "placeholder key id not bound to the endpoint" },
      };
    case 2:
      return {
        mode,
        request: request("PUT", key, basicHeaders([], [["x-amz-content-sha256", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"], ["content-encoding", "aws-chunked"], ["content-length", String(small.length)], ["x-amz-decoded-content-length", "3"]]), small),
        expect: { kind: "refused", status: 400, code: "SigV4aNotEnabled", why: "SigV4A chunk signing on a SigV4 endpoint" },
      };
    case 3:
      return {
        mode,
        request: request("POST", key, basicHeaders([], [["x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS"], ["content-length", String(small.length)]]), small),
        expect: { kind: "refused", status: 400, code: "BadRequestException", why: "a signed event stream whose body is no event-stream message" },
      };
    default:
      return {
        mode,
        request: request("PUT", key, basicHeaders([], [["content-length", String(OVERSIZED.length)]]), OVERSIZED),
        expect: { kind: "refused", status: 413, code: "EntityTooLarge", why: "body over max_buffered_body_bytes without a hash" },
      };
  }
}

const EXPECTED_PAYLOAD_MODE: Readonly<Record<Exclude<Mode, "refused">, string>> = {
  "UNSIGNED-PAYLOAD": "UNSIGNED-PAYLOAD",
  "hex-sha256": "SHA256",
  "empty-payload": "SHA256",
  BUFFERED: "SHA256",
  "STREAMING-PAYLOAD": SIGNED_STREAMING,
  "STREAMING-PAYLOAD-TRAILER": SIGNED_STREAMING_TRAILER,
  "STREAMING-UNSIGNED-TRAILER": UNSIGNED_STREAMING_TRAILER,
};
const MODE_OF_SLUG = new Map<string, Mode>(MODES.map((m) => [slug(m), m]));
const CHUNKS_RE = /-c(\d+)\.bin$/;

/** The mode a fake AWS record belongs to, from its key (or list prefix); undefined for a request the soak never plans. */
export function modeOfRecord(rec: Pick<RecordedRequest, "path" | "query">): Mode | undefined {
  if (rec.path === "/") return /(?:^|&)prefix=empty-payload%2F(?:&|$)/.test(rec.query) ? "empty-payload" : undefined;
  return MODE_OF_SLUG.get(rec.path.split("/")[1] ?? "");
}

/**
 * Undefined when what the fake AWS recorded is what the plan expects of that mode: status 200,
 * signature (and payload hash, every chunk, the trailer) verified, the expected payload mode, and a
 * key id `isIssuedKey` accepts (one STS issued to countersign's role profile); else why not.
 */
export function checkRecord(rec: RecordedRequest, isIssuedKey: (keyId: string) => boolean): string | undefined {
  const mode = modeOfRecord(rec);
  const what = `${rec.method} ${rec.path}${rec.query ? `?${rec.query}` : ""}`;
  if (mode === undefined) return `the fake AWS got a request the soak never sends: ${what}`;
  if (mode === "refused") return `a request countersign must refuse reached the fake AWS: ${what}`;
  const problems: string[] = [];
  if (rec.status !== 200) problems.push(`status ${rec.status} ${rec.errorCode ?? ""} ${rec.errorMessage ?? ""}`.trim());
  if (!rec.verified) problems.push(`not verified (${rec.failure ?? "?"})`);
  if (rec.payloadMode !== EXPECTED_PAYLOAD_MODE[mode]) problems.push(`payload mode ${rec.payloadMode}, expected ${EXPECTED_PAYLOAD_MODE[mode]}`);
  const chunks = CHUNKS_RE.exec(rec.path)?.[1];
  if (chunks !== undefined && rec.chunksVerified !== Number(chunks)) problems.push(`${rec.chunksVerified} chunks verified of ${chunks}`);
  if ((mode === "STREAMING-PAYLOAD-TRAILER" || mode === "STREAMING-UNSIGNED-TRAILER") && rec.checksumsVerified.length !== 1) problems.push(`trailer checksum not verified (${rec.checksumsVerified.join(",") || "none"})`);
  if (mode === "STREAMING-PAYLOAD-TRAILER" && !rec.trailerVerified) problems.push("trailer signature not verified");
  const keyId = rec.accessKeyId ?? "";
  if (!isIssuedKey(keyId)) problems.push(`signed with ${keyId.slice(0, 8)}…, not a key STS issued to the role profile`);
  return problems.length === 0 ? undefined : `[${mode}] ${what}: ${problems.join("; ")}`;
}
