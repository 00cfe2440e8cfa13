/**
 * The admin listener, the same for a single process and for the `--workers` primary: /healthz
 * (the process is alive), /readyz (the process's Readiness), /metrics (its MetricsSource). Only
 * GET and HEAD are answered; any other method gets 405.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { splitHostPort } from "../splitHostPort.js";
import type { Readiness } from "./readiness.js";

/** What /metrics serves: a prom-client registry, or the primary's view of its workers (metrics.ts). */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

const TEXT = { "content-type": "text/plain" };

export function adminHandler(readiness: Readiness, metrics: MetricsSource): http.RequestListener {
  return (req, res) => {
    const url = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }
    if (url === "/healthz") {
      res.writeHead(200, TEXT).end("ok\n");
      return;
    }
    if (url === "/readyz") {
      const reasons = readiness.notReadyReasons();
      if (reasons.length === 0) res.writeHead(200, TEXT).end("ready\n");
      else res.writeHead(503, TEXT).end(`not ready:\n${reasons.map((r) => `- ${r}`).join("\n")}\n`);
      return;
    }
    if (url === "/metrics") {
      metrics.metrics().then(
        (body) => res.writeHead(200, { "content-type": metrics.contentType }).end(body),
        (err: unknown) => res.writeHead(500, TEXT).end(`metrics failed: ${String(err)}\n`),
      );
      return;
    }
    res.writeHead(404, TEXT).end("not found: try /healthz, /readyz or /metrics\n");
  };
}

/** Listens on `listen` (`--admin-listen`, host:port); errors name the flag and the address. */
export async function startAdminServer(listen: string, readiness: Readiness, metrics: MetricsSource): Promise<AdminServer> {
  const { host, port } = splitHostPort(listen, "--admin-listen");
  const server = http.createServer(adminHandler(readiness, metrics));
  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => reject(new Error(`cannot listen on --admin-listen ${listen}: ${err.message}`, { cause: err }));
    server.once("error", fail);
    server.listen(port, host, () => {
      server.off("error", fail);
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
