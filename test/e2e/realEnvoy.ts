/**
 * `make e2e-envoy`: the end-to-end suite through a real `envoy` from PATH instead of the emulator.
 *
 * The shipped envoy/envoy.yaml is used with only what a loopback test must change
 * (`envoyE2eConfig`, pure and unit-tested in realEnvoy.spec.ts without an Envoy binary):
 *   - the admin interface and the two listeners bind 127.0.0.1 (admin on port 0; Envoy writes the
 *     bound address to --admin-address-path);
 *   - the certificate paths point at the test's leaf;
 *   - the countersign cluster points at the `countersign serve` under test;
 *   - the upstream: the dynamic forward proxy cluster (which would resolve the real AWS names via
 *     DNS and dial them on 443 over TLS) becomes a STATIC cluster to the fake AWS on 127.0.0.1
 *     (plain HTTP/1.1), and the dynamic_forward_proxy HTTP filter is removed. The Host header is
 *     kept (no host rewrite), so the fake AWS sees the host countersign signed. Envoy's DFP filter
 *     does nothing for a route whose cluster is not a DFP cluster (proxy_filter.cc returns
 *     Continue before any DNS lookup), so removing it changes nothing on this path.
 * Everything else — listeners, TLS termination, routes, ext_proc settings, buffer limits — is the
 * shipped config. `assertLoopbackOnly` then refuses the result if any address is not loopback or
 * anything could still resolve a name, so the run never sends traffic anywhere but 127.0.0.1.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync, writeFileSync } from "node:fs";
import { delimiter, join } from "node:path";
import * as yaml from "js-yaml";
import { freePort, REPO } from "../support/startServe.js";

export interface RealEnvoy {
  readonly connectPort: number;
  readonly endpointPort: number;
  readonly adminUrl: string;
  /** The rewritten bootstrap Envoy runs with. */
  readonly configFile: string;
  /** What `envoy --mode validate` said before the start. */
  readonly validation: EnvoyValidation;
  /** Envoy's last stdout (access log) and stderr lines. */
  output(): string;
  stop(): Promise<void>;
}

export interface E2eConfigOptions {
  connectPort: number;
  endpointPort: number;
  /** host:port of `countersign serve`'s gRPC listener ("127.0.0.1:50051" or "[::1]:50051"). */
  extProcAddress: string;
  fakeAwsPort: number;
  certFile: string;
  keyFile: string;
}

type Node = Record<string, unknown>;

export const SHIPPED_ENVOY_YAML = join(REPO, "envoy", "envoy.yaml");
const SHIPPED_CERT = "/etc/countersign/tls/tls.crt";
const SHIPPED_KEY = "/etc/countersign/tls/tls.key";
const LOOPBACK = new Set(["127.0.0.1", "::1"]);
const DFP_FILTER_TYPE = "type.googleapis.com/envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig";
const DFP_CLUSTER = "envoy.clusters.dynamic_forward_proxy";
/** Node's http server closes idle keep-alive connections after 5 s; Envoy must close them first. */
const UPSTREAM_IDLE_TIMEOUT = "2s";

function isNode(v: unknown): v is Node {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function walk(node: unknown, visit: (n: Node) => void): void {
  if (Array.isArray(node)) node.forEach((n) => walk(n, visit));
  else if (isNode(node)) {
    visit(node);
    for (const v of Object.values(node)) walk(v, visit);
  }
}

function socketAddress(host: string, port: number): Node {
  return { socket_address: { address: host, port_value: port } };
}

function loadAssignment(clusterName: string, host: string, port: number): Node {
  return { cluster_name: clusterName, endpoints: [{ lb_endpoints: [{ endpoint: { address: socketAddress(host, port) } }] }] };
}

/** "127.0.0.1:50051" → ["127.0.0.1", 50051]; "[::1]:50051" → ["::1", 50051]. */
export function splitHostPort(address: string): [string, number] {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(address) ?? /^([^:]+):(\d+)$/.exec(address);
  const port = Number(m?.[2]);
  if (!m?.[1] || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not a host:port address: ${JSON.stringify(address)}`);
  return [m[1], port];
}

/** The shipped bootstrap rewritten for a loopback test run (see the file comment). Pure: `shipped` is not changed. */
export function envoyE2eConfig(shipped: unknown, opts: E2eConfigOptions): Node {
  // A JSON copy also undoes the YAML aliases' sharing (the two signing listeners share their filters).
  const doc = JSON.parse(JSON.stringify(shipped)) as unknown;
  if (!isNode(doc) || !isNode(doc.static_resources) || !isNode(doc.admin)) throw new Error("envoy.yaml: expected admin and static_resources");
  const statics = doc.static_resources;
  if (!Array.isArray(statics.listeners) || !Array.isArray(statics.clusters)) throw new Error("envoy.yaml: expected static_resources.listeners and .clusters");
  const [grpcHost, grpcPort] = splitHostPort(opts.extProcAddress);

  doc.admin.address = socketAddress("127.0.0.1", 0);

  const ports: Record<string, number> = { connect_in: opts.connectPort, endpoint_in: opts.endpointPort };
  const bound = new Set<string>();
  for (const l of statics.listeners as unknown[]) {
    if (!isNode(l) || !isNode(l.address)) continue; // internal listeners have no address
    const name = String(l.name);
    const port = ports[name];
    if (port === undefined) throw new Error(`envoy.yaml: listener "${name}" has a socket address this harness does not know; give it a loopback port in test/e2e/realEnvoy.ts`);
    l.address = socketAddress("127.0.0.1", port);
    bound.add(name);
  }
  for (const name of Object.keys(ports)) if (!bound.has(name)) throw new Error(`envoy.yaml: no listener "${name}"`);

  let certs = 0;
  let keys = 0;
  walk(doc, (n) => {
    if (isNode(n.certificate_chain) && n.certificate_chain.filename === SHIPPED_CERT) {
      n.certificate_chain = { filename: opts.certFile };
      certs++;
    }
    if (isNode(n.private_key) && n.private_key.filename === SHIPPED_KEY) {
      n.private_key = { filename: opts.keyFile };
      keys++;
    }
    if (Array.isArray(n.http_filters)) {
      n.http_filters = (n.http_filters as unknown[]).filter((f) => !(isNode(f) && isNode(f.typed_config) && f.typed_config["@type"] === DFP_FILTER_TYPE));
    }
  });
  if (certs === 0 || keys === 0) throw new Error(`envoy.yaml: no tls_certificates entry with ${SHIPPED_CERT} and ${SHIPPED_KEY}`);

  let countersign = 0;
  let upstreams = 0;
  statics.clusters = (statics.clusters as unknown[]).map((c) => {
    if (!isNode(c)) return c;
    const name = String(c.name);
    if (name === "countersign") {
      countersign++;
      return { ...c, load_assignment: loadAssignment(name, grpcHost, grpcPort) };
    }
    if (isNode(c.cluster_type) && c.cluster_type.name === DFP_CLUSTER) {
      upstreams++;
      // Plain HTTP/1.1 to the fake AWS: no TLS transport socket, hence no auto_config (which
      // needs ALPN) and no auto_sni / auto_san_validation.
      return {
        name,
        type: "STATIC",
        connect_timeout: c.connect_timeout ?? "5s",
        load_assignment: loadAssignment(name, "127.0.0.1", opts.fakeAwsPort),
        typed_extension_protocol_options: {
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            common_http_protocol_options: { idle_timeout: UPSTREAM_IDLE_TIMEOUT },
            explicit_http_config: { http_protocol_options: {} },
          },
        },
      };
    }
    return c;
  });
  if (countersign !== 1) throw new Error(`envoy.yaml: expected one "countersign" cluster, found ${countersign}`);
  if (upstreams === 0) throw new Error(`envoy.yaml: no ${DFP_CLUSTER} cluster to point at the fake AWS`);

  assertLoopbackOnly(doc);
  return doc;
}

/**
 * Throws unless the bootstrap can reach loopback only: every socket address is 127.0.0.1 or ::1,
 * no cluster resolves names (STRICT_DNS, LOGICAL_DNS, EDS, ORIGINAL_DST or a custom cluster type
 * such as the dynamic forward proxy), and no DNS cache or dynamic_forward_proxy filter is left.
 */
export function assertLoopbackOnly(doc: unknown): void {
  const problems: string[] = [];
  walk(doc, (n) => {
    const sa = n.socket_address;
    if (isNode(sa) && !LOOPBACK.has(String(sa.address))) problems.push(`socket address ${String(sa.address)}:${String(sa.port_value)} is not loopback`);
    if (n.dns_cache_config !== undefined) problems.push("a dns_cache_config is left (it would resolve names)");
    if (n["@type"] === DFP_FILTER_TYPE) problems.push("a dynamic_forward_proxy filter is left");
  });
  const clusters = isNode(doc) && isNode(doc.static_resources) && Array.isArray(doc.static_resources.clusters) ? doc.static_resources.clusters : [];
  for (const c of clusters as unknown[]) {
    if (!isNode(c)) continue;
    const type = c.type ?? "STATIC";
    if (type !== "STATIC" || c.cluster_type !== undefined) problems.push(`cluster "${String(c.name)}" is ${c.cluster_type !== undefined ? "a custom cluster type" : String(type)}, not STATIC`);
  }
  if (isNode(doc) && (doc.dynamic_resources !== undefined || doc.cluster_manager !== undefined)) problems.push("dynamic_resources/cluster_manager would contact a control plane");
  if (problems.length > 0) throw new Error(`the e2e Envoy config could reach beyond loopback:\n  ${problems.join("\n  ")}`);
}

/** The `envoy` executable on PATH, or undefined. */
export function findEnvoy(): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, "envoy");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Keeps the last `max` lines of a stream. */
class Tail {
  private lines: string[] = [];
  private partial = "";
  constructor(private readonly max: number) {}
  push(chunk: Buffer): void {
    const parts = (this.partial + chunk.toString("utf8")).split("\n");
    this.partial = parts.pop() ?? "";
    this.lines.push(...parts);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }
  text(): string {
    return [...this.lines, this.partial].filter((l) => l !== "").join("\n");
  }
}

/**
 * Envoy before ≈1.38 cannot validate a config with internal listeners: validate mode skips the
 * bootstrap extensions, so it reports "internal listener registry is not initialized" for a config
 * that serves fine (envoyproxy/envoy#28413, #35961; fixed by #44404, April 2026).
 */
const VALIDATE_MODE_INTERNAL_LISTENER_BUG = /internal listener registry is not initiali[sz]ed/;

export type EnvoyValidation = { ok: true } | { ok: false; knownBug: true; output: string };

/**
 * `envoy --mode validate`: Envoy's own check of the file (no sockets, no hot restart). Throws with
 * Envoy's output when the file is rejected; returns `knownBug` when only the validate-mode bug
 * above stopped it (the served start is then the check).
 */
export function validateWithEnvoy(envoy: string, configFile: string): EnvoyValidation {
  const r = spawnSync(envoy, ["--mode", "validate", "-c", configFile, "--disable-hot-restart", "--log-level", "warn"], { encoding: "utf8", timeout: 60_000 });
  if (r.error) throw new Error(`envoy --mode validate could not run: ${r.error.message}`);
  if (r.status === 0) return { ok: true };
  const output = `${r.stdout}${r.stderr}`;
  if (VALIDATE_MODE_INTERNAL_LISTENER_BUG.test(output)) return { ok: false, knownBug: true, output };
  const version = spawnSync(envoy, ["--version"], { encoding: "utf8", timeout: 10_000 }).stdout?.trim() ?? "";
  throw new Error(`envoy --mode validate rejected ${configFile} (exit ${String(r.status ?? r.signal)}; ${version}):\n${output}`);
}

async function waitForExit(proc: ChildProcess, ms: number): Promise<boolean> {
  if (proc.exitCode !== null || proc.signalCode !== null) return true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    proc.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function kill(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  proc.kill("SIGTERM");
  if (!(await waitForExit(proc, 5_000))) {
    proc.kill("SIGKILL");
    await waitForExit(proc, 5_000);
  }
}

export interface StartRealEnvoyOptions {
  dir: string;
  extProcAddress: string;
  certPem: string;
  keyPem: string;
  fakeAwsPort: number;
  readyTimeoutMs?: number;
}

export async function startRealEnvoy(opts: StartRealEnvoyOptions): Promise<RealEnvoy> {
  const envoy = findEnvoy();
  if (envoy === undefined) throw new Error("COUNTERSIGN_REAL_ENVOY=1 but there is no 'envoy' on PATH (make e2e-envoy skips in that case)");
  const certFile = join(opts.dir, "tls.crt");
  const keyFile = join(opts.dir, "tls.key");
  writeFileSync(certFile, opts.certPem);
  writeFileSync(keyFile, opts.keyPem, { mode: 0o600 });
  const [connectPort, endpointPort] = [await freePort(), await freePort()];
  const doc = envoyE2eConfig(yaml.load(readFileSync(SHIPPED_ENVOY_YAML, "utf8")), {
    connectPort,
    endpointPort,
    extProcAddress: opts.extProcAddress,
    fakeAwsPort: opts.fakeAwsPort,
    certFile,
    keyFile,
  });
  const configFile = join(opts.dir, "envoy-e2e.yaml");
  writeFileSync(configFile, yaml.dump(doc, { noRefs: true, lineWidth: -1 }));
  const validation = validateWithEnvoy(envoy, configFile);

  const adminAddressFile = join(opts.dir, "envoy-admin-address");
  const proc = spawn(envoy, ["-c", configFile, "--disable-hot-restart", "--concurrency", "1", "--log-level", "warn", "--admin-address-path", adminAddressFile], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stdout = new Tail(200);
  const stderr = new Tail(400);
  proc.stdout?.on("data", (b: Buffer) => stdout.push(b));
  proc.stderr?.on("data", (b: Buffer) => stderr.push(b));
  let spawnError: Error | undefined;
  proc.on("error", (err) => {
    spawnError = err;
  });
  // A crashed test run must not leave Envoy holding its ports.
  const killOnExit = (): void => {
    proc.kill("SIGKILL");
  };
  process.once("exit", killOnExit);
  const output = (): string => `--- envoy stderr ---\n${stderr.text()}\n--- envoy stdout ---\n${stdout.text()}`;
  const fail = async (why: string): Promise<never> => {
    await kill(proc);
    process.removeListener("exit", killOnExit);
    const note = validation.ok ? "" : `\n(envoy --mode validate could not check it: this Envoy has the internal-listener validate-mode bug)`;
    throw new Error(`${why}; config at ${configFile}${note}\n${output()}`);
  };

  const timeoutMs = opts.readyTimeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  let adminUrl = "";
  for (;;) {
    if (spawnError) return fail(`envoy could not start: ${spawnError.message}`);
    if (proc.exitCode !== null || proc.signalCode !== null) return fail(`envoy exited (${String(proc.exitCode ?? proc.signalCode)}) before it was ready`);
    if (adminUrl === "" && existsSync(adminAddressFile)) {
      const address = readFileSync(adminAddressFile, "utf8").trim();
      if (address !== "") adminUrl = `http://${address}`;
    }
    if (adminUrl !== "") {
      const ready = await fetch(`${adminUrl}/ready`, { signal: AbortSignal.timeout(2_000) }).then(
        (r) => r.status === 200,
        () => false,
      );
      if (ready) break;
    }
    if (Date.now() > deadline) return fail(`envoy was not ready (admin /ready 200) within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }

  return {
    connectPort,
    endpointPort,
    adminUrl,
    configFile,
    validation,
    output,
    stop: async () => {
      await kill(proc);
      process.removeListener("exit", killOnExit);
    },
  };
}
