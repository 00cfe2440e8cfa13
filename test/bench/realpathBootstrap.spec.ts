/**
 * The real-path benchmark's Envoy bootstraps (bench/realpath/bootstrap.ts) are the shipped
 * envoy/envoy.yaml with one filter changed: these tests pin what each configuration changes and
 * that nothing else moves, and Envoy itself (`envoy --mode validate`) accepts every generated file,
 * the responder's included. The benchmark is not part of `make test`; its bootstraps are.
 */
import "reflect-metadata";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import { createCa, createLeaf } from "../../src/certs/certificates.js";
import { BENCH_CONFIGS, benchEnvoyConfig, responderConfig, type BenchConfigName, type BenchConfigOptions } from "../../bench/realpath/bootstrap.js";
import { loadEnvoyYaml } from "../envoy-config/validateBootstrap.js";
import { envoyE2eConfig, SHIPPED_ENVOY_YAML } from "../e2e/realEnvoy.js";
import { validateEnvoyConfig } from "../support/envoy.js";

type Obj = Record<string, unknown>;

const BASE: Omit<BenchConfigOptions, "config"> = {
  connectPort: 42001,
  endpointPort: 42002,
  statsPort: 42006,
  adminPort: 42007,
  tlsDir: "/tmp/countersign-bench-x/tls",
  envoyDir: "/tmp/countersign-bench-x/envoy",
  dnsPort: 42005,
  upstreamCaFile: "/tmp/countersign-bench-x/ca.crt",
  credentials: { accessKeyId: "AKIDBENCHSPEC0000001", secretAccessKey: "benchSpecSecretNotReal000000000000000001" },
  region: "us-east-1",
  service: "s3",
};

const shipped = (): unknown => loadEnvoyYaml(SHIPPED_ENVOY_YAML);

function configFor(config: BenchConfigName): Obj {
  return benchEnvoyConfig(shipped(), { ...BASE, config, extProcAddress: config === "C" || config === "X" ? "127.0.0.1:42003" : undefined });
}

function filtersOf(doc: Obj, listener: string): Obj[] {
  const l = ((doc.static_resources as Obj).listeners as Obj[]).find((x) => x.name === listener) as Obj;
  const chain = (l.filter_chains as Obj[])[0] as Obj;
  return ((((chain.filters as Obj[])[0] as Obj).typed_config as Obj).http_filters as Obj[]) ?? [];
}

const names = (doc: Obj, listener: string): unknown[] => filtersOf(doc, listener).map((f) => f.name);

describe("real-path bench bootstraps", () => {
  it("C is the e2e rewrite of the shipped file, unchanged", () => {
    const e2e = envoyE2eConfig(shipped(), { ...BASE, extProcAddress: "127.0.0.1:42003" });
    expect(configFor("C")).toEqual(e2e);
  });

  it("X differs from C only in where ext_proc goes (the caller's address)", () => {
    const x = benchEnvoyConfig(shipped(), { ...BASE, config: "X", extProcAddress: "127.0.0.1:42999" });
    const c = configFor("C");
    const cluster = (d: Obj): Obj => ((d.static_resources as Obj).clusters as Obj[]).find((k) => k.name === "countersign") as Obj;
    expect(JSON.stringify(cluster(x))).toContain("42999");
    expect({ ...x, static_resources: { ...(x.static_resources as Obj), clusters: [] } }).toEqual({ ...c, static_resources: { ...(c.static_resources as Obj), clusters: [] } });
  });

  it("F drops ext_proc from both signing listeners and nothing else", () => {
    const f = configFor("F");
    for (const l of ["tls_decap", "plain_sign"]) expect(names(f, l)).toEqual(["envoy.filters.http.dynamic_forward_proxy", "envoy.filters.http.router"]);
    // F keeps the countersign cluster, pointed at the discard port nothing serves.
    const c = benchEnvoyConfig(shipped(), { ...BASE, config: "C", extProcAddress: "127.0.0.1:9" });
    for (const l of ["tls_decap", "plain_sign"]) filtersOf(c, l).splice(0, 1);
    expect(f).toEqual(c);
  });

  it("N and Nu put aws_request_signing with static credentials where ext_proc was", () => {
    for (const [config, unsigned] of [
      ["N", false],
      ["Nu", true],
    ] as const) {
      const doc = configFor(config);
      for (const l of ["tls_decap", "plain_sign"]) {
        expect(names(doc, l)).toEqual(["envoy.filters.http.aws_request_signing", "envoy.filters.http.dynamic_forward_proxy", "envoy.filters.http.router"]);
        expect(filtersOf(doc, l)[0]?.typed_config).toEqual({
          "@type": "type.googleapis.com/envoy.extensions.filters.http.aws_request_signing.v3.AwsRequestSigning",
          service_name: "s3",
          region: "us-east-1",
          use_unsigned_payload: unsigned,
          credential_provider: { inline_credential: { access_key_id: BASE.credentials.accessKeyId, secret_access_key: BASE.credentials.secretAccessKey } },
        });
      }
    }
  });

  it("C and X need an ext_proc address", () => {
    expect(() => benchEnvoyConfig(shipped(), { ...BASE, config: "C" })).toThrow(/needs extProcAddress/);
  });

  it("a shipped file whose signing listeners do not start with ext_proc is refused, not benchmarked wrong", () => {
    const doc = JSON.parse(JSON.stringify(shipped())) as Obj;
    const l = ((doc.static_resources as Obj).listeners as Obj[]).find((x) => x.name === "plain_sign") as Obj;
    const hcm = (((l.filter_chains as Obj[])[0] as Obj).filters as Obj[])[0] as Obj;
    (hcm.typed_config as Obj).http_filters = ((hcm.typed_config as Obj).http_filters as Obj[]).slice(1);
    expect(() => benchEnvoyConfig(doc, { ...BASE, config: "F" })).toThrow(/plain_sign.*ext_proc/);
  });

  it("the responder refuses a non-loopback address", () => {
    expect(() => responderConfig({ ip: "10.0.0.1", port: 443, certFile: "/x.crt", keyFile: "/x.key", maxBodyBytes: 1 })).toThrow(/beyond loopback/);
  });

  it("Envoy accepts every generated bootstrap (envoy --mode validate)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "countersign-bench-validate-"));
    // validate reads the files the bootstraps name: the SDS secret, the certificate, the CA.
    const ca = await createCa({ commonName: "bench validate CA" });
    const { certPem, keyPem } = await createLeaf({ ca, hosts: ["s3.us-east-1.amazonaws.com"] });
    writeFileSync(join(dir, "tls.crt"), certPem);
    writeFileSync(join(dir, "tls.key"), keyPem);
    writeFileSync(join(dir, "ca.crt"), ca.certPem);
    writeFileSync(
      join(dir, "tls-certificate.sds.yaml"),
      yaml.dump({ resources: [{ "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret", name: "countersign_tls", tls_certificate: { certificate_chain: { filename: join(dir, "tls.crt") }, private_key: { filename: join(dir, "tls.key") } } }] }),
    );
    const files: string[] = [];
    for (const config of BENCH_CONFIGS) {
      const doc = benchEnvoyConfig(shipped(), { ...BASE, tlsDir: dir, envoyDir: dir, upstreamCaFile: join(dir, "ca.crt"), config, extProcAddress: config === "C" || config === "X" ? "127.0.0.1:42003" : undefined });
      const file = join(dir, `bench-${config}.yaml`);
      writeFileSync(file, yaml.dump(doc, { noRefs: true, lineWidth: -1 }));
      files.push(file);
    }
    const responder = join(dir, "responder.yaml");
    writeFileSync(responder, yaml.dump(responderConfig({ ip: "127.0.0.1", port: 42443, certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key"), maxBodyBytes: 80 * 1024 * 1024 }), { noRefs: true, lineWidth: -1 }));
    files.push(responder);
    for (const file of files) {
      const verdict = validateEnvoyConfig(file, ["--disable-hot-restart"]);
      expect(verdict.accepted, `${file}:\n${verdict.output}`).toBe(true);
    }
  });
});
