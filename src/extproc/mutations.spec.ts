import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ProcessingResponse } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import { headersSetBy, refusalOf } from "../../test/support/extProcHarness.js";
import type { Denial } from "./denial.js";
import {
  ANSWER_SCRATCH_BYTES,
  answerSerializer,
  bodyContinue,
  bodyReplace,
  headerMutation,
  headersContinue,
  headersContinueAndBuffer,
  headersContinueAndStream,
  immediateDenial,
  passThrough,
} from "./mutations.js";
import { loadExtProcProtos } from "./protos.js";

const CHANGES = { set: [["authorization", "AWS4-HMAC-SHA256 …"], ["x-amz-meta-name", "café"]] as const, remove: ["x-amz-security-token"] };

describe("header mutations", () => {
  it("put values in raw_value only (UTF-8 bytes), leave append unset, and list removals", () => {
    expect(headerMutation(CHANGES)).toEqual({
      set_headers: [
        { header: { key: "authorization", raw_value: Buffer.from("AWS4-HMAC-SHA256 …", "utf8") } },
        { header: { key: "x-amz-meta-name", raw_value: Buffer.from("café", "utf8") } },
      ],
      remove_headers: ["x-amz-security-token"],
    });
  });
});

describe("answers to request messages", () => {
  it("headersContinue: CONTINUE with the changes, or with no mutation at all", () => {
    expect(headersSetBy(headersContinue(CHANGES))).toEqual(new Map([["authorization", "AWS4-HMAC-SHA256 …"], ["x-amz-meta-name", "café"]]));
    expect(headersContinue()).toEqual({ request_headers: { response: { status: "CONTINUE", header_mutation: null } } });
  });

  it("headersContinueAndBuffer: asks for the BUFFERED body and sets both body modes explicitly", () => {
    const r = headersContinueAndBuffer(CHANGES);
    expect(r.mode_override).toEqual({ request_body_mode: "BUFFERED", response_body_mode: "NONE" });
    expect(r.request_headers?.response?.status).toBe("CONTINUE");
    expect(r.request_headers?.response?.header_mutation?.remove_headers).toEqual(["x-amz-security-token"]);
  });

  it("headersContinueAndStream: the seed signature now and a STREAMED body", () => {
    const r = headersContinueAndStream(CHANGES);
    expect(r.mode_override).toEqual({ request_body_mode: "STREAMED", response_body_mode: "NONE" });
    expect(headersSetBy(r).get("authorization")).toBe("AWS4-HMAC-SHA256 …");
  });

  it("bodyReplace: the re-signed pieces, joined when read, or clear_body to hold back an empty piece", () => {
    expect(bodyReplace([Buffer.from("ab"), Buffer.from("c")])).toEqual({ request_body: { response: { status: "CONTINUE", body_mutation: { body: Buffer.from("abc") } } } });
    for (const none of [[], [Buffer.alloc(0)]]) {
      expect(bodyReplace(none)).toEqual({ request_body: { response: { status: "CONTINUE", body_mutation: { clear_body: true } } } });
    }
  });

  describe("answerSerializer", () => {
    const { Process } = loadExtProcProtos().envoy.service.ext_proc.v3.ExternalProcessor.service;
    const generic = (answer: ProcessingResponse): Buffer => Process.responseSerialize(answer);
    const serialize = answerSerializer(generic);
    const pieceSizes = (sizes: readonly number[]): Buffer[] => sizes.map((n, i) => Buffer.alloc(n, 0x41 + (i % 26)));

    it("writes a bodyReplace answer from its pieces, byte for byte as protobufjs encodes the same answer", () => {
      // Sizes around each varint-length boundary of the nested lengths, and past the reused buffer.
      const sizes = [[1], [100, 20], [127], [128], [16_370, 14], [16_384], [65_536], [40_000, 25_536, 2], [2_097_100], [ANSWER_SCRATCH_BYTES - 20], [ANSWER_SCRATCH_BYTES], [ANSWER_SCRATCH_BYTES + 1]];
      for (const s of sizes) {
        const pieces = pieceSizes(s);
        const want = generic({ request_body: { response: { status: "CONTINUE", body_mutation: { body: Buffer.concat(pieces) } } } });
        const got = Buffer.from(serialize(bodyReplace(pieces)));
        expect(got.equals(want), `pieces of ${s.join(", ")} bytes`).toBe(true);
        const body = (Process.responseDeserialize(got) as ProcessingResponse).request_body?.response?.body_mutation?.body;
        expect(Buffer.isBuffer(body) && body.equals(Buffer.concat(pieces))).toBe(true);
      }
    });

    it("matches protobufjs for any pieces", () => {
      fc.assert(
        fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 5 }), (arrays) => {
          const pieces = arrays.map((a) => Buffer.from(a));
          const answer = bodyReplace(pieces);
          return Buffer.from(serialize(answer)).equals(generic(answer));
        }),
      );
    });

    it("leaves every other answer to the generic serializer", () => {
      const other = [headersContinue(CHANGES), bodyContinue(), bodyReplace([]), { request_body: { response: { status: "CONTINUE", body_mutation: { body: Buffer.from("built elsewhere") } } } }] satisfies ProcessingResponse[];
      for (const answer of other) expect(serialize(answer).equals(generic(answer))).toBe(true);
    });

    it("reuses one buffer for answers up to its size: a result is read before the next call, as grpc-js does", () => {
      const a = serialize(bodyReplace([Buffer.from("first")]));
      const aCopy = Buffer.from(a);
      const b = serialize(bodyReplace([Buffer.from("second")]));
      expect(b.buffer).toBe(a.buffer);
      expect(Process.responseDeserialize(aCopy).request_body?.response?.body_mutation?.body).toEqual(Buffer.from("first"));
      const big = serialize(bodyReplace([Buffer.alloc(ANSWER_SCRATCH_BYTES)]));
      expect(big.buffer).not.toBe(a.buffer);
    });
  });

  it("bodyContinue: header changes on the body answer (BUFFERED), or none", () => {
    expect(headersSetBy(bodyContinue(CHANGES)).get("x-amz-meta-name")).toBe("café");
    expect(bodyContinue()).toEqual({ request_body: { response: { status: "CONTINUE", header_mutation: null } } });
  });

  it("passThrough: trailers and every response-direction message untouched", () => {
    expect([passThrough("request_trailers"), passThrough("response_headers"), passThrough("response_body"), passThrough("response_trailers")]).toEqual([
      { request_trailers: {} },
      { response_headers: { response: { status: "CONTINUE" } } },
      { response_body: { response: { status: "CONTINUE" } } },
      { response_trailers: {} },
    ]);
  });
});

describe("immediateDenial: the one place a Denial becomes an immediate_response", () => {
  const denials: Denial[] = [
    denial(400, "InvalidRequest", "malformed_request", "request has no :path"),
    denial(403, "AccessDenied", "no_endpoint", "no endpoint"),
    denial(413, "EntityTooLarge", "body_too_large", "too big"),
    denial(500, "InternalError", "protocol_error", "out of order"),
    denial(400, "BadRequestException", "bad_event_framing", "event stream is malformed"),
    denial(503, "ServiceUnavailable", "credentials_unavailable", "STS is down"),
    denial(503, "ServiceUnavailable", "overloaded", "retry later"),
  ];

  it.each(denials)("$status $code ($reason): that status, an AWS-style XML error, the code in x-amzn-errortype", (d) => {
    const r = immediateDenial(d, "req-1");
    expect(Object.keys(r)).toEqual(["immediate_response"]);
    expect(refusalOf(r)).toEqual({
      status: d.status,
      headers: new Map([
        ["content-type", "application/xml"],
        ["x-amzn-errortype", d.code],
        ["x-countersign-denial", d.reason],
      ]),
      details: `countersign_${d.reason}`,
      body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${d.code}</Code><Message>${d.message}</Message><RequestId>req-1</RequestId></Error>\n`,
      code: d.code,
      message: d.message,
      requestId: "req-1",
    });
  });

  it("escapes the message and request id as XML", () => {
    const r = immediateDenial(denial(400, "InvalidRequest", "malformed_request", `Host "<a>" & 'b'`), "id<&>");
    expect(Buffer.from(r.immediate_response?.body ?? "").toString("utf8")).toContain(
      "<Message>Host &quot;&lt;a&gt;&quot; &amp; &apos;b&apos;</Message><RequestId>id&lt;&amp;&gt;</RequestId>",
    );
    expect(refusalOf(r)).toMatchObject({ message: `Host "<a>" & 'b'`, requestId: "id<&>" });
  });
});

function denial(status: Denial["status"], code: string, reason: Denial["reason"], message: string): Denial {
  return { status, code, reason, message };
}
