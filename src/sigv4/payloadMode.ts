import type { CredentialSigning } from "../policy/types.js";
import {
  EMPTY_SHA256,
  STREAMING_EVENTS,
  STREAMING_SIGNED,
  STREAMING_SIGNED_TRAILER,
  STREAMING_SIGV4A_PREFIX,
  STREAMING_UNSIGNED_TRAILER,
  UNSIGNED_PAYLOAD,
} from "./constants.js";

/**
 * How the payload takes part in the signature, chosen from the policy's `credential_signing` and
 * the client's `x-amz-content-sha256`. `hash` is the value signed (and sent) as the payload hash.
 */
export type PayloadMode =
  /** Sign now with `payloadHash`; no body crosses gRPC. */
  | { readonly kind: "header"; readonly name: PayloadModeName; readonly payloadHash: string }
  /** Ask Envoy for the whole body (BUFFERED), hash it, sign in the body response. */
  | { readonly kind: "buffer"; readonly name: "buffered-body" }
  /** aws-chunked with per-chunk signatures: new seed now, every chunk re-signed in flight. */
  | { readonly kind: "chunked"; readonly name: "streaming-signed" | "streaming-signed-trailer"; readonly payloadHash: string; readonly trailer: boolean }
  /** A signed event stream: new seed now, every event-stream message re-signed in flight. */
  | { readonly kind: "eventstream"; readonly name: "streaming-events"; readonly payloadHash: typeof STREAMING_EVENTS }
  /** Refused: the reason names why (extproc maps it to an answer), the message says what to change. */
  | { readonly kind: "refuse"; readonly reason: PayloadRefusalReason; readonly message: string };

/** Why no payload mode fits the policy's `credential_signing` and the client's header. */
export type PayloadRefusalReason =
  /** A SigV4A (ECDSA) streaming upload, which cannot be re-signed yet. */
  | "sigv4a_streaming"
  /** `sigv4:no_body` with a chunk-signed body, which UNSIGNED-PAYLOAD would store framed. */
  | "chunk_signed_body_unsigned"
  /** `sigv4:body` with an aws-chunked streaming upload, which cannot be hashed whole. */
  | "streaming_body_not_hashable"
  /** `sigv4:no_body` with a signed event stream, whose message signatures UNSIGNED-PAYLOAD would leave placeholder-signed. */
  | "event_stream_unsigned"
  /** An `x-amz-content-sha256` that is no hash, UNSIGNED-PAYLOAD or STREAMING-* value. */
  | "invalid_content_sha256";

export type PayloadModeName =
  | "client-hash"
  | "unsigned-payload"
  | "streaming-unsigned-trailer"
  | "empty-body";

const HEX64 = /^[0-9a-f]{64}$/;

export interface PayloadModeInput {
  readonly signing: CredentialSigning;
  /** The client's `x-amz-content-sha256`, if any. */
  readonly contentSha256: string | undefined;
  /** Envoy said `end_of_stream` on the headers: no body follows. */
  readonly endOfStream: boolean;
}

export function selectPayloadMode({ signing, contentSha256, endOfStream }: PayloadModeInput): PayloadMode {
  const client = contentSha256?.trim();

  if (client !== undefined && client.startsWith(STREAMING_SIGV4A_PREFIX)) {
    return {
      kind: "refuse",
      reason: "sigv4a_streaming",
      message: `x-amz-content-sha256 "${client}" is a SigV4A chunk-signed upload, whose chunk signatures countersign does not re-sign yet; configure the client to send UNSIGNED-PAYLOAD, a hex SHA-256 or STREAMING-UNSIGNED-PAYLOAD-TRAILER`,
    };
  }
  const chunkSigned = client === STREAMING_SIGNED || client === STREAMING_SIGNED_TRAILER;

  if (signing === "sigv4:no_body") {
    if (chunkSigned) {
      return {
        kind: "refuse",
        reason: "chunk_signed_body_unsigned",
        message: `credential_signing sigv4:no_body cannot carry a chunk-signed body (x-amz-content-sha256 ${client}): re-signing it as UNSIGNED-PAYLOAD would make S3 store the aws-chunked framing; use credential_signing sigv4 for this endpoint`,
      };
    }
    if (client === STREAMING_EVENTS) {
      return {
        kind: "refuse",
        reason: "event_stream_unsigned",
        message: `credential_signing sigv4:no_body cannot carry a signed event stream (x-amz-content-sha256 ${client}): its messages carry signatures that must chain from the request's; use credential_signing sigv4 for this endpoint`,
      };
    }
    if (client === STREAMING_UNSIGNED_TRAILER) {
      return { kind: "header", name: "streaming-unsigned-trailer", payloadHash: STREAMING_UNSIGNED_TRAILER };
    }
    return { kind: "header", name: "unsigned-payload", payloadHash: UNSIGNED_PAYLOAD };
  }

  if (signing === "sigv4:body") {
    if (endOfStream) return { kind: "header", name: "empty-body", payloadHash: EMPTY_SHA256 };
    if (chunkSigned || client === STREAMING_UNSIGNED_TRAILER || client === STREAMING_EVENTS) {
      return {
        kind: "refuse",
        reason: "streaming_body_not_hashable",
        message: `credential_signing sigv4:body hashes the whole body, which cannot be done for an aws-chunked streaming upload (x-amz-content-sha256 ${client}); use credential_signing sigv4 for this endpoint`,
      };
    }
    return { kind: "buffer", name: "buffered-body" };
  }

  // signing "sigv4" or "sigv4a": auto-detect from the client's header. (A chunk-signing literal of
  // the other algorithm never gets here: plan.ts refuses it first, with checkClientAlgorithm.)
  if (client === undefined || client === "") {
    if (endOfStream) return { kind: "header", name: "empty-body", payloadHash: EMPTY_SHA256 };
    return { kind: "buffer", name: "buffered-body" };
  }
  const lower = client.toLowerCase();
  if (HEX64.test(lower)) return { kind: "header", name: "client-hash", payloadHash: lower };
  if (client === UNSIGNED_PAYLOAD) return { kind: "header", name: "unsigned-payload", payloadHash: UNSIGNED_PAYLOAD };
  if (client === STREAMING_UNSIGNED_TRAILER) {
    return { kind: "header", name: "streaming-unsigned-trailer", payloadHash: STREAMING_UNSIGNED_TRAILER };
  }
  if (chunkSigned) {
    const trailer = client === STREAMING_SIGNED_TRAILER;
    return { kind: "chunked", name: trailer ? "streaming-signed-trailer" : "streaming-signed", payloadHash: client, trailer };
  }
  if (client === STREAMING_EVENTS) return { kind: "eventstream", name: "streaming-events", payloadHash: STREAMING_EVENTS };
  return {
    kind: "refuse",
    reason: "invalid_content_sha256",
    message: `x-amz-content-sha256 must be a 64-hex SHA-256, UNSIGNED-PAYLOAD or a STREAMING-* value; got "${truncate(client, 80)}"`,
  };
}

function truncate(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n)}…`;
}
