/**
 * The whole path users run — SDK → Envoy → countersign → AWS — on loopback:
 *   the fake AWS (strict, independent SigV4 verifier, knows only the REAL key) over HTTPS on port
 *   443 of its own loopback address, found through a loopback DNS server (loopbackAws.ts),
 *   `countersign serve` as a separate process (the only holder of the real key),
 *   real Envoy (the pinned .venv/bin/envoy) with the shipped envoy/envoy.yaml, terminating TLS
 *   with a leaf from `countersign certs`' code,
 *   and clients holding PLACEHOLDER credentials only.
 * `startStack({ proxy: "emulator" })` puts the Envoy emulator in Envoy's place, for the cases real
 * Envoy cannot be made to produce and for the comparisons between the two.
 */
import "reflect-metadata";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCa, createLeaf } from "../../src/certs/certificates.js";
import { loadEmulatorConfig } from "../emulator/config.js";
import { startEnvoyEmulator, type Emulator } from "../emulator/emulator.js";
import type { FakeAws, FakeAwsOptions } from "../fakeaws/server.js";
import type { DnsServer } from "../support/dnsServer.js";
import { updateSecretVolume } from "../support/secretVolume.js";
import { REPO, startServe, type ServeProcess } from "../support/startServe.js";
import { startLoopbackAws } from "./loopbackAws.js";
import { envoyBinary } from "../support/envoy.js";
import { startRealEnvoy, type RealEnvoy } from "./realEnvoy.js";

export const REAL = { accessKeyId: "AKIAREALKEYE2E000001", secretAccessKey: "real/e2e/secret/0000000000000000000000001" };
export const PLACEHOLDER = { accessKeyId: "AKIDPLACEHOLDER000", secretAccessKey: "placeholder-secret-not-real" };

export const E2E_POLICY = `version: 1
credentials:
  workload:
    static:
      access_key_id_env: COUNTERSIGN_AWS_ACCESS_KEY_ID
      secret_access_key_env: COUNTERSIGN_AWS_SECRET_ACCESS_KEY
limits:
  max_buffered_body_bytes: 1048576
endpoints:
  - host: "*.s3.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: workload
    client_access_key_ids: [${PLACEHOLDER.accessKeyId}]
  - host: "s3.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: workload
    client_access_key_ids: [${PLACEHOLDER.accessKeyId}]
  - host: "sts.amazonaws.com"
    credential_signing: sigv4
    signing_service: sts
    credentials: workload
  - host: "sts.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: sts
    credentials: workload
  - host: "bedrock-runtime.*.amazonaws.com"
    credential_signing: sigv4:body
    signing_service: bedrock
    credentials: workload
  - host: "dynamodb.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: dynamodb
    credentials: workload
`;

/** Hosts the leaf certificate covers (what `countersign certs` would derive for the regions used here). */
const CERT_HOSTS = [
  "*.s3.us-east-1.amazonaws.com",
  "s3.us-east-1.amazonaws.com",
  "*.s3.eu-west-1.amazonaws.com",
  "s3.eu-west-1.amazonaws.com",
  "*.s3.amazonaws.com",
  "s3.amazonaws.com",
  "*.mrap.accesspoint.s3-global.amazonaws.com",
  "*.accesspoint.s3-global.amazonaws.com",
  "sts.amazonaws.com",
  "sts.us-east-1.amazonaws.com",
  "bedrock-runtime.us-west-2.amazonaws.com",
  "dynamodb.eu-west-1.amazonaws.com",
  "example.com",
];

export type ProxyKind = "envoy" | "emulator";

export interface Stack {
  readonly fake: FakeAws;
  readonly dns: DnsServer;
  readonly serve: ServeProcess;
  /** http://127.0.0.1:<port> — the HTTPS_PROXY/HTTP_PROXY for the workload. */
  readonly proxyUrl: string;
  /** http://127.0.0.1:<port> — endpoint mode (host rewritten to s3.us-east-1.amazonaws.com). */
  readonly endpointUrl: string;
  readonly caPem: string;
  readonly caFile: string;
  readonly dir: string;
  readonly emulator: Emulator | undefined;
  /** Real Envoy: its admin URL, rewritten config and output. */
  readonly envoy: RealEnvoy | undefined;
  readonly kind: ProxyKind;
  /**
   * Renews the listener certificate the way Kubernetes updates the mounted TLS Secret (a new key
   * and certificate from the same CA, one atomic `..data` swap); returns the new certificate's PEM.
   * Real Envoy only.
   */
  renewListenerCertificate(): Promise<string>;
  close(): Promise<void>;
}

export interface StackOptions {
  policy?: string;
  fakeOptions?: Partial<Omit<FakeAwsOptions, "tls" | "host" | "port">>;
  logLevel?: string;
  /** Real Envoy (the default) or the emulator. */
  proxy?: ProxyKind;
  /** Extra `countersign serve` arguments. */
  serveArgs?: string[];
  /**
   * Where Envoy (or the emulator) sends ext_proc streams, instead of the stack's `countersign serve`:
   * a scripted ext_proc, or a loopback port nothing listens on. countersign still runs (and sees nothing).
   */
  extProcAddress?: string;
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const kind = opts.proxy ?? "envoy";
  if (kind === "envoy") envoyBinary(); // says what to do when the pinned Envoy is missing
  const dir = mkdtempSync(join(tmpdir(), "countersign-e2e-"));
  const aws = await startLoopbackAws(dir, { accounts: [REAL], ...opts.fakeOptions });
  const fake = aws.fake;
  const ca = await createCa({ commonName: "countersign e2e CA" });
  const leaf = await createLeaf({ ca, hosts: CERT_HOSTS });
  const caFile = join(dir, "ca.crt");
  writeFileSync(caFile, ca.certPem);
  const policyFile = join(dir, "policy.yaml");
  writeFileSync(policyFile, opts.policy ?? E2E_POLICY);

  let serve: ServeProcess | undefined;
  let emulator: Emulator | undefined;
  let envoy: RealEnvoy | undefined;
  try {
    serve = await startServe({
      policyFile,
      args: ["--log-level", opts.logLevel ?? "info", ...(opts.serveArgs ?? [])],
      env: { COUNTERSIGN_AWS_ACCESS_KEY_ID: REAL.accessKeyId, COUNTERSIGN_AWS_SECRET_ACCESS_KEY: REAL.secretAccessKey },
    });
    let proxyPort: number;
    let endpointPort: number;
    if (kind === "envoy") {
      envoy = await startRealEnvoy({ dir, extProcAddress: opts.extProcAddress ?? serve.grpcAddress, certPem: leaf.certPem, keyPem: leaf.keyPem, dnsPort: aws.dns.port, upstreamCaFile: aws.caFile });
      proxyPort = envoy.connectPort;
      endpointPort = envoy.endpointPort;
    } else {
      emulator = await startEnvoyEmulator({
        config: loadEmulatorConfig(join(REPO, "envoy", "envoy.yaml")),
        extProcAddress: opts.extProcAddress ?? serve.grpcAddress,
        tls: { cert: leaf.certPem, key: leaf.keyPem },
        // The resolver override: every AWS host is the fake AWS on its loopback address (HTTPS).
        upstream: { resolve: () => ({ host: aws.ip, port: fake.port, tls: true }), ca: aws.caPem },
        // Tests read what reached AWS from the fake's records; keeping every body would make
        // large uploads hold (and re-copy) hundreds of MiB.
        recordUpstreamBodies: false,
      });
      proxyPort = emulator.connectPort;
      endpointPort = emulator.endpointPort;
    }
    const s = serve;
    return {
      fake,
      dns: aws.dns,
      serve: s,
      proxyUrl: `http://127.0.0.1:${proxyPort}`,
      endpointUrl: `http://127.0.0.1:${endpointPort}`,
      caPem: ca.certPem,
      caFile,
      dir,
      emulator,
      envoy,
      kind,
      renewListenerCertificate: async () => {
        if (!envoy) throw new Error("renewListenerCertificate needs real Envoy");
        const renewed = await createLeaf({ ca, hosts: CERT_HOSTS });
        updateSecretVolume(envoy.tlsDir, { "tls.crt": renewed.certPem, "tls.key": renewed.keyPem });
        return renewed.certPem;
      },
      close: async () => {
        await emulator?.close();
        await envoy?.stop();
        await s.stop();
        await aws.close();
      },
    };
  } catch (err) {
    await emulator?.close();
    await envoy?.stop();
    await serve?.stop();
    await aws.close();
    throw err;
  }
}
