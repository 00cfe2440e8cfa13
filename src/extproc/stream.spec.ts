import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { sigV4aPublicKey } from "../../test/fakeaws/sigv4a.js";
import { AwsChunkedDecoder, deriveSigningKey, STREAMING_SIGNED_PAYLOAD } from "../../test/fakeaws/verifier.js";
import { awsChunkedBody, emptyMessage, header, requestBodyMessage, requestHead, requestHeadersMessage, responseHeadersMessage, splitAt } from "../../test/fuzz/support/messages.js";
import { audioEvent, oracleResign, sdkSignedEventStream, verifyEventStream } from "../../test/support/eventStreams.js";
import { headersRemovedBy, headersSetBy, inProcessContext, refusalOf } from "../../test/support/extProcHarness.js";
import { extProcPolicy } from "../../test/support/extProcPolicy.js";
import { Admission } from "./admission.js";
import { ExtProcStream } from "./stream.js";

const CREDS = { accessKeyId: "AKIASTREAMSPEC000001", secretAccessKey: "stream/spec/secret/0000000000000000000001" };
const NOW = new Date("2024-05-01T12:00:00Z");
const PLACEHOLDER_CREDS = { accessKeyId: "AKIDPLACEHOLDER00001", secretAccessKey: "placeholder/placeholder/placeholder/0000" };
/** Endpoint 1 is *.s3.us-west-2.amazonaws.com; buffered bodies are capped at 64 bytes. */
const POLICY = extProcPolicy(64);
const HOST = "photos.s3.us-west-2.amazonaws.com";
/** Endpoint 7: a Multi-Region Access Point, SigV4A for the client's region set. */
const MRAP = "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com";
const PLACEHOLDER_AUTH = `AWS4-HMAC-SHA256 Credential=AKIDPLACEHOLDER00001/20240501/us-west-2/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${"0".repeat(64)}`;

function open(opts: { admission?: Admission } = {}) {
  const { ctx, decisions } = inProcessContext(POLICY, CREDS, { now: () => NOW, ...(opts.admission ? { admission: opts.admission } : {}) });
  return { stream: new ExtProcStream(ctx), decisions };
}

/** Sends `pieces` as the request body (the last one ends it): what each answer forwards, none refused. */
async function forwardEach(stream: ExtProcStream, pieces: readonly Buffer[]): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (const [i, p] of pieces.entries()) {
    const r = await stream.handle(requestBodyMessage(p, i === pieces.length - 1));
    expect(r.immediate_response).toBeUndefined();
    const mutation = r.request_body?.response?.body_mutation;
    out.push(mutation?.clear_body ? Buffer.alloc(0) : Buffer.from(mutation?.body ?? ""));
  }
  return out;
}

function headers(method: string, authority: string, extra: ReadonlyArray<readonly [string, string]>, endOfStream: boolean) {
  return requestHeadersMessage(requestHead(method, authority, "/key", [["x-request-id", "rid-1"], ...extra]), endOfStream);
}

const CREDENTIAL = /^AWS4-HMAC-SHA256 Credential=AKIASTREAMSPEC000001\/20240501\/us-west-2\/s3\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/;

describe("ExtProcStream: signed requests", () => {
  it("headers-only: signs in the answer to request_headers with the real key and reports one signed decision", async () => {
    const { stream, decisions } = open();
    const r = await stream.handle(headers("GET", HOST, [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"], ["authorization", PLACEHOLDER_AUTH]], true));
    expect(r.immediate_response).toBeUndefined();
    expect(r.mode_override).toBeUndefined();
    const set = headersSetBy(r);
    expect(set.get("authorization")).toMatch(CREDENTIAL);
    expect(set.get("x-amz-date")).toBe("20240501T120000Z");
    expect(set.get("x-amz-content-sha256")).toBe("UNSIGNED-PAYLOAD");
    expect(stream.finished).toBe(true);
    expect(decisions).toHaveLength(1);
    expect(decisions[0]).toMatchObject({ requestId: "rid-1", method: "GET", host: HOST, service: "s3", region: "us-west-2", payloadMode: "unsigned-payload", profile: "main", endpointIndex: 1, decision: "signed", reason: "signed", status: 200, clientKeyId: "AKID…0001" });
  });

  it("STREAMED SigV4A chunked: a new SigV4A seed, then every chunk and the trailer re-signed with ECDSA, padded to 144, verified under the real key's public key", async () => {
    const { stream, decisions } = open();
    const chunks = [Buffer.alloc(40, "a"), Buffer.alloc(25, "b")];
    const trailer: Array<[string, string]> = [["x-amz-checksum-crc32", "AAAAAA=="]];
    const wire = awsChunkedBody(chunks, trailer, `3045${"f".repeat(136)}****`);
    const first = await stream.handle(
      headers(
        "PUT",
        MRAP,
        [
          ["x-amz-content-sha256", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"],
          ["x-amz-decoded-content-length", "65"],
          ["x-amz-region-set", "*"],
          ["x-amz-trailer", "x-amz-checksum-crc32"],
          ["content-encoding", "aws-chunked"],
        ],
        false,
      ),
    );
    expect(first.mode_override).toEqual({ request_body_mode: "STREAMED", response_body_mode: "NONE" });
    const auth = headersSetBy(first).get("authorization") ?? "";
    const m = /^AWS4-ECDSA-P256-SHA256 Credential=AKIASTREAMSPEC000001\/20240501\/s3\/aws4_request, SignedHeaders=[^,]+, Signature=(30[0-9a-f]+)$/.exec(auth);
    expect(m, auth).not.toBeNull();
    const pieces = splitAt(wire, [7, 60, 100, 250]);
    const out = await forwardEach(stream, pieces);
    const forwarded = Buffer.concat(out);
    expect(forwarded.length).toBe(wire.length);
    const decoder = new AwsChunkedDecoder({
      mode: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER",
      signing: { sigV4aPublicKey: sigV4aPublicKey(CREDS.accessKeyId, CREDS.secretAccessKey), amzDate: "20240501T120000Z", scope: "20240501/s3/aws4_request", seedSignature: m?.[1] ?? "" },
      declaredTrailers: ["x-amz-checksum-crc32"],
      minChunkSize: 0,
    });
    decoder.write(forwarded);
    const verdict = decoder.end();
    // The trailer's checksum is a placeholder: every signature verifies, and only the content is wrong.
    expect(verdict.ok ? "verified" : `${verdict.failure.code}`).toBe("BadDigest");
    expect(decoder.progress.chunksVerified).toBe(3);
    expect(decisions).toMatchObject([{ decision: "signed", payloadMode: "streaming-signed-trailer", chunksResigned: 4, region: "*", status: 200 }]);
  });

  it("a presigned SigV4A GET: signed in headers with SigV4A for the URL's region set, its X-Amz-* parameters taken out of :path", async () => {
    const { stream } = open();
    const path = "/key?X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=AKIDPLACEHOLDER00001%2F20240501%2Fs3%2Faws4_request&X-Amz-Date=20240501T115900Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Region-Set=us-east-1&X-Amz-Signature=3045ab&x-id=GetObject";
    const r = await stream.handle(requestHeadersMessage(requestHead("GET", MRAP, path, [["x-request-id", "rid-1"]]), true));
    const set = headersSetBy(r);
    expect(set.get("authorization")).toMatch(/^AWS4-ECDSA-P256-SHA256 Credential=AKIASTREAMSPEC000001\/20240501\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-region-set, Signature=30[0-9a-f]+$/);
    expect({ path: set.get(":path"), regionSet: set.get("x-amz-region-set") }).toEqual({ path: "/key?x-id=GetObject", regionSet: "us-east-1" });
  });

  it("BUFFERED: asks for the body without the placeholder signature, then signs with the body's SHA-256", async () => {
    const { stream, decisions } = open();
    const body = Buffer.from("hello, buffered world");
    const first = await stream.handle(headers("PUT", HOST, [["content-length", String(body.length)], ["authorization", PLACEHOLDER_AUTH]], false));
    expect(first.mode_override).toEqual({ request_body_mode: "BUFFERED", response_body_mode: "NONE" });
    expect(headersRemovedBy(first)).toEqual(["authorization", "x-amz-date", "x-amz-security-token"]);
    expect(decisions).toEqual([]);
    const second = await stream.handle(requestBodyMessage(body, true));
    const set = headersSetBy(second);
    expect(second.request_body?.response?.status).toBe("CONTINUE");
    expect(set.get("authorization")).toMatch(CREDENTIAL);
    expect(set.get("x-amz-content-sha256")).toBe(createHash("sha256").update(body).digest("hex"));
    expect(decisions).toMatchObject([{ decision: "signed", payloadMode: "buffered-body", bytesHashed: body.length, status: 200 }]);
  });

  it("BUFFERED: a body over the limit is refused with 413 and nothing signed", async () => {
    const { stream, decisions } = open();
    // The body Envoy buffered is larger than the head declared (the limit is checked on both).
    await stream.handle(headers("PUT", HOST, [["content-length", "10"]], false));
    const r = await stream.handle(requestBodyMessage(Buffer.alloc(65, "a"), true));
    expect(refusalOf(r)).toMatchObject({ status: 413, code: "EntityTooLarge", message: "the body (65 bytes) is over the 64-byte limit for hashing" });
    expect(decisions).toMatchObject([{ decision: "refused", reason: "body_too_large", status: 413 }]);
  });

  it("STREAMED chunked: a new seed signature, then every piece re-signed so the real key verifies each chunk", async () => {
    const { stream, decisions } = open();
    const chunks = [Buffer.alloc(40, "a"), Buffer.alloc(25, "b")];
    const wire = awsChunkedBody(chunks, undefined);
    const first = await stream.handle(
      headers("PUT", HOST, [["x-amz-content-sha256", STREAMING_SIGNED_PAYLOAD], ["x-amz-decoded-content-length", "65"], ["content-encoding", "aws-chunked"], ["authorization", PLACEHOLDER_AUTH]], false),
    );
    expect(first.mode_override).toEqual({ request_body_mode: "STREAMED", response_body_mode: "NONE" });
    const auth = headersSetBy(first).get("authorization") ?? "";
    expect(auth).toMatch(CREDENTIAL);
    const pieces = splitAt(wire, [7, 60, 100]);
    const out = await forwardEach(stream, pieces);
    const forwarded = Buffer.concat(out);
    expect(forwarded.length).toBe(wire.length);
    const seed = /Signature=([0-9a-f]{64})$/.exec(auth)?.[1] ?? "";
    const decoder = new AwsChunkedDecoder({
      mode: STREAMING_SIGNED_PAYLOAD,
      signing: { signingKey: deriveSigningKey(CREDS.secretAccessKey, "20240501", "us-west-2", "s3"), amzDate: "20240501T120000Z", scope: "20240501/us-west-2/s3/aws4_request", seedSignature: seed },
      declaredTrailers: [],
      decodedContentLength: 65,
      minChunkSize: 0,
    });
    decoder.write(forwarded);
    const verdict = decoder.end();
    expect(verdict.ok ? "verified" : `${verdict.failure.code}: ${verdict.failure.message}`).toBe("verified");
    expect(decisions).toMatchObject([{ decision: "signed", payloadMode: "streaming-signed", chunksResigned: 3, status: 200 }]);
  });

  it("STREAMED chunked: a framing error is refused with 400 at the piece that has it", async () => {
    const { stream, decisions } = open();
    await stream.handle(headers("PUT", HOST, [["x-amz-content-sha256", STREAMING_SIGNED_PAYLOAD], ["x-amz-decoded-content-length", "3"], ["authorization", PLACEHOLDER_AUTH]], false));
    const r = await stream.handle(requestBodyMessage(Buffer.from("zz;chunk-signature=x\r\n"), false));
    expect(refusalOf(r)).toMatchObject({ status: 400, code: "IncompleteBody" });
    expect(refusalOf(r)?.message).toMatch(/^aws-chunked body is malformed: .*; nothing more was forwarded$/);
    expect(decisions).toMatchObject([{ decision: "refused", reason: "bad_chunk_framing", status: 400 }]);
  });

  it("STREAMED event stream: a new seed signature, then every message re-signed so the real key verifies the chain", async () => {
    const { stream, decisions } = open();
    const wire = await sdkSignedEventStream([audioEvent(Buffer.alloc(3200, 7)), audioEvent(Buffer.from("{}"))], { ...PLACEHOLDER_CREDS, seedSignature: "0".repeat(64), region: "us-west-2", service: "s3" });
    const first = await stream.handle(headers("POST", HOST, [["x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS"], ["authorization", PLACEHOLDER_AUTH]], false));
    expect(first.mode_override).toEqual({ request_body_mode: "STREAMED", response_body_mode: "NONE" });
    const set = headersSetBy(first);
    expect(set.get("authorization")).toMatch(CREDENTIAL);
    expect(set.get("x-amz-content-sha256")).toBe("STREAMING-AWS4-HMAC-SHA256-EVENTS");
    const seed = /Signature=([0-9a-f]{64})$/.exec(set.get("authorization") ?? "")?.[1] ?? "";
    const pieces = splitAt(wire, [5, 3000, 3400]);
    const out = await forwardEach(stream, pieces);
    // The first piece holds no whole message: it is held back (cleared), not forwarded.
    expect(out[0]).toEqual(Buffer.alloc(0));
    const forwarded = Buffer.concat(out);
    const chain = { seedSignature: seed, secretAccessKey: CREDS.secretAccessKey, region: "us-west-2", service: "s3" };
    expect(forwarded).toEqual(oracleResign(wire, chain));
    expect(verifyEventStream(forwarded, chain)).toHaveLength(2);
    expect(decisions).toMatchObject([{ decision: "signed", payloadMode: "streaming-events", chunksResigned: 3, status: 200 }]);
  });

  it("STREAMED event stream: a corrupt message is refused with 400 at the piece that has it", async () => {
    const { stream, decisions } = open();
    const wire = await sdkSignedEventStream([audioEvent(Buffer.from("a")), audioEvent(Buffer.from("b"))], { ...PLACEHOLDER_CREDS, seedSignature: "0".repeat(64), region: "us-west-2", service: "s3" });
    await stream.handle(headers("POST", HOST, [["x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS"]], false));
    const firstLength = wire.readUInt32BE(0);
    const ok = await stream.handle(requestBodyMessage(wire.subarray(0, firstLength), false));
    expect(ok.request_body?.response?.body_mutation?.body?.length).toBe(firstLength);
    const bad = Buffer.from(wire.subarray(firstLength));
    bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0xff;
    const r = await stream.handle(requestBodyMessage(bad, true));
    expect(refusalOf(r)).toMatchObject({ status: 400, code: "BadRequestException", details: "countersign_bad_event_framing" });
    expect(refusalOf(r)?.message).toMatch(/^event stream is malformed: message is corrupt \(The message checksum .*\); nothing more was forwarded$/);
    expect(decisions).toMatchObject([{ decision: "refused", reason: "bad_event_framing", status: 400, payloadMode: "streaming-events" }]);
  });

  it("STREAMED event stream: a message larger than the whole held-bytes budget is refused with 400 from its prelude", async () => {
    const admission = new Admission({ maxConcurrentStreams: 4, maxHeldBytes: 100 });
    const { stream, decisions } = open({ admission });
    const wire = await sdkSignedEventStream([audioEvent(Buffer.alloc(200, 1))], { ...PLACEHOLDER_CREDS, seedSignature: "0".repeat(64), region: "us-west-2", service: "s3" });
    await stream.handle(headers("POST", HOST, [["x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS"]], false));
    const r = await stream.handle(requestBodyMessage(wire.subarray(0, 12), false));
    // The cap is the held-bytes budget: one message must fit in it.
    expect(refusalOf(r)).toMatchObject({ status: 400, code: "BadRequestException" });
    expect(refusalOf(r)?.message).toBe(`event stream is malformed: message of ${wire.readUInt32BE(0)} bytes is over the 100-byte limit; nothing more was forwarded`);
    expect(admission.heldBytes).toBe(0);
    expect(decisions).toMatchObject([{ decision: "refused", reason: "bad_event_framing" }]);
  });

  it("STREAMED event stream: partial messages held by two streams past the budget: the second is refused with 503", async () => {
    const admission = new Admission({ maxConcurrentStreams: 4, maxHeldBytes: 1000 });
    const wire = await sdkSignedEventStream([audioEvent(Buffer.alloc(700, 1))], { ...PLACEHOLDER_CREDS, seedSignature: "0".repeat(64), region: "us-west-2", service: "s3" });
    const a = open({ admission });
    const b = open({ admission });
    for (const { stream } of [a, b]) await stream.handle(headers("POST", HOST, [["x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS"]], false));
    const held = await a.stream.handle(requestBodyMessage(wire.subarray(0, 600), false));
    expect(held.request_body?.response?.body_mutation).toEqual({ clear_body: true });
    expect(admission.heldBytes).toBe(600);
    const r = await b.stream.handle(requestBodyMessage(wire.subarray(0, 600), false));
    expect(refusalOf(r)).toMatchObject({ status: 503, code: "ServiceUnavailable" });
    expect(refusalOf(r)?.message).toMatch(/^countersign is holding too many request bodies: the current event-stream message \(600 bytes\)/);
    expect(admission.heldBytes).toBe(600);
    expect(b.decisions).toMatchObject([{ decision: "refused", reason: "overloaded", status: 503 }]);
  });

  it("passes response-direction messages through untouched", async () => {
    const { stream } = open();
    expect(await stream.handle(responseHeadersMessage(requestHead("GET", HOST, "/", []), true))).toEqual({ response_headers: { response: { status: "CONTINUE" } } });
  });
});

describe("ExtProcStream: every refusal is an immediate_response with an AWS XML error (through mutations.ts)", () => {
  const cases = [
    { name: "400 malformed head", msg: () => headers("GET", HOST, [["x-evil", "a\nb"]], true), want: { status: 400, code: "InvalidRequest", reason: "malformed_request" } },
    { name: "400 cannot derive region", msg: () => headers("GET", "storage.example.com", [], true), want: { status: 400, code: "AuthorizationHeaderMalformed", reason: "malformed_request" } },
    {
      name: "400 chunk-signed upload without x-amz-decoded-content-length",
      msg: () => headers("PUT", HOST, [["x-amz-content-sha256", STREAMING_SIGNED_PAYLOAD]], false),
      want: { status: 400, code: "MissingContentLength", reason: "bad_chunk_framing" },
    },
    { name: "403 no endpoint", msg: () => headers("GET", "evil.example.net", [], true), want: { status: 403, code: "AccessDenied", reason: "no_endpoint" } },
    { name: "413 declared body too large", msg: () => headers("PUT", HOST, [["content-length", "65"]], false), want: { status: 413, code: "EntityTooLarge", reason: "body_too_large" } },
    { name: "400 signed event stream without a body", msg: () => headers("PUT", HOST, [["x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS"]], true), want: { status: 400, code: "BadRequestException", reason: "bad_event_framing" } },
    { name: "500 message with no request part", msg: () => emptyMessage(), want: { status: 500, code: "InternalError", reason: "protocol_error" } },
  ];

  it.each(cases)("$name", async ({ msg, want }) => {
    const { stream, decisions } = open();
    const r = refusalOf(await stream.handle(msg()));
    expect(r).toMatchObject({ status: want.status, code: want.code, details: `countersign_${want.reason}` });
    expect(r?.headers).toEqual(new Map([["content-type", "application/xml"], ["x-amzn-errortype", want.code], ["x-countersign-denial", want.reason]]));
    expect(r?.message).toBeTruthy();
    expect(decisions).toMatchObject([{ decision: "refused", reason: want.reason, status: want.status }]);
  });

  it.each([
    { name: "a header value that is not UTF-8", msg: () => requestHeadersMessage([...requestHead("GET", HOST, "/key", []), header("x-amz-meta-note", Buffer.from([0x61, 0xc3, 0x28]))], true), status: 400 },
    { name: "a message with no request part", msg: () => emptyMessage(), status: 500 },
  ])("a refusal before the head is read ($name) names the same countersign request id in its answer and its decision", async ({ msg, status }) => {
    const { stream, decisions } = open();
    const r = refusalOf(await stream.handle(msg()));
    expect(r?.status).toBe(status);
    expect(r?.requestId).toMatch(new RegExp(`^countersign-${process.pid}-\\d+$`));
    expect(decisions).toMatchObject([{ decision: "refused", status, requestId: r?.requestId }]);
  });

  it("a refusal after the head is read names its x-request-id in the answer and the decision", async () => {
    const { stream, decisions } = open();
    const r = refusalOf(await stream.handle(headers("GET", "evil.example.net", [], true)));
    expect(r?.requestId).toBe("rid-1");
    expect(decisions).toMatchObject([{ decision: "refused", requestId: "rid-1" }]);
  });

  it("cannot derive region: the message names the host and the fix", async () => {
    const { stream } = open();
    expect(refusalOf(await stream.handle(headers("GET", "storage.example.com", [], true)))).toMatchObject({
      message: 'cannot tell the signing region for host "storage.example.com"; set region on endpoint storage.example.com',
      requestId: "rid-1",
    });
  });

  it("503 overloaded when the stream was not admitted", async () => {
    const admission = new Admission({ maxConcurrentStreams: 1, maxHeldBytes: 1000 });
    admission.reserve(); // another stream holds the one slot
    const { stream, decisions } = open({ admission });
    expect(refusalOf(await stream.handle(headers("GET", HOST, [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"]], true)))).toMatchObject({
      status: 503,
      code: "ServiceUnavailable",
      message: "countersign is at its limit of 1 concurrent requests (--max-streams); retry later",
    });
    expect(decisions).toMatchObject([{ decision: "refused", reason: "overloaded", status: 503 }]);
  });

  it("503 overloaded when a buffered body does not fit the held-bytes budget, and the budget is whole again after", async () => {
    const admission = new Admission({ maxConcurrentStreams: 10, maxHeldBytes: 30 });
    admission.reserve().hold(20); // another stream holds 20 bytes
    const { stream } = open({ admission });
    await stream.handle(headers("PUT", HOST, [["content-length", "15"]], false));
    expect(refusalOf(await stream.handle(requestBodyMessage(Buffer.alloc(15, "x"), true)))).toMatchObject({
      status: 503,
      code: "ServiceUnavailable",
      details: "countersign_overloaded",
      message: "countersign is holding too many request bodies: the buffered body (15 bytes) does not fit under its 30-byte limit (--max-held-bytes); retry later",
    });
    expect(admission.heldBytes).toBe(20);
  });

  it("500 protocol_error for a body before any headers, and for headers twice", async () => {
    const a = open();
    expect(refusalOf(await a.stream.handle(requestBodyMessage(Buffer.from("x"), true)))).toMatchObject({ status: 500, details: "countersign_protocol_error" });
    const b = open();
    await b.stream.handle(headers("GET", HOST, [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"]], false));
    expect(refusalOf(await b.stream.handle(headers("GET", HOST, [], true)))).toMatchObject({ status: 500, details: "countersign_protocol_error" });
  });
});

describe("ExtProcStream.release", () => {
  it("reports a request still waiting for its body as cancelled (499), once, and gives back its held bytes", async () => {
    const admission = new Admission({ maxConcurrentStreams: 10, maxHeldBytes: 1000 });
    const { stream, decisions } = open({ admission });
    await stream.handle(headers("PUT", HOST, [["content-length", "10"]], false));
    stream.release();
    stream.release();
    expect(decisions).toMatchObject([{ decision: "cancelled", reason: "client_cancelled", status: 499 }]);
    expect(admission.heldBytes).toBe(0);
  });

  it("reports nothing more for a request already decided", async () => {
    const { stream, decisions } = open();
    await stream.handle(headers("GET", HOST, [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"]], true));
    stream.release();
    expect(decisions.map((d) => d.decision)).toEqual(["signed"]);
  });
});
