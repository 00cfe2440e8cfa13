/**
 * countersign as a shared service, end to end through real Envoy: the shipped
 * envoy/envoy-shared-service.yaml (rewritten for loopback by realEnvoy.ts only in ports, file paths
 * and resolvers) dials countersign by the Service's DNS name over TLS, presenting the client
 * certificate of its grpc-client Secret; `countersign serve` runs with --tls-cert, --tls-key and
 * --tls-client-ca. Certificates come from openssl (test/support/opensslPki.ts).
 *
 *   - a client certificate from the CA countersign trusts: a JS SDK request is signed with the real
 *     key and reaches the fake AWS; when the Secret is renewed, Envoy loads the new certificate
 *     without a restart and the HTTP/2 connection open to countersign keeps signing;
 *   - one from another CA: countersign refuses the handshake, Envoy fails closed with 502
 *     SigningUnavailable, nothing reaches AWS and countersign decides nothing; when the Secret is
 *     renewed with a trusted certificate, Envoy (not restarted) signs again;
 *   - a server certificate from the trusted CA but for another name: Envoy refuses it (SAN check);
 *   - Envoy checking countersign against another CA: refused (502, nothing sent); when the Secret's
 *     ca.crt is renewed with the right CA, the same Envoy signs.
 */
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVICE_HOST, SERVICE_TLS_NAME } from "../../scripts/gen-envoy-shared-service.js";
import { untilPasses } from "../support/eventually.js";
import { opensslCa, opensslLeaf, type OpensslCa, type PemFiles } from "../support/opensslPki.js";
import { updateSecretVolume } from "../support/secretVolume.js";
import { s3Client } from "./clients.js";
import { REAL, startStack, type SharedServiceTls, type Stack } from "./harness.js";

const BUCKET = "e2e-bucket";
const HOST = `${BUCKET}.s3.eu-west-1.amazonaws.com`;

interface Pki {
  readonly grpcCa: OpensslCa;
  readonly server: PemFiles;
  readonly envoy: PemFiles;
  /** A client certificate from a CA countersign does not trust. */
  readonly stranger: PemFiles;
  /** A server certificate from the trusted CA for a name that is not the Service's. */
  readonly otherServer: PemFiles;
  /** A CA that signed neither side. */
  readonly strangerCa: OpensslCa;
  /** The trusted CA's next client certificate for Envoy (a renewal). */
  readonly renewedEnvoy: PemFiles;
}

let pki: Pki;
let pkiDir = "";
beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), "countersign-shared-pki-"));
  pkiDir = dir;
  const grpcCa = opensslCa(dir, "grpc-ca");
  const strangerCa = opensslCa(dir, "stranger-ca");
  pki = {
    grpcCa,
    server: opensslLeaf(dir, grpcCa, "server", { dnsNames: [SERVICE_TLS_NAME, SERVICE_HOST] }),
    envoy: opensslLeaf(dir, grpcCa, "envoy", { clientAuth: true }),
    stranger: opensslLeaf(dir, strangerCa, "stranger", { clientAuth: true }),
    otherServer: opensslLeaf(dir, grpcCa, "other-server", { dnsNames: ["other.countersign.svc"] }),
    strangerCa,
    renewedEnvoy: opensslLeaf(dir, grpcCa, "envoy-renewed", { clientAuth: true }),
  };
});

afterAll(() => {
  if (pkiDir !== "") rmSync(pkiDir, { recursive: true, force: true });
});

/** The shared-service stack: countersign's certificate `server`, Envoy presenting `client` and checking countersign against `envoyCa`. */
function tls(server: PemFiles, client: PemFiles, envoyCa: OpensslCa = pki.grpcCa): SharedServiceTls {
  return {
    serverCertFile: server.certFile,
    serverKeyFile: server.keyFile,
    clientCaFile: pki.grpcCa.certFile,
    envoyClient: { certPem: client.certPem, keyPem: client.keyPem, caPem: envoyCa.certPem },
  };
}

/** Renews the grpc-client Secret the kubelet's way (one ..data swap) with a trusted client certificate and the CA. */
function renewGrpcClientSecret(stack: Stack, client: PemFiles = pki.envoy): void {
  const dir = stack.envoy?.grpcClientDir;
  if (dir === undefined) throw new Error("the shared-service stack has no grpc-client folder");
  updateSecretVolume(dir, { "tls.crt": client.certPem, "tls.key": client.keyPem, "ca.crt": pki.grpcCa.certPem });
}

/** A certificate's serial number as Envoy's admin /certs writes it (lower-case hex, no leading zeros). */
function serialOf(files: PemFiles): string {
  return new X509Certificate(files.certPem).serialNumber.toLowerCase().replace(/^0+/, "");
}

/**
 * The serial numbers of the certificates Envoy presents (admin /certs: every TLS context's chain;
 * SDS-loaded ones show no path, so the listener's certificate is among them too).
 */
async function envoyCertSerials(stack: Stack): Promise<string[]> {
  const res = await fetch(`${stack.envoy?.adminUrl ?? ""}/certs`, { signal: AbortSignal.timeout(5_000) });
  const body = (await res.json()) as { certificates?: { cert_chain?: { serial_number?: string }[] }[] };
  return (body.certificates ?? []).flatMap((c) => c.cert_chain ?? []).map((c) => (c.serial_number ?? "").toLowerCase().replace(/^0+/, ""));
}

/** Polls GetObject until AWS answers (404: no such bucket), i.e. until Envoy signs through countersign again. */
function untilSigned(stack: Stack, what: string): Promise<{ status: number | undefined; code: string; message: string }> {
  return untilPasses(
    async () => {
      const r = await getObject(stack, "shared/absent.txt");
      expect(r.status).toBe(404);
      return r;
    },
    what,
    { timeoutMs: 30_000, everyMs: 250 },
  );
}

const decisions = (stack: Stack): number => stack.serve.logRecords().filter((r) => r.msg === "signed" || r.msg === "refused").length;

/** A GetObject through Envoy: the SDK's outcome as status and error code ("ok" when it succeeded). */
async function getObject(stack: Stack, key: string): Promise<{ status: number | undefined; code: string; message: string }> {
  try {
    const out = await s3Client(stack).send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
    return { status: out.$metadata.httpStatusCode, code: "ok", message: await (out.Body?.transformToString() ?? "") };
  } catch (err) {
    const e = err as { name: string; message: string; $metadata?: { httpStatusCode?: number } };
    return { status: e.$metadata?.httpStatusCode, code: e.name, message: e.message };
  }
}

describe("Envoy with a client certificate the shared countersign trusts", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ logLevel: "info", sharedService: tls(pki.server, pki.envoy) });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("signs a JS SDK upload and download with the real key; Envoy found countersign by the Service's name and spoke TLS to it", async () => {
    const put = await s3Client(stack).send(new PutObjectCommand({ Bucket: BUCKET, Key: "shared/hello.txt", Body: "through the shared service" }));
    expect(put.$metadata.httpStatusCode).toBe(200);
    expect(await getObject(stack, "shared/hello.txt")).toEqual({ status: 200, code: "ok", message: "through the shared service" });

    expect(stack.fake.requests.map((r) => ({ host: r.host, method: r.method, verified: r.verified, accessKeyId: r.accessKeyId }))).toEqual([
      { host: HOST, method: "PUT", verified: true, accessKeyId: REAL.accessKeyId },
      { host: HOST, method: "GET", verified: true, accessKeyId: REAL.accessKeyId },
    ]);
    expect(stack.serviceDns?.queries).toContain(`A ${SERVICE_HOST}`);
    const stats = await stack.envoy?.stats();
    expect(stats?.["cluster.countersign.ssl.handshake"]).toBeGreaterThanOrEqual(1);
    expect(stats?.["cluster.countersign.ssl.connection_error"] ?? 0).toBe(0);
    expect(stats?.["cluster.countersign.membership_healthy"]).toBe(1);
  });

  it("takes a renewed client certificate without a restart, and the connection open to countersign keeps signing across the renewal", async () => {
    const before = await stack.envoy?.stats();
    expect(await envoyCertSerials(stack)).toContain(serialOf(pki.envoy));
    expect(await envoyCertSerials(stack)).not.toContain(serialOf(pki.renewedEnvoy));
    const envoyPid = stack.envoy?.pid;
    renewGrpcClientSecret(stack, pki.renewedEnvoy);
    await untilPasses(
      async () => {
        const serials = await envoyCertSerials(stack);
        expect(serials).toContain(serialOf(pki.renewedEnvoy));
        expect(serials).not.toContain(serialOf(pki.envoy));
      },
      "Envoy to load the renewed client certificate",
      { timeoutMs: 30_000, everyMs: 250 },
    );

    expect(await getObject(stack, "shared/hello.txt")).toEqual({ status: 200, code: "ok", message: "through the shared service" });
    const after = await stack.envoy?.stats();
    // The same HTTP/2 connection to countersign: no new one was opened, none was closed.
    expect(after?.["cluster.countersign.upstream_cx_total"]).toBe(before?.["cluster.countersign.upstream_cx_total"]);
    expect(after?.["cluster.countersign.upstream_cx_active"]).toBe(1);
    expect(stack.envoy?.pid).toBe(envoyPid);
    expect(stack.fake.requests.at(-1)).toMatchObject({ host: HOST, method: "GET", verified: true, accessKeyId: REAL.accessKeyId });
  });
});

describe("Envoy with a client certificate from a CA the shared countersign does not trust", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ logLevel: "info", sharedService: tls(pki.server, pki.stranger) });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("fails closed with 502 SigningUnavailable and sends nothing to AWS; after the Secret is renewed with a trusted certificate, the same Envoy signs", async () => {
    const refused = await getObject(stack, "shared/absent.txt");
    expect(refused).toMatchObject({ status: 502, code: "SigningUnavailable" });
    expect(refused.message).toContain("could not sign this request, so it was not sent to AWS");
    expect(stack.fake.requests).toEqual([]);
    expect(decisions(stack)).toBe(0);
    const stats = await stack.envoy?.stats();
    expect(stats?.["cluster.countersign.ssl.handshake"] ?? 0).toBe(0);
    expect(stats?.["cluster.countersign.upstream_cx_connect_fail"] ?? 0).toBeGreaterThanOrEqual(1);

    // The kubelet's ..data swap of the grpc-client Secret: Envoy re-reads the files (watched_directory).
    // Until Envoy has the new certificate, each try is refused the same way (and reaches nothing).
    const envoyPid = stack.envoy?.pid;
    renewGrpcClientSecret(stack);
    const renewed = await untilSigned(stack, "Envoy to present the renewed client certificate");
    expect(renewed.code).toBe("NoSuchBucket");
    expect(stack.envoy?.pid).toBe(envoyPid);
    expect(stack.fake.requests.map((r) => ({ host: r.host, verified: r.verified, accessKeyId: r.accessKeyId }))).toEqual([{ host: HOST, verified: true, accessKeyId: REAL.accessKeyId }]);
  });
});

describe("countersign presenting a certificate from the trusted CA for another name", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ logLevel: "info", sharedService: tls(pki.otherServer, pki.envoy) });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("is refused by Envoy's SAN check: 502 SigningUnavailable, nothing sent to AWS", async () => {
    expect(await getObject(stack, "shared/absent.txt")).toMatchObject({ status: 502, code: "SigningUnavailable" });
    expect(stack.fake.requests).toEqual([]);
    expect(decisions(stack)).toBe(0);
    const stats = await stack.envoy?.stats();
    expect(stats?.["cluster.countersign.ssl.fail_verify_san"]).toBeGreaterThanOrEqual(1);
  });
});

describe("Envoy checking the shared countersign against a CA that did not sign its certificate", () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ logLevel: "info", sharedService: tls(pki.server, pki.envoy, pki.strangerCa) });
  });
  afterAll(async () => {
    await stack?.close();
  });

  it("refuses countersign's certificate: 502 SigningUnavailable, nothing sent to AWS; after the Secret's ca.crt is renewed, the same Envoy signs", async () => {
    expect(await getObject(stack, "shared/absent.txt")).toMatchObject({ status: 502, code: "SigningUnavailable" });
    expect(stack.fake.requests).toEqual([]);
    expect(decisions(stack)).toBe(0);
    expect((await stack.envoy?.stats())?.["cluster.countersign.ssl.fail_verify_error"]).toBeGreaterThanOrEqual(1);

    const envoyPid = stack.envoy?.pid;
    renewGrpcClientSecret(stack);
    expect((await untilSigned(stack, "Envoy to trust the renewed CA bundle")).code).toBe("NoSuchBucket");
    expect(stack.envoy?.pid).toBe(envoyPid);
    expect(stack.fake.requests.map((r) => ({ host: r.host, verified: r.verified, accessKeyId: r.accessKeyId }))).toEqual([{ host: HOST, verified: true, accessKeyId: REAL.accessKeyId }]);
  });
});
