import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { deny, REFUSALS, type RefusalReason } from "./denial.js";

describe("REFUSALS: the one table from a refusal reason to its answer", () => {
  it("maps every reason to exactly this status, AWS error code and metrics label", () => {
    const want: Record<RefusalReason, [number, string, string]> = {
      malformed_head: [400, "InvalidRequest", "malformed_request"],
      no_endpoint: [403, "AccessDenied", "no_endpoint"],
      malformed_path: [400, "InvalidURI", "malformed_request"],
      no_client_signature: [403, "AccessDenied", "unsigned_client"],
      malformed_client_auth: [400, "AuthorizationHeaderMalformed", "malformed_request"],
      key_id_not_allowed: [403, "InvalidAccessKeyId", "key_id_not_allowed"],
      caller_not_mapped: [403, "AccessDenied", "caller"],
      no_service_for_auto: [400, "MissingAuthenticationToken", "unsigned_client"],
      access_not_allowed: [403, "AccessDenied", "access"],
      rule_not_allowed: [403, "AccessDenied", "rule"],
      unknown_region: [400, "AuthorizationHeaderMalformed", "malformed_request"],
      sigv4a_not_enabled: [400, "SigV4aNotEnabled", "algorithm_mismatch"],
      sigv4a_required: [400, "SigV4aRequired", "algorithm_mismatch"],
      no_region_set: [400, "AuthorizationHeaderMalformed", "malformed_request"],
      sigv4a_streaming: [400, "SigV4aNotSupported", "bad_payload_mode"],
      chunk_signed_body_unsigned: [400, "InvalidRequest", "bad_payload_mode"],
      streaming_body_not_hashable: [400, "InvalidRequest", "bad_payload_mode"],
      invalid_content_sha256: [400, "InvalidArgument", "bad_payload_mode"],
      event_stream_unsigned: [400, "InvalidRequest", "bad_payload_mode"],
      chunked_without_body: [400, "IncompleteBody", "bad_chunk_framing"],
      missing_decoded_content_length: [400, "MissingContentLength", "bad_chunk_framing"],
      body_too_large: [413, "EntityTooLarge", "body_too_large"],
      credentials_unavailable: [503, "ServiceUnavailable", "credentials_unavailable"],
      malformed_chunk: [400, "IncompleteBody", "bad_chunk_framing"],
      malformed_event: [400, "BadRequestException", "bad_event_framing"],
      too_many_streams: [503, "ServiceUnavailable", "overloaded"],
      too_many_held_bytes: [503, "ServiceUnavailable", "overloaded"],
      protocol_error: [500, "InternalError", "protocol_error"],
      internal_error: [500, "InternalError", "internal_error"],
    };
    const got = Object.fromEntries(Object.entries(REFUSALS).map(([reason, a]) => [reason, [a.status, a.code, a.label]]));
    expect(got).toEqual(want);
  });

  it("gives each metrics label one HTTP status class, so a label never mixes client and server faults", () => {
    const classes = new Map<string, Set<number>>();
    for (const { status, label } of Object.values(REFUSALS)) classes.set(label, (classes.get(label) ?? new Set()).add(Math.floor(status / 100)));
    for (const [label, set] of classes) expect([label, [...set]]).toEqual([label, [[...set][0]]]);
  });

  it("lists exactly its labels under the README's Refusal reasons", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const paragraph = /^Refusal reasons: ([^]*?)\. No label/m.exec(readme)?.[1];
    expect(paragraph).toBeDefined();
    const documented = [...(paragraph ?? "").matchAll(/`([a-z_]+)`/g)].map((m) => m[1]).sort();
    const labels = [...new Set(Object.values(REFUSALS).map((a) => a.label))].sort();
    expect(documented).toEqual(labels);
  });
});

describe("deny", () => {
  it("answers a reason with the table's status, code and label, and keeps the message", () => {
    expect(deny("malformed_path", ":path must not contain a fragment (#)")).toEqual({
      status: 400,
      code: "InvalidURI",
      reason: "malformed_request",
      message: ":path must not contain a fragment (#)",
    });
    expect(deny("too_many_streams", "retry later")).toEqual({ status: 503, code: "ServiceUnavailable", reason: "overloaded", message: "retry later" });
  });
});
