/**
 * ext_proc processing modes as Envoy evaluates them (field names as in processing_mode.proto).
 *
 * Sources (envoyproxy/envoy): `source/extensions/filters/http/ext_proc/ext_proc.cc`
 * (`effectiveModeOverride`, the mode_override condition in `Filter::onReceiveMessage`) and
 * `processor_state.h` (`shouldRemoveContentLength`, `DecodingProcessorState::setProcessingModeInternal`).
 */

export type HeaderSendMode = "DEFAULT" | "SEND" | "SKIP";
export type BodySendMode = "NONE" | "STREAMED" | "BUFFERED" | "BUFFERED_PARTIAL" | "FULL_DUPLEX_STREAMED" | "GRPC";

export interface ProcessingMode {
  request_header_mode: HeaderSendMode;
  response_header_mode: HeaderSendMode;
  request_body_mode: BodySendMode;
  response_body_mode: BodySendMode;
  request_trailer_mode: HeaderSendMode;
  response_trailer_mode: HeaderSendMode;
}

const HEADER_MODES: readonly HeaderSendMode[] = ["DEFAULT", "SEND", "SKIP"];
const BODY_MODES: readonly BodySendMode[] = [
  "NONE",
  "STREAMED",
  "BUFFERED",
  "BUFFERED_PARTIAL",
  "FULL_DUPLEX_STREAMED",
  "GRPC",
];

/** A message with every field at its proto default (what an empty `processing_mode: {}` means). */
export const PROTO_DEFAULT_MODE: ProcessingMode = Object.freeze({
  request_header_mode: "DEFAULT",
  response_header_mode: "DEFAULT",
  request_body_mode: "NONE",
  response_body_mode: "NONE",
  request_trailer_mode: "DEFAULT",
  response_trailer_mode: "DEFAULT",
});

/** Accepts an enum name or number (YAML and proto-loader give either); unknown → undefined. */
export function toHeaderSendMode(v: unknown): HeaderSendMode | undefined {
  if (typeof v === "number") return HEADER_MODES[v];
  if (typeof v === "string") return HEADER_MODES.find((m) => m === v.toUpperCase());
  return undefined;
}

export function toBodySendMode(v: unknown): BodySendMode | undefined {
  if (typeof v === "number") return BODY_MODES[v];
  if (typeof v === "string") return BODY_MODES.find((m) => m === v.toUpperCase());
  return undefined;
}

/** Reads a ProcessingMode from a proto-ish object; absent or unknown fields take proto defaults. */
export function toProcessingMode(raw: unknown): ProcessingMode {
  const o = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
  return {
    request_header_mode: toHeaderSendMode(o["request_header_mode"]) ?? "DEFAULT",
    response_header_mode: toHeaderSendMode(o["response_header_mode"]) ?? "DEFAULT",
    request_body_mode: toBodySendMode(o["request_body_mode"]) ?? "NONE",
    response_body_mode: toBodySendMode(o["response_body_mode"]) ?? "NONE",
    request_trailer_mode: toHeaderSendMode(o["request_trailer_mode"]) ?? "DEFAULT",
    response_trailer_mode: toHeaderSendMode(o["response_trailer_mode"]) ?? "DEFAULT",
  };
}

/** Headers are sent unless SKIP (DEFAULT means SEND); trailers only when SEND. */
export function sendsRequestHeaders(mode: ProcessingMode): boolean {
  return mode.request_header_mode !== "SKIP";
}

export function sendsRequestTrailers(mode: ProcessingMode): boolean {
  return mode.request_trailer_mode === "SEND";
}

/** Mirrors `EncodingProcessorState::noExternalProcess()`: nothing to send on the response path. */
export function responsePathIsSkipped(mode: ProcessingMode): boolean {
  return (
    mode.response_header_mode === "SKIP" &&
    mode.response_body_mode === "NONE" &&
    mode.response_trailer_mode !== "SEND"
  );
}

/**
 * `effectiveModeOverride(target, existing)`: DEFAULT header/trailer modes in the override leave the
 * existing value; both body modes are ALWAYS copied, so an override that omits
 * `request_body_mode` sets it to NONE. Envoy passes the filter's configured mode as `existing`.
 */
export function effectiveModeOverride(target: ProcessingMode, existing: ProcessingMode): ProcessingMode {
  const keep = (t: HeaderSendMode, e: HeaderSendMode): HeaderSendMode => (t === "DEFAULT" ? e : t);
  return {
    request_header_mode: keep(target.request_header_mode, existing.request_header_mode),
    response_header_mode: keep(target.response_header_mode, existing.response_header_mode),
    request_trailer_mode: keep(target.request_trailer_mode, existing.request_trailer_mode),
    response_trailer_mode: keep(target.response_trailer_mode, existing.response_trailer_mode),
    request_body_mode: target.request_body_mode,
    response_body_mode: target.response_body_mode,
  };
}

/** `allowed_override_modes` comparison: every field except request_header_mode. */
export function overrideIsAllowed(candidate: ProcessingMode, allowList: readonly ProcessingMode[]): boolean {
  if (allowList.length === 0) return true;
  return allowList.some(
    (m) =>
      m.request_body_mode === candidate.request_body_mode &&
      m.request_trailer_mode === candidate.request_trailer_mode &&
      m.response_header_mode === candidate.response_header_mode &&
      m.response_body_mode === candidate.response_body_mode &&
      m.response_trailer_mode === candidate.response_trailer_mode,
  );
}

/**
 * `ProcessorState::shouldRemoveContentLength()` for the request direction: STREAMED,
 * FULL_DUPLEX_STREAMED, BUFFERED_PARTIAL, and BUFFERED when request headers are SKIPped.
 */
export function shouldRemoveContentLength(mode: ProcessingMode): boolean {
  const body = mode.request_body_mode;
  return (
    body === "STREAMED" ||
    body === "FULL_DUPLEX_STREAMED" ||
    body === "BUFFERED_PARTIAL" ||
    (body === "BUFFERED" && !sendsRequestHeaders(mode))
  );
}
