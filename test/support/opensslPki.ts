/**
 * Certificates for mTLS tests, made by the openssl command line: independent of countersign's own
 * `certs` code (src/certs), which issues server certificates only. EC P-256 keys, valid two days.
 *
 *   const ca = opensslCa(dir, "grpc-ca");
 *   const server = opensslLeaf(dir, ca, "server", { dnsNames: ["countersign.countersign.svc"] });
 *   const client = opensslLeaf(dir, ca, "envoy", { clientAuth: true });
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface PemFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export interface OpensslCa extends PemFiles {
  readonly name: string;
}

export interface LeafOptions {
  /** DNS names of a server certificate (extendedKeyUsage serverAuth). */
  readonly dnsNames?: readonly string[];
  /** IP addresses of a server certificate, beside its DNS names. */
  readonly ipAddresses?: readonly string[];
  /** A client certificate (extendedKeyUsage clientAuth). */
  readonly clientAuth?: boolean;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function pemFiles(dir: string, name: string): PemFiles {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  return { certFile, keyFile, certPem: readFileSync(certFile, "utf8"), keyPem: readFileSync(keyFile, "utf8") };
}

/** A self-signed CA `name` in `dir` (name.crt, name.key). */
export function opensslCa(dir: string, name: string): OpensslCa {
  openssl(dir, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${name}`);
  return { name, ...pemFiles(dir, name) };
}

/** A certificate `name` in `dir` (name.crt, name.key) issued by `ca`. */
export function opensslLeaf(dir: string, ca: OpensslCa, name: string, opts: LeafOptions): PemFiles {
  const names = [...(opts.dnsNames ?? []).map((n) => `DNS:${n}`), ...(opts.ipAddresses ?? []).map((a) => `IP:${a}`)];
  const ext = [
    ...(names.length > 0 ? [`subjectAltName=${names.join(",")}`] : []),
    `extendedKeyUsage=${[...(names.length > 0 ? ["serverAuth"] : []), ...(opts.clientAuth ? ["clientAuth"] : [])].join(",")}`,
  ];
  openssl(dir, "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${name}`);
  writeFileSync(join(dir, `${name}.ext`), `${ext.join("\n")}\n`);
  openssl(dir, "x509", "-req", "-in", `${name}.csr`, "-CA", `${ca.name}.crt`, "-CAkey", `${ca.name}.key`, "-CAcreateserial", "-out", `${name}.crt`, "-days", "2", "-extfile", `${name}.ext`);
  return pemFiles(dir, name);
}
