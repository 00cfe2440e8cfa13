/** A tiny upstream HTTP server that records every request it receives and answers 200. */
import * as http from "node:http";

export interface StubRequest {
  method: string;
  url: string;
  /** Header lines as received, names lower-cased. */
  rawHeaders: [string, string][];
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface UpstreamStub {
  port: number;
  requests: StubRequest[];
  close(): Promise<void>;
}

export const STUB_RESPONSE_BODY = "upstream says hello";

export async function startUpstreamStub(): Promise<UpstreamStub> {
  const requests: StubRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const rawHeaders: [string, string][] = [];
      for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
        rawHeaders.push([(req.rawHeaders[i] ?? "").toLowerCase(), req.rawHeaders[i + 1] ?? ""]);
      }
      requests.push({ method: req.method ?? "", url: req.url ?? "", rawHeaders, headers: req.headers, body: Buffer.concat(chunks) });
      res.writeHead(200, { "content-type": "text/plain", "x-upstream": "stub" });
      res.end(STUB_RESPONSE_BODY);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return {
    port: typeof address === "object" && address !== null ? address.port : 0,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
