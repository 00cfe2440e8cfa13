/**
 * The transport floor: an ext_proc server on the same stack as countersign (@grpc/grpc-js,
 * proto-loader with the same options and message limits) that answers every message with an
 * empty CONTINUE of the matching kind and ends the stream when the client does.
 *
 *   node --import tsx bench/noopServer.ts [--listen 127.0.0.1:0]
 *
 * Prints one JSON line {"msg":"noop serving","grpcPort":N} once listening; SIGTERM/SIGINT stop it.
 */
import * as grpc from "@grpc/grpc-js";
import { parseArgs } from "node:util";
import type { ProcessingRequest__Output } from "../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { ProcessingResponse } from "../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import { loadExtProcProtos } from "../src/extproc/protos.js";

type ProcessCall = grpc.ServerDuplexStream<ProcessingRequest__Output, ProcessingResponse>;

/** The empty answer of the kind Envoy expects for each request message. */
export function noopAnswer(msg: ProcessingRequest__Output): ProcessingResponse {
  switch (msg.request) {
    case "request_headers":
      return { request_headers: {} };
    case "request_body":
      return { request_body: {} };
    case "request_trailers":
      return { request_trailers: {} };
    case "response_headers":
      return { response_headers: {} };
    case "response_body":
      return { response_body: {} };
    case "response_trailers":
      return { response_trailers: {} };
    default:
      return { request_headers: {} };
  }
}

function handlers(): grpc.UntypedServiceImplementation {
  return {
    Process(call: ProcessCall): void {
      call.on("data", (msg: ProcessingRequest__Output) => {
        call.write(noopAnswer(msg));
      });
      call.on("end", () => call.end());
      call.on("error", () => undefined);
    },
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { listen: { type: "string", default: "127.0.0.1:0" } } });
  const protos = loadExtProcProtos();
  // Same server options as src/extproc/server.ts.
  // The same server options as countersign's (src/extproc/server.ts), so the floor is the same stack.
  const server = new grpc.Server({ "grpc.max_receive_message_length": 65 * 1024 * 1024, "grpc.keepalive_permit_without_calls": 1 });
  server.addService(protos.envoy.service.ext_proc.v3.ExternalProcessor.service, handlers());
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(values.listen as string, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  process.stdout.write(`${JSON.stringify({ msg: "noop serving", grpcPort: port })}\n`);
  const stop = (): void => {
    server.forceShutdown();
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`noopServer: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
