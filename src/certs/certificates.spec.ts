import "reflect-metadata";
import { createPrivateKey, X509Certificate } from "node:crypto";
import type { AddressInfo } from "node:net";
import { connect, createServer } from "node:tls";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import { type CertificateAuthority, createCa, createLeaf, type IssuedCertificate, loadCa } from "./certificates.js";
import { sansForHostPatterns } from "./sansForHostPatterns.js";

const SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const DAY_MS = 86_400_000;

let ca: CertificateAuthority;
let leaf: IssuedCertificate;

beforeAll(async () => {
  ca = await createCa();
  leaf = await createLeaf({ ca, hosts: sansForHostPatterns(["*.s3.*.amazonaws.com", "sts.amazonaws.com", "127.0.0.1"]) });
});

/** Completes a TLS handshake with a server presenting `server` and a client trusting only `trustedCaPem`. */
async function handshake(server: IssuedCertificate, trustedCaPem: string, servername: string): Promise<string> {
  const tlsServer = createServer({ cert: server.certPem, key: server.keyPem }, (socket) => socket.end());
  await new Promise<void>((resolve) => tlsServer.listen(0, "127.0.0.1", resolve));
  const { port } = tlsServer.address() as AddressInfo;
  try {
    return await new Promise<string>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port, servername, ca: trustedCaPem }, () => {
        socket.end();
        resolve("ok");
      });
      socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
  } finally {
    await new Promise((resolve) => tlsServer.close(resolve));
  }
}

describe("createCa", () => {
  it("makes a self-signed CA certificate valid for ten years with a PKCS#8 key", async () => {
    const now = new Date("2026-01-01T00:00:00Z");
    const made = await createCa({ now, commonName: "test CA" });
    const cert = new X509Certificate(made.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe("CN=test CA");
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(new Date(cert.validTo).getTime() - now.getTime()).toBe(3650 * DAY_MS);
    expect(made.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(cert.checkPrivateKey(createPrivateKey(made.keyPem))).toBe(true);
  });
});

describe("createLeaf", () => {
  it("is signed by the CA, is not a CA, is for serverAuth and carries the SANs", () => {
    const cert = new X509Certificate(leaf.certPem);
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
    expect(cert.ca).toBe(false);
    expect(cert.keyUsage).toEqual([SERVER_AUTH]);
    expect(cert.checkPrivateKey(createPrivateKey(leaf.keyPem))).toBe(true);
    expect(cert.subjectAltName?.split(", ")).toHaveLength(38 + 2);
    expect(leaf.derBytes).toBe(cert.raw.byteLength);
  });

  it.each([
    ["my-bucket.s3.eu-west-1.amazonaws.com", "*.s3.eu-west-1.amazonaws.com"],
    ["bucket.s3.us-gov-west-1.amazonaws.com", "*.s3.us-gov-west-1.amazonaws.com"],
    ["sts.amazonaws.com", "sts.amazonaws.com"],
    ["s3.eu-west-1.amazonaws.com", undefined],
    ["a.b.s3.eu-west-1.amazonaws.com", undefined],
    ["bucket.s3.cn-north-1.amazonaws.com.cn", undefined],
    ["evil.example.com", undefined],
  ])("checkHost(%s) matches the SAN %s", (host, expected) => {
    expect(new X509Certificate(leaf.certPem).checkHost(host)).toBe(expected);
  });

  it("puts IP addresses in IP SANs", () => {
    expect(new X509Certificate(leaf.certPem).checkIP("127.0.0.1")).toBe("127.0.0.1");
  });

  it("is valid for the requested days, from five minutes in the past", async () => {
    const now = new Date("2026-03-01T12:00:00Z");
    const short = await createLeaf({ ca, hosts: ["sts.amazonaws.com"], days: 30, now });
    const cert = new X509Certificate(short.certPem);
    expect(new Date(cert.validFrom).getTime()).toBe(now.getTime() - 5 * 60_000);
    expect(new Date(cert.validTo).getTime()).toBe(now.getTime() + 30 * DAY_MS);
  });

  it("never outlives its CA", async () => {
    const now = new Date("2026-03-01T12:00:00Z");
    const shortCa = await createCa({ now, days: 10 });
    const made = await createLeaf({ ca: shortCa, hosts: ["sts.amazonaws.com"], days: 365, now });
    expect(made.notAfter.getTime()).toBe(shortCa.cert.notAfter.getTime());
  });

  it("refuses an empty host list", async () => {
    await expect(createLeaf({ ca, hosts: [] })).rejects.toThrow("a server certificate needs at least one host name");
  });
});

describe("loadCa", () => {
  it("signs leaves with a CA read back from its PEM files", async () => {
    const loaded = await loadCa(ca.certPem, ca.keyPem);
    const made = await createLeaf({ ca: loaded, hosts: ["sts.amazonaws.com"] });
    expect(new X509Certificate(made.certPem).verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
  });

  it("accepts an RSA CA", async () => {
    const keys = await globalThis.crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 },
      true,
      ["sign", "verify"],
    );
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      name: "CN=rsa CA",
      keys,
      signingAlgorithm: { name: "RSASSA-PKCS1-v1_5" },
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    });
    const keyPem = x509.PemConverter.encode(await globalThis.crypto.subtle.exportKey("pkcs8", keys.privateKey), "PRIVATE KEY");
    const rsaCa = await loadCa(cert.toString("pem"), keyPem);
    const made = await createLeaf({ ca: rsaCa, hosts: ["sts.amazonaws.com"] });
    expect(new X509Certificate(made.certPem).verify(new X509Certificate(cert.toString("pem")).publicKey)).toBe(true);
  });

  it("refuses a key that does not belong to the certificate", async () => {
    const other = await createCa();
    await expect(loadCa(ca.certPem, other.keyPem)).rejects.toThrow("the CA key does not belong to the CA certificate");
  });

  it("refuses a certificate that is not a CA", async () => {
    await expect(loadCa(leaf.certPem, leaf.keyPem)).rejects.toThrow("the CA certificate is not a CA");
  });
});

describe("TLS handshake (node:tls, loopback)", () => {
  it("succeeds for an AWS host the policy covers when the client trusts only ca.crt", async () => {
    expect(await handshake(leaf, ca.certPem, "my-bucket.s3.eu-west-1.amazonaws.com")).toBe("ok");
  });

  it("fails the host check for a host outside the policy", async () => {
    expect(await handshake(leaf, ca.certPem, "www.example.com")).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
  });

  it("fails for a client that does not trust the CA", async () => {
    const stranger = await createCa();
    expect(await handshake(leaf, stranger.certPem, "sts.amazonaws.com")).toBe("UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  });

  it("succeeds with the large certificate of a **.amazonaws.com policy", async () => {
    const big = await createLeaf({ ca, hosts: sansForHostPatterns(["**.amazonaws.com", "**.amazonaws.com.cn", "**.api.aws"]) });
    expect(big.derBytes).toBeLessThan(24 * 1024);
    expect(await handshake(big, ca.certPem, "bedrock-runtime.us-west-2.amazonaws.com")).toBe("ok");
    expect(await handshake(big, ca.certPem, "bucket.s3.cn-north-1.amazonaws.com.cn")).toBe("ok");
  });
});
