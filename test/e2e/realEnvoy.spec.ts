/**
 * The config real Envoy runs with in the end-to-end suite, the demo and the soak: envoy/envoy.yaml
 * rewritten for loopback by `envoyE2eConfig`. Envoy itself (`envoy --mode validate`) checks the
 * result; these tests pin what the rewrite may change (ports, certificate paths, the countersign
 * address, the DNS resolver, the upstream trust bundle) and that nothing else moves (the listeners
 * keep their shipped bind addresses), and that the result reaches nothing but loopback. Then startRealEnvoy's process handling, against a stand-in.
 */
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { Resolver } from "node:dns/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadEnvoyYaml } from "../envoy-config/validateBootstrap.js";
import { startDnsServer } from "../support/dnsServer.js";
import { REPO } from "../support/startServe.js";
import { envoyBinary, validateEnvoyConfig } from "../support/envoy.js";
import { assertLoopbackOnly, envoyE2eConfig, SHIPPED_ENVOY_YAML, splitHostPort, startRealEnvoy, type E2eConfigOptions, type RealEnvoy } from "./realEnvoy.js";

type Obj = Record<string, unknown>;

const OPTS: E2eConfigOptions = {
  connectPort: 41001,
  endpointPort: 41002,
  statsPort: 41006,
  adminPort: 41007,
  extProcAddress: "127.0.0.1:41003",
  tlsDir: "/tmp/countersign-e2e-x/tls",
  envoyDir: "/tmp/countersign-e2e-x/envoy",
  dnsPort: 41005,
  upstreamCaFile: "/tmp/countersign-e2e-x/fake-aws-ca.crt",
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

/** Every dns_cache_config in the document. */
function dnsCaches(doc: unknown): Obj[] {
  const out: Obj[] = [];
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) n.forEach(walk);
    else if (n && typeof n === "object") {
      const o = n as Obj;
      if (o["dns_cache_config"]) out.push(o["dns_cache_config"] as Obj);
      Object.values(o).forEach(walk);
    }
  };
  walk(doc);
  return out;
}

/** Undoes the changes the rewrite is allowed to make, so that what is left must equal the shipped file. */
function withoutAllowedChanges(doc: Obj): Obj {
  const copy = JSON.parse(JSON.stringify(doc)) as Obj;
  const text = JSON.stringify(copy)
    .replaceAll(`"${OPTS.tlsDir}/`, '"/etc/countersign/tls/')
    .replaceAll(`"${OPTS.envoyDir}/`, '"/etc/envoy/')
    .replaceAll(`"${OPTS.envoyDir}"`, '"/etc/envoy"')
    .replaceAll(`"${OPTS.upstreamCaFile}"`, '"/etc/ssl/certs/ca-certificates.crt"');
  const back = JSON.parse(text) as Obj;
  for (const c of dnsCaches(back)) delete c["typed_dns_resolver_config"];
  delete (back["admin"] as Obj)["address"];
  for (const l of at(back, "static_resources", "listeners") as Obj[]) delete (at(l, "address", "socket_address") as Obj | undefined)?.["port_value"];
  delete named(back, "clusters", "countersign")["load_assignment"];
  delete (at(named(back, "clusters", "envoy_admin"), "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address", "socket_address") as Obj)["port_value"];
  return back;
}

describe("envoyE2eConfig: the shipped envoy.yaml rewritten for a loopback run", () => {
  const doc = envoyE2eConfig(loadEnvoyYaml(SHIPPED_ENVOY_YAML), OPTS);

  it("changes nothing but ports, certificate paths, the countersign address, the DNS resolver and the trust bundle", () => {
    const original = shipped();
    for (const c of dnsCaches(original)) delete c["typed_dns_resolver_config"];
    delete (original["admin"] as Obj)["address"];
    for (const l of at(original, "static_resources", "listeners") as Obj[]) delete (at(l, "address", "socket_address") as Obj | undefined)?.["port_value"];
    delete named(original, "clusters", "countersign")["load_assignment"];
    delete (at(named(original, "clusters", "envoy_admin"), "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address", "socket_address") as Obj)["port_value"];
    expect(withoutAllowedChanges(doc)).toEqual(original);
  });

  it("gives each listener its port and keeps its shipped address (signing listeners 127.0.0.1, envoy_stats 0.0.0.0); the admin API and the cluster to it move to the admin port", () => {
    expect(at(doc, "admin", "address")).toEqual({ socket_address: { address: "127.0.0.1", port_value: OPTS.adminPort } });
    expect(named(doc, "listeners", "connect_in")["address"]).toEqual({ socket_address: { address: "127.0.0.1", port_value: OPTS.connectPort } });
    expect(named(doc, "listeners", "endpoint_in")["address"]).toEqual({ socket_address: { address: "127.0.0.1", port_value: OPTS.endpointPort } });
    expect(named(doc, "listeners", "envoy_stats")["address"]).toEqual({ socket_address: { address: "0.0.0.0", port_value: OPTS.statsPort } });
    expect(at(named(doc, "clusters", "envoy_admin"), "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address")).toEqual({ socket_address: { address: "127.0.0.1", port_value: OPTS.adminPort } });
  });

  it("points the TLS files at the test's folder and countersign's cluster at the server under test", () => {
    expect(JSON.stringify(doc)).not.toContain("/etc/countersign");
    expect(JSON.stringify(doc)).not.toContain('"/etc/envoy');
    // The listener's certificate comes through file-based SDS; the secret file is the test's copy.
    const sds = at(named(doc, "listeners", "tls_decap"), "filter_chains", 0, "transport_socket", "typed_config", "common_tls_context", "tls_certificate_sds_secret_configs", 0, "sds_config", "path_config_source");
    expect(sds).toEqual({ path: `${OPTS.envoyDir}/tls-certificate.sds.yaml`, watched_directory: { path: OPTS.envoyDir } });
    const cs = named(doc, "clusters", "countersign");
    expect(at(cs, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint", "address")).toEqual({ socket_address: { address: "127.0.0.1", port_value: 41003 } });
  });

  it("keeps the dynamic forward proxy, auto_sni and auto_san_validation; its DNS cache (filter and cluster alike) asks only the test's DNS server", () => {
    const up = named(doc, "clusters", "aws_upstream");
    expect(at(up, "cluster_type", "name")).toBe("envoy.clusters.dynamic_forward_proxy");
    expect(at(up, "typed_extension_protocol_options", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "upstream_http_protocol_options")).toEqual({ auto_sni: true, auto_san_validation: true });
    expect(at(up, "transport_socket", "typed_config", "common_tls_context", "validation_context", "trusted_ca")).toEqual({ filename: OPTS.upstreamCaFile });
    const caches = dnsCaches(doc);
    // The filter on both signing listeners and the cluster: one cache, so one identical config.
    expect(caches.length).toBe(3);
    for (const c of caches) expect(c).toEqual(caches[0]);
    expect(caches[0]?.["typed_dns_resolver_config"]).toEqual({
      name: "envoy.network.dns_resolver.cares",
      typed_config: {
        "@type": "type.googleapis.com/envoy.extensions.network.dns_resolver.cares.v3.CaresDnsResolverConfig",
        resolvers: [{ socket_address: { address: "127.0.0.1", port_value: OPTS.dnsPort } }],
        use_resolvers_as_fallback: false,
        dns_resolver_options: { no_default_search_domain: true },
      },
    });
    const filterTypes = (h: Obj): string[] => (h["http_filters"] as Obj[]).map((f) => String(at(f, "typed_config", "@type")).split("/")[1] ?? "");
    for (const l of ["tls_decap", "plain_sign"]) {
      expect(filterTypes(hcm(doc, l))).toEqual([
        "envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
        "envoy.extensions.filters.http.dynamic_forward_proxy.v3.FilterConfig",
        "envoy.extensions.filters.http.router.v3.Router",
      ]);
    }
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

  it("refuses a shipped config it does not know how to confine (a new listener with a socket, no DNS cache, no trust bundle)", () => {
    const extra = shipped();
    (at(extra, "static_resources", "listeners") as Obj[]).push({ name: "debug_in", address: { socket_address: { address: "0.0.0.0", port_value: 9999 } }, filter_chains: [] });
    expect(() => envoyE2eConfig(extra, OPTS)).toThrow(/listener "debug_in"/);
    const noDfp = shipped();
    delete named(noDfp, "clusters", "aws_upstream")["cluster_type"];
    expect(() => envoyE2eConfig(noDfp, OPTS)).toThrow(/dynamic_forward_proxy/);
    const noBundle = JSON.parse(JSON.stringify(shipped()).replaceAll("/etc/ssl/certs/ca-certificates.crt", "/elsewhere.pem")) as Obj;
    expect(() => envoyE2eConfig(noBundle, OPTS)).toThrow(/trust/);
  });
});

describe("assertLoopbackOnly", () => {
  const good = (): Obj => envoyE2eConfig(shipped(), OPTS);
  const messageOf = (doc: Obj): string => {
    try {
      assertLoopbackOnly(doc);
      return "";
    } catch (err) {
      return (err as Error).message;
    }
  };

  it("passes the rewritten config (envoy_stats on 0.0.0.0 included) and refuses the shipped one (system DNS)", () => {
    expect(messageOf(good())).toBe("");
    expect(messageOf(shipped())).toContain('DNS cache "aws_dns_cache" could use the system resolver');
  });

  it("refuses a signing listener bound beyond loopback, and a stats listener that forwards more than the two read-only paths", () => {
    const open = good();
    (at(named(open, "listeners", "connect_in"), "address", "socket_address") as Obj)["address"] = "0.0.0.0";
    expect(messageOf(open)).toContain('listener "connect_in" binds 0.0.0.0:41001, beyond loopback');
    const stats = good();
    (at(hcm(stats, "envoy_stats"), "route_config", "virtual_hosts", 0, "routes", 0, "match") as Obj)["path"] = "/quitquitquit";
    expect(messageOf(stats)).toContain("forwards /quitquitquit; only /ready and /stats/prometheus may leave loopback");
  });

  it("refuses a non-loopback address or resolver, a fallback to the system resolver, a DNS cluster and a control plane", () => {
    const wide = good();
    (at(wide, "admin", "address", "socket_address") as Obj)["address"] = "0.0.0.0";
    expect(messageOf(wide)).toContain("the admin API binds 0.0.0.0, beyond loopback");
    expect(messageOf(wide)).toContain(`socket address 0.0.0.0:${OPTS.adminPort} is not loopback`);

    const resolver = good();
    ((dnsCaches(resolver)[0]?.["typed_dns_resolver_config"] as Obj)["typed_config"] as Obj)["resolvers"] = [{ socket_address: { address: "8.8.8.8", port_value: 53 } }];
    expect(messageOf(resolver)).toMatch(/8\.8\.8\.8:53 is not loopback/);

    const fallback = good();
    ((dnsCaches(fallback)[1]?.["typed_dns_resolver_config"] as Obj)["typed_config"] as Obj)["use_resolvers_as_fallback"] = true;
    expect(messageOf(fallback)).toMatch(/could use the system resolver/);

    const dns = good();
    named(dns, "clusters", "countersign")["type"] = "STRICT_DNS";
    expect(messageOf(dns)).toMatch(/"countersign" is STRICT_DNS/);

    const xds = good();
    xds["dynamic_resources"] = { ads_config: {} };
    expect(messageOf(xds)).toMatch(/control plane/);
  });
});

describe("the test DNS server, asked by Node's resolver", () => {
  it("answers A for names in its zone with its loopback address, nothing for AAAA, NXDOMAIN elsewhere; refuses to hand out a non-loopback address", async () => {
    const dns = await startDnsServer({ zones: ["amazonaws.com"], ipv4: "127.9.8.7" });
    try {
      const r = new Resolver({ timeout: 2_000, tries: 1 });
      r.setServers([`127.0.0.1:${dns.port}`]);
      expect(await r.resolve4("my-bucket.s3.eu-west-1.amazonaws.com")).toEqual(["127.9.8.7"]);
      expect(await r.resolve4("sts.AMAZONAWS.com")).toEqual(["127.9.8.7"]);
      await expect(r.resolve6("sts.amazonaws.com")).rejects.toMatchObject({ code: "ENODATA" });
      await expect(r.resolve4("example.com")).rejects.toMatchObject({ code: "ENOTFOUND" });
      await expect(r.resolve4("amazonaws.com.evil.example")).rejects.toMatchObject({ code: "ENOTFOUND" });
      expect(dns.queries).toContain("A my-bucket.s3.eu-west-1.amazonaws.com");
    } finally {
      await dns.close();
    }
    await expect(startDnsServer({ zones: ["amazonaws.com"], ipv4: "10.0.0.1" })).rejects.toThrow(/loopback/);
  });
});

describe("envoy --mode validate (the pinned Envoy)", () => {
  it("accepts the rewritten config and rejects an unknown field with Envoy's words", async () => {
    const dir = mkdtempSync(join(tmpdir(), "countersign-validate-"));
    const { createCa, createLeaf } = await import("../../src/certs/certificates.js");
    const ca = await createCa({ commonName: "validate CA" });
    const leaf = await createLeaf({ ca, hosts: ["s3.us-east-1.amazonaws.com"] });
    writeFileSync(join(dir, "tls.crt"), leaf.certPem);
    writeFileSync(join(dir, "tls.key"), leaf.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, "ca.crt"), ca.certPem);
    mkdirSync(join(dir, "envoy"));
    writeFileSync(join(dir, "envoy", "tls-certificate.sds.yaml"), readFileSync(join(REPO, "envoy", "tls-certificate.sds.yaml"), "utf8").replaceAll("/etc/countersign/tls", dir));
    const doc = envoyE2eConfig(loadEnvoyYaml(SHIPPED_ENVOY_YAML), { ...OPTS, tlsDir: dir, envoyDir: join(dir, "envoy"), upstreamCaFile: join(dir, "ca.crt") });
    const file = join(dir, "validate.yaml");
    writeFileSync(file, yaml.dump(doc, { noRefs: true }));
    const accepted = validateEnvoyConfig(file);
    expect(accepted.accepted, accepted.output).toBe(true);
    const broken = join(dir, "broken.yaml");
    writeFileSync(broken, yaml.dump({ ...doc, not_a_bootstrap_field: 1 }, { noRefs: true }));
    const rejected = validateEnvoyConfig(broken);
    expect(rejected.accepted).toBe(false);
    expect(rejected.status).not.toBe(0);
    expect(rejected.output).toMatch(/not_a_bootstrap_field/);
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------
// startRealEnvoy's process handling, against a stand-in `envoy` (a small Node script named by
// COUNTERSIGN_ENVOY) that checks the flags it gets and behaves as STANDIN_MODE says. No traffic is proxied.

const STANDIN = `
const fs = require("node:fs"), http = require("node:http");
const args = process.argv.slice(2), mode = process.env.STANDIN_MODE ?? "ok";
const arg = (f) => args[args.indexOf(f) + 1];
if (args.includes("--version")) { console.log("envoy stand-in/0.0"); process.exit(0); }
if (arg("--mode") === "validate") {
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
  const argsFile = join(bin, "args.json");
  beforeAll(() => {
    writeFileSync(join(bin, "envoy"), `#!${process.execPath}\n${STANDIN}`, { mode: 0o755 });
    process.env.COUNTERSIGN_ENVOY = join(bin, "envoy");
    process.env.STANDIN_ARGS = argsFile;
  });
  afterAll(() => {
    delete process.env.COUNTERSIGN_ENVOY;
    delete process.env.STANDIN_ARGS;
    delete process.env.STANDIN_MODE;
  });
  const start = (mode: string, readyTimeoutMs = 10_000): Promise<RealEnvoy> => {
    process.env.STANDIN_MODE = mode;
    return startRealEnvoy({ dir: mkdtempSync(join(tmpdir(), "countersign-standin-run-")), extProcAddress: "127.0.0.1:1", certPem: "cert", keyPem: "key", dnsPort: 9, upstreamCaFile: "/nonexistent/ca.crt", readyTimeoutMs });
  };

  it("runs the binary COUNTERSIGN_ENVOY names, with the flags the harness promises, waits for /ready and stops it", async () => {
    expect(envoyBinary()).toBe(join(bin, "envoy"));
    const e = await start("ok");
    const args = JSON.parse(readFileSync(argsFile, "utf8")) as string[];
    expect(args).toEqual(["-c", e.configFile, "--disable-hot-restart", "--concurrency", "1", "--log-level", "warn", "--admin-address-path", expect.any(String)]);
    expect((await fetch(`${e.adminUrl}/ready`)).status).toBe(200);
    // The config it was given is the loopback rewrite, written to the run's temp dir.
    const written = yaml.load(readFileSync(e.configFile, "utf8"));
    expect(() => assertLoopbackOnly(written)).not.toThrow();
    await e.stop();
    await expect(fetch(`${e.adminUrl}/ready`)).rejects.toThrow();
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

  it("says how to install Envoy when the binary is missing", () => {
    const saved = process.env.COUNTERSIGN_ENVOY;
    process.env.COUNTERSIGN_ENVOY = join(bin, "no-such-envoy");
    try {
      expect(() => envoyBinary()).toThrow(/make envoy/);
    } finally {
      process.env.COUNTERSIGN_ENVOY = saved;
    }
  });
});
