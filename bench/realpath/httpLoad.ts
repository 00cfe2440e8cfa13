/**
 * The real-path load generator: a separate process (forked by bench/realpath/run.ts) that speaks
 * HTTP/1.1 to Envoy the way an SDK does, over keep-alive connections:
 *   endpoint mode  plain HTTP to endpoint_in;
 *   proxy mode     CONNECT host:443 to connect_in, then TLS (SNI = the AWS host, the bench CA
 *                  trusted) inside the tunnel, then the requests.
 * Loads: "closed" (every connection sends its next request when the last one is answered: the most
 * requests per second), "paced" (requests start on a fixed schedule, open loop; latency counts from
 * the scheduled start, so queueing behind a slow answer is counted), "upload" (one connection,
 * uploads back to back).
 *
 * Protocol with the parent (IPC): child "ready" (all connections open) → parent "go" → child warms
 * up, sends "measuring" when the measured window opens → child sends "result" when it closes (after
 * the requests in flight are answered). The parent reads /proc around "measuring" and "result".
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { LatencyHistogram } from "../histogram.js";
import { requestFor, type RealScenario } from "./requests.js";

export interface HttpLoadConfig {
  readonly port: number;
  readonly mode: "endpoint" | "proxy";
  readonly caPem: string;
  readonly scenario: RealScenario;
  readonly connections: number;
  readonly load: "closed" | "paced" | "upload";
  /** paced: requests per second. */
  readonly rate: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly uploadBytes: number;
}

export interface HttpLoadResult {
  readonly completed: number;
  readonly errors: number;
  readonly firstError: string | undefined;
  readonly windowMs: number;
  readonly clientCpuSeconds: number;
  /** paced: requests whose scheduled start found every connection busy (they waited in a queue). */
  readonly queued: number;
  readonly bytesSent: number;
  readonly histogram: { counts: number[]; maxMicros: number; sumMicros: number };
}

export type HttpLoadMessage = { type: "ready" } | { type: "measuring" } | ({ type: "result" } & HttpLoadResult) | { type: "fatal"; error: string };

/** One keep-alive connection: sends a request, reads one answer (status, content-length or chunked body). */
class Conn {
  private buf: Buffer = Buffer.alloc(0);
  private pending: { resolve: (status: number) => void; reject: (e: Error) => void } | undefined;
  private bodyLeft = -1;
  private chunked = false;
  private status = 0;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on("data", (b: Buffer) => this.onData(b));
    const gone = (err?: Error): void => {
      this.closed = true;
      const p = this.pending;
      this.pending = undefined;
      p?.reject(err ?? new Error("connection closed by Envoy"));
    };
    socket.on("error", gone);
    socket.on("close", () => gone());
  }

  send(head: Buffer, body: Buffer): Promise<number> {
    if (this.closed) return Promise.reject(new Error("connection closed"));
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.status = 0;
      this.bodyLeft = -1;
      if (body.length === 0) this.socket.write(head);
      else if (body.length < 65536) this.socket.write(Buffer.concat([head, body]));
      else {
        this.socket.write(head);
        this.socket.write(body);
      }
    });
  }

  private onData(b: Buffer): void {
    this.buf = this.buf.length === 0 ? b : Buffer.concat([this.buf, b]);
    for (;;) {
      if (this.status === 0) {
        const end = this.buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const text = this.buf.subarray(0, end).toString("latin1");
        this.buf = this.buf.subarray(end + 4);
        this.status = Number(text.slice(9, 12));
        const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text);
        this.chunked = /\r\ntransfer-encoding:\s*chunked/i.test(text);
        this.bodyLeft = cl ? Number(cl[1]) : this.chunked ? -1 : 0;
      }
      if (this.chunked) {
        const end = this.buf.indexOf("0\r\n\r\n");
        if (end < 0) return;
        this.buf = this.buf.subarray(end + 5);
      } else {
        if (this.buf.length < this.bodyLeft) return;
        this.buf = this.buf.subarray(this.bodyLeft);
      }
      const p = this.pending;
      const status = this.status;
      this.pending = undefined;
      this.status = 0;
      p?.resolve(status);
      if (this.buf.length === 0) return;
    }
  }
}

function readHead(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let acc = "";
    const onData = (b: Buffer): void => {
      acc += b.toString("latin1");
      const end = acc.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
      socket.off("error", reject);
      if (end + 4 < acc.length) reject(new Error("bytes after the CONNECT answer"));
      else resolve(acc.slice(0, end));
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
}

async function open(cfg: HttpLoadConfig, host: string): Promise<Conn> {
  const plain = netConnect({ host: "127.0.0.1", port: cfg.port });
  await new Promise<void>((resolve, reject) => {
    plain.once("connect", resolve);
    plain.once("error", reject);
  });
  if (cfg.mode === "endpoint") return new Conn(plain);
  plain.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\n\r\n`);
  const answer = await readHead(plain);
  if (!answer.startsWith("HTTP/1.1 200")) throw new Error(`CONNECT ${host}:443 answered: ${answer.split("\r\n")[0] ?? ""}`);
  const tls = tlsConnect({ socket: plain, servername: host, ca: cfg.caPem, ALPNProtocols: ["http/1.1"] });
  await new Promise<void>((resolve, reject) => {
    tls.once("secureConnect", resolve);
    tls.once("error", reject);
  });
  return new Conn(tls);
}

const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function run(cfg: HttpLoadConfig, send: (m: HttpLoadMessage) => void, go: Promise<void>): Promise<void> {
  const req = requestFor(cfg.scenario, (awsHost) => (cfg.mode === "endpoint" ? `127.0.0.1:${cfg.port}` : awsHost), cfg.uploadBytes);
  const conns: Conn[] = [];
  for (let i = 0; i < cfg.connections; i++) conns.push(await open(cfg, req.host));
  send({ type: "ready" });
  await go;

  const hist = new LatencyHistogram();
  let measuring = false;
  let stopping = false;
  let completed = 0;
  let errors = 0;
  let queued = 0;
  let bytesSent = 0;
  let firstError: string | undefined;
  let inFlight = 0;
  const requestBytes = req.head.length + req.body.length;

  const exchange = async (i: number, startUs: number): Promise<void> => {
    let c = conns[i] as Conn;
    if (c.closed) {
      c = await open(cfg, req.host);
      conns[i] = c;
    }
    inFlight++;
    try {
      const status = await c.send(req.head, req.body);
      if (measuring) {
        bytesSent += requestBytes;
        if (status === req.expectStatus) {
          completed++;
          hist.record(nowUs() - startUs);
        } else {
          errors++;
          firstError ??= `status ${status}, expected ${req.expectStatus}`;
        }
      }
    } catch (err) {
      if (measuring) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
    } finally {
      inFlight--;
    }
  };

  let windowStart = 0;
  const cpu0 = { v: process.cpuUsage() };
  const openWindow = (): void => {
    measuring = true;
    windowStart = performance.now();
    cpu0.v = process.cpuUsage();
    send({ type: "measuring" });
  };

  const warmupEnd = performance.now() + cfg.warmupS * 1000;
  const end = warmupEnd + cfg.durationS * 1000;
  const ticker = setInterval(() => {
    const t = performance.now();
    if (!measuring && t >= warmupEnd) openWindow();
    if (t >= end) stopping = true;
  }, 5);

  if (cfg.load === "closed" || cfg.load === "upload") {
    await Promise.all(
      conns.map(async (_, i) => {
        while (!stopping) await exchange(i, nowUs());
      }),
    );
  } else {
    // Paced: request k starts at t0 + k / rate on the first idle connection, or waits for one.
    const idle: number[] = conns.map((_, i) => i);
    const waiting: number[] = [];
    const t0 = nowUs();
    const intervalUs = 1e6 / cfg.rate;
    let k = 0;
    const start = (i: number, at: number): void => {
      void exchange(i, at).then(() => {
        const next = waiting.shift();
        if (next !== undefined && !stopping) start(i, next);
        else idle.push(i);
      });
    };
    while (!stopping) {
      const now = nowUs();
      while (t0 + k * intervalUs <= now) {
        const at = t0 + k * intervalUs;
        k++;
        const i = idle.pop();
        if (i !== undefined) start(i, at);
        else {
          if (measuring) queued++;
          waiting.push(at);
        }
      }
      await sleep(1);
    }
    const drainBy = performance.now() + 10_000;
    while (inFlight > 0 && performance.now() < drainBy) await sleep(2);
  }
  clearInterval(ticker);
  const windowMs = performance.now() - windowStart;
  const cpu = process.cpuUsage(cpu0.v);
  for (const c of conns) c.socket.destroy();
  send({ type: "result", completed, errors, firstError, windowMs, clientCpuSeconds: (cpu.user + cpu.system) / 1e6, queued, bytesSent, histogram: hist.toJSON() });
}

if (process.send) {
  const cfg = JSON.parse(process.env.BENCH_HTTP_LOAD ?? "{}") as HttpLoadConfig;
  const send = (m: HttpLoadMessage): void => {
    process.send?.(m);
  };
  let release: () => void = () => undefined;
  const go = new Promise<void>((r) => (release = r));
  process.on("message", (m: { cmd?: string }) => {
    if (m.cmd === "go") release();
  });
  // A lost parent must not leave load running.
  process.on("disconnect", () => process.exit(0));
  const hardLimit = setTimeout(() => {
    send({ type: "fatal", error: "hard time limit reached" });
    process.exit(1);
  }, (cfg.warmupS + cfg.durationS + 600) * 1000);
  hardLimit.unref();
  run(cfg, send, go).then(
    () => process.disconnect(),
    (err: unknown) => {
      send({ type: "fatal", error: err instanceof Error ? err.message : String(err) });
      process.exitCode = 1;
      process.disconnect();
    },
  );
}
