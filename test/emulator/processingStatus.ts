/**
 * The outcome of handling one ext_proc response, shaped like the absl::Status values Envoy's
 * ext_proc code returns: FAILED_PRECONDITION marks a spurious (out-of-order) message; any other
 * error ends the request with a local reply whose details are the message.
 */
export type ProcessingStatus =
  | { readonly ok: true }
  | { readonly ok: false; readonly code: "INVALID_ARGUMENT" | "INTERNAL" | "FAILED_PRECONDITION"; readonly message: string };

export const OK: ProcessingStatus = Object.freeze({ ok: true });

export function invalidArgument(message: string): ProcessingStatus {
  return { ok: false, code: "INVALID_ARGUMENT", message };
}

export function internalError(message: string): ProcessingStatus {
  return { ok: false, code: "INTERNAL", message };
}

export function failedPrecondition(message: string): ProcessingStatus {
  return { ok: false, code: "FAILED_PRECONDITION", message };
}
