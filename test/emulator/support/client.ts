/** Plain HTTP/1.1 client helpers for driving the emulator in tests. */
import * as http from "node:http";

export interface ClientResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface ClientRequestSpec {
  port: number;
  method?: string;
  path?: string;
  headers?: Record<string, string> | [string, string][];
  /** A whole body, or chunks written one by one. */
  body?: string | Buffer | (string | Buffer)[];
}

export function collect(res: http.IncomingMessage): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on("data", (c: Buffer) => chunks.push(c));
    res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    res.on("error", reject);
  });
}

/**
 * Sends one request on a fresh connection and collects the whole response. A whole body (not
 * chunks) goes with a content-length unless the headers say otherwise; chunks go chunked.
 */
export function send(spec: ClientRequestSpec): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const given = spec.headers ?? {};
    const pairs: [string, string][] = Array.isArray(given) ? [...given] : Object.entries(given);
    const whole = typeof spec.body === "string" || Buffer.isBuffer(spec.body) ? Buffer.from(spec.body) : null;
    const framed = pairs.some(([k]) => /^(content-length|transfer-encoding)$/i.test(k));
    if (whole && !framed) pairs.push(["content-length", String(whole.length)]);
    if (!pairs.some(([k]) => k.toLowerCase() === "host")) pairs.unshift(["host", `127.0.0.1:${spec.port}`]);
    const headers = pairs.flat();
    const req = http.request(
      { host: "127.0.0.1", port: spec.port, method: spec.method ?? "GET", path: spec.path ?? "/", headers, agent: false },
      (res) => collect(res).then(resolve, reject),
    );
    req.on("error", reject);
    const chunks = spec.body === undefined ? [] : Array.isArray(spec.body) ? spec.body : [spec.body];
    for (const c of chunks) req.write(c);
    req.end();
  });
}

/** A request whose body the test writes step by step (`req.write`, then `req.end()`). */
export function open(spec: Omit<ClientRequestSpec, "body">): { req: http.ClientRequest; response: Promise<ClientResponse> } {
  let req: http.ClientRequest | undefined;
  const response = new Promise<ClientResponse>((resolve, reject) => {
    const headers = Array.isArray(spec.headers) ? spec.headers.flat() : (spec.headers ?? {});
    req = http.request(
      { host: "127.0.0.1", port: spec.port, method: spec.method ?? "PUT", path: spec.path ?? "/", headers, agent: false },
      (res) => collect(res).then(resolve, reject),
    );
    req.on("error", reject);
  });
  if (!req) throw new Error("request not created");
  req.flushHeaders();
  return { req, response };
}
