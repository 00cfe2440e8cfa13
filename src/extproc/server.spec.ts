import type * as grpc from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { requestBodyMessage, requestHead, requestHeadersMessage } from "../../test/fuzz/support/messages.js";
import { FakeProcessCall, headersSetBy, inProcessContext, refusalOf } from "../../test/support/extProcHarness.js";
import { until } from "../../test/support/eventually.js";
import { policyFrom } from "../../test/support/policyFrom.js";
import { Admission } from "./admission.js";
import { extProcHandlers, type StreamObserver } from "./server.js";

const CREDS = { accessKeyId: "AKIASERVERSPEC000001", secretAccessKey: "server/spec/secret/0000000000000000000001" };
const POLICY = policyFrom(`version: 1
credentials:
  main:
    static:
      access_key_id_env: SERVER_ID
      secret_access_key_env: SERVER_SECRET
endpoints:
  - host: "*.s3.us-west-2.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
`);
const HOST = "photos.s3.us-west-2.amazonaws.com";

function handlers(admission?: Admission) {
  const { ctx, decisions } = inProcessContext(POLICY, CREDS, admission ? { admission } : {});
  const events: string[] = [];
  const observer: StreamObserver = {
    streamOpened: () => events.push("opened"),
    streamClosed: () => events.push("closed"),
    grpcError: (kind) => events.push(`error:${kind}`),
  };
  const impl = extProcHandlers(ctx, observer);
  const process = (call: FakeProcessCall): void => (impl["Process"] as (c: unknown) => void)(call as unknown as grpc.ServerDuplexStream<unknown, unknown>);
  return { process, decisions, events };
}

const bufferedHead = () => requestHeadersMessage(requestHead("PUT", HOST, "/k", [["content-length", "3"]]), false);

describe("extProcHandlers: the gRPC stream loop", () => {
  it("answers each message of one stream in order, one response each, and ends the call after the client does", async () => {
    const { process, decisions, events } = handlers();
    const call = new FakeProcessCall();
    process(call);
    call.emit("data", bufferedHead());
    call.emit("data", requestBodyMessage(Buffer.from("abc"), true));
    call.emit("end");
    await until(() => call.ended, "the call to end", { everyMs: 1 });
    expect(call.written).toHaveLength(2);
    expect(call.written[0]?.mode_override?.request_body_mode).toBe("BUFFERED");
    expect(headersSetBy(call.written[1] ?? {}).get("authorization")).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIASERVERSPEC000001\//);
    expect(decisions.map((d) => d.decision)).toEqual(["signed"]);
    expect(events).toEqual(["opened", "closed"]);
  });

  it("refuses a stream over --max-streams with 503 and counts it out again when it closes", async () => {
    const admission = new Admission({ maxConcurrentStreams: 1, maxHeldBytes: 1000 });
    const { process } = handlers(admission);
    const first = new FakeProcessCall();
    process(first);
    const second = new FakeProcessCall();
    process(second);
    second.emit("data", requestHeadersMessage(requestHead("GET", HOST, "/k", [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"]]), true));
    await until(() => second.written.length === 1, "the refusal", { everyMs: 1 });
    expect(refusalOf(second.written[0] ?? {})).toMatchObject({ status: 503, code: "ServiceUnavailable", details: "countersign_overloaded" });
    second.emit("close");
    expect(admission.activeStreams).toBe(1); // a refused stream was never counted in
    first.emit("close");
    expect(admission.activeStreams).toBe(0);
  });

  it("a cancelled stream signs nothing more, reports its request as cancelled and closes once", async () => {
    const admission = new Admission({ maxConcurrentStreams: 4, maxHeldBytes: 1000 });
    const { process, decisions, events } = handlers(admission);
    const call = new FakeProcessCall();
    process(call);
    call.emit("data", bufferedHead());
    await until(() => call.written.length === 1, "the headers answer", { everyMs: 1 });
    call.cancelled = true;
    call.emit("cancelled");
    call.emit("data", requestBodyMessage(Buffer.from("abc"), true));
    call.emit("close");
    await new Promise((r) => setImmediate(r));
    expect(call.written).toHaveLength(1);
    expect(decisions).toMatchObject([{ decision: "cancelled", status: 499 }]);
    expect(events).toEqual(["opened", "closed"]);
    expect(admission.activeStreams).toBe(0);
  });

  it("reports a gRPC error on the call by its status name", () => {
    const { process, events } = handlers();
    const call = new FakeProcessCall();
    process(call);
    call.emit("error", Object.assign(new Error("reset"), { code: 14 }));
    expect(events).toEqual(["opened", "error:UNAVAILABLE", "closed"]);
  });
});
