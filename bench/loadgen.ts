/**
 * Load generator, run as a child process of bench/run.ts (IPC channel required). It keeps
 * `concurrency` ext_proc streams busy over one HTTP/2 connection and does nothing else: requests
 * are encoded once up front and answers are only scanned at their top level, so the client costs
 * as little CPU as the gRPC stack allows.
 *
 * Configuration: JSON in the BENCH_LOADGEN environment variable (see LoadgenConfig).
 * IPC, parent -> child: {cmd:"go"} {cmd:"mark"} {cmd:"stop"} {cmd:"release"}
 *      child -> parent: {type:"ready"} {type:"marked"} {type:"holding"} {type:"result", ...} {type:"fatal"}
 *
 * Modes:
 *   closed  closed loop: each stream starts its next exchange when the previous one has closed.
 *           Latency is per exchange: first message written -> last answer read.
 *   paced   open loop at `rate` exchanges per second (at most `concurrency` in flight; a start
 *           that would pass it is skipped and counted in `skipped`), so that two servers can be
 *           compared at the same request rate.
 *   hold    opens `holdStreams` streams, each stopped after its BUFFERED headers answer, reports
 *           "holding", waits for "release", then finishes them all; `holdRounds` times.
 *   upload  one chunk-signed upload of `uploadBytes` decoded bytes, `window` messages in flight.
 */
import * as grpc from "@grpc/grpc-js";
import { performance } from "node:perf_hooks";
import { LatencyHistogram } from "./histogram.js";
import { BODY_MODE_BUFFERED, BODY_MODE_STREAMED, PROCESS_METHOD, encodeRequestBodyFrom, scanResponse, type ScannedResponse } from "./protocol.js";
import { BENCH_ACCESS_KEY_ID, chunkedUploadScenario, decodeResponse, encodeRequest, headersRequest, scenarioByName, type Scenario } from "./scenarios.js";

export interface LoadgenConfig {
  readonly address: string;
  readonly mode: "closed" | "paced" | "hold" | "upload";
  /** Exchanges started per second (paced mode). */
  readonly rate?: number;
  /** Scenario name (closed and hold modes). */
  readonly scenario: string;
  readonly concurrency: number;
  /** No-op floor: send the body even though no mode_override asked for it. */
  readonly forceBody: boolean;
  /** What the answers must look like: countersign's (signed / refused as the scenario says) or the no-op's. */
  readonly expect: "countersign" | "noop";
  /** The process exits on its own after this long, whatever happens. */
  readonly hardLimitMs: number;
  /** Upper bound on exchanges started (closed mode). */
  readonly maxExchanges: number;
  readonly holdStreams: number;
  readonly holdRounds: number;
  readonly uploadBytes: number;
  /** request_body messages in flight during a streamed body. */
  readonly window: number;
}

type ParentMessage = { cmd: "go" } | { cmd: "mark" } | { cmd: "stop" } | { cmd: "release" };

interface Prepared {
  readonly scenario: Scenario;
  readonly headers: Buffer;
  readonly bufferedBody: Buffer | undefined;
  /** Streamed body messages (small bodies are encoded once and reused). */
  readonly streamedMessages: { count: number; at(i: number): Buffer } | undefined;
}

type ExchangeOutcome = { ok: true; latencyUs: number; refused: boolean } | { ok: false; error: string };

const identity = (b: Buffer): Buffer => b;

function send(msg: object): void {
  process.send?.(msg);
}

function prepare(scenario: Scenario): Prepared {
  const headers = encodeRequest(headersRequest(scenario.head, scenario.headersEndOfStream));
  let bufferedBody: Buffer | undefined;
  let streamedMessages: Prepared["streamedMessages"];
  if (scenario.body.kind === "buffered") bufferedBody = encodeRequestBodyFrom(scenario.body.bytes, true);
  if (scenario.body.kind === "streamed") {
    const body = scenario.body.body;
    if (body.encodedLength <= 8 * 1024 * 1024) {
      const all = Array.from({ length: body.messageCount }, (_, i) => body.message(i));
      streamedMessages = { count: all.length, at: (i) => all[i] as Buffer };
    } else {
      streamedMessages = { count: body.messageCount, at: (i) => body.message(i) };
    }
  }
  return { scenario, headers, bufferedBody, streamedMessages };
}

/** Does this answer fit what the scenario expects at this step? Returns an error text if not. */
function checkAnswer(cfg: LoadgenConfig, p: Prepared, step: "headers" | "body", r: ScannedResponse): string | undefined {
  if (cfg.expect === "noop") {
    const want = step === "headers" ? "request_headers" : "request_body";
    return r.kind === want ? undefined : `expected ${want}, got ${r.kind}`;
  }
  if (p.scenario.expect === "refused") return r.kind === "immediate_response" ? undefined : `expected immediate_response, got ${r.kind}`;
  if (r.kind === "immediate_response") return "countersign refused a request the scenario expects signed";
  if (step === "headers") {
    if (r.kind !== "request_headers") return `expected request_headers, got ${r.kind}`;
    const want = p.scenario.body.kind === "buffered" ? BODY_MODE_BUFFERED : p.scenario.body.kind === "streamed" ? BODY_MODE_STREAMED : undefined;
    if (r.requestBodyMode !== want) return `expected request_body_mode ${String(want)}, got ${String(r.requestBodyMode)}`;
    return undefined;
  }
  return r.kind === "request_body" ? undefined : `expected request_body, got ${r.kind}`;
}

/**
 * One request through one Process stream, Envoy style. `done` is called once, after the stream
 * has closed; the latency runs from the first write to the last answer.
 */
function exchange(
  client: grpc.Client,
  cfg: LoadgenConfig,
  p: Prepared,
  done: (o: ExchangeOutcome) => void,
  hooks: { onHeadersAnswer?: (proceed: () => void) => void; capture?: Buffer[] } = {},
): void {
  const started = performance.now();
  const call = client.makeBidiStreamRequest(PROCESS_METHOD, identity, identity);
  let latencyUs = -1;
  let refused = false;
  let failure: string | undefined;
  let finished = false;
  let sent = 0;
  let answered = 0;
  let bodyStarted = false;
  const streamed = p.streamedMessages;

  const complete = (): void => {
    if (latencyUs < 0) latencyUs = (performance.now() - started) * 1000;
    call.end();
  };
  const fail = (why: string): void => {
    failure ??= why;
    call.cancel();
  };
  const pump = (): void => {
    if (!streamed) return;
    while (sent < streamed.count && sent - answered < cfg.window) call.write(streamed.at(sent++));
  };
  const sendBody = (): void => {
    bodyStarted = true;
    if (p.bufferedBody) call.write(p.bufferedBody);
    else pump();
  };

  call.on("data", (buf: Buffer) => {
    if (latencyUs >= 0 || failure) return;
    hooks.capture?.push(buf);
    let r: ScannedResponse;
    try {
      r = scanResponse(buf);
    } catch (err) {
      fail(`unreadable answer: ${err instanceof Error ? err.message : String(err)}`);
      return;
    }
    const bad = checkAnswer(cfg, p, bodyStarted ? "body" : "headers", r);
    if (bad) {
      fail(bad);
      return;
    }
    if (r.kind === "immediate_response") {
      refused = true;
      complete();
      return;
    }
    if (r.kind === "request_headers") {
      const wantsBody = p.scenario.body.kind !== "none" && (cfg.forceBody || r.requestBodyMode === BODY_MODE_BUFFERED || r.requestBodyMode === BODY_MODE_STREAMED);
      if (!wantsBody) {
        complete();
        return;
      }
      if (hooks.onHeadersAnswer) hooks.onHeadersAnswer(sendBody);
      else sendBody();
      return;
    }
    // A body answer.
    answered++;
    if (p.bufferedBody || !streamed || answered >= streamed.count) complete();
    else pump();
  });
  call.on("error", (err: grpc.ServiceError) => {
    if (latencyUs < 0) failure ??= `${grpc.status[err.code] ?? err.code}: ${err.details}`;
  });
  call.on("status", (status: grpc.StatusObject) => {
    if (finished) return;
    finished = true;
    if (failure) done({ ok: false, error: failure });
    else if (latencyUs < 0) done({ ok: false, error: `stream closed before the last answer (${grpc.status[status.code] ?? status.code}: ${status.details})` });
    else done({ ok: true, latencyUs, refused });
  });
  call.write(p.headers);
}

function exchangeOnce(client: grpc.Client, cfg: LoadgenConfig, p: Prepared, capture?: Buffer[]): Promise<ExchangeOutcome> {
  return new Promise((resolve) => exchange(client, cfg, p, resolve, { capture }));
}

/** Full decode of one exchange's answers: the server really signed with the bench key (or refused). */
async function validateDeeply(client: grpc.Client, cfg: LoadgenConfig, p: Prepared): Promise<void> {
  const captured: Buffer[] = [];
  const o = await exchangeOnce(client, cfg, p, captured);
  if (!o.ok) throw new Error(`validation exchange failed: ${o.error}`);
  if (cfg.expect === "noop") return;
  const answers = captured.map((b) => decodeResponse(b));
  if (p.scenario.expect === "refused") {
    const code = answers[0]?.immediate_response?.status?.code;
    if (code !== "Forbidden" && code !== (403 as unknown)) throw new Error(`expected a 403 immediate_response, got ${JSON.stringify(code)}`);
    return;
  }
  const signing = p.scenario.body.kind === "buffered" ? answers[1]?.request_body?.response : answers[0]?.request_headers?.response;
  const auth = signing?.header_mutation?.set_headers.find((h) => h.header?.key === "authorization")?.header?.raw_value?.toString("utf8") ?? "";
  if (!auth.includes(`Credential=${BENCH_ACCESS_KEY_ID}/`)) throw new Error(`the answer does not carry an Authorization signed with the bench key (got ${JSON.stringify(auth.slice(0, 60))})`);
  if (p.scenario.body.kind === "streamed") {
    let out = 0;
    for (const a of answers.slice(1)) out += a.request_body?.response?.body_mutation?.body?.length ?? 0;
    if (out !== p.scenario.body.body.encodedLength) throw new Error(`re-signed body is ${out} bytes, sent ${p.scenario.body.body.encodedLength}`);
  }
}

function onParent(handler: (m: ParentMessage) => void): void {
  process.on("message", (m: unknown) => {
    if (typeof m === "object" && m !== null && "cmd" in m) handler(m as ParentMessage);
  });
}

function runClosedLoop(client: grpc.Client, cfg: LoadgenConfig, p: Prepared): void {
  const paced = cfg.mode === "paced";
  const rate = cfg.rate ?? 0;
  if (paced && !(rate > 0)) throw new Error("paced mode needs a rate above 0");
  let running = false;
  let skipped = 0;
  let markSkipped = 0;
  let pacedStart = 0;
  let pacedDue = 0;
  let issued = 0;
  let inflight = 0;
  let completed = 0;
  let refusedCount = 0;
  let errors = 0;
  let firstError: string | undefined;
  let recording = false;
  let hist = new LatencyHistogram();
  let markCompleted = 0;
  let markErrors = 0;
  let markCpu = process.cpuUsage();
  let markTime = performance.now();
  let onDrained: (() => void) | undefined;

  const launch = (): void => {
    if (!running || issued >= cfg.maxExchanges || (errors > 100 && errors > completed)) {
      if (inflight === 0) onDrained?.();
      return;
    }
    start();
  };
  const start = (): void => {
    issued++;
    inflight++;
    exchange(client, cfg, p, (o) => {
      inflight--;
      if (o.ok) {
        completed++;
        if (o.refused) refusedCount++;
        if (recording) hist.record(o.latencyUs);
      } else {
        errors++;
        firstError ??= o.error;
      }
      if (!paced) launch();
      else if (!running && inflight === 0) onDrained?.();
    });
  };
  /** Paced: every millisecond or so, start the exchanges that are due by now. */
  const tick = (): void => {
    if (!running) return;
    const due = Math.floor(((performance.now() - pacedStart) / 1000) * rate);
    for (; pacedDue < due; pacedDue++) {
      if (inflight >= cfg.concurrency || issued >= cfg.maxExchanges) skipped++;
      else start();
    }
    setTimeout(tick, 1);
  };

  onParent((m) => {
    switch (m.cmd) {
      case "go":
        running = true;
        if (paced) {
          pacedStart = performance.now();
          tick();
        } else {
          for (let i = 0; i < cfg.concurrency; i++) launch();
        }
        break;
      case "mark":
        recording = true;
        hist = new LatencyHistogram();
        markCompleted = completed;
        markErrors = errors;
        markSkipped = skipped;
        markCpu = process.cpuUsage();
        markTime = performance.now();
        send({ type: "marked" });
        break;
      case "stop": {
        const cpu = process.cpuUsage(markCpu);
        send({
          type: "result",
          completed: completed - markCompleted,
          errors: errors - markErrors,
          skipped: skipped - markSkipped,
          refused: refusedCount,
          firstError,
          windowMs: performance.now() - markTime,
          clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
          histogram: hist.toJSON(),
        });
        running = false;
        const exit = (): void => {
          client.close();
          process.exit(0);
        };
        onDrained = exit;
        if (inflight === 0) exit();
        setTimeout(exit, 5000).unref();
        break;
      }
      case "release":
        break;
    }
  });
}

function runHold(client: grpc.Client, cfg: LoadgenConfig, p: Prepared): void {
  let release: (() => void) | undefined;
  onParent((m) => {
    if (m.cmd === "release") release?.();
    if (m.cmd === "go") void rounds();
  });
  const rounds = async (): Promise<void> => {
    const hist = new LatencyHistogram();
    let errors = 0;
    let firstError: string | undefined;
    for (let round = 0; round < cfg.holdRounds; round++) {
      const proceeds: Array<() => void> = [];
      let allOpen: () => void = () => undefined;
      const opened = new Promise<void>((resolve) => (allOpen = resolve));
      const finished: Array<Promise<ExchangeOutcome>> = [];
      for (let i = 0; i < cfg.holdStreams; i++) {
        finished.push(
          new Promise((resolve) =>
            exchange(client, cfg, p, resolve, {
              onHeadersAnswer: (proceed) => {
                proceeds.push(proceed);
                if (proceeds.length === cfg.holdStreams) allOpen();
              },
            }),
          ),
        );
      }
      // A stream that fails before its headers answer would never arrive at the barrier.
      void Promise.all(finished).then(() => allOpen());
      await opened;
      send({ type: "holding", round, open: proceeds.length });
      await new Promise<void>((resolve) => (release = resolve));
      for (const proceed of proceeds) proceed();
      for (const o of await Promise.all(finished)) {
        if (o.ok) hist.record(o.latencyUs);
        else {
          errors++;
          firstError ??= o.error;
        }
      }
    }
    send({ type: "result", completed: hist.total, errors, refused: 0, firstError, windowMs: 0, clientCpuSeconds: 0, histogram: hist.toJSON() });
    client.close();
    setTimeout(() => process.exit(0), 100);
  };
}

function runUpload(client: grpc.Client, cfg: LoadgenConfig, p: Prepared): void {
  onParent((m) => {
    if (m.cmd !== "go") return;
    const cpu = process.cpuUsage();
    exchange(client, cfg, p, (o) => {
      const used = process.cpuUsage(cpu);
      const hist = new LatencyHistogram();
      if (o.ok) hist.record(o.latencyUs);
      send({
        type: "result",
        completed: o.ok ? 1 : 0,
        errors: o.ok ? 0 : 1,
        refused: 0,
        firstError: o.ok ? undefined : o.error,
        windowMs: o.ok ? o.latencyUs / 1000 : 0,
        clientCpuSeconds: (used.user + used.system) / 1e6,
        histogram: hist.toJSON(),
      });
      client.close();
      setTimeout(() => process.exit(0), 100);
    });
  });
}

async function main(): Promise<void> {
  const raw = process.env.BENCH_LOADGEN;
  if (!raw || !process.send) throw new Error("loadgen runs as a child of bench/run.ts (BENCH_LOADGEN and an IPC channel are required)");
  const cfg = JSON.parse(raw) as LoadgenConfig;
  const hard = setTimeout(() => {
    send({ type: "fatal", error: `hard time limit of ${cfg.hardLimitMs} ms reached` });
    process.exit(3);
  }, cfg.hardLimitMs);
  hard.unref();
  process.on("disconnect", () => process.exit(0));

  const scenario = cfg.mode === "upload" ? chunkedUploadScenario("upload", "upload", cfg.uploadBytes, 1) : scenarioByName(cfg.scenario);
  const p = prepare(scenario);
  const client = new grpc.Client(cfg.address, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    "grpc.max_send_message_length": 64 * 1024 * 1024,
  });
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));

  // Check once, with a full decode, that the server does what the scenario says (a small upload
  // stands in for the big one).
  const check = cfg.mode === "upload" ? prepare(scenarioByName("chunked-1m")) : p;
  await validateDeeply(client, cfg, check);

  if (cfg.mode === "closed" || cfg.mode === "paced") runClosedLoop(client, cfg, p);
  else if (cfg.mode === "hold") runHold(client, cfg, p);
  else runUpload(client, cfg, p);
  send({ type: "ready" });
}

main().catch((err: unknown) => {
  send({ type: "fatal", error: err instanceof Error ? err.message : String(err) });
  setTimeout(() => process.exit(1), 50);
});
