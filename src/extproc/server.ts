/**
 * The gRPC side: owns the ExternalProcessor service and the per-stream loop. It knows nothing of
 * SigV4; each stream's messages go, strictly in order, to one ExtProcStream.
 */
import * as grpc from "@grpc/grpc-js";
import type { ProcessingRequest__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { ProcessingResponse } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import type { SigningContext } from "./context.js";
import { answerSerializer } from "./mutations.js";
import { loadExtProcProtos } from "./protos.js";
import { ExtProcStream } from "./stream.js";

export interface StreamObserver {
  streamOpened?(): void;
  streamClosed?(): void;
  grpcError?(kind: string): void;
}

type ProcessCall = grpc.ServerDuplexStream<ProcessingRequest__Output, ProcessingResponse>;

export function extProcHandlers(ctx: SigningContext, observer: StreamObserver = {}): grpc.UntypedServiceImplementation {
  return {
    Process(call: ProcessCall): void {
      observer.streamOpened?.();
      const stream = new ExtProcStream(ctx);
      // Messages of one stream are handled one at a time, in order: those that arrive while one is
      // being handled wait here, and the loop below takes them (no promise chain per message).
      const pending: ProcessingRequest__Output[] = [];
      let running = false;
      let ended = false;
      let closed = false;
      const close = (): void => {
        if (closed) return;
        closed = true;
        stream.release();
        observer.streamClosed?.();
      };
      const endCall = (): void => {
        if (!call.destroyed) call.end();
        close();
      };
      const drain = async (): Promise<void> => {
        running = true;
        try {
          for (let msg = pending.shift(); msg !== undefined; msg = pending.shift()) {
            if (closed) break; // cancelled: nothing more is signed for it
            const response = await stream.handle(msg);
            if (!call.cancelled && !call.destroyed) call.write(response);
          }
        } catch (err) {
          // handle() never throws; if anything here does, end the stream rather than leave it
          // hanging (Envoy answers 500 and forwards nothing).
          observer.grpcError?.("INTERNAL");
          call.destroy(err instanceof Error ? err : new Error(String(err)));
          close();
        }
        pending.length = 0;
        running = false;
        if (ended) endCall();
      };
      call.on("data", (msg: ProcessingRequest__Output) => {
        pending.push(msg);
        if (!running) void drain();
      });
      call.on("end", () => {
        ended = true;
        if (!running) endCall();
      });
      call.on("error", (err: grpc.ServiceError) => {
        observer.grpcError?.(grpc.status[err.code] ?? "UNKNOWN");
        close();
      });
      call.on("cancelled", () => close());
      call.on("close", () => close());
    },
  };
}

/** The schema's ceiling for limits.max_buffered_body_bytes (64 MiB) plus 1 MiB for headers. */
export const MAX_GRPC_MESSAGE_BYTES = 65 * 1024 * 1024;

export interface ExtProcServer {
  readonly server: grpc.Server;
  readonly port: number;
  shutdown(graceMs: number): Promise<void>;
}

export async function startExtProcServer(
  address: string,
  ctx: SigningContext,
  observer: StreamObserver = {},
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<ExtProcServer> {
  const protos = loadExtProcProtos();
  const server = new grpc.Server({
    // One message holds at most a BUFFERED body (policy limits.max_buffered_body_bytes, at most
    // 64 MiB) or a STREAMED piece (Envoy's buffer limit), plus its headers.
    "grpc.max_receive_message_length": MAX_GRPC_MESSAGE_BYTES,
    "grpc.keepalive_permit_without_calls": 1,
    // Channelz stays on (its default) although nothing reads it: with it off, grpc-js does not
    // track sessions in the map forceShutdown() closes, so a stream held past the shutdown grace
    // would keep the process alive (test/ops/shutdown.spec.ts).
  });
  // Answers to STREAMED body pieces are written to the wire from the re-signed pieces (mutations.ts).
  const service = protos.envoy.service.ext_proc.v3.ExternalProcessor.service;
  const processMethod = { ...service.Process, responseSerialize: answerSerializer(service.Process.responseSerialize) };
  server.addService({ ...service, Process: processMethod }, extProcHandlers(ctx, observer));
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    server,
    port,
    shutdown: (graceMs: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
