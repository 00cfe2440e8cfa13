/**
 * The Envoy emulator against a SCRIPTED ext_proc server: one test per item of "What the emulator
 * must reproduce" in /work/shared/reference/envoy-ext-proc.md, plus the source facts behind them.
 * Requests go to the endpoint listener (host rewritten to s3.us-east-1.amazonaws.com) unless a
 * test says otherwise.
 */
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "./emulator.js";
import { open, send } from "./support/client.js";
import { FakeExtProc } from "./support/fakeExtProc.js";
import { until } from "../support/eventually.js";
import { bodyOf, sentHeader, setRaw, sleep, startWith } from "./support/harness.js";
import { STUB_RESPONSE_BODY, startUpstreamStub, type UpstreamStub } from "./support/upstreamStub.js";
import type { EmulatorConfigOverrides } from "./config.js";

let fake: FakeExtProc;
let upstream: UpstreamStub;
let emu: Emulator | undefined;

beforeAll(async () => {
  fake = await FakeExtProc.start();
  upstream = await startUpstreamStub();
});

afterEach(async () => {
  await emu?.close();
  emu = undefined;
  upstream.requests.length = 0;
  expect(fake.scriptErrors).toEqual([]);
});

afterAll(async () => {
  await fake.close();
  await upstream.close();
});

async function start(overrides: EmulatorConfigOverrides = {}): Promise<Emulator> {
  emu = await startWith(fake, upstream, overrides);
  return emu;
}

/** How the tests wait for an observable emulator step (never for a fixed time): every 5 ms, at most 2 s. */
const STEP = { timeoutMs: 2000, everyMs: 5 };
const CONTINUE_HEADERS = { request_headers: { response: {} } };
const STREAMED = { extProc: { processingMode: { request_body_mode: "STREAMED" as const } } };
const BUFFERED = { extProc: { processingMode: { request_body_mode: "BUFFERED" as const } } };

describe("request headers sent to the processor", () => {
  it("carries every value in raw_value only (value empty), pseudo-headers first, the rewritten :authority, x-request-id and x-forwarded-proto, and no host", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send(CONTINUE_HEADERS);
    });
    const res = await send({
      port: e.endpointPort,
      path: "/bucket/key?list-type=2",
      headers: { Host: "127.0.0.1", "X-Amz-Date": "20260101T000000Z", Connection: "keep-alive" },
    });
    expect(res.status).toBe(200);
    const message = fake.streams[0]?.received[0];
    const headers = message?.request_headers?.headers?.headers ?? [];
    expect(message?.request_headers?.end_of_stream).toBe(true);
    expect(headers.every((h) => h.value === "" && h.raw_value.length > 0)).toBe(true);
    expect(headers.slice(0, 4).map((h) => h.key)).toEqual([":method", ":path", ":authority", ":scheme"]);
    expect(sentHeader(message, ":authority")).toBe("s3.us-east-1.amazonaws.com");
    expect(sentHeader(message, ":path")).toBe("/bucket/key?list-type=2");
    expect(sentHeader(message, ":scheme")).toBe("http");
    expect(sentHeader(message, "x-amz-date")).toBe("20260101T000000Z");
    expect(sentHeader(message, "x-forwarded-proto")).toBe("http");
    expect(sentHeader(message, "x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(sentHeader(message, "host")).toBeUndefined();
    expect(sentHeader(message, "connection")).toBeUndefined();
  });

  it("sets end_of_stream false when a body follows, and with body mode NONE never sends the body", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send(CONTINUE_HEADERS);
    });
    const res = await send({ port: e.endpointPort, method: "PUT", path: "/b/k", body: "hello" });
    expect(res.status).toBe(200);
    expect(fake.streams[0]?.received).toHaveLength(1);
    expect(fake.streams[0]?.received[0]?.request_headers?.end_of_stream).toBe(false);
    expect(upstream.requests[0]?.body.toString()).toBe("hello");
  });
});

describe("expect: 100-continue", () => {
  it("is answered by the HCM and removed before ext_proc, so neither the processor nor the upstream sees it", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send(CONTINUE_HEADERS);
    });
    const { req, response } = open({
      port: e.endpointPort,
      method: "PUT",
      path: "/b/k",
      headers: { host: "127.0.0.1", expect: "100-continue", "content-length": "5" },
    });
    req.once("continue", () => req.end("hello"));
    const res = await response;
    expect(res.status).toBe(200);
    expect(sentHeader(fake.streams[0]?.received[0], "expect")).toBeUndefined();
    expect(upstream.requests[0]?.headers.expect).toBeUndefined();
    expect(upstream.requests[0]?.body.toString()).toBe("hello");
  });
});

describe("header mutations", () => {
  it("fails the request with 500 when an entry sets both value and raw_value, sending nothing upstream", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send({
        request_headers: {
          response: { header_mutation: { set_headers: [{ header: { key: "authorization", value: "v", raw_value: Buffer.from("r") } }] } },
        },
      });
    });
    const res = await send({ port: e.endpointPort });
    expect(res.status).toBe(500);
    expect(upstream.requests).toHaveLength(0);
    expect(e.stats.rejected_header_mutations).toBe(1);
    expect(e.stats.localReplies[0]?.details).toBe("Only_one_of_value_or_raw_value_in_the_HeaderValue_message_should_be_set.");
  });

  it("sets the header to an EMPTY value when an entry carries value only", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send({
        request_headers: {
          response: { header_mutation: { set_headers: [{ header: { key: "authorization", value: "AWS4-HMAC-SHA256 Credential=x" } }] } },
        },
      });
    });
    const res = await send({ port: e.endpointPort, headers: { authorization: "placeholder" } });
    expect(res.status).toBe(200);
    expect(upstream.requests[0]?.rawHeaders.filter(([k]) => k === "authorization")).toEqual([["authorization", ""]]);
  });

  it("overwrites when append is unset, ignoring append_action, and adds a second value when append is true", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send({
        request_headers: {
          response: {
            header_mutation: {
              set_headers: [
                { ...setRaw("x-amz-date", "20260202T020202Z"), append_action: "ADD_IF_ABSENT" },
                setRaw("x-amz-meta-tag", "second", true),
              ],
            },
          },
        },
      });
    });
    const res = await send({
      port: e.endpointPort,
      headers: { "x-amz-date": "20250101T000000Z", "x-amz-meta-tag": "first" },
    });
    expect(res.status).toBe(200);
    const lines = upstream.requests[0]?.rawHeaders ?? [];
    expect(lines.filter(([k]) => k === "x-amz-date")).toEqual([["x-amz-date", "20260202T020202Z"]]);
    expect(lines.filter(([k]) => k === "x-amz-meta-tag")).toEqual([
      ["x-amz-meta-tag", "first"],
      ["x-amz-meta-tag", "second"],
    ]);
  });

  it("skips and counts each refused mutation (routing headers, x-envoy*, appending to a pseudo-header, removing host or a pseudo-header) while :path may be set", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send({
        request_headers: {
          response: {
            header_mutation: {
              set_headers: [
                setRaw("host", "evil.example"),
                setRaw(":authority", "evil.example"),
                setRaw(":method", "DELETE"),
                setRaw(":scheme", "https"),
                setRaw("x-envoy-retry-on", "5xx"),
                setRaw(":path", "/appended", true),
                setRaw(":path", "/rewritten"),
                setRaw("x-amz-security-token", "fresh"),
              ],
              remove_headers: ["host", ":path", "x-amz-date"],
            },
          },
        },
      });
    });
    const res = await send({ port: e.endpointPort, path: "/original", headers: { "x-amz-date": "d" } });
    expect(res.status).toBe(200);
    expect(e.stats.rejected_header_mutations).toBe(8);
    const got = upstream.requests[0];
    expect(got?.method).toBe("GET");
    expect(got?.url).toBe("/rewritten");
    expect(got?.headers.host).toBe("s3.us-east-1.amazonaws.com");
    expect(got?.headers["x-envoy-retry-on"]).toBeUndefined();
    expect(got?.headers["x-amz-security-token"]).toBe("fresh");
    expect(got?.headers["x-amz-date"]).toBeUndefined();
  });

  it("turns a refused mutation into a 500 when disallow_is_error is set", async () => {
    const e = await start({ extProc: { mutationRules: { disallowIsError: true } } });
    fake.setScript(async (s) => {
      await s.next();
      s.send({ request_headers: { response: { header_mutation: { set_headers: [setRaw("host", "evil.example")] } } } });
    });
    const res = await send({ port: e.endpointPort });
    expect(res.status).toBe(500);
    expect(upstream.requests).toHaveLength(0);
    expect(e.stats.localReplies[0]?.details).toBe("Invalid_attempt_to_modify_host");
  });

  it("fails with 500 on CR/LF in a value and on an invalid header name", async () => {
    const e = await start();
    for (const entry of [setRaw("x-amz-date", "a\r\nx-injected: 1"), setRaw("bad header", "v")]) {
      fake.setScript(async (s) => {
        await s.next();
        s.send({ request_headers: { response: { header_mutation: { set_headers: [entry] } } } });
      });
      const res = await send({ port: e.endpointPort });
      expect(res.status).toBe(500);
    }
    expect(upstream.requests).toHaveLength(0);
    expect(e.stats.localReplies.map((r) => r.details)).toEqual([
      "Invalid_character_in_set_headers_mutation.",
      "Invalid_character_in_set_headers_mutation.",
    ]);
  });
});

describe("BUFFERED body (reached through mode_override)", () => {
  function askForBody(): { request_headers: object; mode_override: object } {
    return { request_headers: { response: {} }, mode_override: { request_body_mode: "BUFFERED" } };
  }

  it("sends the whole body as one message with end_of_stream, applies header mutations from the body response, and keeps content-length", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send(askForBody());
      const body = await s.next();
      expect(bodyOf(body)).toEqual({ body: "hello", end: true });
      s.send({
        request_body: {
          response: {
            header_mutation: { set_headers: [setRaw("x-amz-content-sha256", "abc123")] },
            body_mutation: { body: Buffer.from("HELLO") },
          },
        },
      });
    });
    const res = await send({ port: e.endpointPort, method: "PUT", path: "/b/k", body: "hello" });
    expect(res.status).toBe(200);
    const got = upstream.requests[0];
    expect(got?.headers["x-amz-content-sha256"]).toBe("abc123");
    expect(got?.headers["content-length"]).toBe("5");
    expect(got?.headers["transfer-encoding"]).toBeUndefined();
    expect(got?.body.toString()).toBe("HELLO");
    expect(fake.streams[0]?.received).toHaveLength(2);
  });

  it("stalls, as real Envoy 1.40 does, when the body passed the buffer limit before the answer that asks for BUFFERED: no body message, no reply, nothing upstream", async () => {
    const e = await start({ bufferLimitBytes: 1024 });
    let bodyWritten = false;
    let answered = false;
    fake.setScript(async (s) => {
      await s.next();
      await until(() => bodyWritten, "the client to write its body", STEP);
      await sleep(300); // the emulator (this process) reads the 4 KiB and stops reading
      s.send(askForBody());
      answered = true;
    });
    const { req, response } = open({ port: e.endpointPort, method: "PUT", path: "/b/k", headers: { "transfer-encoding": "chunked" } });
    const outcome = response.then(
      (r) => `answered ${r.status}`,
      () => "connection error",
    );
    req.write(Buffer.alloc(4096, 97));
    bodyWritten = true;
    await until(() => answered, "the ext_proc answer", STEP);
    req.end("the rest, never read");
    // Envoy ends this with 408 after its 5-minute stream idle timeout; the emulator has none.
    expect(await Promise.race([outcome, sleep(500).then(() => "stalled")])).toBe("stalled");
    expect(fake.streams[0]?.received).toHaveLength(1);
    expect(upstream.requests).toHaveLength(0);
    req.destroy();
  });

  it("answers 500 when a body_mutation's length differs from the kept content-length", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send(askForBody());
      await s.next();
      s.send({ request_body: { response: { body_mutation: { body: Buffer.from("HELLO!!") } } } });
    });
    const res = await send({ port: e.endpointPort, method: "PUT", path: "/b/k", body: "hello" });
    expect(res.status).toBe(500);
    expect(upstream.requests).toHaveLength(0);
    expect(e.stats.localReplies[0]?.details).toBe("mismatch_between_content_length_and_the_length_of_the_mutated_body");
  });

  it("answers 413 past the buffer limit with nothing sent upstream, and accepts a body exactly at the limit", async () => {
    const e = await start({ ...BUFFERED, bufferLimitBytes: 1024 });
    fake.setScript(async (s) => {
      await s.next();
      s.send(CONTINUE_HEADERS);
      if (s.received[0]?.request_headers?.end_of_stream === false) {
        const body = await s.next().catch(() => undefined);
        if (body) s.send({ request_body: { response: {} } });
      }
    });
    const tooLarge = await send({ port: e.endpointPort, method: "PUT", path: "/big", body: Buffer.alloc(1025, 97) });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body.toString()).toBe("Payload Too Large");
    expect(upstream.requests).toHaveLength(0);
    expect(e.stats.upstreamRequests).toHaveLength(0);
    expect(e.stats.downstream_rq_too_large).toBe(1);

    const atLimit = await send({ port: e.endpointPort, method: "PUT", path: "/fits", body: Buffer.alloc(1024, 97) });
    expect(atLimit.status).toBe(200);
    expect(upstream.requests[0]?.body.length).toBe(1024);
  });
});

describe("STREAMED body", () => {
  it("removes content-length (chunked upstream), sends each chunk as its own message, applies body mutations and drops header mutations from body responses", async () => {
    const e = await start(STREAMED);
    let headersAnswered = false;
    fake.setScript(async (s) => {
      const headers = await s.next();
      expect(sentHeader(headers, "content-length")).toBe("10");
      s.send(CONTINUE_HEADERS);
      headersAnswered = true;
      for (;;) {
        const m = bodyOf(await s.next());
        s.send({
          request_body: {
            response: {
              header_mutation: { set_headers: [setRaw("x-from-body", "1")] },
              body_mutation: m?.body === "world" ? { clear_body: true } : { body: Buffer.from((m?.body ?? "").toUpperCase()) },
            },
          },
        });
        if (m?.end) break;
      }
    });
    const { req, response } = open({ port: e.endpointPort, method: "PUT", path: "/b/k", headers: { "content-length": "10" } });
    await until(() => headersAnswered, "the headers answer", STEP);
    req.write("hello");
    await until(() => (fake.streams[0]?.received.length ?? 0) >= 2, "a second message at the ext_proc server", STEP);
    req.end("world");
    const res = await response;

    expect(res.status).toBe(200);
    const bodies = fake.streams[0]?.received.slice(1).map(bodyOf);
    expect(bodies).toEqual([
      { body: "hello", end: false },
      { body: "world", end: false },
      { body: "", end: true },
    ]);
    const got = upstream.requests[0];
    expect(got?.headers["content-length"]).toBeUndefined();
    expect(got?.headers["transfer-encoding"]).toBe("chunked");
    expect(got?.headers["x-from-body"]).toBeUndefined();
    expect(got?.body.toString()).toBe("HELLO");
  });

  it("keeps content-length when STREAMED is reached through mode_override, but silently drops a set of content-length (mutation_utils.cc: remove_content_length only skips sets)", async () => {
    const e = await start();
    let headersAnswered = false;
    fake.setScript(async (s) => {
      await s.next();
      s.send({
        request_headers: {
          response: { header_mutation: { set_headers: [setRaw("content-length", "999"), setRaw("x-seen", "yes")] } },
        },
        mode_override: { request_body_mode: "STREAMED" },
      });
      headersAnswered = true;
      for (;;) {
        const m = bodyOf(await s.next());
        s.send({ request_body: { response: {} } });
        if (m?.end) break;
      }
    });
    const { req, response } = open({ port: e.endpointPort, method: "PUT", path: "/b/k", headers: { "content-length": "10" } });
    await until(() => headersAnswered, "the headers answer", STEP);
    req.write("hello");
    await until(() => (fake.streams[0]?.received.length ?? 0) >= 2, "a second message at the ext_proc server", STEP);
    req.end("world");
    const res = await response;

    expect(res.status).toBe(200);
    const got = upstream.requests[0];
    expect(got?.headers["content-length"]).toBe("10");
    expect(got?.headers["transfer-encoding"]).toBeUndefined();
    expect(got?.headers["x-seen"]).toBe("yes");
    expect(got?.body.toString()).toBe("helloworld");
    expect(e.stats.rejected_header_mutations).toBe(0);
  });

  it("breaks the upstream request (503, upstream_content_length_mismatch) when a chunk mutation changes the length under a content-length kept by mode_override", async () => {
    const e = await start();
    let headersAnswered = false;
    fake.setScript(async (s) => {
      await s.next();
      s.send({ request_headers: { response: {} }, mode_override: { request_body_mode: "STREAMED" } });
      headersAnswered = true;
      for (;;) {
        const m = bodyOf(await s.next());
        s.send({ request_body: { response: { body_mutation: { body: Buffer.from(`${m?.body ?? ""}!`) } } } });
        if (m?.end) break;
      }
    });
    const { req, response } = open({ port: e.endpointPort, method: "PUT", path: "/b/k", headers: { "content-length": "5" } });
    await until(() => headersAnswered, "the headers answer", STEP);
    req.end("hello");
    const res = await response;
    expect(res.status).toBe(503);
    expect(e.stats.upstream_content_length_mismatch).toBe(1);
    expect(e.stats.localReplies[0]?.details).toBe("emulator_upstream_content_length_mismatch");
  });

  it("sends a body that was complete before the headers response as ONE message handled like BUFFERED (its header mutations apply)", async () => {
    const e = await start(STREAMED);
    fake.setScript(async (s) => {
      await s.next();
      await sleep(150);
      s.send(CONTINUE_HEADERS);
      const body = await s.next();
      expect(bodyOf(body)).toEqual({ body: "abc", end: true });
      s.send({
        request_body: {
          response: { header_mutation: { set_headers: [setRaw("x-applied", "1")] }, body_mutation: { body: Buffer.from("xyz") } },
        },
      });
    });
    const res = await send({ port: e.endpointPort, method: "PUT", path: "/b/k", body: "abc" });
    expect(res.status).toBe(200);
    expect(fake.streams[0]?.received).toHaveLength(2);
    expect(upstream.requests[0]?.headers["x-applied"]).toBe("1");
    expect(upstream.requests[0]?.body.toString()).toBe("xyz");
  });
});

describe("BUFFERED_PARTIAL body", () => {
  const PARTIAL = { extProc: { processingMode: { request_body_mode: "BUFFERED_PARTIAL" as const } }, bufferLimitBytes: 1024 };

  it("sends the first buffer-limit's worth as one message without end_of_stream, holds the headers for its response, then lets the rest through unprocessed; content-length is removed", async () => {
    const e = await start(PARTIAL);
    let headersAnswered = false;
    fake.setScript(async (s) => {
      await s.next();
      s.send(CONTINUE_HEADERS);
      headersAnswered = true;
      const part = bodyOf(await s.next());
      expect(part).toMatchObject({ end: false });
      expect(part?.body.length).toBeGreaterThan(1024);
      s.send({
        request_body: {
          response: { header_mutation: { set_headers: [setRaw("x-partial", "seen")] }, body_mutation: { body: Buffer.from("HEAD") } },
        },
      });
    });
    const { req, response } = open({ port: e.endpointPort, method: "PUT", path: "/b/k", headers: { "content-length": "2004" } });
    await until(() => headersAnswered, "the headers answer", STEP);
    req.write(Buffer.alloc(2000, 97));
    await until(() => (fake.streams[0]?.received.length ?? 0) >= 2, "a second message at the ext_proc server", STEP);
    await sleep(20);
    req.end("tail");
    const res = await response;
    expect(res.status).toBe(200);
    const got = upstream.requests[0];
    expect(got?.headers["x-partial"]).toBe("seen");
    expect(got?.headers["content-length"]).toBeUndefined();
    expect(got?.body.toString()).toBe("HEADtail");
    expect(fake.streams[0]?.received).toHaveLength(2);
  });
});

describe("CONTINUE_AND_REPLACE", () => {
  it("replaces the body, removes content-length and may set :method", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send({
        request_headers: {
          response: {
            status: "CONTINUE_AND_REPLACE",
            header_mutation: { set_headers: [setRaw(":method", "POST")] },
            body_mutation: { body: Buffer.from("replaced") },
          },
        },
      });
    });
    const res = await send({ port: e.endpointPort, method: "PUT", path: "/b/k", body: "original" });
    expect(res.status).toBe(200);
    const got = upstream.requests[0];
    expect(got?.method).toBe("POST");
    expect(got?.headers["content-length"]).toBeUndefined();
    expect(got?.body.toString()).toBe("replaced");
  });
});

describe("mode_override", () => {
  it("sets the body mode to NONE when the override omits request_body_mode (DEFAULT header modes keep their value)", async () => {
    const e = await start(BUFFERED);
    fake.setScript(async (s) => {
      await s.next();
      s.send({ request_headers: { response: {} }, mode_override: { request_trailer_mode: "SKIP" } });
    });
    const res = await send({ port: e.endpointPort, method: "PUT", path: "/b/k", body: "hello" });
    expect(res.status).toBe(200);
    expect(fake.streams[0]?.received).toHaveLength(1);
    expect(upstream.requests[0]?.body.toString()).toBe("hello");
  });

  it("is ignored when allow_mode_override is false", async () => {
    const e = await start({ extProc: { allowModeOverride: false } });
    fake.setScript(async (s) => {
      await s.next();
      s.send({ request_headers: { response: {} }, mode_override: { request_body_mode: "BUFFERED" } });
    });
    const res = await send({ port: e.endpointPort, method: "PUT", path: "/b/k", body: "hello" });
    expect(res.status).toBe(200);
    expect(fake.streams[0]?.received).toHaveLength(1);
    expect(upstream.requests[0]?.body.toString()).toBe("hello");
  });

  it("is ignored on a body response", async () => {
    const e = await start(BUFFERED);
    fake.setScript(async (s) => {
      await s.next();
      s.send(CONTINUE_HEADERS);
      await s.next();
      s.send({ request_body: { response: {} }, mode_override: { request_body_mode: "NONE", response_header_mode: "SEND" } });
    });
    const res = await send({ port: e.endpointPort, method: "PUT", path: "/b/k", body: "hello" });
    expect(res.status).toBe(200);
    expect(upstream.requests[0]?.body.toString()).toBe("hello");
  });
});

describe("failures", () => {
  it("answers 504 with details ext_proc_error_per-message_timeout_exceeded when the processor does not answer in message_timeout", async () => {
    const e = await start({ extProc: { messageTimeoutMs: 100 } });
    fake.setScript((s) => s.closedByClient.then(() => undefined));
    const res = await send({ port: e.endpointPort });
    expect(res.status).toBe(504);
    expect(upstream.requests).toHaveLength(0);
    expect(e.stats.message_timeouts).toBe(1);
    expect(e.stats.localReplies[0]?.details).toBe("ext_proc_error_per-message_timeout_exceeded");
  });

  it("restarts the timer once when the processor sends override_message_timeout within max_message_timeout", async () => {
    const e = await start({ extProc: { messageTimeoutMs: 100, maxMessageTimeoutMs: 1000 } });
    fake.setScript(async (s) => {
      await s.next();
      s.send({ override_message_timeout: { seconds: 0, nanos: 500_000_000 } });
      await sleep(250);
      s.send(CONTINUE_HEADERS);
    });
    const res = await send({ port: e.endpointPort });
    expect(res.status).toBe(200);
    expect(e.stats.override_message_timeout_received).toBe(1);
    expect(e.stats.message_timeouts).toBe(0);
  });

  it("answers 500 (status_on_error) on a gRPC error from the processor", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.fail(grpc.status.INTERNAL, "boom here");
    });
    const res = await send({ port: e.endpointPort });
    expect(res.status).toBe(500);
    expect(upstream.requests).toHaveLength(0);
    expect(e.stats.streams_failed).toBe(1);
    expect(e.stats.localReplies[0]?.details).toBe("ext_proc_error_gRPC_error_13{boom_here}");
  });

  it("lets the request continue UNMODIFIED when the processor closes the stream with OK before answering", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.end();
    });
    const res = await send({ port: e.endpointPort, headers: { authorization: "placeholder-signature" } });
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe(STUB_RESPONSE_BODY);
    expect(upstream.requests[0]?.headers.authorization).toBe("placeholder-signature");
    expect(e.stats.streams_closed_before_response).toBe(1);
    expect(e.stats.streams_closed).toBe(1);
  });

  it("answers 500 on a spurious message (a body response to the headers message) and counts it", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send({ request_body: { response: {} } });
    });
    const res = await send({ port: e.endpointPort });
    expect(res.status).toBe(500);
    expect(upstream.requests).toHaveLength(0);
    expect(e.stats.spurious_msgs_received).toBe(1);
    expect(e.stats.localReplies[0]?.details).toBe("spurious_message");
  });

  it("continues unmodified on a timeout when failure_mode_allow is true", async () => {
    const e = await start({ extProc: { messageTimeoutMs: 100, failureModeAllow: true } });
    fake.setScript((s) => s.closedByClient.then(() => undefined));
    const res = await send({ port: e.endpointPort });
    expect(res.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
    expect(e.stats.failure_mode_allowed).toBe(1);
  });
});

describe("immediate_response", () => {
  it("sends the status, mutation-checked headers and body to the client and nothing upstream", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send({
        immediate_response: {
          status: { code: 403 },
          headers: { set_headers: [setRaw("content-type", "application/xml"), setRaw("x-envoy-denied", "1")] },
          body: Buffer.from("<Error><Code>AccessDenied</Code></Error>"),
          details: "policy denied",
        },
      });
    });
    const res = await send({ port: e.endpointPort });
    expect(res.status).toBe(403);
    expect(res.headers["content-type"]).toBe("application/xml");
    expect(res.headers["x-envoy-denied"]).toBeUndefined();
    expect(res.body.toString()).toBe("<Error><Code>AccessDenied</Code></Error>");
    expect(upstream.requests).toHaveLength(0);
    expect(e.stats.rejected_header_mutations).toBe(1);
    expect(e.stats.localReplies[0]).toMatchObject({ status: 403, details: "policy_denied" });
  });

  it("replaces a status below 200 with 200", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send({ immediate_response: { status: { code: 100 } } });
    });
    const res = await send({ port: e.endpointPort });
    expect(res.status).toBe(200);
    expect(upstream.requests).toHaveLength(0);
  });
});

describe("router and stats", () => {
  it("adds x-envoy-expected-rq-timeout-ms after ext_proc, keeps x-request-id and x-forwarded-proto, writes :authority as Host, and records what left", async () => {
    const e = await start();
    let requestId = "";
    fake.setScript(async (s) => {
      const m = await s.next();
      requestId = sentHeader(m, "x-request-id") ?? "";
      s.send({ request_headers: { response: { header_mutation: { set_headers: [setRaw("authorization", "signed")] } } } });
    });
    const res = await send({ port: e.endpointPort, path: "/b/k" });
    expect(res.status).toBe(200);
    const got = upstream.requests[0];
    expect(got?.headers.host).toBe("s3.us-east-1.amazonaws.com");
    expect(got?.headers["x-envoy-expected-rq-timeout-ms"]).toBe("30000");
    expect(got?.headers["x-request-id"]).toBe(requestId);
    expect(got?.headers["x-forwarded-proto"]).toBe("http");
    const record = e.stats.upstreamRequests[0];
    expect(record).toMatchObject({ method: "GET", path: "/b/k", authority: "s3.us-east-1.amazonaws.com", complete: true });
    expect(record?.headers.authorization).toBe("signed");
    expect(e.stats).toMatchObject({ streams_started: 1, stream_msgs_sent: 1, stream_msgs_received: 1, streams_closed: 1 });
    // With body mode NONE the headers response is the last one: Envoy half-closes the stream.
    expect(await fake.streams[0]?.closedByClient).toBe("end");
  });

  it("proxies an absolute-form request on the CONNECT port through the plain listener: :scheme http, the URL's authority with its port stripped (strip_any_host_port)", async () => {
    const e = await start();
    fake.setScript(async (s) => {
      await s.next();
      s.send(CONTINUE_HEADERS);
    });
    const res = await send({ port: e.connectPort, path: "http://sts.amazonaws.com:80/?Action=GetCallerIdentity" });
    expect(res.status).toBe(200);
    const m = fake.streams[0]?.received[0];
    expect(sentHeader(m, ":authority")).toBe("sts.amazonaws.com");
    expect(sentHeader(m, ":path")).toBe("/?Action=GetCallerIdentity");
    expect(sentHeader(m, ":scheme")).toBe("http");
    expect(upstream.requests[0]?.headers.host).toBe("sts.amazonaws.com");
  });
});
