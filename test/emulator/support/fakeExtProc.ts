/**
 * A scripted ext_proc gRPC server for the emulator's own tests (not countersign): each test sets
 * a script that reads the emulator's messages one by one and answers exactly what the test says.
 */
import * as grpc from "@grpc/grpc-js";
import type { ProcessingRequest__Output } from "../../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { ProcessingResponse } from "../../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import { loadExtProcProtos } from "../../../src/extproc/protos.js";

export interface ScriptedStream {
  /** Every message received on this stream so far. */
  readonly received: ProcessingRequest__Output[];
  /** The next message from the emulator (rejects after `timeoutMs`, or if the stream ends). */
  next(timeoutMs?: number): Promise<ProcessingRequest__Output>;
  send(response: ProcessingResponse): void;
  /** Ends the stream with status OK. */
  end(): void;
  /** Ends the stream with an error status. */
  fail(code: grpc.status, details: string): void;
  /** Resolves when the emulator half-closes ("end") or resets ("cancelled") the stream. */
  readonly closedByClient: Promise<"end" | "cancelled">;
}

export type Script = (stream: ScriptedStream) => Promise<void> | void;

type Call = grpc.ServerDuplexStream<ProcessingRequest__Output, ProcessingResponse>;

export class FakeExtProc {
  readonly streams: ScriptedStream[] = [];
  readonly scriptErrors: unknown[] = [];
  private script: Script = () => undefined;

  private constructor(
    private readonly server: grpc.Server,
    readonly address: string,
  ) {}

  static async start(): Promise<FakeExtProc> {
    const server = new grpc.Server();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const fake = new FakeExtProc(server, `127.0.0.1:${port}`);
    server.addService(loadExtProcProtos().envoy.service.ext_proc.v3.ExternalProcessor.service, {
      Process: (call: Call) => fake.onStream(call),
    });
    return fake;
  }

  setScript(script: Script): void {
    this.script = script;
    this.streams.length = 0;
    this.scriptErrors.length = 0;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }

  private onStream(call: Call): void {
    const stream = scripted(call);
    this.streams.push(stream);
    Promise.resolve()
      .then(() => this.script(stream))
      .catch((err: unknown) => this.scriptErrors.push(err));
  }
}

function scripted(call: Call): ScriptedStream {
  const received: ProcessingRequest__Output[] = [];
  const queue: ProcessingRequest__Output[] = [];
  const waiters: { resolve(m: ProcessingRequest__Output): void; reject(e: Error): void }[] = [];
  let finished = false;
  let resolveClosed: (how: "end" | "cancelled") => void = () => undefined;
  const closedByClient = new Promise<"end" | "cancelled">((r) => (resolveClosed = r));

  call.on("data", (m: ProcessingRequest__Output) => {
    received.push(m);
    const waiter = waiters.shift();
    if (waiter) waiter.resolve(m);
    else queue.push(m);
  });
  const onClientClose = (how: "end" | "cancelled"): void => {
    resolveClosed(how);
    for (const w of waiters.splice(0)) w.reject(new Error(`stream ${how} by the client`));
  };
  call.on("end", () => {
    onClientClose("end");
    // A well-behaved server ends its side when the client half-closes.
    if (!finished) {
      finished = true;
      call.end();
    }
  });
  call.on("cancelled", () => onClientClose("cancelled"));
  call.on("error", () => onClientClose("cancelled"));

  return {
    received,
    closedByClient,
    next(timeoutMs = 3000) {
      const queued = queue.shift();
      if (queued) return Promise.resolve(queued);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no message from the emulator in time")), timeoutMs);
        waiters.push({
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
          reject: (e) => {
            clearTimeout(timer);
            reject(e);
          },
        });
      });
    },
    send(response) {
      if (!finished) call.write(response);
    },
    end() {
      if (finished) return;
      finished = true;
      call.end();
    },
    fail(code, details) {
      if (finished) return;
      finished = true;
      call.emit("error", { code, details });
    },
  };
}
