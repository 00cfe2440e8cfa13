/**
 * The config `make e2e-envoy` runs a real Envoy with: envoy/envoy.yaml rewritten for loopback by
 * `envoyE2eConfig`. These checks need no Envoy binary, so `make test` guards the harness config:
 * it must still pass the repo's own validator (Envoy's v3 protos + countersign's rules), keep the
 * shipped signing path unchanged, and reach nothing but 127.0.0.1.
 * The last block runs only where an `envoy` is on PATH (it says so when it skips).
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatProblems, loadEnvoyYaml, validateBootstrap } from "../envoy-config/validateBootstrap.js";
import { assertLoopbackOnly, envoyE2eConfig, findEnvoy, SHIPPED_ENVOY_YAML, splitHostPort, startRealEnvoy, validateWithEnvoy, type E2eConfigOptions, type RealEnvoy } from "./realEnvoy.js";

type Obj = Record<string, unknown>;

const OPTS: E2eConfigOptions = {
  connectPort: 41001,
  endpointPort: 41002,
  extProcAddress: "127.0.0.1:41003",
  fakeAwsPort: 41004,
  certFile: "/tmp/countersign-e2e-x/tls.crt",
  keyFile: "/tmp/countersign-e2e-x/tls.key",
};

const shipped = (): Obj => JSON.parse(JSON.stringify(loadEnvoyYaml(SHIPPED_ENVOY_YAML))) as Obj;

function at(value: unknown, ...keys: (string | number)[]): unknown {
  let v = value;
  for (const k of keys) v = (v as Record<string | number, unknown> | undefined)?.[k];
  return v;
}

function named(doc: Obj, kind: "listeners" | "clusters", name: string): Obj {
  const found = (at(doc, "static_resources", kind) as Obj[]).find((x) => x["name"] === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
}

function hcm(doc: Obj, listener: string): Obj {
  return at(named(doc, "listeners", listener), "filter_chains", 0, "filters", 0, "typed_config") as Obj;
}

const filterTypes = (h: Obj): string[] => (h["http_filters"] as Obj[]).map((f) => String(at(f, "typed_config", "@type")).split("/")[1] ?? "");

describe("envoyE2eConfig: the shipped envoy.yaml rewritten for a loopback run", () => {
  const doc = envoyE2eConfig(loadEnvoyYaml(SHIPPED_ENVOY_YAML), OPTS);

  it("still passes the repo's validator (Envoy v3 protos and countersign's rules), also after a YAML round trip", () => {
    expect(formatProblems(validateBootstrap(doc))).toBe("");
    expect(formatProblems(validateBootstrap(yaml.load(yaml.dump(doc, { noRefs: true }))))).toBe("");
  });

  it("binds admin and both listeners on 127.0.0.1 (admin on port 0, read back through --admin-address-path)", () => {
    expect(at(doc, "admin", "address")).toEqual({ socket_address: { address: "127.0.0.1", port_value: 0 } });
    expect(named(doc, "listeners", "connect_in")["address"]).toEqual({ socket_address: { address: "127.0.0.1", port_value: OPTS.connectPort } });
    expect(named(doc, "listeners", "endpoint_in")["address"]).toEqual({ socket_address: { address: "127.0.0.1", port_value: OPTS.endpointPort } });
  });

  it("points the TLS termination at the test's leaf and countersign's cluster at the server under test", () => {
    const cert = at(named(doc, "listeners", "tls_decap"), "filter_chains", 0, "transport_socket", "typed_config", "common_tls_context", "tls_certificates", 0);
    expect(cert).toEqual({ certificate_chain: { filename: OPTS.certFile }, private_key: { filename: OPTS.keyFile } });
    expect(JSON.stringify(doc)).not.toContain("/etc/countersign");
    const cs = named(doc, "clusters", "countersign");
    expect(at(cs, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address")).toEqual({ socket_address: { address: "127.0.0.1", port_value: 41003 } });
    // Its HTTP/2 settings (ext_proc is gRPC) are the shipped ones.
    expect(cs["typed_extension_protocol_options"]).toEqual(named(shipped(), "clusters", "countersign")["typed_extension_protocol_options"]);
  });

  it("sends the upstream to the fake AWS: a STATIC plain HTTP/1.1 cluster on 127.0.0.1, no TLS, no DNS, no dynamic_forward_proxy filter", () => {
    const up = named(doc, "clusters", "aws_upstream");
    expect(up["type"]).toBe("STATIC");
    expect(up["cluster_type"]).toBeUndefined();
    expect(up["transport_socket"]).toBeUndefined();
    expect(at(up, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address")).toEqual({ socket_address: { address: "127.0.0.1", port_value: OPTS.fakeAwsPort } });
    const options = at(up, "typed_extension_protocol_options", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions") as Obj;
    expect(options["explicit_http_config"]).toEqual({ http_protocol_options: {} });
    expect(at(options, "common_http_protocol_options", "idle_timeout")).toBe("2s");
    expect(JSON.stringify(doc)).not.toContain("dns_cache_config");
  });

  it("keeps the shipped signing path: ext_proc settings, routes, buffer limits, TLS and HCM options unchanged, filters [ext_proc, router]", () => {
    const original = shipped();
    for (const name of ["tls_decap", "plain_sign"]) {
      const [mine, theirs] = [hcm(doc, name), hcm(original, name)];
      expect(filterTypes(theirs)).toEqual([
        "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
        "envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
        "envoy.extensions.filters.http.router.v3.Router",
      ]);
      expect(filterTypes(mine)).toEqual(["envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor", "envoy.extensions.filters.http.router.v3.Router"]);
      expect((mine["http_filters"] as Obj[])[0]).toEqual((theirs["http_filters"] as Obj[])[0]);
      expect((mine["http_filters"] as Obj[])[1]).toEqual((theirs["http_filters"] as Obj[])[2]);
      const { http_filters: _a, ...restMine } = mine;
      const { http_filters: _b, ...restTheirs } = theirs;
      expect(restMine).toEqual(restTheirs);
      const { filter_chains: _c, ...listenerMine } = named(doc, "listeners", name);
      const { filter_chains: _d, ...listenerTheirs } = named(original, "listeners", name);
      expect(listenerMine).toEqual(listenerTheirs);
    }
    for (const name of ["connect_in", "endpoint_in"]) expect(hcm(doc, name)).toEqual(hcm(original, name));
    for (const name of ["tls_decap", "plain_sign"]) expect(named(doc, "clusters", name)).toEqual(named(original, "clusters", name));
    expect(doc["bootstrap_extensions"]).toEqual(original["bootstrap_extensions"]);
  });

  it("does not change the document it was given", () => {
    const input = shipped();
    const before = JSON.stringify(input);
    envoyE2eConfig(input, OPTS);
    expect(JSON.stringify(input)).toBe(before);
  });

  it("accepts an IPv6 countersign address and refuses a malformed one", () => {
    expect(splitHostPort("[::1]:50051")).toEqual(["::1", 50051]);
    expect(splitHostPort("127.0.0.1:50051")).toEqual(["127.0.0.1", 50051]);
    const v6 = envoyE2eConfig(shipped(), { ...OPTS, extProcAddress: "[::1]:50051" });
    expect(at(named(v6, "clusters", "countersign"), "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address")).toEqual({ socket_address: { address: "::1", port_value: 50051 } });
    expect(() => splitHostPort("localhost")).toThrow(/host:port/);
    expect(() => splitHostPort("127.0.0.1:0")).toThrow(/host:port/);
  });

  it("refuses a shipped config it does not know how to confine (a new listener with a socket, no upstream to replace)", () => {
    const extra = shipped();
    (at(extra, "static_resources", "listeners") as Obj[]).push({ name: "debug_in", address: { socket_address: { address: "0.0.0.0", port_value: 9999 } }, filter_chains: [] });
    expect(() => envoyE2eConfig(extra, OPTS)).toThrow(/listener "debug_in"/);
    const noDfp = shipped();
    delete named(noDfp, "clusters", "aws_upstream")["cluster_type"];
    expect(() => envoyE2eConfig(noDfp, OPTS)).toThrow(/dynamic_forward_proxy/);
  });
});

describe("assertLoopbackOnly", () => {
  const good = (): Obj => envoyE2eConfig(shipped(), OPTS);

  it("passes the rewritten config", () => {
    expect(() => assertLoopbackOnly(good())).not.toThrow();
  });

  it("refuses a non-loopback address, a DNS or dynamic forward proxy cluster, a DNS cache and a control plane", () => {
    const wide = good();
    (at(wide, "admin", "address", "socket_address") as Obj)["address"] = "0.0.0.0";
    expect(() => assertLoopbackOnly(wide)).toThrow(/0\.0\.0\.0:0 is not loopback/);

    const dns = good();
    named(dns, "clusters", "aws_upstream")["type"] = "STRICT_DNS";
    expect(() => assertLoopbackOnly(dns)).toThrow(/"aws_upstream" is STRICT_DNS/);

    // The shipped file as it is: its public listener, the DFP cluster, cache and filter.
    const message = ((): string => {
      try {
        assertLoopbackOnly(shipped());
        return "";
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(message).toContain("0.0.0.0:15001 is not loopback");
    expect(message).toContain('cluster "aws_upstream" is a custom cluster type');
    expect(message).toContain("a dns_cache_config is left");
    expect(message).toContain("a dynamic_forward_proxy filter is left");

    const xds = good();
    xds["dynamic_resources"] = { ads_config: {} };
    expect(() => assertLoopbackOnly(xds)).toThrow(/control plane/);
  });
});

// ---------------------------------------------------------------------------------------------
// startRealEnvoy's process handling, against a stand-in `envoy` (a small Node script put first on
// PATH) that checks the flags it gets and behaves as STANDIN_MODE says. No traffic is proxied.

const STANDIN = `
const fs = require("node:fs"), http = require("node:http");
const args = process.argv.slice(2), mode = process.env.STANDIN_MODE ?? "ok";
const arg = (f) => args[args.indexOf(f) + 1];
if (args.includes("--version")) { console.log("envoy stand-in/0.0"); process.exit(0); }
if (arg("--mode") === "validate") {
  if (mode === "validate-bug") { console.error("error initializing configuration: error adding listener named 'tls_decap': internal listener registry is not initialized"); process.exit(1); }
  if (mode === "validate-reject") { console.error("Protobuf message has unknown fields"); process.exit(1); }
  process.exit(0);
}
fs.writeFileSync(process.env.STANDIN_ARGS, JSON.stringify(args));
if (mode === "crash") { console.error("[critical][main] error initializing configuration: stand-in crash"); process.exit(1); }
const s = http.createServer((q, r) => { r.statusCode = mode === "never-ready" ? 503 : 200; r.end("LIVE"); });
s.listen(0, "127.0.0.1", () => fs.writeFileSync(arg("--admin-address-path"), "127.0.0.1:" + s.address().port));
process.on("SIGTERM", () => process.exit(0));
`;

describe("startRealEnvoy against a stand-in envoy binary", () => {
  const bin = mkdtempSync(join(tmpdir(), "countersign-envoy-standin-"));
  const savedPath = process.env.PATH;
  const argsFile = join(bin, "args.json");
  beforeAll(() => {
    writeFileSync(join(bin, "envoy"), `#!${process.execPath}\n${STANDIN}`, { mode: 0o755 });
    process.env.PATH = `${bin}:${savedPath ?? ""}`;
    process.env.STANDIN_ARGS = argsFile;
  });
  afterAll(() => {
    process.env.PATH = savedPath;
    delete process.env.STANDIN_ARGS;
    delete process.env.STANDIN_MODE;
  });
  const start = (mode: string, readyTimeoutMs = 10_000): Promise<RealEnvoy> => {
    process.env.STANDIN_MODE = mode;
    return startRealEnvoy({ dir: mkdtempSync(join(tmpdir(), "countersign-standin-run-")), extProcAddress: "127.0.0.1:1", certPem: "cert", keyPem: "key", fakeAwsPort: 9, readyTimeoutMs });
  };

  it("finds it on PATH, starts it with the flags the harness promises, waits for /ready and stops it", async () => {
    expect(findEnvoy()).toBe(join(bin, "envoy"));
    const e = await start("ok");
    const args = JSON.parse(readFileSync(argsFile, "utf8")) as string[];
    expect(args).toEqual(["-c", e.configFile, "--disable-hot-restart", "--concurrency", "1", "--log-level", "warn", "--admin-address-path", expect.any(String)]);
    expect(e.validation).toEqual({ ok: true });
    expect((await fetch(`${e.adminUrl}/ready`)).status).toBe(200);
    // The config it was given is the loopback rewrite, written to the run's temp dir.
    const written = yaml.load(readFileSync(e.configFile, "utf8"));
    expect(formatProblems(validateBootstrap(written))).toBe("");
    expect(() => assertLoopbackOnly(written)).not.toThrow();
    await e.stop();
    await expect(fetch(`${e.adminUrl}/ready`)).rejects.toThrow();
  });

  it("goes on past the known validate-mode bug and says so", async () => {
    const e = await start("validate-bug");
    expect(e.validation.ok).toBe(false);
    await e.stop();
  });

  it("stops at a config envoy --mode validate rejects, with Envoy's words", async () => {
    await expect(start("validate-reject")).rejects.toThrow(/rejected[\s\S]*unknown fields/);
  });

  it("reports Envoy's stderr when it exits at start", async () => {
    await expect(start("crash")).rejects.toThrow(/exited \(1\) before it was ready[\s\S]*envoy stderr[\s\S]*stand-in crash/);
  });

  it("gives up after the timeout when /ready never answers 200, and kills the process", async () => {
    await expect(start("never-ready", 1_500)).rejects.toThrow(/not ready \(admin \/ready 200\) within 1500 ms/);
  });
});

// ---------------------------------------------------------------------------------------------
// With a real Envoy on PATH only.

const envoyBinary = findEnvoy();
const SKIP_REASON = "real-Envoy checks SKIPPED: no 'envoy' binary on PATH (install Envoy to run them, and make e2e-envoy for the whole suite)";
if (envoyBinary === undefined) console.log(SKIP_REASON);

describe.skipIf(envoyBinary === undefined)(`real Envoy (${envoyBinary ?? SKIP_REASON})`, () => {
  const dir = mkdtempSync(join(tmpdir(), "countersign-real-envoy-"));
  let upstream: http.Server;
  let upstreamPort = 0;
  let upstreamHits = 0;
  let envoy: RealEnvoy | undefined;

  beforeAll(async () => {
    upstream = http.createServer((_req, res) => {
      upstreamHits++;
      res.end("reached");
    });
    await new Promise<void>((r) => upstream.listen(0, "127.0.0.1", () => r()));
    upstreamPort = (upstream.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await envoy?.stop();
    await new Promise<void>((r) => upstream.close(() => r()));
  });

  it("envoy --mode validate accepts the rewritten config (or stops only at the known internal-listener validate-mode bug) and rejects a broken one", async () => {
    const { createCa, createLeaf } = await import("../../src/certs/certificates.js");
    const ca = await createCa({ commonName: "real envoy validate CA" });
    const leaf = await createLeaf({ ca, hosts: ["s3.us-east-1.amazonaws.com"] });
    writeFileSync(join(dir, "v.crt"), leaf.certPem);
    writeFileSync(join(dir, "v.key"), leaf.keyPem, { mode: 0o600 });
    const doc = envoyE2eConfig(loadEnvoyYaml(SHIPPED_ENVOY_YAML), { ...OPTS, certFile: join(dir, "v.crt"), keyFile: join(dir, "v.key") });
    const file = join(dir, "validate.yaml");
    writeFileSync(file, yaml.dump(doc, { noRefs: true }));
    const verdict = validateWithEnvoy(envoyBinary as string, file);
    if (!verdict.ok) console.log(`envoy --mode validate hit the internal-listener bug (envoyproxy/envoy#28413); output:\n${verdict.output}`);
    // An unknown field fails the proto parse, before any listener is built: Envoy must refuse it.
    const broken = join(dir, "broken.yaml");
    writeFileSync(broken, yaml.dump({ ...doc, not_a_bootstrap_field: 1 }, { noRefs: true }));
    expect(() => validateWithEnvoy(envoyBinary as string, broken)).toThrow(/not_a_bootstrap_field/);
  }, 60_000);

  it("starts, is ready on /ready, fails closed with countersign down (nothing reaches the upstream), and stops", async () => {
    const { createCa, createLeaf } = await import("../../src/certs/certificates.js");
    const ca = await createCa({ commonName: "real envoy smoke CA" });
    const leaf = await createLeaf({ ca, hosts: ["s3.us-east-1.amazonaws.com"] });
    // Port 1 on loopback: nothing listens, so every ext_proc stream fails.
    envoy = await startRealEnvoy({ dir, extProcAddress: "127.0.0.1:1", certPem: leaf.certPem, keyPem: leaf.keyPem, fakeAwsPort: upstreamPort });
    expect((await fetch(`${envoy.adminUrl}/ready`)).status).toBe(200);
    expect(readFileSync(envoy.configFile, "utf8")).toContain(`port_value: ${upstreamPort}`);

    const res = await fetch(`http://127.0.0.1:${envoy.endpointPort}/bucket/key`);
    await res.text();
    expect([500, 503, 504]).toContain(res.status);
    expect(upstreamHits).toBe(0);

    await envoy.stop();
    await expect(fetch(`${envoy.adminUrl}/ready`)).rejects.toThrow();
    envoy = undefined;
  }, 60_000);
});
