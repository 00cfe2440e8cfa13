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
 * `startStack({ sharedService })` runs countersign as the shared service instead: `serve` with TLS
 * and `--tls-client-ca`, real Envoy with the shipped envoy/envoy-shared-service.yaml presenting a
 * client certificate, and a loopback DNS server that resolves the countersign Service's name.
 */
import "reflect-metadata";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCa, createLeaf } from "../../src/certs/certificates.js";
import { loadEmulatorConfig } from "../emulator/config.js";
import { startEnvoyEmulator, type Emulator } from "../emulator/emulator.js";
import type { FakeAws, FakeAwsOptions } from "../fakeaws/server.js";
import { SERVICE_HOST } from "../../scripts/gen-envoy-shared-service.js";
import { startDnsServer, type DnsServer } from "../support/dnsServer.js";
import { updateSecretVolume } from "../support/secretVolume.js";
import { REPO, startServe, type ServeProcess } from "../support/startServe.js";
import { startLoopbackAws } from "./loopbackAws.js";
import { envoyBinary } from "../support/envoy.js";
import { SHIPPED_SHARED_SERVICE_YAML, startRealEnvoy, type RealEnvoy } from "./realEnvoy.js";

export const REAL = { accessKeyId: "AKIAREALKEYE2E000001", secretAccessKey: "real/e2e/secret/0000000000000000000000001" };
export const PLACEHOLDER = { accessKeyId: "AKIDPLACEHOLDER000", secretAccessKey: "placeholder-secret-not-real" };

/**
 * The environment of a Python workload (boto3, the AWS CLI) that reaches AWS through the stack's
 * proxy listener with placeholder credentials, trusting the stack's CA, and reads nothing of this
 * machine's AWS configuration.
 */
export function pythonWorkloadEnv(stack: Pick<Stack, "dir" | "proxyUrl" | "caFile">, credentials: { accessKeyId: string; secretAccessKey: string } = PLACEHOLDER): NodeJS.ProcessEnv {
  return {
    PATH: "/usr/bin:/bin",
    HOME: stack.dir,
    HTTPS_PROXY: stack.proxyUrl,
    HTTP_PROXY: stack.proxyUrl,
    NO_PROXY: "",
    AWS_CA_BUNDLE: stack.caFile,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: join(stack.dir, "no-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(stack.dir, "no-credentials"),
    AWS_PAGER: "",
  };
}

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
  "transcribestreaming.us-west-2.amazonaws.com",
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
  /** With `sharedService`: the DNS server that resolves the countersign Service's name (to 127.0.0.1). */
  readonly serviceDns: DnsServer | undefined;
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
  /** Run countersign as the shared service (real Envoy only): see SharedServiceTls. */
  sharedService?: SharedServiceTls;
}

/** The certificates of a shared-service stack (files and PEMs from the test's own CA(s)). */
export interface SharedServiceTls {
  /** countersign's gRPC listener certificate and key (`--tls-cert`, `--tls-key`). */
  readonly serverCertFile: string;
  readonly serverKeyFile: string;
  /** `--tls-client-ca`: the CA whose client certificates countersign accepts. */
  readonly clientCaFile: string;
  /** The Secret countersign-grpc-client as Envoy mounts it: its client certificate, key and the CA it checks countersign's certificate against. */
  readonly envoyClient: { readonly certPem: string; readonly keyPem: string; readonly caPem: string };
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const kind = opts.proxy ?? "envoy";
  if (kind === "envoy") envoyBinary(); // says what to do when the pinned Envoy is missing
  const shared = opts.sharedService;
  if (shared && kind !== "envoy") throw new Error("sharedService needs real Envoy (the emulator has no upstream TLS)");
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
  let serviceDns: DnsServer | undefined;
  try {
    const tlsArgs = shared ? ["--tls-cert", shared.serverCertFile, "--tls-key", shared.serverKeyFile, "--tls-client-ca", shared.clientCaFile] : [];
    serve = await startServe({
      policyFile,
      args: ["--log-level", opts.logLevel ?? "info", ...tlsArgs, ...(opts.serveArgs ?? [])],
      env: { COUNTERSIGN_AWS_ACCESS_KEY_ID: REAL.accessKeyId, COUNTERSIGN_AWS_SECRET_ACCESS_KEY: REAL.secretAccessKey },
    });
    let proxyPort: number;
    let endpointPort: number;
    if (kind === "envoy") {
      // startServe listens on 127.0.0.1 unless told otherwise: the Service name resolves there.
      if (shared) serviceDns = await startDnsServer({ zones: [SERVICE_HOST], ipv4: "127.0.0.1" });
      envoy = await startRealEnvoy({
        dir,
        extProcAddress: opts.extProcAddress ?? serve.grpcAddress,
        certPem: leaf.certPem,
        keyPem: leaf.keyPem,
        dnsPort: aws.dns.port,
        upstreamCaFile: aws.caFile,
        ...(shared && serviceDns ? { bootstrap: SHIPPED_SHARED_SERVICE_YAML, grpcClient: shared.envoyClient, serviceDnsPort: serviceDns.port } : {}),
      });
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
      serviceDns,
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
        await serviceDns?.close();
        await s.stop();
        await aws.close();
      },
    };
  } catch (err) {
    await emulator?.close();
    await envoy?.stop();
    await serviceDns?.close();
    await serve?.stop();
    await aws.close();
    throw err;
  }
}
