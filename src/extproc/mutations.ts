/**
 * Builders for ext_proc responses. Header values go in `raw_value` only: Envoy ignores `value`
 * (and fails the request when both are set). `append` is left unset, which Envoy treats as
 * overwrite.
 */
import type { HeaderValueOption } from "../../protos/generated/envoy/config/core/v3/HeaderValueOption.js";
import type { HeaderMutation } from "../../protos/generated/envoy/service/ext_proc/v3/HeaderMutation.js";
import type { ProcessingResponse } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import type { Denial } from "./denial.js";

export interface HeaderChanges {
  readonly set: ReadonlyArray<readonly [string, string]>;
  readonly remove: readonly string[];
}

export function headerMutation(changes: HeaderChanges): HeaderMutation {
  const set_headers: HeaderValueOption[] = changes.set.map(([key, value]) => ({
    header: { key, raw_value: Buffer.from(value, "utf8") },
  }));
  return { set_headers, remove_headers: [...changes.remove] };
}

/** Answer to request_headers: continue with these header changes. */
export function headersContinue(changes?: HeaderChanges): ProcessingResponse {
  return { request_headers: { response: { status: "CONTINUE", header_mutation: changes ? headerMutation(changes) : null } } };
}

/**
 * Answer to request_headers asking Envoy to buffer the request body and send it. Envoy copies
 * BOTH body modes from an override (an omitted one becomes NONE), so both are set explicitly;
 * header and trailer modes are left DEFAULT, which keeps Envoy's current values.
 */
export function headersContinueAndBuffer(changes: HeaderChanges, bodyMode: "BUFFERED" | "BUFFERED_PARTIAL" = "BUFFERED"): ProcessingResponse {
  return {
    request_headers: { response: { status: "CONTINUE", header_mutation: headerMutation(changes) } },
    mode_override: { request_body_mode: bodyMode, response_body_mode: "NONE" },
  };
}

/**
 * The body mode a re-signed body (aws-chunked or event stream) is switched to, chosen here once
 * for both. STREAMED, not FULL_DUPLEX_STREAMED: Envoy answers a hung countersign with 504 after
 * message_timeout only in STREAMED; FULL_DUPLEX_STREAMED also needs request trailers sent and
 * body answers as streamed_response. STREAMED only concerns the
 * request direction: with response_body_mode NONE (and response headers skipped in envoy.yaml)
 * the response of a bidirectional event stream flows while the request is still streaming.
 */
export const STREAMED_BODY_MODE = "STREAMED";

/**
 * Answer to request_headers for a body re-signed in flight (chunk-signed upload, signed event
 * stream): the new seed signature now (header mutations in STREAMED body responses are dropped
 * by Envoy), then every body message answered with its re-signed bytes.
 */
export function headersContinueAndStream(changes: HeaderChanges): ProcessingResponse {
  return {
    request_headers: { response: { status: "CONTINUE", header_mutation: headerMutation(changes) } },
    mode_override: { request_body_mode: STREAMED_BODY_MODE, response_body_mode: "NONE" },
  };
}

/** Answer to one STREAMED request_body message: replace its bytes (an empty answer holds them back). */
export function bodyReplace(bytes: Buffer): ProcessingResponse {
  return {
    request_body: {
      response: {
        status: "CONTINUE",
        body_mutation: bytes.length === 0 ? { clear_body: true } : { body: bytes },
      },
    },
  };
}

/** Answer to request_body: continue, with header changes (applied by Envoy in BUFFERED mode). */
export function bodyContinue(changes?: HeaderChanges): ProcessingResponse {
  return { request_body: { response: { status: "CONTINUE", header_mutation: changes ? headerMutation(changes) : null } } };
}

/** The messages countersign lets through untouched: request trailers and every response-direction message. */
export type PassThroughMessage = "request_trailers" | "response_headers" | "response_body" | "response_trailers";

/** The answer that lets `message` through unchanged (countersign never changes responses). */
export function passThrough(message: PassThroughMessage): ProcessingResponse {
  switch (message) {
    case "request_trailers":
      return { request_trailers: {} };
    case "response_headers":
      return { response_headers: { response: { status: "CONTINUE" } } };
    case "response_body":
      return { response_body: { response: { status: "CONTINUE" } } };
    case "response_trailers":
      return { response_trailers: {} };
  }
}

/** The one place a Denial becomes an immediate_response: AWS-style XML error body. */
export function immediateDenial(denial: Denial, requestId: string): ProcessingResponse {
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<Error><Code>${xml(denial.code)}</Code><Message>${xml(denial.message)}</Message>` +
    `<RequestId>${xml(requestId)}</RequestId></Error>\n`;
  return {
    immediate_response: {
      status: { code: denial.status },
      headers: headerMutation({
        set: [
          ["content-type", "application/xml"],
          // JSON-protocol SDKs read the error code from this header.
          ["x-amzn-errortype", denial.code],
          ["x-countersign-denial", denial.reason],
        ],
        remove: [],
      }),
      body: Buffer.from(body, "utf8"),
      details: `countersign_${denial.reason}`,
    },
  };
}

function xml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c] as string);
}
