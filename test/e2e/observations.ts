/**
 * What the three witnesses of one end-to-end request saw, in a form tests compare:
 *   - the fake AWS: each request that reached it, as `Forwarded` (what left the proxy);
 *   - the proxy: ext_proc messages it sent to countersign (real Envoy's counter, summed over the
 *     two signing listeners, or the emulator's);
 *   - countersign: its decision log line for an Envoy request id.
 */
import type { RecordedRequest } from "../fakeaws/server.js";
import type { Stack } from "./harness.js";

/** One request as it reached the fake AWS (no dates or signatures: they differ run to run). */
export interface Forwarded {
  method: string;
  path: string;
  query: string;
  host: string;
  signedHeaders: string[];
  /** The fake's payload mode: `SHA256`, `UNSIGNED-PAYLOAD`, a `STREAMING-…` literal, `BODY-SHA256`. */
  payloadMode: string;
  verified: boolean;
  accessKeyId: string | undefined;
  status: number;
  operation: string | undefined;
  errorCode: string | undefined;
  /** content-length as forwarded (undefined: none). */
  contentLength: string | undefined;
  /** transfer-encoding as forwarded (undefined: none). */
  transferEncoding: string | undefined;
  bodySha256: string | undefined;
  bodyBytes: number;
  wireBodyBytes: number;
  /** The x-amz-content-sha256 that left the proxy. */
  contentSha256: string | undefined;
  /** Names of the headers that reached AWS, lower case, sorted. */
  headerNames: string[];
}

function header(r: RecordedRequest, name: string): string | undefined {
  return r.headers.find(([n]) => n.toLowerCase() === name)?.[1];
}

export function forwarded(r: RecordedRequest): Forwarded {
  return {
    method: r.method,
    path: r.path,
    query: r.query,
    host: r.host,
    signedHeaders: r.signedHeaders,
    payloadMode: r.payloadMode,
    verified: r.verified,
    accessKeyId: r.accessKeyId,
    status: r.status,
    operation: r.operation,
    errorCode: r.errorCode,
    contentLength: r.contentLength,
    transferEncoding: r.transferEncoding,
    bodySha256: r.bodySha256,
    bodyBytes: r.bodyBytes,
    wireBodyBytes: r.wireBodyBytes,
    contentSha256: header(r, "x-amz-content-sha256"),
    headerNames: [...new Set(r.headers.map(([n]) => n.toLowerCase()))].sort(),
  };
}

/** Every request that reached the fake AWS since `start` (an index into `fake.requests`). */
export function forwardedSince(stack: Stack, start: number): Forwarded[] {
  return stack.fake.requests.slice(start).map(forwarded);
}

/** Envoy's x-request-id of a request that reached the fake AWS. */
export function requestIdOf(r: RecordedRequest): string {
  const id = header(r, "x-request-id");
  if (id === undefined) throw new Error(`${r.method} ${r.path} reached the fake AWS without x-request-id`);
  return id;
}

const EXT_PROC_MSGS_SENT = /^http\.(tls_decap|plain_sign)\.ext_proc\.countersign\.stream_msgs_sent$/;

/** ext_proc messages the proxy has sent to countersign so far (headers, body chunks). */
export async function extProcMessagesSent(stack: Stack): Promise<number> {
  if (stack.emulator) return stack.emulator.stats.stream_msgs_sent;
  if (!stack.envoy) throw new Error("the stack has neither Envoy nor the emulator");
  let n = 0;
  for (const [name, value] of Object.entries(await stack.envoy.stats())) if (EXT_PROC_MSGS_SENT.test(name)) n += value;
  return n;
}

/** countersign's decision log line for one request (waits for it: stdout arrives asynchronously). */
export interface Decision {
  requestId: string;
  payloadMode: string;
  decision: string;
  reason: string;
  status: number;
}

export async function decisionFor(stack: Stack, requestId: string): Promise<Decision> {
  const line = await stack.serve.waitForLine((l) => l.includes(`"requestId":"${requestId}"`), 30_000);
  return JSON.parse(line) as Decision;
}

/** The parts of countersign's AWS-style XML error body. */
export interface XmlError {
  code: string;
  message: string;
  requestId: string;
}

/** Parses `<Error><Code>…</Code><Message>…</Message><RequestId>…</RequestId></Error>`; undefined if the body is not one. */
export function parseXmlError(body: string): XmlError | undefined {
  const m = /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<Error><Code>([^<]*)<\/Code><Message>([^<]*)<\/Message><RequestId>([^<]*)<\/RequestId><\/Error>\n$/.exec(body);
  if (!m) return undefined;
  return { code: m[1] as string, message: m[2] as string, requestId: m[3] as string };
}
