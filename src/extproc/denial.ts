/**
 * A refusal: built where the decision is made, turned into an immediate_response in one place
 * (mutations.ts). The message is for a person at 3 a.m.: say what was refused and what to change.
 * Never put a secret, token, signature or full key id in it.
 */
export interface Denial {
  readonly status: 400 | 403 | 413 | 500 | 501 | 503;
  /** AWS-style error code, e.g. AccessDenied. */
  readonly code: string;
  readonly message: string;
  /** Bounded label for metrics and logs, e.g. "no_endpoint". */
  readonly reason: DenialReason;
}

export type DenialReason =
  | "malformed_request"
  | "no_endpoint"
  | "key_id_not_allowed"
  | "unsigned_client"
  | "bad_payload_mode"
  | "body_too_large"
  | "credentials_unavailable"
  | "not_implemented"
  | "bad_chunk_framing"
  | "protocol_error"
  | "overloaded"
  | "internal_error";

export function deny(status: Denial["status"], code: string, reason: DenialReason, message: string): Denial {
  return { status, code, reason, message };
}

/** Shows a key id without exposing it: the first 4 and last 4 characters. */
export function maskKeyId(keyId: string): string {
  if (keyId.length <= 8) return "****";
  return `${keyId.slice(0, 4)}…${keyId.slice(-4)}`;
}
