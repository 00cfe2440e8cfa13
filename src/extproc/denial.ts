import type { AlgorithmRefusalReason, PayloadRefusalReason } from "../sigv4/index.js";

/**
 * Why a request is refused. The pure modules name their own reasons (`sigv4`'s
 * `PayloadRefusalReason`); `extproc` adds the ones it decides itself. No reason carries an HTTP
 * status or an AWS error code: those come from REFUSALS below, the one table that maps a reason
 * to its answer.
 */
export type RefusalReason =
  | PayloadRefusalReason
  // The client's signature algorithm against the endpoint's (sigv4's checkClientAlgorithm).
  | AlgorithmRefusalReason
  // The request head (headers.ts).
  | "malformed_head"
  // Planning (plan.ts), in the order they are checked.
  | "no_endpoint"
  | "malformed_path"
  | "no_client_signature"
  | "malformed_client_auth"
  | "key_id_not_allowed"
  | "caller_not_mapped"
  | "no_service_for_auto"
  | "access_not_allowed"
  | "rule_not_allowed"
  | "unknown_region"
  | "no_region_set"
  | "chunked_without_body"
  | "missing_decoded_content_length"
  | "body_too_large"
  | "credentials_unavailable"
  // The stream (stream.ts).
  | "malformed_chunk"
  | "malformed_event"
  | "too_many_streams"
  | "too_many_held_bytes"
  | "protocol_error"
  | "internal_error";

/** The bounded `reason` label of metrics, the decision log and `x-countersign-denial`. */
export type DenialLabel =
  | "malformed_request"
  | "no_endpoint"
  | "key_id_not_allowed"
  | "access"
  | "rule"
  | "caller"
  | "unsigned_client"
  | "algorithm_mismatch"
  | "bad_payload_mode"
  | "body_too_large"
  | "credentials_unavailable"
  | "bad_chunk_framing"
  | "bad_event_framing"
  | "protocol_error"
  | "overloaded"
  | "internal_error";

export interface RefusalAnswer {
  readonly status: 400 | 403 | 413 | 500 | 503;
  /** AWS-style error code, e.g. AccessDenied; also sent as x-amzn-errortype. */
  readonly code: string;
  readonly label: DenialLabel;
}

/** The one table from a refusal reason to its HTTP status, AWS error code and metrics label. */
export const REFUSALS: { readonly [R in RefusalReason]: RefusalAnswer } = {
  malformed_head: { status: 400, code: "InvalidRequest", label: "malformed_request" },
  no_endpoint: { status: 403, code: "AccessDenied", label: "no_endpoint" },
  malformed_path: { status: 400, code: "InvalidURI", label: "malformed_request" },
  no_client_signature: { status: 403, code: "AccessDenied", label: "unsigned_client" },
  malformed_client_auth: { status: 400, code: "AuthorizationHeaderMalformed", label: "malformed_request" },
  key_id_not_allowed: { status: 403, code: "InvalidAccessKeyId", label: "key_id_not_allowed" },
  caller_not_mapped: { status: 403, code: "AccessDenied", label: "caller" },
  no_service_for_auto: { status: 400, code: "MissingAuthenticationToken", label: "unsigned_client" },
  access_not_allowed: { status: 403, code: "AccessDenied", label: "access" },
  rule_not_allowed: { status: 403, code: "AccessDenied", label: "rule" },
  unknown_region: { status: 400, code: "AuthorizationHeaderMalformed", label: "malformed_request" },
  sigv4a_not_enabled: { status: 400, code: "SigV4aNotEnabled", label: "algorithm_mismatch" },
  sigv4a_required: { status: 400, code: "SigV4aRequired", label: "algorithm_mismatch" },
  no_region_set: { status: 400, code: "AuthorizationHeaderMalformed", label: "malformed_request" },
  sigv4a_streaming: { status: 400, code: "SigV4aNotSupported", label: "bad_payload_mode" },
  chunk_signed_body_unsigned: { status: 400, code: "InvalidRequest", label: "bad_payload_mode" },
  streaming_body_not_hashable: { status: 400, code: "InvalidRequest", label: "bad_payload_mode" },
  invalid_content_sha256: { status: 400, code: "InvalidArgument", label: "bad_payload_mode" },
  event_stream_unsigned: { status: 400, code: "InvalidRequest", label: "bad_payload_mode" },
  chunked_without_body: { status: 400, code: "IncompleteBody", label: "bad_chunk_framing" },
  missing_decoded_content_length: { status: 400, code: "MissingContentLength", label: "bad_chunk_framing" },
  body_too_large: { status: 413, code: "EntityTooLarge", label: "body_too_large" },
  credentials_unavailable: { status: 503, code: "ServiceUnavailable", label: "credentials_unavailable" },
  malformed_chunk: { status: 400, code: "IncompleteBody", label: "bad_chunk_framing" },
  // The code Transcribe streaming answers a malformed event stream with.
  malformed_event: { status: 400, code: "BadRequestException", label: "bad_event_framing" },
  too_many_streams: { status: 503, code: "ServiceUnavailable", label: "overloaded" },
  too_many_held_bytes: { status: 503, code: "ServiceUnavailable", label: "overloaded" },
  protocol_error: { status: 500, code: "InternalError", label: "protocol_error" },
  internal_error: { status: 500, code: "InternalError", label: "internal_error" },
};

/**
 * A refusal as answered: built by `deny` where the decision is made, turned into an
 * immediate_response in one place (mutations.ts). The message is for a person at 3 a.m.: say what
 * was refused and what to change. Never put a secret, token, signature or full key id in it.
 */
export interface Denial {
  readonly status: RefusalAnswer["status"];
  readonly code: string;
  readonly message: string;
  /** The bounded metrics label, e.g. "no_endpoint". */
  readonly reason: DenialLabel;
}

export function deny(reason: RefusalReason, message: string): Denial {
  const { status, code, label } = REFUSALS[reason];
  return { status, code, reason: label, message };
}

/** Shows a key id without exposing it: the first 4 and last 4 characters. */
export function maskKeyId(keyId: string): string {
  if (keyId.length <= 8) return "****";
  return `${keyId.slice(0, 4)}…${keyId.slice(-4)}`;
}
