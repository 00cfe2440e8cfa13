/**
 * The ext_proc gRPC client side: one `Process` bidi stream per HTTP request, adapted to the
 * events the filter expects (`onReceiveMessage`, `onGrpcError`, `onGrpcClose`). Messages that
 * arrived before the final status are always delivered first, as on Envoy's HTTP/2 stream.
 * Once the filter closes a stream, nothing more is delivered from it.
 */
import * as grpc from "@grpc/grpc-js";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import type { ProcessingResponse__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import { loadExtProcProtos } from "../../src/extproc/protos.js";
import type { OpenProcessStream } from "./extProcFilter.js";

/** Envoy's `remote_close_timeout_milliseconds` runtime default for a graceful close. */
const REMOTE_CLOSE_TIMEOUT_MS = 1000;
/** Safety net in case a stream's readable side never reports its end after the status. */
const STATUS_FALLBACK_MS = 100;

export function createExtProcClient(address: string): ExternalProcessorClient {
  const Client = loadExtProcProtos().envoy.service.ext_proc.v3.ExternalProcessor;
  return new Client(address, grpc.credentials.createInsecure());
}

export interface StreamOpener {
  open: OpenProcessStream;
  /** Resets every stream still open (the emulator is shutting down). */
  cancelAll(): void;
}

export function grpcStreamOpener(client: ExternalProcessorClient): StreamOpener {
  const live = new Set<{ cancel(): void }>();
  const open: OpenProcessStream = (events) => {
    const call = client.Process();
    live.add(call);
    call.once("status", () => live.delete(call));
    let detached = false;
    let readEnded = false;
    let status: grpc.StatusObject | null = null;

    const deliverStatus = (): void => {
      if (detached || status === null) return;
      detached = true;
      if (status.code === grpc.status.OK) events.onGrpcClose();
      else events.onGrpcError(status.code, status.details);
    };

    call.on("data", (message: ProcessingResponse__Output) => {
      if (!detached) events.onMessage(message);
    });
    call.on("end", () => {
      readEnded = true;
      deliverStatus();
    });
    call.on("status", (s: grpc.StatusObject) => {
      status = s;
      if (readEnded) deliverStatus();
      else setTimeout(deliverStatus, STATUS_FALLBACK_MS).unref();
    });
    // The status event carries the error; this listener only keeps it from being thrown.
    call.on("error", () => undefined);

    return {
      send(request) {
        if (!detached) call.write(request);
      },
      close() {
        detached = true;
        call.end();
        call.cancel();
      },
      closeGracefully() {
        detached = true;
        call.end();
        if (status !== null) return;
        const timer = setTimeout(() => call.cancel(), REMOTE_CLOSE_TIMEOUT_MS);
        timer.unref();
        call.once("status", () => clearTimeout(timer));
      },
    };
  };
  return {
    open,
    cancelAll() {
      for (const call of live) call.cancel();
      live.clear();
    },
  };
}
