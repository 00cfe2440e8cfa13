import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { createCa, createLeaf, type IssuedCertificate } from "../certs/certificates.js";
import { contentSnapshot, unreadableSnapshot } from "../files/readMountedFile.js";
import type { FileSnapshot } from "../files/types.js";
import { tlsMaterial, tlsPaths, type TlsFiles } from "./tlsMaterial.js";

const FILES: TlsFiles = { certFile: "/tls/tls.crt", keyFile: "/tls/tls.key", clientCaFile: "/ca/ca.crt" };

let caPem: string;
let leaf: IssuedCertificate;
let other: IssuedCertificate;

beforeAll(async () => {
  const ca = await createCa({ commonName: "listener test CA" });
  caPem = ca.certPem;
  leaf = await createLeaf({ ca, hosts: ["localhost", "127.0.0.1"], commonName: "countersign listener" });
  other = await createLeaf({ ca, hosts: ["localhost"] });
});

function snapshots(cert: string, key: string, ca?: string): FileSnapshot[] {
  const s = [contentSnapshot(FILES.certFile, Buffer.from(cert)), contentSnapshot(FILES.keyFile, Buffer.from(key))];
  return ca === undefined ? s : [...s, contentSnapshot(FILES.clientCaFile ?? "", Buffer.from(ca))];
}

function errorOf(result: ReturnType<typeof tlsMaterial>): string {
  return result.ok ? "ok" : result.error;
}

describe("tlsMaterial", () => {
  it("lists the files as cert, key, then the client CA when there is one", () => {
    expect(tlsPaths(FILES)).toEqual(["/tls/tls.crt", "/tls/tls.key", "/ca/ca.crt"]);
    expect(tlsPaths({ certFile: "c", keyFile: "k" })).toEqual(["c", "k"]);
  });

  it("accepts a certificate with its own key and a client CA, and summarises them without key material", () => {
    const result = tlsMaterial(FILES, snapshots(leaf.certPem, leaf.keyPem, caPem));
    if (!result.ok) throw new Error(result.error);
    const cert = new X509Certificate(leaf.certPem);
    expect(result.material.summary).toEqual({
      certSubject: "CN=countersign listener",
      certNotAfter: new Date(cert.validTo).toISOString(),
      certSha256: cert.fingerprint256,
      clientCaSubject: "CN=listener test CA",
      clientCaSha256: new X509Certificate(caPem).fingerprint256,
    });
    expect(result.material.cert.toString()).toBe(leaf.certPem);
    expect(result.material.key.toString()).toBe(leaf.keyPem);
    expect(result.material.clientCa?.toString()).toBe(caPem);
    expect(JSON.stringify(result.material.summary)).not.toContain("PRIVATE");
  });

  it("accepts TLS without a client CA", () => {
    const result = tlsMaterial({ certFile: FILES.certFile, keyFile: FILES.keyFile }, snapshots(leaf.certPem, leaf.keyPem));
    expect(result.ok && result.material.clientCa).toBeUndefined();
    expect(result.ok && result.material.summary.clientCaSha256).toBeUndefined();
  });

  it("refuses a key that belongs to another certificate (a rotation caught between the two files), naming both flags", () => {
    expect(errorOf(tlsMaterial(FILES, snapshots(leaf.certPem, other.keyPem, caPem)))).toBe(
      "--tls-key /tls/tls.key does not belong to the certificate in --tls-cert /tls/tls.crt",
    );
  });

  it("refuses a file that is not PEM, or cut short, naming the flag and file but never its content", () => {
    const cutCert = leaf.certPem.slice(0, 200);
    expect(errorOf(tlsMaterial(FILES, snapshots(cutCert, leaf.keyPem, caPem)))).toMatch(/^--tls-cert \/tls\/tls\.crt: not a PEM certificate \(.+\)$/);
    const cutKey = leaf.keyPem.slice(0, 100);
    const keyError = errorOf(tlsMaterial(FILES, snapshots(leaf.certPem, cutKey, caPem)));
    expect(keyError).toMatch(/^--tls-key \/tls\/tls\.key: not a PEM private key \(.+\)$/);
    expect(keyError).not.toContain(cutKey.split("\n")[1]);
    expect(errorOf(tlsMaterial(FILES, snapshots(leaf.certPem, leaf.keyPem, "not a CA\n")))).toMatch(/^--tls-client-ca \/ca\/ca\.crt: not a PEM certificate \(.+\)$/);
  });

  it("refuses when a file cannot be read, naming the flag, the file and the reason", () => {
    const s = snapshots(leaf.certPem, leaf.keyPem, caPem);
    s[1] = unreadableSnapshot(FILES.keyFile, "ENOENT");
    expect(errorOf(tlsMaterial(FILES, s))).toBe("--tls-key /tls/tls.key: file not found (ENOENT)");
    s[1] = contentSnapshot(FILES.keyFile, Buffer.from(leaf.keyPem));
    s[2] = unreadableSnapshot(FILES.clientCaFile ?? "", "EACCES");
    expect(errorOf(tlsMaterial(FILES, s))).toBe("--tls-client-ca /ca/ca.crt: cannot read the file (EACCES)");
  });
});
