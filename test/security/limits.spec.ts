/**
 * Limits and overload against a real `countersign serve` process: header, body and chunk limits;
 * 2,000 concurrent streams; streams cancelled, half-closed or never read. The server must answer
 * with the documented refusal, keep its memory bounded, and close every stream it opened.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import type { ProcessingResponse__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import { OVERSIZED_VALUE } from "../fuzz/support/arbitraries.js";
import { runGrpcStream } from "../fuzz/support/grpcRun.js";
import { header, requestBodyMessage, requestHeadersMessage, toWire } from "../fuzz/support/messages.js";
import { headersSet, modeOverride, refusalBody, refusalDetails, refusalStatus, responseKinds } from "../fuzz/support/oracle.js";
import { connectExtProc } from "../support/extProcClient.js";
import { until } from "../support/eventually.js";
import { metricValue, rssBytes, scrapeMetrics } from "./support/admin.js";
import { SECURITY_MAX_BUFFERED_BODY_BYTES, SECURITY_POLICY } from "./support/fixtures.js";
import { bufferedPut, chunkSignedPut, framedChunk, serveWithPolicy, unsignedPayloadGet, type ServedPolicy } from "./support/serveFixture.js";

const MiB = 1024 * 1024;

let served: ServedPolicy;
let client: ExternalProcessorClient;

beforeAll(async () => {
  served = await serveWithPolicy(SECURITY_POLICY, undefined, ["--log-level", "warn"]);
  client = connectExtProc(served.serve.grpcAddress);
});

afterAll(async () => {
  client?.close();
  await served?.serve.stop();
});

async function streamsActive(): Promise<number | undefined> {
  return metricValue(await scrapeMetrics(served.serve.adminUrl), "countersign_extproc_streams_active");
}

async function expectHealthyAndDrained(): Promise<void> {
  expect(served.serve.proc.exitCode).toBeNull();
  expect((await fetch(`${served.serve.adminUrl}/healthz`)).status).toBe(200);
  await until(async () => (await streamsActive()) === 0, "countersign_extproc_streams_active to return to 0", { timeoutMs: 5_000 });
}

describe("size limits", () => {
  it("refuses request headers over 96 KiB in one value with 400 and no signature", async () => {
    const headers = [...unsignedPayloadGet(), header("x-amz-meta-big", OVERSIZED_VALUE)];
    const { responses } = await runGrpcStream(client, [{ msg: requestHeadersMessage(headers, true) }]);
    expect(refusalStatus(responses[0])).toBe(400);
    expect(refusalBody(responses[0])).toContain("request headers exceed 98304 bytes");
    expect(headersSet(responses[0]).has("authorization")).toBe(false);
  });

  it("refuses request headers over 96 KiB spread over 100 headers of 1 KiB with 400", async () => {
    const headers = [...unsignedPayloadGet(), ...Array.from({ length: 100 }, (_, i) => header(`x-amz-meta-h${i}`, OVERSIZED_VALUE.subarray(0, 1024)))];
    const { responses } = await runGrpcStream(client, [{ msg: requestHeadersMessage(headers, true) }]);
    expect(refusalStatus(responses[0])).toBe(400);
    expect(refusalDetails(responses[0])).toBe("countersign_malformed_request");
  });

  it("refuses a body whose content-length is over max_buffered_body_bytes with 413 in the headers answer, without asking for the body", async () => {
    const { responses } = await runGrpcStream(client, [{ msg: requestHeadersMessage(bufferedPut(SECURITY_MAX_BUFFERED_BODY_BYTES + 1), false) }]);
    expect(refusalStatus(responses[0])).toBe(413);
    expect(refusalBody(responses[0])).toContain(`over the ${SECURITY_MAX_BUFFERED_BODY_BYTES}-byte limit`);
    expect(modeOverride(responses[0])).toBeUndefined();
  });

  it("asks for a body without content-length in BUFFERED_PARTIAL, refuses with 413 what turns out over max_buffered_body_bytes (whole or partial), and signs one exactly at the limit", async () => {
    // BUFFERED_PARTIAL, not BUFFERED: real Envoy 1.40 never answers (408 after its 5-minute stream
    // idle timeout) when a body without content-length passes its buffer limit in BUFFERED mode
    // before the headers answer arrives; in BUFFERED_PARTIAL it sends what it holds instead.
    const over = await runGrpcStream(client, [
      { msg: requestHeadersMessage(bufferedPut(undefined), false) },
      { msg: requestBodyMessage(Buffer.alloc(SECURITY_MAX_BUFFERED_BODY_BYTES + 1), true) },
    ]);
    expect(modeOverride(over.responses[0])?.request).toBe("BUFFERED_PARTIAL");
    expect(refusalStatus(over.responses[1])).toBe(413);
    expect(headersSet(over.responses[1]).has("authorization")).toBe(false);

    // What Envoy sends in BUFFERED_PARTIAL once past its limit: the bytes so far, end_of_stream false.
    const partial = await runGrpcStream(client, [
      { msg: requestHeadersMessage(bufferedPut(undefined), false) },
      { msg: requestBodyMessage(Buffer.alloc(SECURITY_MAX_BUFFERED_BODY_BYTES + 1), false) },
    ]);
    expect(refusalStatus(partial.responses[1])).toBe(413);
    expect(refusalBody(partial.responses[1])).toContain(`the body (at least ${SECURITY_MAX_BUFFERED_BODY_BYTES + 1} bytes, sent without a content-length) is over the ${SECURITY_MAX_BUFFERED_BODY_BYTES}-byte limit`);

    const atLimit = await runGrpcStream(client, [
      { msg: requestHeadersMessage(bufferedPut(undefined), false) },
      { msg: requestBodyMessage(Buffer.alloc(SECURITY_MAX_BUFFERED_BODY_BYTES), true) },
    ]);
    expect(headersSet(atLimit.responses[1]).get("authorization")).toMatch(/^AWS4-HMAC-SHA256 /);
  });

  it("refuses content-length that is not a decimal number with 400", async () => {
    const headers = [...bufferedPut(undefined), header("content-length", "12, 13")];
    const { responses } = await runGrpcStream(client, [{ msg: requestHeadersMessage(headers, false) }]);
    expect(refusalStatus(responses[0])).toBe(400);
    expect(refusalBody(responses[0])).toContain("content-length &quot;12, 13&quot; is not a number");
  });

  it("refuses an aws-chunked chunk declared over 16 MiB with 400 as soon as its header line arrives", async () => {
    const size = 16 * MiB + 1;
    const { responses } = await runGrpcStream(client, [
      { msg: requestHeadersMessage(chunkSignedPut(size), false) },
      { msg: requestBodyMessage(Buffer.from(`${size.toString(16)};chunk-signature=${"f".repeat(64)}\r\n`, "latin1"), false) },
    ]);
    expect(modeOverride(responses[0])?.request).toBe("STREAMED");
    expect(refusalStatus(responses[1])).toBe(400);
    expect(refusalBody(responses[1])).toContain(`chunk of ${size} bytes is over the ${16 * MiB}-byte limit`);
  });

  it("refuses a 9 MiB buffered body over the policy's limit with 413, and lets gRPC refuse a single message over 65 MiB (RESOURCE_EXHAUSTED), staying healthy", async () => {
    const nine = await runGrpcStream(client, [
      { msg: requestHeadersMessage(bufferedPut(undefined), false) },
      { msg: requestBodyMessage(Buffer.alloc(9 * MiB), true) },
    ]);
    expect(refusalStatus(nine.responses[1])).toBe(413);
    const { code, responses } = await runGrpcStream(client, [
      { msg: requestHeadersMessage(bufferedPut(undefined), false) },
      { msg: requestBodyMessage(Buffer.alloc(66 * MiB), true) },
    ]);
    expect(code).toBe(8); // RESOURCE_EXHAUSTED: Envoy turns it into a 500, fail-closed
    expect(responses.every((r) => !headersSet(r).has("authorization") || responseKinds(r)[0] === "request_headers")).toBe(true);
    await expectHealthyAndDrained();
  });
});

describe("a policy whose max_buffered_body_bytes is above 8 MiB", () => {
  // gRPC's message cap (65 MiB) sits above the schema's ceiling for max_buffered_body_bytes
  // (64 MiB), so a BUFFERED body the policy allows always reaches countersign.
  it("signs a 9 MiB buffered body when the policy allows 12 MiB", async () => {
    const big = await serveWithPolicy(SECURITY_POLICY.replace(`max_buffered_body_bytes: ${SECURITY_MAX_BUFFERED_BODY_BYTES}`, `max_buffered_body_bytes: ${12 * MiB}`), undefined, ["--log-level", "warn"]);
    const c = connectExtProc(big.serve.grpcAddress);
    try {
      const { code, responses } = await runGrpcStream(c, [
        { msg: requestHeadersMessage(bufferedPut(9 * MiB), false) },
        { msg: requestBodyMessage(Buffer.alloc(9 * MiB), true) },
      ]);
      expect(code).toBe(0);
      expect(headersSet(responses[1]).get("authorization")).toMatch(/^AWS4-HMAC-SHA256 /);
    } finally {
      c.close();
      await big.serve.stop();
    }
  });
});

describe("overload", () => {
  it("answers 2,000 concurrent streams correctly (signed, buffered, refused) with RSS growth under 200 MiB, and closes them all", async () => {
    const pid = served.serve.proc.pid as number;
    const before = rssBytes(pid);
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssBytes(pid));
    }, 50);
    const body = Buffer.alloc(16 * 1024, 0x61);
    const kinds = Array.from({ length: 2_000 }, (_, i) => (["signed", "buffered", "refused"] as const)[i % 3] as "signed" | "buffered" | "refused");
    try {
      const results = await Promise.all(
        kinds.map((kind) =>
          kind === "signed"
            ? runGrpcStream(client, [{ msg: requestHeadersMessage(unsignedPayloadGet(), true) }], 30_000)
            : kind === "buffered"
              ? runGrpcStream(client, [{ msg: requestHeadersMessage(bufferedPut(body.length), false) }, { msg: requestBodyMessage(body, true) }], 30_000)
              : runGrpcStream(client, [{ msg: requestHeadersMessage(unsignedPayloadGet("evil.example"), true) }], 30_000),
        ),
      );
      const outcome = (r: ProcessingResponse__Output | undefined): string =>
        headersSet(r).has("authorization") ? "signed" : refusalStatus(r) === 403 ? "refused" : `unexpected ${responseKinds(r).join()}`;
      const seen = results.map((r, i) => (kinds[i] === "buffered" ? outcome(r.responses[1]) : outcome(r.responses[0])));
      expect(seen).toEqual(kinds.map((k) => (k === "buffered" ? "signed" : k)));
      expect(results.every((r) => r.code === 0)).toBe(true);
    } finally {
      clearInterval(sampler);
    }
    const growthMiB = (peak - before) / MiB;
    console.log(`2,000 concurrent streams: RSS ${Math.round(before / MiB)} MiB before, peak ${Math.round(peak / MiB)} MiB (+${growthMiB.toFixed(1)} MiB)`);
    expect(growthMiB).toBeLessThan(200);
    await expectHealthyAndDrained();
  });

  it("refuses streams over --max-streams with 503 overloaded while the others are held open, and admits a new one once one closes", async () => {
    const small = await serveWithPolicy(SECURITY_POLICY, undefined, ["--log-level", "warn", "--max-streams", "3"]);
    const c = connectExtProc(small.serve.grpcAddress);
    const held: Array<ReturnType<typeof c.Process>> = [];
    try {
      // Three streams that announced a body and wait for it: each holds its slot.
      for (let i = 0; i < 3; i++) {
        const call = c.Process();
        call.on("error", () => undefined);
        const first = new Promise<ProcessingResponse__Output>((resolve) => call.once("data", resolve));
        call.write(toWire(requestHeadersMessage(bufferedPut(10), false)));
        expect(modeOverride(await first)?.request).toBe("BUFFERED");
        held.push(call);
      }
      const fourth = await runGrpcStream(c, [{ msg: requestHeadersMessage(unsignedPayloadGet(), true) }]);
      expect(refusalStatus(fourth.responses[0])).toBe(503);
      expect(refusalDetails(fourth.responses[0])).toBe("countersign_overloaded");
      expect(refusalBody(fourth.responses[0])).toContain("limit of 3 concurrent requests (--max-streams)");
      expect(headersSet(fourth.responses[0]).has("authorization")).toBe(false);

      const m = await scrapeMetrics(small.serve.adminUrl);
      expect(metricValue(m, "countersign_extproc_streams_limit")).toBe(3);
      expect(metricValue(m, "countersign_requests_total", { decision: "refused", reason: "overloaded" })).toBe(1);

      (held.shift() as ReturnType<typeof c.Process>).cancel();
      await until(
        async () => {
          const r = await runGrpcStream(c, [{ msg: requestHeadersMessage(unsignedPayloadGet(), true) }]);
          return headersSet(r.responses[0]).get("authorization")?.startsWith("AWS4-HMAC-SHA256 ") === true;
        },
        "a stream to be admitted after one closed",
        { timeoutMs: 5_000 },
      );
    } finally {
      for (const call of held) call.cancel();
      c.close();
      await small.serve.stop();
    }
  });

  it("refuses a body that does not fit under --max-held-bytes (summed over streams) with 503, and holds nothing once streams end", async () => {
    const small = await serveWithPolicy(SECURITY_POLICY, undefined, ["--log-level", "warn", "--max-held-bytes", String(256 * 1024)]);
    const c = connectExtProc(small.serve.grpcAddress);
    try {
      // Four uploads each hold 100,000 bytes of a 200,000-byte chunk, never finishing it: the
      // third no longer fits in 256 KiB.
      const calls = [];
      const answers: Array<ProcessingResponse__Output | undefined> = [];
      for (let i = 0; i < 4; i++) {
        const call = c.Process();
        call.on("error", () => undefined);
        const got: ProcessingResponse__Output[] = [];
        call.on("data", (r: ProcessingResponse__Output) => got.push(r));
        call.write(toWire(requestHeadersMessage(chunkSignedPut(200_000), false)));
        await until(async () => got.length === 1, "the headers answer", { timeoutMs: 5_000 });
        call.write(toWire(requestBodyMessage(framedChunk(Buffer.alloc(200_000, 0x61)).subarray(0, 100_100), false)));
        await until(async () => got.length === 2, "the body answer", { timeoutMs: 5_000 });
        answers.push(got[1]);
        calls.push(call);
      }
      expect(answers.map((r) => refusalStatus(r) ?? "continued")).toEqual(["continued", "continued", 503, 503]);
      expect(refusalBody(answers[2])).toContain("does not fit under its 262144-byte limit (--max-held-bytes)");
      expect(metricValue(await scrapeMetrics(small.serve.adminUrl), "countersign_body_bytes_held")).toBeGreaterThan(190_000);
      for (const call of calls) call.cancel();
      await until(async () => metricValue(await scrapeMetrics(small.serve.adminUrl), "countersign_body_bytes_held") === 0, "held bytes to return to 0", { timeoutMs: 5_000 });
      // A buffered body that fits is signed again.
      const ok = await runGrpcStream(c, [
        { msg: requestHeadersMessage(bufferedPut(undefined), false) },
        { msg: requestBodyMessage(Buffer.alloc(60_000), true) },
      ]);
      expect(headersSet(ok.responses[1]).get("authorization")).toMatch(/^AWS4-HMAC-SHA256 /);
    } finally {
      c.close();
      await small.serve.stop();
    }
  });
});

describe("misbehaving clients", () => {
  it("closes streams cancelled mid-body (BUFFERED and STREAMED) without crashing or leaking them, counting each undecided one as cancelled", async () => {
    const cancelled = async (): Promise<number> => metricValue(await scrapeMetrics(served.serve.adminUrl), "countersign_requests_total", { decision: "cancelled", reason: "client_cancelled" }) ?? 0;
    const before = await cancelled();
    for (let i = 0; i < 20; i++) {
      for (const head of [bufferedPut(1_000), chunkSignedPut(100_000)]) {
        const call = client.Process();
        call.on("error", () => undefined);
        const first = new Promise<void>((resolve) => call.once("data", () => resolve()));
        call.write(toWire(requestHeadersMessage(head, false)));
        await first;
        call.write(toWire(requestBodyMessage(framedChunk(Buffer.alloc(500, 0x62)).subarray(0, 300), false)));
        call.cancel();
      }
    }
    await expectHealthyAndDrained();
    // Every STREAMED upload was cut mid-chunk (a BUFFERED one may have been signed before its cancel).
    expect((await cancelled()) - before).toBeGreaterThanOrEqual(20);
  });

  it("answers the headers of a half-closed stream (client ends before sending the body it announced) and then ends the stream", async () => {
    const { responses, code } = await runGrpcStream(client, [{ msg: requestHeadersMessage(bufferedPut(1_000), false) }]);
    expect(code).toBe(0);
    expect(responses).toHaveLength(1);
    expect(modeOverride(responses[0])?.request).toBe("BUFFERED");
    expect(headersSet(responses[0]).has("authorization")).toBe(false);
    await expectHealthyAndDrained();
  });

  it("keeps RSS growth under 128 MiB while a client streams 256 MiB of aws-chunked body without reading a single answer, and frees the stream when it goes away", async () => {
    const pid = served.serve.proc.pid as number;
    const before = rssBytes(pid);
    const chunk = Buffer.alloc(MiB, 0x61);
    const chunks = 256;
    const call = client.Process();
    call.on("error", () => undefined);
    call.pause(); // never read
    call.write(toWire(requestHeadersMessage(chunkSignedPut(chunks * MiB), false)));
    const framed = framedChunk(chunk);
    for (let i = 0; i < chunks; i++) call.write(toWire(requestBodyMessage(framed, false)));
    let peak = before;
    for (let t = 0; t < 30; t++) {
      await new Promise((r) => setTimeout(r, 100));
      peak = Math.max(peak, rssBytes(pid));
    }
    call.cancel();
    const growthMiB = (peak - before) / MiB;
    console.log(`client not reading: RSS ${Math.round(before / MiB)} MiB before, peak ${Math.round(peak / MiB)} MiB (+${growthMiB.toFixed(1)} MiB)`);
    expect(growthMiB).toBeLessThan(128);
    await expectHealthyAndDrained();
  });
});
