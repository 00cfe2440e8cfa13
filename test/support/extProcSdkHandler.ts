/**
 * An AWS SDK v3 request handler that sends each request the SDK made (signed with placeholder
 * credentials) through countersign over ext_proc, Envoy style, applies the answer, and forwards
 * the result to the fake AWS on loopback. This is the protocol-level path without the Envoy
 * emulator; the emulator tests cover the full proxy path.
 */
import { Readable } from "node:stream";
import { HttpRequest, HttpResponse } from "@smithy/protocol-http";
import type { HttpHandlerOptions } from "@smithy/types";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { loopbackRequestHandler } from "../fakeaws/loopbackAgent.js";
import { exchange, type ExchangeResult } from "./extProcClient.js";

export interface Refusal {
  status: number;
  body: string;
}

export class ExtProcSdkHandler {
  readonly metadata = { handlerProtocol: "http/1.1" };
  private readonly upstream;
  /** Every ext_proc outcome, in order. */
  readonly results: ExchangeResult[] = [];

  constructor(
    private readonly client: ExternalProcessorClient,
    fakeAwsPort: number,
  ) {
    this.upstream = loopbackRequestHandler(fakeAwsPort);
  }

  async handle(request: HttpRequest, options?: HttpHandlerOptions): Promise<{ response: HttpResponse }> {
    const body = await collect(request.body);
    const query = buildQuery(request.query ?? {});
    const authority = request.port ? `${request.hostname}:${request.port}` : request.hostname;
    const headers: Array<[string, string]> = Object.entries(request.headers).map(([k, v]) => [k.toLowerCase(), String(v)]);
    // What Envoy adds before ext_proc sees the request.
    headers.push(["x-forwarded-proto", "https"], ["x-request-id", `req-${this.results.length + 1}`]);
    if (body.length > 0 && !headers.some(([k]) => k === "content-length" || k === "transfer-encoding")) {
      headers.push(["content-length", String(body.length)]);
    }
    const result = await exchange(this.client, {
      method: request.method,
      authority,
      path: `${request.path}${query ? `?${query}` : ""}`,
      headers,
      body,
    });
    this.results.push(result);
    if (result.kind === "refused") {
      const res = new HttpResponse({
        statusCode: result.status,
        headers: Object.fromEntries(result.headers),
        body: Readable.from([Buffer.from(result.body)]),
      });
      return { response: res };
    }
    const fwd = result.request;
    const q = fwd.path.indexOf("?");
    const out = new HttpRequest({
      method: fwd.method,
      protocol: "http:",
      hostname: request.hostname,
      port: request.port,
      path: q < 0 ? fwd.path : fwd.path.slice(0, q),
      query: q < 0 ? {} : parseQuery(fwd.path.slice(q + 1)),
      headers: Object.fromEntries(fwd.headers.filter(([k]) => k !== "host")),
      body: fwd.body,
    });
    return this.upstream.handle(out, options);
  }

  updateHttpClientConfig(): void {}
  httpHandlerConfigs(): Record<string, never> {
    return {};
  }
  destroy(): void {
    this.upstream.destroy();
  }
}

async function collect(body: unknown): Promise<Buffer> {
  if (body === undefined || body === null) return Buffer.alloc(0);
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body instanceof Uint8Array) return Buffer.from(body);
  if (body instanceof Readable || (typeof body === "object" && Symbol.asyncIterator in (body as object))) {
    const parts: Buffer[] = [];
    for await (const chunk of body as AsyncIterable<Buffer | string>) parts.push(typeof chunk === "string" ? Buffer.from(chunk) : Buffer.from(chunk));
    return Buffer.concat(parts);
  }
  throw new Error(`unsupported SDK body type ${typeof body}`);
}

/** Query as the SDK would put on the wire: RFC 3986 encoding of the decoded values. */
function buildQuery(query: Record<string, string | string[] | null>): string {
  const enc = (s: string): string => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const parts: string[] = [];
  for (const [k, v] of Object.entries(query)) {
    if (v === null) parts.push(enc(k));
    else for (const one of Array.isArray(v) ? v : [v]) parts.push(`${enc(k)}=${enc(one)}`);
  }
  return parts.join("&");
}

/**
 * Back to the SDK's decoded form. The loopback handler re-encodes with the same RFC 3986 rules,
 * so the bytes on the wire are the bytes countersign signed.
 */
function parseQuery(raw: string): Record<string, string | string[] | null> {
  const out: Record<string, string | string[] | null> = {};
  for (const pair of raw.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const k = decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq));
    const v = eq < 0 ? null : decodeURIComponent(pair.slice(eq + 1));
    const prev = out[k];
    if (prev === undefined) out[k] = v;
    else if (Array.isArray(prev)) prev.push(v ?? "");
    else out[k] = [prev ?? "", v ?? ""];
  }
  return out;
}
