/**
 * The admin listener: /healthz (the process is alive), /readyz (ready to sign: policy loaded and
 * every credential profile an endpoint uses has credentials, and not draining), /metrics.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { Metrics } from "./metrics.js";

export interface Readiness {
  /** Empty when ready; otherwise one line per reason. */
  notReadyReasons(): string[];
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startAdminServer(host: string, port: number, metrics: Metrics, readiness: Readiness): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      return;
    }
    if (url === "/readyz") {
      const reasons = readiness.notReadyReasons();
      metrics.ready.set(reasons.length === 0 ? 1 : 0);
      if (reasons.length === 0) res.writeHead(200, { "content-type": "text/plain" }).end("ready\n");
      else res.writeHead(503, { "content-type": "text/plain" }).end(`not ready:\n${reasons.map((r) => `- ${r}`).join("\n")}\n`);
      return;
    }
    if (url === "/metrics") {
      metrics.ready.set(readiness.notReadyReasons().length === 0 ? 1 : 0);
      metrics.registry.metrics().then(
        (body) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(body),
        (err: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${String(err)}\n`),
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /healthz, /readyz or /metrics\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
