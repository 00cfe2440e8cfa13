/**
 * Real Envoy for the end-to-end suite, `make demo` and `make soak`: the pinned Envoy from
 * .venv/bin/envoy (scripts/install-envoy.sh) run with the shipped envoy/envoy.yaml, changed only
 * where a loopback test must change it (`envoyE2eConfig`, pure and unit-tested):
 *   - ports: every listener with a socket (connect_in, endpoint_in, envoy_stats) gets a free port
 *     and keeps the address it is shipped with (the signing listeners 127.0.0.1, envoy_stats
 *     0.0.0.0: test/security/openProxy.e2e.spec.ts connects to them from another network
 *     namespace); the admin API gets a free port on 127.0.0.1, and the clusters that lead to it
 *     (envoy_stats' envoy_admin) follow it;
 *   - certificate paths: every file under /etc/countersign/tls/ becomes the test's copy, and the
 *     SDS secret file under /etc/envoy/ (envoy/tls-certificate.sds.yaml) the test's copy of it,
 *     naming those files;
 *   - the countersign cluster points at the `countersign serve` under test;
 *   - the DNS resolver: the dynamic forward proxy's DNS cache (filter and cluster alike) asks only
 *     the test's DNS server on 127.0.0.1 (c-ares), which answers every *.amazonaws.com name with
 *     the loopback address the fake AWS listens on (port 443, HTTPS);
 *   - the upstream trust bundle: the test CA that issued the fake AWS's certificate.
 * The dynamic forward proxy, auto_sni and auto_san_validation stay in the path: Envoy resolves the
 * signed host, dials it on 443 and checks the fake's certificate against that host.
 * `assertLoopbackOnly` then refuses the result if anything could reach beyond loopback, or if a
 * listener bound beyond loopback leads anywhere but the admin API's GET /ready and
 * GET /stats/prometheus.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as yaml from "js-yaml";
import { exposureProblems, isLoopbackAddress } from "../envoy-config/listenerExposure.js";
import { writeSecretVolume } from "../support/secretVolume.js";
import { envoyBinary, envoyVersionLine, validateEnvoyConfig } from "../support/envoy.js";
import { freePort } from "../support/freePort.js";
import { REPO } from "../support/startServe.js";

export interface RealEnvoy {
  /** The Envoy process (for its RSS and CPU in /proc). */
  readonly pid: number;
  readonly connectPort: number;
  readonly endpointPort: number;
  /** envoy_stats: GET /ready and GET /stats/prometheus, bound as shipped (0.0.0.0). */
  readonly statsPort: number;
  readonly adminUrl: string;
  /** The rewritten bootstrap Envoy runs with. */
  readonly configFile: string;
  /** The folder standing in for /etc/countersign/tls (kubelet layout; see updateSecretVolume). */
  readonly tlsDir: string;
  /** Envoy's last stdout (access log) and stderr lines. */
  output(): string;
  /**
   * The JSON access log lines among Envoy's last 200 stdout lines, oldest first, after asking
   * Envoy to flush its log buffer (POST /reopen_logs; else lines wait up to 10 s). What was
   * flushed may still be on its way through the pipe: poll.
   */
  accessLog(): Promise<Record<string, unknown>[]>;
  /** Envoy's counters and gauges from the admin API (`/stats?format=json`), by name. */
  stats(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

export interface E2eConfigOptions {
  connectPort: number;
  endpointPort: number;
  statsPort: number;
  /** The admin API's port on 127.0.0.1 (a real one, not 0: envoy_stats' cluster must name it). */
  adminPort: number;
  /** host:port of `countersign serve`'s gRPC listener ("127.0.0.1:50051" or "[::1]:50051"). */
  extProcAddress: string;
  /** The folder that stands in for /etc/countersign/tls (the listener certificate and key). */
  tlsDir: string;
  /** The folder that stands in for /etc/envoy (the SDS secret file beside envoy.yaml). */
  envoyDir: string;
  /** Port of the test's DNS server on 127.0.0.1. */
  dnsPort: number;
  /** PEM file of the CA that issued the fake AWS's certificate (replaces the system bundle). */
  upstreamCaFile: string;
}

type Node = Record<string, unknown>;

export const SHIPPED_ENVOY_YAML = join(REPO, "envoy", "envoy.yaml");
const SHIPPED_TLS_DIR = "/etc/countersign/tls/";
const SHIPPED_ENVOY_DIR = "/etc/envoy/";
/** The SDS secret files envoy.yaml names in /etc/envoy/ (kept in envoy/ in the repository). */
export const SHIPPED_SDS_FILES = ["tls-certificate.sds.yaml"];
const SHIPPED_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";
const CARES = "envoy.network.dns_resolver.cares";
const CARES_TYPE = "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig";
const DFP_CLUSTER = "envoy.clusters.dynamic_forward_proxy";

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

  const shippedAdmin = isNode(doc.admin.address) && isNode(doc.admin.address.socket_address) ? doc.admin.address.socket_address : {};
  doc.admin.address = socketAddress("127.0.0.1", opts.adminPort);

  const ports: Record<string, number> = { connect_in: opts.connectPort, endpoint_in: opts.endpointPort, envoy_stats: opts.statsPort };
  const bound = new Set<string>();
  for (const l of statics.listeners as unknown[]) {
    if (!isNode(l) || !isNode(l.address)) continue; // internal listeners have no address
    const name = String(l.name);
    const port = ports[name];
    if (port === undefined) throw new Error(`envoy.yaml: listener "${name}" has a socket address this harness does not know; give it a port in test/e2e/realEnvoy.ts`);
    if (!isNode(l.address.socket_address) || typeof l.address.socket_address.address !== "string") throw new Error(`envoy.yaml: listener "${name}" has no socket_address.address`);
    if (l.additional_addresses !== undefined) throw new Error(`envoy.yaml: listener "${name}" has additional_addresses, which this harness does not rewrite`);
    // The port changes; the address stays as shipped, so the tests see what a pod would expose.
    l.address = socketAddress(l.address.socket_address.address, port);
    bound.add(name);
  }
  for (const name of Object.keys(ports)) if (!bound.has(name)) throw new Error(`envoy.yaml: no listener "${name}"`);

  let tlsFiles = 0;
  let caBundles = 0;
  let caches = 0;
  walk(doc, (n) => {
    for (const [k, v] of Object.entries(n)) {
      if (typeof v !== "string") continue;
      if (v.startsWith(SHIPPED_TLS_DIR) || v === SHIPPED_TLS_DIR.slice(0, -1)) {
        n[k] = join(opts.tlsDir, v.slice(SHIPPED_TLS_DIR.length));
        tlsFiles++;
      } else if (v.startsWith(SHIPPED_ENVOY_DIR) || v === SHIPPED_ENVOY_DIR.slice(0, -1)) {
        n[k] = join(opts.envoyDir, v.slice(SHIPPED_ENVOY_DIR.length));
        tlsFiles++;
      } else if (v === SHIPPED_CA_BUNDLE) {
        n[k] = opts.upstreamCaFile;
        caBundles++;
      }
    }
    if (isNode(n.dns_cache_config)) {
      n.dns_cache_config = {
        ...n.dns_cache_config,
        typed_dns_resolver_config: {
          name: CARES,
          typed_config: {
            "@type": CARES_TYPE,
            resolvers: [socketAddress("127.0.0.1", opts.dnsPort)],
            use_resolvers_as_fallback: false,
            dns_resolver_options: { no_default_search_domain: true },
          },
        },
      };
      caches++;
    }
  });
  if (tlsFiles === 0) throw new Error(`envoy.yaml: no file under ${SHIPPED_TLS_DIR} or ${SHIPPED_ENVOY_DIR} to point at the test's certificate`);
  if (caBundles === 0) throw new Error(`envoy.yaml: the upstream does not trust ${SHIPPED_CA_BUNDLE}; the harness has no trust bundle to replace`);
  if (caches === 0) throw new Error("envoy.yaml: no dns_cache_config (the dynamic forward proxy) to point at the test's DNS server");

  let countersign = 0;
  let upstreams = 0;
  for (const c of statics.clusters as unknown[]) {
    if (!isNode(c)) continue;
    if (c.name === "countersign") {
      countersign++;
      c.load_assignment = loadAssignment("countersign", grpcHost, grpcPort);
    }
    if (isNode(c.cluster_type) && c.cluster_type.name === DFP_CLUSTER) upstreams++;
    // A cluster that leads to the shipped admin address (envoy_stats' envoy_admin) follows the admin API.
    walk(c.load_assignment, (n) => {
      const sa = n.socket_address;
      if (isNode(sa) && sa.address === shippedAdmin.address && sa.port_value === shippedAdmin.port_value) n.socket_address = { address: "127.0.0.1", port_value: opts.adminPort };
    });
  }
  if (countersign !== 1) throw new Error(`envoy.yaml: expected one "countersign" cluster, found ${countersign}`);
  if (upstreams === 0) throw new Error(`envoy.yaml: no ${DFP_CLUSTER} cluster (the AWS upstream)`);

  assertLoopbackOnly(doc);
  return doc;
}

/**
 * Throws unless the bootstrap can reach loopback only: every socket address but the listeners'
 * own is loopback (127.0.0.0/8 or ::1); a listener bound beyond loopback leads nowhere but to the
 * admin API's GET /ready and GET /stats/prometheus (test/envoy-config/listenerExposure.ts); every
 * DNS cache resolves through c-ares with loopback resolvers only (no
 * fallback to the system's), and every cluster is STATIC or the dynamic forward proxy (which dials
 * what that DNS answers: the test's DNS server hands out loopback addresses only).
 */
export function assertLoopbackOnly(doc: unknown): void {
  const problems: string[] = exposureProblems(doc).map((p) => `${p.path}: ${p.message}`);
  // The listeners' own addresses were judged just above; everything else must be loopback.
  const withoutBinds = JSON.parse(JSON.stringify(doc ?? null)) as unknown;
  if (isNode(withoutBinds) && isNode(withoutBinds.static_resources) && Array.isArray(withoutBinds.static_resources.listeners)) {
    for (const l of withoutBinds.static_resources.listeners as unknown[]) {
      if (isNode(l)) {
        delete l.address;
        delete l.additional_addresses;
      }
    }
  }
  walk(withoutBinds, (n) => {
    const sa = n.socket_address;
    if (isNode(sa) && !isLoopbackAddress(String(sa.address))) problems.push(`socket address ${String(sa.address)}:${String(sa.port_value)} is not loopback`);
    if (isNode(n.dns_cache_config)) {
      const r = n.dns_cache_config.typed_dns_resolver_config;
      const cfg = isNode(r) && r.name === CARES && isNode(r.typed_config) ? r.typed_config : undefined;
      const resolvers = cfg && Array.isArray(cfg.resolvers) ? cfg.resolvers : [];
      if (!cfg || resolvers.length === 0 || cfg.use_resolvers_as_fallback === true) problems.push(`DNS cache "${String(n.dns_cache_config.name)}" could use the system resolver`);
    }
    if (n.dns_resolvers !== undefined || n.dns_resolution_config !== undefined) problems.push("a cluster-level DNS resolver setting is left");
  });
  const clusters = isNode(doc) && isNode(doc.static_resources) && Array.isArray(doc.static_resources.clusters) ? doc.static_resources.clusters : [];
  for (const c of clusters as unknown[]) {
    if (!isNode(c)) continue;
    const custom = isNode(c.cluster_type) ? c.cluster_type.name : undefined;
    if (custom !== undefined ? custom !== DFP_CLUSTER : (c.type ?? "STATIC") !== "STATIC") problems.push(`cluster "${String(c.name)}" is ${String(custom ?? c.type)}, neither STATIC nor the dynamic forward proxy`);
  }
  if (isNode(doc) && (doc.dynamic_resources !== undefined || doc.cluster_manager !== undefined)) problems.push("dynamic_resources/cluster_manager would contact a control plane");
  if (problems.length > 0) throw new Error(`the e2e Envoy config could reach beyond loopback:\n  ${problems.join("\n  ")}`);
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
  /** The complete lines kept. */
  complete(): string[] {
    return [...this.lines];
  }
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
  /** The listener certificate and key (tls_decap), written where the config expects them. */
  certPem: string;
  keyPem: string;
  dnsPort: number;
  upstreamCaFile: string;
  readyTimeoutMs?: number;
  /** Envoy's --log-level (default warn). */
  logLevel?: string;
  /** Envoy's --concurrency, its worker threads (default 1). */
  concurrency?: number;
  /**
   * The bootstrap made from the shipped file (default: envoyE2eConfig); the benchmark passes its
   * own (bench/realpath/bootstrap.ts), which starts from envoyE2eConfig too.
   */
  makeConfig?: (shipped: unknown, opts: E2eConfigOptions) => Record<string, unknown>;
  /** Drop Envoy's stdout (the access log) instead of keeping its tail (the benchmark: no parsing cost in the measuring process). */
  discardStdout?: boolean;
}

/** Writes the test's certificate files and the rewritten bootstrap; returns the config file's path. */
export async function writeEnvoyE2eConfig(opts: StartRealEnvoyOptions): Promise<{ configFile: string; connectPort: number; endpointPort: number; statsPort: number; adminPort: number; tlsDir: string }> {
  // The TLS Secret as the kubelet mounts it (`..data` symlink), so that a test can renew it the
  // way Kubernetes does (updateSecretVolume) and Envoy's watched_directory sees it.
  const tlsDir = join(opts.dir, "tls");
  writeSecretVolume(tlsDir, { "tls.crt": opts.certPem, "tls.key": opts.keyPem });
  const envoyDir = join(opts.dir, "envoy");
  mkdirSync(envoyDir, { recursive: true });
  for (const name of SHIPPED_SDS_FILES) {
    const text = readFileSync(join(REPO, "envoy", name), "utf8").replaceAll(SHIPPED_TLS_DIR, `${tlsDir}/`).replaceAll(SHIPPED_TLS_DIR.slice(0, -1), tlsDir);
    writeFileSync(join(envoyDir, name), text);
  }
  // freePort() may hand out the port it has just released again: two listeners on one port fail Envoy's validation.
  const taken: number[] = [];
  const distinctPort = async (): Promise<number> => {
    let port = await freePort();
    while (taken.includes(port)) port = await freePort();
    taken.push(port);
    return port;
  };
  const connectPort = await distinctPort();
  const endpointPort = await distinctPort();
  const statsPort = await distinctPort();
  const adminPort = await distinctPort();
  const doc = (opts.makeConfig ?? envoyE2eConfig)(yaml.load(readFileSync(SHIPPED_ENVOY_YAML, "utf8")), {
    connectPort,
    endpointPort,
    statsPort,
    adminPort,
    extProcAddress: opts.extProcAddress,
    tlsDir,
    envoyDir,
    dnsPort: opts.dnsPort,
    upstreamCaFile: opts.upstreamCaFile,
  });
  const configFile = join(opts.dir, "envoy-e2e.yaml");
  writeFileSync(configFile, yaml.dump(doc, { noRefs: true, lineWidth: -1 }));
  return { configFile, connectPort, endpointPort, statsPort, adminPort, tlsDir };
}

export async function startRealEnvoy(opts: StartRealEnvoyOptions): Promise<RealEnvoy> {
  const envoy = envoyBinary();
  const { configFile, connectPort, endpointPort, statsPort, tlsDir } = await writeEnvoyE2eConfig(opts);
  const verdict = validateEnvoyConfig(configFile, ["--disable-hot-restart"]);
  if (!verdict.accepted) throw new Error(`envoy --mode validate rejected ${configFile} (exit ${verdict.status}; ${envoyVersionLine(envoy)}):\n${verdict.output}`);

  const adminAddressFile = join(opts.dir, "envoy-admin-address");
  const proc = spawn(envoy, ["-c", configFile, "--disable-hot-restart", "--concurrency", String(opts.concurrency ?? 1), "--log-level", opts.logLevel ?? "warn", "--admin-address-path", adminAddressFile], {
    stdio: ["ignore", opts.discardStdout ? "ignore" : "pipe", "pipe"],
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
    throw new Error(`${why}; config at ${configFile}\n${output()}`);
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
    pid: proc.pid as number,
    connectPort,
    endpointPort,
    statsPort,
    adminUrl,
    configFile,
    tlsDir,
    output,
    accessLog: async () => {
      await fetch(`${adminUrl}/reopen_logs`, { method: "POST", signal: AbortSignal.timeout(5_000) });
      return stdout.complete().flatMap((line) => {
        try {
          const v = JSON.parse(line) as unknown;
          return typeof v === "object" && v !== null && !Array.isArray(v) ? [v as Record<string, unknown>] : [];
        } catch {
          return [];
        }
      });
    },
    stats: async () => {
      const res = await fetch(`${adminUrl}/stats?format=json`, { signal: AbortSignal.timeout(5_000) });
      const body = (await res.json()) as { stats?: Array<{ name?: string; value?: number }> };
      const out: Record<string, number> = {};
      for (const st of body.stats ?? []) if (typeof st.name === "string" && typeof st.value === "number") out[st.name] = st.value;
      return out;
    },
    stop: async () => {
      await kill(proc);
      process.removeListener("exit", killOnExit);
    },
  };
}
