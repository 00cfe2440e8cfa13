/**
 * `make e2e-envoy`: runs the end-to-end suite through a real `envoy` from PATH instead of the
 * emulator. The shipped envoy/envoy.yaml is used with only what a loopback test must change:
 * ports, certificate paths, countersign's address, and the upstream — the dynamic forward proxy
 * (which would resolve real AWS names) is replaced by a static cluster to the fake AWS, keeping
 * the Host header. Everything between the listeners and ext_proc is the shipped config.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import * as yaml from "js-yaml";
import { REPO } from "../support/startServe.js";
import { readFileSync } from "node:fs";

export interface RealEnvoy {
  readonly connectPort: number;
  readonly endpointPort: number;
  stop(): Promise<void>;
}

type Node = Record<string, unknown>;

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

function walk(node: unknown, visit: (n: Node) => void): void {
  if (Array.isArray(node)) node.forEach((n) => walk(n, visit));
  else if (node && typeof node === "object") {
    visit(node as Node);
    for (const v of Object.values(node as Node)) walk(v, visit);
  }
}

export async function startRealEnvoy(opts: { dir: string; extProcAddress: string; certPem: string; keyPem: string; fakeAwsPort: number }): Promise<RealEnvoy> {
  const doc = yaml.load(readFileSync(join(REPO, "envoy", "envoy.yaml"), "utf8")) as Node;
  const [connectPort, endpointPort, adminPort] = [await freePort(), await freePort(), await freePort()];
  const [grpcHost, grpcPort] = opts.extProcAddress.split(":") as [string, string];
  writeFileSync(join(opts.dir, "tls.crt"), opts.certPem);
  writeFileSync(join(opts.dir, "tls.key"), opts.keyPem);

  (doc.admin as Node).address = { socket_address: { address: "127.0.0.1", port_value: adminPort } };
  const statics = doc.static_resources as { listeners: Node[]; clusters: Node[] };
  for (const l of statics.listeners) {
    const addr = (l.address as Node | undefined)?.socket_address as Node | undefined;
    if (l.name === "connect_in" && addr) Object.assign(addr, { address: "127.0.0.1", port_value: connectPort });
    if (l.name === "endpoint_in" && addr) Object.assign(addr, { address: "127.0.0.1", port_value: endpointPort });
  }
  walk(doc, (n) => {
    const chain = n.certificate_chain as Node | undefined;
    if (chain?.filename === "/etc/countersign/tls/tls.crt") chain.filename = join(opts.dir, "tls.crt");
    const key = n.private_key as Node | undefined;
    if (key?.filename === "/etc/countersign/tls/tls.key") key.filename = join(opts.dir, "tls.key");
    if (Array.isArray(n.http_filters)) {
      n.http_filters = (n.http_filters as Node[]).filter((f) => f.name !== "envoy.filters.http.dynamic_forward_proxy");
    }
  });
  statics.clusters = statics.clusters.map((c) => {
    if (c.name === "countersign") {
      return { ...c, load_assignment: { cluster_name: "countersign", endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: grpcHost, port_value: Number(grpcPort) } } } }] }] } };
    }
    const ct = c.cluster_type as Node | undefined;
    if (ct?.name === "envoy.clusters.dynamic_forward_proxy") {
      return {
        name: c.name,
        type: "STATIC",
        connect_timeout: "2s",
        load_assignment: { cluster_name: c.name, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: "127.0.0.1", port_value: opts.fakeAwsPort } } } }] }] },
      };
    }
    return c;
  });
  const file = join(opts.dir, "envoy-e2e.yaml");
  writeFileSync(file, yaml.dump(doc, { noRefs: true }));

  const proc: ChildProcess = spawn("envoy", ["-c", file, "--log-level", "warn", "--base-id", String(process.pid % 60000)], { stdio: ["ignore", "inherit", "inherit"] });
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`envoy exited with ${proc.exitCode}; config at ${file}`);
    try {
      const r = await fetch(`http://127.0.0.1:${adminPort}/ready`);
      if (r.status === 200) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error("envoy did not become ready within 20 s");
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    connectPort,
    endpointPort,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once("exit", () => resolve());
        proc.kill("SIGTERM");
      }),
  };
}
