/**
 * An ext_proc stream the test drives step by step, the way Envoy does for a request whose body
 * arrives slowly: send the headers, read countersign's answer (a mode_override asking for the
 * buffered body), and send the body only when the test says so. Used to hold a request in flight
 * across a reload or a shutdown.
 */
import type { ProcessingResponse__Output } from "../../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import type { ExternalProcessorClient } from "../../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { applyMutation, type TestRequest } from "../../support/extProcClient.js";

export interface HeldStream {
  /** countersign's answer to the headers. */
  readonly headersResponse: ProcessingResponse__Output;
  /** Sends the body (end_of_stream) and resolves with the request's headers as Envoy forwards them, or the refusal status. */
  sendBody(): Promise<{ kind: "forwarded"; headers: Array<[string, string]> } | { kind: "refused"; status: number }>;
  /** Whether the stream ended (server side) or failed before the body was sent. */
  readonly closedEarly: () => string | undefined;
}

export async function holdAfterHeaders(client: ExternalProcessorClient, req: TestRequest): Promise<HeldStream> {
  const call = client.Process();
  const responses: ProcessingResponse__Output[] = [];
  let waiting: ((r: ProcessingResponse__Output | Error) => void) | undefined;
  let failure: string | undefined;
  const deliver = (r: ProcessingResponse__Output | Error): void => {
    const w = waiting;
    waiting = undefined;
    if (w) w(r);
  };
  call.on("data", (res: ProcessingResponse__Output) => {
    responses.push(res);
    deliver(res);
  });
  call.on("error", (err: Error) => {
    failure = `stream error: ${err.message}`;
    deliver(err);
  });
  call.on("end", () => {
    failure ??= "stream ended by the server";
    deliver(new Error(failure));
  });
  const next = (): Promise<ProcessingResponse__Output> =>
    new Promise((resolve, reject) => {
      waiting = (r) => (r instanceof Error ? reject(r) : resolve(r));
    });

  let headers: Array<[string, string]> = [[":method", req.method], [":path", req.path], [":authority", req.authority], ...req.headers];
  const first = next();
  call.write({
    request_headers: {
      headers: { headers: [[":scheme", "https"] as [string, string], ...headers].map(([key, v]) => ({ key, raw_value: Buffer.from(v, "utf8") })) },
      end_of_stream: false,
    },
  });
  const headersResponse = await first;
  if (headersResponse.mode_override?.request_body_mode !== "BUFFERED") {
    call.end();
    throw new Error(`countersign did not ask for the body: ${JSON.stringify(headersResponse.response)}`);
  }
  headers = applyMutation(headers, headersResponse.request_headers?.response?.header_mutation ?? null);

  return {
    headersResponse,
    closedEarly: () => failure,
    async sendBody() {
      const answer = next();
      call.write({ request_body: { body: req.body ?? Buffer.alloc(0), end_of_stream: true } });
      const res = await answer;
      call.end();
      if (res.immediate_response) {
        return { kind: "refused", status: Number(res.immediate_response.status?.code ?? Number.NaN) };
      }
      const mutation = res.request_body?.response?.header_mutation ?? null;
      return { kind: "forwarded", headers: applyMutation(headers, mutation).filter(([k]) => !k.startsWith(":")) };
    },
  };
}
