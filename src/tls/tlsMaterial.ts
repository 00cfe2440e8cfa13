/**
 * The gRPC listener's certificate, key and client CA as read from their files, checked the way the
 * listener would use them. No I/O: the caller reads the files (src/files/) and hands in what it
 * read. A refusal names the flag and the file, never the files' content.
 */
import type { Result } from "../result.js";
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { createSecureContext } from "node:tls";
import type { FileSnapshot } from "../files/types.js";

export interface TlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  /** When set, clients must present a certificate signed by this CA (mTLS). */
  readonly clientCaFile?: string;
}

export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly clientCa: Buffer | undefined;
  /** What a log line may say about it: no key material. */
  readonly summary: TlsSummary;
}

export interface TlsSummary {
  readonly certSubject: string;
  readonly certNotAfter: string;
  readonly certSha256: string;
  readonly clientCaSubject?: string;
  readonly clientCaSha256?: string;
}

export type TlsMaterialResult = Result<{ readonly material: TlsMaterial }>;

/** The files in the order `tlsMaterial` expects their snapshots: cert, key, then the client CA if any. */
export function tlsPaths(files: TlsFiles): string[] {
  return files.clientCaFile === undefined ? [files.certFile, files.keyFile] : [files.certFile, files.keyFile, files.clientCaFile];
}

export function tlsMaterial(files: TlsFiles, snapshots: readonly FileSnapshot[]): TlsMaterialResult {
  const flags = ["--tls-cert", "--tls-key", "--tls-client-ca"];
  const bytes: Buffer[] = [];
  for (const [i, snapshot] of snapshots.entries()) {
    if (snapshot.kind === "unreadable") return { ok: false, error: `${flags[i] ?? "TLS file"} ${snapshot.path}: ${snapshot.error}` };
    bytes.push(snapshot.bytes);
  }
  const [cert, key, clientCa] = bytes;
  if (cert === undefined || key === undefined || (files.clientCaFile !== undefined) !== (clientCa !== undefined)) {
    return { ok: false, error: `expected ${tlsPaths(files).length} TLS files, got ${bytes.length}` };
  }

  const leaf = certificate(cert, "--tls-cert", files.certFile);
  if (typeof leaf === "string") return { ok: false, error: leaf };
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    return { ok: false, error: `--tls-key ${files.keyFile}: not a PEM private key (${reason(err)})` };
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    return { ok: false, error: `--tls-key ${files.keyFile} does not belong to the certificate in --tls-cert ${files.certFile}` };
  }
  const ca = clientCa === undefined ? undefined : certificate(clientCa, "--tls-client-ca", files.clientCaFile ?? "");
  if (typeof ca === "string") return { ok: false, error: ca };
  try {
    createSecureContext({ cert, key, ...(clientCa ? { ca: clientCa } : {}) });
  } catch (err) {
    return { ok: false, error: `--tls-cert ${files.certFile} with --tls-key ${files.keyFile}: ${reason(err)}` };
  }
  return {
    ok: true,
    material: {
      cert,
      key,
      clientCa,
      summary: {
        certSubject: leaf.subject,
        certNotAfter: new Date(leaf.validTo).toISOString(),
        certSha256: leaf.fingerprint256,
        ...(ca ? { clientCaSubject: ca.subject, clientCaSha256: ca.fingerprint256 } : {}),
      },
    },
  };
}

/** The first certificate in a PEM file (a leaf before its chain, or the first CA of a bundle), or why there is none. */
function certificate(pem: Buffer, flag: string, file: string): X509Certificate | string {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    return `${flag} ${file}: not a PEM certificate (${reason(err)})`;
  }
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
