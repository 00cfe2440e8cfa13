import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { startAdminServer, type AdminServer, type MetricsSource } from "./adminServer.js";
import { Metrics } from "./metrics.js";
import { Readiness } from "./readiness.js";

const STATIC_METRICS: MetricsSource = { contentType: "text/plain; version=0.0.4; charset=utf-8", metrics: async () => "some_metric 1\n" };

let servers: AdminServer[] = [];

afterEach(async () => {
  await Promise.all(servers.map((s) => s.close()));
  servers = [];
});

async function start(readiness: Readiness, metrics: MetricsSource = STATIC_METRICS): Promise<string> {
  const server = await startAdminServer("127.0.0.1:0", readiness, metrics);
  servers.push(server);
  return `http://127.0.0.1:${server.port}`;
}

async function get(url: string, method = "GET"): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url, { method });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

describe("startAdminServer", () => {
  it("answers /healthz 200, /readyz 200 when ready, /metrics from its source, anything else 404", async () => {
    const url = await start(new Readiness(() => []));
    expect(await get(`${url}/healthz`)).toMatchObject({ status: 200, body: "ok\n" });
    expect(await get(`${url}/readyz`)).toMatchObject({ status: 200, body: "ready\n" });
    const metrics = await get(`${url}/metrics?name=x`);
    expect(metrics).toMatchObject({ status: 200, body: "some_metric 1\n" });
    expect(metrics.headers.get("content-type")).toBe(STATIC_METRICS.contentType);
    expect(await get(`${url}/nope`)).toMatchObject({ status: 404, body: "not found: try /healthz, /readyz or /metrics\n" });
  });

  it("answers /readyz 503 with one line per reason, and 'shutting down' first once shut down", async () => {
    const reasons = ['credentials "main": not fetched yet'];
    const readiness = new Readiness(() => reasons);
    const url = await start(readiness);
    expect(await get(`${url}/readyz`)).toMatchObject({ status: 503, body: 'not ready:\n- credentials "main": not fetched yet\n' });
    reasons.length = 0;
    expect((await get(`${url}/readyz`)).status).toBe(200);
    readiness.shutDown();
    expect(await get(`${url}/readyz`)).toMatchObject({ status: 503, body: "not ready:\n- shutting down\n" });
    expect((await get(`${url}/healthz`)).status).toBe(200);
  });

  it("answers any method but GET and HEAD with 405 and Allow: GET, HEAD, on every path", async () => {
    const url = await start(new Readiness(() => []));
    for (const path of ["/healthz", "/readyz", "/metrics", "/nope"]) {
      for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
        const r = await get(`${url}${path}`, method);
        expect({ path, method, status: r.status, allow: r.headers.get("allow"), body: r.body }).toEqual({ path, method, status: 405, allow: "GET, HEAD", body: "" });
      }
    }
    expect(await get(`${url}/healthz`, "HEAD")).toMatchObject({ status: 200, body: "" });
  });

  it("answers /metrics 500 when its source fails", async () => {
    const url = await start(new Readiness(() => []), { contentType: "text/plain", metrics: () => Promise.reject(new Error("worker gone")) });
    expect(await get(`${url}/metrics`)).toMatchObject({ status: 500, body: "metrics failed: Error: worker gone\n" });
  });

  it("names --admin-listen and the address when it cannot listen, or when the address is not host:port", async () => {
    const busy = net.createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", () => resolve()));
    const port = (busy.address() as net.AddressInfo).port;
    try {
      await expect(startAdminServer(`127.0.0.1:${port}`, new Readiness(() => []), STATIC_METRICS)).rejects.toThrow(
        new RegExp(`^cannot listen on --admin-listen 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`),
      );
    } finally {
      busy.close();
    }
    await expect(startAdminServer("localhost", new Readiness(() => []), STATIC_METRICS)).rejects.toThrow('--admin-listen "localhost" is not host:port');
  });
});

describe("one readiness source", () => {
  it("countersign_ready reads the Readiness /readyz answers from, at every scrape", async () => {
    let reasons: string[] = ["starting"];
    const readiness = new Readiness(() => reasons);
    const metrics = new Metrics({ processMetrics: false });
    metrics.observe({ readiness, admission: { heldBytes: 0, limits: { maxHeldBytes: 1, maxConcurrentStreams: 1 } }, credentials: () => [] });
    const url = await start(readiness, metrics.registry);
    const state = async (): Promise<[number, string | undefined]> => [
      (await get(`${url}/readyz`)).status,
      /^countersign_ready (\d)$/m.exec((await get(`${url}/metrics`)).body)?.[1],
    ];
    expect(await state()).toEqual([503, "0"]);
    reasons = [];
    expect(await state()).toEqual([200, "1"]);
    readiness.shutDown();
    expect(await state()).toEqual([503, "0"]);
  });
});
