/**
 * SECURITY.md threat 9, an open signing proxy, through real Envoy running the shipped envoy.yaml
 * with its shipped bind addresses (test/e2e/realEnvoy.ts changes only the ports):
 *   - the one listener bound beyond loopback, envoy_stats, serves GET /ready and
 *     GET /stats/prometheus and nothing else of the admin API;
 *   - from another network namespace — another pod, as far as the kernel is concerned — the
 *     signing listeners refuse the connection while the stats port answers (the positive control
 *     that shows the namespace does reach this host's sockets).
 * The namespace, its veth pair and their link-local /30 are made by this test (as root, with
 * iproute2) and removed in afterAll whatever happened; no route leads anywhere but that /30.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import http from "node:http";
import { connect } from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStack, type Stack } from "../e2e/harness.js";
import { eventually } from "../support/eventually.js";

const run = promisify(execFile);

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.close();
});

function envoyOf(s: Stack): NonNullable<Stack["envoy"]> {
  if (!s.envoy) throw new Error("this suite needs real Envoy");
  return s.envoy;
}

interface Answer {
  status: number;
  contentType: string | undefined;
  body: string;
}

function request(port: number, method: string, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, agent: false, timeout: 10_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (b: Buffer) => parts.push(b));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, contentType: res.headers["content-type"], body: Buffer.concat(parts).toString() }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on("error", reject);
    req.end();
  });
}

/** Admin endpoints that must not be reachable through envoy_stats, with the method the admin API wants. */
const ADMIN_ENDPOINTS: [method: string, path: string][] = [
  ["POST", "/quitquitquit"],
  ["GET", "/config_dump"],
  ["GET", "/config_dump?include_eds"],
  ["GET", "/clusters"],
  ["POST", "/logging?level=trace"],
  ["POST", "/drain_listeners"],
  ["POST", "/healthcheck/fail"],
  ["POST", "/runtime_modify?countersign.local_reply_502=500"],
  ["GET", "/runtime"],
  ["GET", "/server_info"],
  ["GET", "/listeners"],
  ["GET", "/certs"],
  ["GET", "/stats"],
  ["GET", "/stats?format=json"],
  ["GET", "/"],
  // The two allowed paths, but not as GET, or not whole.
  ["POST", "/ready"],
  ["HEAD", "/ready"],
  ["POST", "/stats/prometheus"],
  ["GET", "/ready/../config_dump"],
  ["GET", "/stats/prometheus/../../clusters"],
  ["GET", "/stats%2Fprometheus"],
  ["GET", "/readyz"],
];

describe("envoy_stats: the only listener reachable from outside the pod", () => {
  it("serves GET /ready and GET /stats/prometheus (with envoy_ metrics) on the stats port and 404 for every admin endpoint, POST /quitquitquit included; Envoy is still alive after", async () => {
    const envoy = envoyOf(stack);
    const port = envoy.statsPort;
    expect(await request(port, "GET", "/ready")).toEqual({ status: 200, contentType: "text/plain; charset=UTF-8", body: "LIVE\n" });
    const scrape = await request(port, "GET", "/stats/prometheus");
    expect(scrape.status).toBe(200);
    expect(scrape.body).toMatch(/^# TYPE envoy_cluster_upstream_cx_total counter$/m);
    expect(scrape.body).toMatch(/^envoy_cluster_upstream_cx_total\{envoy_cluster_name="countersign"\} \d+$/m);
    expect(scrape.body).toMatch(/^envoy_server_live\{\} 1$/m);
    // A query string passes (Prometheus' own parameters, usedonly, filter).
    const used = await request(port, "GET", "/stats/prometheus?usedonly");
    expect(used.status).toBe(200);
    expect(used.body).toContain("envoy_");

    for (const [method, path] of ADMIN_ENDPOINTS) {
      const answer = await request(port, method, path);
      expect({ method, path, status: answer.status }).toEqual({ method, path, status: 404 });
      expect(answer.body).not.toMatch(/envoy_|"configs"|cluster|LIVE|OK/);
    }

    // Still running, still ready, still serving (had /quitquitquit or /healthcheck/fail reached the
    // admin API, Envoy would be gone or failing /ready).
    expect(() => process.kill(envoy.pid, 0)).not.toThrow();
    expect((await request(port, "GET", "/ready")).status).toBe(200);
    expect((await fetch(`${envoy.adminUrl}/ready`)).status).toBe(200);
    const runtime = (await (await fetch(`${envoy.adminUrl}/runtime`)).json()) as { entries: Record<string, unknown> };
    expect(runtime.entries).not.toHaveProperty(["countersign.local_reply_502"]);

    // The stats listener logs what it refuses (404) and not the probes and scrapes it serves.
    const logged = await eventually(
      async () => {
        const lines = (await envoy.accessLog()).filter((l) => l["listener"] === "envoy_stats");
        return lines.length >= ADMIN_ENDPOINTS.length ? lines : undefined;
      },
      "envoy_stats' access log lines for the refused requests",
      { timeoutMs: 30_000, everyMs: 200 },
    );
    expect(logged.map((l) => [l["method"], l["response_code"]])).toEqual(ADMIN_ENDPOINTS.map(([method]) => [method, 404]));
  });
});

// ---------------------------------------------------------------------------------------------
// Another network namespace

const tag = randomBytes(3).toString("hex");
const NETNS = `countersign-test-${process.pid}-${tag}`;
/** Interface names: at most 15 characters. */
const VETH_HOST = `cst${tag}h`;
const VETH_NS = `cst${tag}n`;

async function ip(...args: string[]): Promise<string> {
  try {
    return (await run("ip", args, { timeout: 20_000 })).stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw new Error("`ip` (iproute2) is missing: run scripts/install-system-deps.sh as root (it installs iproute2), then run this test as root", { cause: err });
    throw new Error(`ip ${args.join(" ")} failed: ${e.stderr ?? e.message}${process.getuid?.() === 0 ? "" : " (this test makes a network namespace: run it as root)"}`, { cause: err });
  }
}

function ipv4ToInt(a: string): number {
  return a.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
}

/** [first, last] address of a CIDR prefix ("default" is everything). */
function rangeOf(prefix: string): [number, number] {
  if (prefix === "default") return [0, 2 ** 32 - 1];
  const [addr, bits = "32"] = prefix.split("/");
  const size = 2 ** (32 - Number(bits));
  const first = Math.floor(ipv4ToInt(addr ?? "0.0.0.0") / size) * size;
  return [first, first + size - 1];
}

/**
 * A link-local /30 that no address or route of this host uses yet, apart from the default route
 * (which a more specific /30 only narrows for the test's own two addresses). 169.254.169.0/24
 * (instance metadata) and 169.254.170.0/24 (ECS, EKS Pod Identity) are never picked.
 */
async function freeLinkLocalNet(): Promise<{ prefix: string; host: string; ns: string }> {
  const routes = (await ip("-4", "-o", "route", "show", "table", "all")).split("\n").map((l) => l.trim().split(/\s+/)[0] ?? "").filter((p) => p !== "" && p !== "default" && /^[\d./]+$/.test(p));
  const addrs = (await ip("-4", "-o", "addr", "show")).split("\n").flatMap((l) => /\binet (\S+)/.exec(l)?.[1] ?? []);
  const used = [...routes, ...addrs.map((a) => a.split("/")[0] ?? "")].map(rangeOf);
  for (let attempt = 0; attempt < 200; attempt++) {
    const third = 1 + Math.floor(Math.random() * 254);
    if (third === 169 || third === 170) continue;
    const base = 4 * Math.floor(Math.random() * 63) + 4;
    const net = ipv4ToInt(`169.254.${third}.${base}`);
    if (used.some(([a, b]) => net <= b && net + 3 >= a)) continue;
    return { prefix: `169.254.${third}.${base}/30`, host: `169.254.${third}.${base + 1}`, ns: `169.254.${third}.${base + 2}` };
  }
  throw new Error("no free 169.254.x.y/30 found for the test's veth pair");
}

/** Runs `node -e script args…` inside the namespace; returns its stdout, trimmed. */
async function inNamespace(script: string, ...args: string[]): Promise<string> {
  const { stdout } = await run("ip", ["netns", "exec", NETNS, process.execPath, "-e", script, ...args], { timeout: 30_000 });
  return stdout.trim();
}

/** Prints "connected" or the error code (ECONNREFUSED, …) of one TCP connection attempt. */
const CONNECT = `
const s = require("node:net").connect({ host: process.argv[1], port: Number(process.argv[2]) });
s.setTimeout(5000, () => { console.log("TIMEOUT"); process.exit(0); });
s.on("connect", () => { console.log("connected"); s.destroy(); });
s.on("error", (e) => console.log(e.code || e.message));
`;

/** Prints the status of GET http://host:port/ready, or the error code. */
const GET_READY = `
require("node:http").get({ host: process.argv[1], port: Number(process.argv[2]), path: "/ready", timeout: 5000 }, (res) => { res.resume(); console.log(res.statusCode); })
  .on("timeout", function () { console.log("TIMEOUT"); this.destroy(); })
  .on("error", (e) => console.log(e.code || e.message));
`;

describe("from another network namespace (another pod's view of this pod's IP)", () => {
  let net: { prefix: string; host: string; ns: string } | undefined;

  beforeAll(async () => {
    net = await freeLinkLocalNet();
    await ip("netns", "add", NETNS);
    await ip("link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS);
    await ip("link", "set", VETH_NS, "netns", NETNS);
    await ip("addr", "add", `${net.host}/30`, "dev", VETH_HOST);
    await ip("link", "set", VETH_HOST, "up");
    await ip("-n", NETNS, "addr", "add", `${net.ns}/30`, "dev", VETH_NS);
    await ip("-n", NETNS, "link", "set", VETH_NS, "up");
    await ip("-n", NETNS, "link", "set", "lo", "up");
  });

  afterAll(async () => {
    // Deleting the namespace deletes its end of the pair, and with it the host's end; the second
    // command covers a namespace that never got its end.
    await ip("netns", "del", NETNS).catch(() => undefined);
    await ip("link", "del", VETH_HOST).catch(() => undefined);
    expect(await ip("netns", "list")).not.toContain(NETNS);
    expect(await ip("-o", "link", "show")).not.toContain(VETH_HOST);
  });

  it("the signing listeners refuse the connection, while the stats port answers", async () => {
    if (!net) throw new Error("no network namespace");
    const envoy = envoyOf(stack);
    // The namespace has no route but its /30: nothing it sends can leave the host.
    expect((await ip("-n", NETNS, "-4", "route", "show")).trim().split("\n")).toEqual([`${net.prefix} dev ${VETH_NS} proto kernel scope link src ${net.ns}`]);

    // Positive control: the namespace reaches this host's sockets bound to all interfaces.
    expect(await inNamespace(GET_READY, net.host, String(envoy.statsPort))).toBe("200");
    // The signing listeners bind 127.0.0.1: nothing listens on the host's veth address.
    expect(await inNamespace(CONNECT, net.host, String(envoy.connectPort))).toBe("ECONNREFUSED");
    expect(await inNamespace(CONNECT, net.host, String(envoy.endpointPort))).toBe("ECONNREFUSED");
    // Another pod's loopback is its own: the proxy is not there either.
    expect(await inNamespace(CONNECT, "127.0.0.1", String(envoy.connectPort))).toBe("ECONNREFUSED");
    // In this pod's namespace (the workload's), the proxy answers on loopback.
    const local = await new Promise<string>((resolve) => {
      const s = connect({ host: "127.0.0.1", port: envoy.connectPort }, () => {
        s.destroy();
        resolve("connected");
      });
      s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    });
    expect(local).toBe("connected");
  });
});
