/**
 * Builders for ext_proc responses. Header values go in `raw_value` only: Envoy ignores `value`
 * (and fails the request when both are set). `append` is left unset, which Envoy treats as
 * overwrite.
 */
import type { HeaderValueOption } from "../../protos/generated/envoy/config/core/v3/HeaderValueOption.js";
import type { HeaderMutation } from "../../protos/generated/envoy/service/ext_proc/v3/HeaderMutation.js";
import type { ProcessingResponse } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import type { Denial } from "./denial.js";
import { varintBytes, writeVarint } from "./protobufWire.js";

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

/**
 * Answer to one STREAMED request_body message: replace its bytes with `pieces`, in order (none:
 * hold them back, `clear_body`).
 *
 * The pieces are not joined here. The answer keeps them, and the server's serializer
 * (`answerSerializer`) writes its wire form straight from them, so each re-signed byte is copied
 * once on its way to grpc-js instead of twice (a join, then protobufjs's encoding), each time into
 * a fresh buffer. `body` is joined only when something reads it: tests, or the generic serializer.
 */
export function bodyReplace(pieces: readonly Buffer[]): ProcessingResponse {
  if (pieces.every((p) => p.length === 0)) {
    return { request_body: { response: { status: "CONTINUE", body_mutation: { clear_body: true } } } };
  }
  let joined: Buffer | undefined;
  const answer: ProcessingResponse = {
    request_body: {
      response: {
        status: "CONTINUE",
        body_mutation: {
          get body(): Buffer {
            joined ??= Buffer.concat(pieces);
            return joined;
          },
        },
      },
    },
  };
  replacedPieces.set(answer, pieces);
  return answer;
}

/** The pieces of each answer `bodyReplace` made, for the serializer. */
const replacedPieces = new WeakMap<ProcessingResponse, readonly Buffer[]>();

/**
 * Field numbers on the path ProcessingResponse.request_body (3) → BodyResponse.response (1) →
 * CommonResponse.status (1), body_mutation (3) → BodyMutation.body (1), from
 * envoy/service/ext_proc/v3/external_processor.proto. mutations.spec.ts checks the result byte for
 * byte against protobufjs's encoding of the same answer.
 */
const TAG_REQUEST_BODY = (3 << 3) | 2;
const TAG_RESPONSE = (1 << 3) | 2;
const TAG_STATUS = (1 << 3) | 0;
const TAG_BODY_MUTATION = (3 << 3) | 2;
const TAG_BODY = (1 << 3) | 2;
const STATUS_CONTINUE = 0;
/** Answers up to this size are written into one reused buffer; larger ones get their own. */
export const ANSWER_SCRATCH_BYTES = 1024 * 1024;
const scratch: Buffer = Buffer.allocUnsafeSlow(ANSWER_SCRATCH_BYTES);

/**
 * The wire form of a `bodyReplace` answer, written from its pieces; the same bytes protobufjs
 * writes for it (status CONTINUE included, as protobufjs writes a field that is set). Answers up to
 * ANSWER_SCRATCH_BYTES are written into a buffer reused by the next call: grpc-js copies the result into
 * its own gRPC frame before it returns from the serializer (`serializeMessage` in grpc-js 1.14's
 * server-interceptors.js; server.grpc.spec.ts fails if that changes), so a fresh allocation per
 * piece of body (64 KiB or more, which is costly to allocate and collect) is not needed.
 */
function encodeBodyReplace(pieces: readonly Buffer[]): Buffer {
  let body = 0;
  for (const p of pieces) body += p.length;
  // Each length is what the enclosing message's field carries: a tag byte, the varint length, the bytes.
  const mutation = 1 + varintBytes(body) + body; // BodyMutation: body
  const common = 2 + 1 + varintBytes(mutation) + mutation; // CommonResponse: status (tag, value), body_mutation
  const bodyResponse = 1 + varintBytes(common) + common; // BodyResponse: response
  const total = 1 + varintBytes(bodyResponse) + bodyResponse; // ProcessingResponse: request_body
  const wire = total <= ANSWER_SCRATCH_BYTES ? scratch : Buffer.allocUnsafeSlow(total);
  let at = 0;
  wire[at++] = TAG_REQUEST_BODY;
  at = writeVarint(wire, at, bodyResponse);
  wire[at++] = TAG_RESPONSE;
  at = writeVarint(wire, at, common);
  wire[at++] = TAG_STATUS;
  wire[at++] = STATUS_CONTINUE;
  wire[at++] = TAG_BODY_MUTATION;
  at = writeVarint(wire, at, mutation);
  wire[at++] = TAG_BODY;
  at = writeVarint(wire, at, body);
  for (const p of pieces) {
    wire.set(p, at);
    at += p.length;
  }
  return wire.subarray(0, total);
}

/**
 * The serializer the server gives grpc-js for its answers: `bodyReplace` answers are written from
 * their pieces (see encodeBodyReplace: the bytes are valid until the next call), every other
 * answer by `generic`, proto-loader's protobufjs serializer.
 */
export function answerSerializer(generic: (answer: ProcessingResponse) => Buffer): (answer: ProcessingResponse) => Buffer {
  return (answer) => {
    const pieces = replacedPieces.get(answer);
    return pieces === undefined ? generic(answer) : encodeBodyReplace(pieces);
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
