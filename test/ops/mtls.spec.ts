/**
 * Shared-service mode: the gRPC listener with TLS (`--tls-cert`/`--tls-key`) and with client
 * certificate verification (`--tls-client-ca`). Certificates come from openssl, independent of
 * countersign's own `certs` command. A client that does not present what the listener demands gets
 * a gRPC error and no answer at all; the server keeps serving the clients that do. The certificate,
 * key and client CA are reloaded when they change (a Kubernetes Secret update swaps `..data`):
 * open connections keep working, new ones get the new certificate and the new client CA.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { loadExtProcProtos } from "../../src/extproc/protos.js";
import { exchange } from "../support/extProcClient.js";
import { updateSecretVolume, writeSecretVolume } from "../support/secretVolume.js";
import { eventually } from "../support/eventually.js";
import { opensslCa, opensslLeaf } from "../support/opensslPki.js";
import { sleep, startServe, type ServeProcess } from "../support/startServe.js";
import { tempDir } from "./support/files.js";
import { holdAfterHeaders } from "./support/heldStream.js";
import { envFor, policyText, type StaticKey } from "./support/policyText.js";
import { headerOf, s3Put, s3PutBuffered, signedKeyId } from "./support/requests.js";

const KEY: StaticKey = { accessKeyId: "AKIAOPSMTLS000000001", secretAccessKey: "ops/mtls/0000000000000000000000000000001" };
const HOST = "tls.s3.eu-west-1.amazonaws.com";

interface Pki {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A client certificate from a CA the server does not trust. */
  readonly strangerCert: string;
  readonly strangerKey: string;
}

function makePki(): Pki {
  const dir = tempDir("mtls");
  const ca = opensslCa(dir, "ca");
  const strangerCa = opensslCa(dir, "stranger-ca");
  opensslLeaf(dir, ca, "server", { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  opensslLeaf(dir, ca, "envoy", { clientAuth: true });
  opensslLeaf(dir, strangerCa, "stranger", { clientAuth: true });
  const p = (f: string): string => join(dir, f);
  return {
    dir,
    ca: p("ca.crt"),
    serverCert: p("server.crt"),
    serverKey: p("server.key"),
    clientCert: p("envoy.crt"),
    clientKey: p("envoy.key"),
    strangerCert: p("stranger.crt"),
    strangerKey: p("stranger.key"),
  };
}

function client(address: string, creds: grpc.ChannelCredentials): ExternalProcessorClient {
  const protos = loadExtProcProtos();
  // The certificate names localhost too; checking that name avoids Node's SNI-with-an-IP warning.
  return new protos.envoy.service.ext_proc.v3.ExternalProcessor(address, creds, { "grpc.use_local_subchannel_pool": 1, "grpc.ssl_target_name_override": "localhost" });
}

/** Signs one request through `c`: the signed key id, or the gRPC error's status name. */
async function attempt(c: ExternalProcessorClient): Promise<string> {
  try {
    const r = await exchange(c, s3Put(HOST, "tls.txt", Buffer.from("over tls")));
    return signedKeyId(r) ?? `not signed (${r.kind})`;
  } catch (err) {
    const code = (err as { code?: number }).code;
    return `gRPC ${code === undefined ? String(err) : grpc.status[code]}`;
  } finally {
    c.close();
  }
}

let pki: Pki;
let policyFile: string;

beforeAll(() => {
  pki = makePki();
  policyFile = join(pki.dir, "policy.yaml");
  writeFileSync(policyFile, policyText({ main: "OPS_TLS" }, [[HOST, "main"]]));
});

describe("--tls-cert/--tls-key: a TLS gRPC listener", () => {
  let cs: ServeProcess;
  beforeAll(async () => {
    cs = await startServe({ shutdownGraceSeconds: 2, policyFile, env: envFor("OPS_TLS", KEY), args: ["--tls-cert", pki.serverCert, "--tls-key", pki.serverKey] });
  });
  afterAll(async () => {
    await cs?.stop();
  });

  it("signs for a client that trusts the CA, and gives a plaintext client no answer", async () => {
    const ca = readFileSync(pki.ca);
    expect(await attempt(client(cs.grpcAddress, grpc.credentials.createSsl(ca)))).toBe(KEY.accessKeyId);
    expect(await attempt(client(cs.grpcAddress, grpc.credentials.createInsecure()))).toBe("gRPC UNAVAILABLE");
  });

  it("gives a client that does not trust the server's CA no answer", async () => {
    expect(await attempt(client(cs.grpcAddress, grpc.credentials.createSsl(readFileSync(join(pki.dir, "stranger-ca.crt")))))).toBe("gRPC UNAVAILABLE");
  });
});

describe("--tls-client-ca: mTLS", () => {
  let cs: ServeProcess;
  beforeAll(async () => {
    cs = await startServe({
      shutdownGraceSeconds: 2,
      policyFile,
      env: envFor("OPS_TLS", KEY),
      args: ["--tls-cert", pki.serverCert, "--tls-key", pki.serverKey, "--tls-client-ca", pki.ca],
    });
  });
  afterAll(async () => {
    await cs?.stop();
  });

  it("accepts a client certificate signed by the client CA and signs its request", async () => {
    const creds = grpc.credentials.createSsl(readFileSync(pki.ca), readFileSync(pki.clientKey), readFileSync(pki.clientCert));
    expect(await attempt(client(cs.grpcAddress, creds))).toBe(KEY.accessKeyId);
  });

  it("refuses a client without a certificate, and one whose certificate another CA signed; still serves the trusted client after", async () => {
    const ca = readFileSync(pki.ca);
    expect(await attempt(client(cs.grpcAddress, grpc.credentials.createSsl(ca)))).toBe("gRPC UNAVAILABLE");
    expect(await attempt(client(cs.grpcAddress, grpc.credentials.createSsl(ca, readFileSync(pki.strangerKey), readFileSync(pki.strangerCert))))).toBe("gRPC UNAVAILABLE");
    expect(await attempt(client(cs.grpcAddress, grpc.credentials.createInsecure()))).toBe("gRPC UNAVAILABLE");
    const good = grpc.credentials.createSsl(ca, readFileSync(pki.clientKey), readFileSync(pki.clientCert));
    expect(await attempt(client(cs.grpcAddress, good))).toBe(KEY.accessKeyId);
    expect(cs.proc.exitCode).toBeNull();
    // Nothing was decided for the refused connections: they never reached ext_proc.
    const decided = (): number => cs.logRecords().filter((r) => r.msg === "signed" || r.msg === "refused").length;
    await eventually(() => (decided() >= 2 ? true : undefined), "the two decision lines to be logged", { timeoutMs: 3_000 });
    await sleep(200);
    expect(decided()).toBe(2);
  });
});

describe("the listener's certificate, key and client CA rotated without a restart (a Secret update swaps ..data)", () => {
  const RELOADED = "TLS certificate reloaded";
  const REFUSED = "TLS reload refused; the listener keeps its current certificate";
  let next: Pki;
  let cs: ServeProcess | undefined;

  beforeAll(() => {
    next = makePki();
  });
  afterEach(async () => {
    await cs?.stop();
    cs = undefined;
  });

  const fingerprint = (pemFile: string): string => new X509Certificate(readFileSync(pemFile)).fingerprint256;
  const volumeOf = (p: Pki, key = p.serverKey): Record<string, string> => ({
    "tls.crt": readFileSync(p.serverCert, "utf8"),
    "tls.key": readFileSync(key, "utf8"),
    "ca.crt": readFileSync(p.ca, "utf8"),
  });
  /** Trusts `server`'s CA and presents `clientOf`'s client certificate. */
  const creds = (server: Pki, clientOf: Pki): grpc.ChannelCredentials =>
    grpc.credentials.createSsl(readFileSync(server.ca), readFileSync(clientOf.clientKey), readFileSync(clientOf.clientCert));

  async function serveFromVolume(): Promise<{ cs: ServeProcess; dir: string }> {
    const dir = join(tempDir("mtls-rotate"), "tls");
    writeSecretVolume(dir, volumeOf(pki));
    const started = await startServe({
      shutdownGraceSeconds: 2,
      policyFile,
      env: envFor("OPS_TLS", KEY),
      args: ["--tls-cert", join(dir, "tls.crt"), "--tls-key", join(dir, "tls.key"), "--tls-client-ca", join(dir, "ca.crt")],
    });
    cs = started;
    expect((await started.waitForRecord((r) => r.msg === "TLS certificate loaded")).certSha256).toBe(fingerprint(pki.serverCert));
    return { cs: started, dir };
  }

  it("a connection open across the rotation keeps working (its in-flight stream and a new one); new connections get the new certificate and are checked against the new client CA", async () => {
    const { cs, dir } = await serveFromVolume();
    const open = client(cs.grpcAddress, creds(pki, pki));
    try {
      expect(signedKeyId(await exchange(open, s3Put(HOST, "before.txt", Buffer.from("before"))))).toBe(KEY.accessKeyId);
      const body = Buffer.from("held across the certificate rotation");
      const held = await holdAfterHeaders(open, s3PutBuffered(HOST, "held.txt", body));

      updateSecretVolume(dir, volumeOf(next));
      const reloaded = await cs.waitForRecord((r) => r.msg === RELOADED, 30_000);
      expect(reloaded).toMatchObject({ level: "info", certSha256: fingerprint(next.serverCert), clientCaSha256: fingerprint(next.ca) });

      const done = await held.sendBody();
      expect(done.kind).toBe("forwarded");
      if (done.kind === "forwarded") expect(headerOf(done.headers, "authorization")).toContain(`Credential=${KEY.accessKeyId}/`);
      // A new stream on the open connection: a new handshake would fail, this client trusts the old CA only.
      expect(signedKeyId(await exchange(open, s3Put(HOST, "after.txt", Buffer.from("after"))))).toBe(KEY.accessKeyId);
    } finally {
      open.close();
    }

    expect(await attempt(client(cs.grpcAddress, creds(next, next)))).toBe(KEY.accessKeyId);
    // The old CA does not sign the new server certificate; the new client CA did not sign the old client certificate.
    expect(await attempt(client(cs.grpcAddress, creds(pki, pki)))).toBe("gRPC UNAVAILABLE");
    expect(await attempt(client(cs.grpcAddress, creds(next, pki)))).toBe("gRPC UNAVAILABLE");
    expect(cs.logRecords().filter((r) => r.msg === REFUSED)).toEqual([]);
    expect(cs.proc.exitCode).toBeNull();
  });

  it("refuses a rotation whose key does not belong to its certificate, logging why, and keeps serving the certificate it has", async () => {
    const { cs, dir } = await serveFromVolume();
    updateSecretVolume(dir, volumeOf(next, pki.serverKey));
    const refused = await cs.waitForRecord((r) => r.msg === REFUSED, 30_000);
    expect(refused).toMatchObject({
      level: "error",
      error: `--tls-key ${join(dir, "tls.key")} does not belong to the certificate in --tls-cert ${join(dir, "tls.crt")}`,
      keptCertSha256: fingerprint(pki.serverCert),
    });
    expect(await attempt(client(cs.grpcAddress, creds(pki, pki)))).toBe(KEY.accessKeyId);
    expect(await attempt(client(cs.grpcAddress, creds(next, next)))).toBe("gRPC UNAVAILABLE");
    expect(cs.logRecords().filter((r) => r.msg === RELOADED)).toEqual([]);
    expect(cs.lines.join("\n")).not.toContain("PRIVATE KEY");
  });
});

describe("TLS flag mistakes stop serve at start with a clear message", () => {
  it("refuses --tls-client-ca without --tls-cert/--tls-key (exit 2), and an unreadable key file (exit 1, naming the flag and file)", async () => {
    const run = (args: string[]): { code: number; stderr: string } => {
      try {
        execFileSync(process.execPath, [join(import.meta.dirname, "..", "..", "dist", "src", "cli.js"), "serve", "--policy", policyFile, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", ...args], {
          env: { PATH: process.env.PATH, ...envFor("OPS_TLS", KEY) },
          stdio: ["ignore", "pipe", "pipe"],
          timeout: 20_000,
        });
        return { code: 0, stderr: "" };
      } catch (err) {
        const e = err as { status: number | null; stderr: Buffer };
        return { code: e.status ?? -1, stderr: e.stderr.toString("utf8") };
      }
    };
    const noCert = run(["--tls-client-ca", pki.ca]);
    expect(noCert.code).toBe(2);
    expect(noCert.stderr).toContain("countersign serve: --tls-client-ca needs --tls-cert and --tls-key");
    const missing = join(pki.dir, "nope.key");
    const badKey = run(["--tls-cert", pki.serverCert, "--tls-key", missing]);
    expect(badKey.code).toBe(1);
    expect(badKey.stderr).toContain(`--tls-key ${missing}`);
    expect(badKey.stderr).toContain("ENOENT");
  });
});
