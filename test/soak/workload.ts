/**
 * The soak's request mix: one builder per payload mode, each with what must come of it — signed
 * and verified by the fake AWS in the expected mode, or refused with the expected status.
 * Requests are what a workload's SDK sends through Envoy: signed with a placeholder key whose
 * signatures (seed, chunk and trailer) countersign discards.
 */
import { createHash, randomBytes } from "node:crypto";
import { crc32 } from "node:zlib";
import { placeholderAuthorization, sha256Hex } from "../ops/support/requests.js";
import type { SoakRequest } from "./exchange.js";

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
  "refused",
] as const;
export type Mode = (typeof MODES)[number];

export type Expectation =
  | {
      readonly kind: "signed";
      /** What the fake AWS records as the payload mode. */
      readonly payloadMode: string;
      readonly bodyMode: "NONE" | "BUFFERED" | "STREAMED";
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
/** One shared 2 MiB body for the over-the-limit refusal (sent only as far as the headers). */
const OVERSIZED = Buffer.alloc(2 * MAX_BUFFERED, 0x62);

function randInt(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

function payload(size: number): Buffer {
  return randomBytes(size);
}

function request(method: string, path: string, headers: Array<[string, string]>, body: Buffer, authority = BUCKET_HOST): SoakRequest {
  return { method, authority, path, headers, body, pieceBytes: randInt(4, 64) * 1024 };
}

function basicHeaders(signed: string[], extra: Array<[string, string]>, keyId?: string): Array<[string, string]> {
  const names = [...new Set(["host", "x-amz-date", ...signed, ...extra.map(([k]) => k)])];
  return [["authorization", placeholderAuthorization("eu-west-1", "s3", names, keyId)], ["x-amz-date", AMZ_DATE], ...extra];
}

/** An aws-chunked body chunk-signed with a placeholder chain (countersign re-signs every chunk). */
function awsChunked(data: Buffer, chunkSize: number, trailer: boolean): { body: Buffer; chunks: number } {
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
  if (!trailer) {
    parts.push(Buffer.from(`0;chunk-signature=${finalSig}\r\n\r\n`));
  } else {
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(data) >>> 0);
    parts.push(Buffer.from(`0;chunk-signature=${finalSig}\r\nx-amz-checksum-crc32:${crc.toString("base64")}\r\nx-amz-trailer-signature:${sig("trailer")}\r\n\r\n`));
  }
  return { body: Buffer.concat(parts), chunks };
}

/**
 * Object keys cycle through a few slots per worker and mode, so the fake's store stays bounded;
 * one worker runs one request at a time, so the newest fake record for its key is its own.
 */
export function plan(mode: Mode, worker: number, n: number): Planned {
  const key = `/w${worker}/${mode.toLowerCase()}-${n % 4}.bin`;
  switch (mode) {
    case "UNSIGNED-PAYLOAD": {
      const body = payload(randInt(0, 32 * 1024));
      const headers = basicHeaders(["x-amz-content-sha256"], [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"], ["content-length", String(body.length)]]);
      return { mode, request: request("PUT", key, headers, body), expect: { kind: "signed", payloadMode: "UNSIGNED-PAYLOAD", bodyMode: "NONE", status: 200 } };
    }
    case "hex-sha256": {
      const body = payload(randInt(1, 32 * 1024));
      const headers = basicHeaders([], [["x-amz-content-sha256", sha256Hex(body)], ["content-length", String(body.length)]]);
      return { mode, request: request("PUT", key, headers, body), expect: { kind: "signed", payloadMode: "SHA256", bodyMode: "NONE", status: 200 } };
    }
    case "empty-payload": {
      // A bucket-level GET (ListObjectsV2) with no body and no x-amz-content-sha256.
      const headers = basicHeaders([], []);
      return { mode, request: request("GET", `/?list-type=2&prefix=w${worker}%2F`, headers, Buffer.alloc(0)), expect: { kind: "signed", payloadMode: "SHA256", bodyMode: "NONE", status: 200 } };
    }
    case "BUFFERED": {
      const body = payload(randInt(1, 256 * 1024));
      const headers = basicHeaders([], [["content-length", String(body.length)]]);
      return { mode, request: request("PUT", key, headers, body), expect: { kind: "signed", payloadMode: "SHA256", bodyMode: "BUFFERED", status: 200 } };
    }
    case "STREAMING-PAYLOAD":
    case "STREAMING-PAYLOAD-TRAILER": {
      const trailer = mode === "STREAMING-PAYLOAD-TRAILER";
      const size = randInt(1, 256 * 1024);
      const { body, chunks } = awsChunked(payload(size), randInt(8, 64) * 1024, trailer);
      const literal = trailer ? "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
      const headers = basicHeaders(
        [],
        [
          ["x-amz-content-sha256", literal],
          ["content-encoding", "aws-chunked"],
          ["content-length", String(body.length)],
          ["x-amz-decoded-content-length", String(size)],
          ...(trailer ? ([["x-amz-trailer", "x-amz-checksum-crc32"]] as Array<[string, string]>) : []),
        ],
      );
      return { mode, request: request("PUT", key, headers, body), expect: { kind: "signed", payloadMode: literal, bodyMode: "STREAMED", status: 200, chunks, trailer } };
    }
    case "refused":
      return refused(n, key);
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
        expect: { kind: "refused", status: 400, code: "SigV4aNotSupported", why: "SigV4a chunk signing" },
      };
    case 3:
      return {
        mode,
        request: request("POST", key, basicHeaders([], [["x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS"], ["content-length", String(small.length)]]), small),
        expect: { kind: "refused", status: 501, code: "NotImplemented", why: "event-stream signing" },
      };
    default:
      return {
        mode,
        request: request("PUT", key, basicHeaders([], [["content-length", String(OVERSIZED.length)]]), OVERSIZED),
        expect: { kind: "refused", status: 413, code: "EntityTooLarge", why: "body over max_buffered_body_bytes without a hash" },
      };
  }
}
