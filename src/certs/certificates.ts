/**
 * A small private CA and the server certificate Envoy presents to the workload
 * (DownstreamTlsContext in envoy/envoy.yaml). WebCrypto (Node's globalThis.crypto) and
 * @peculiar/x509; no I/O — the caller writes the PEM text where it wants.
 */
// @peculiar/x509 depends on tsyringe, which needs the Reflect metadata API before it loads.
import "reflect-metadata";
import { createPrivateKey, createPublicKey, X509Certificate as NodeX509Certificate, type webcrypto } from "node:crypto";
import { isIP } from "node:net";
import * as x509 from "@peculiar/x509";

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type SigningAlgorithm = webcrypto.Algorithm | webcrypto.EcdsaParams;

const DAY_MS = 86_400_000;
/** notBefore is set this far in the past so that a client whose clock lags still accepts it. */
const CLOCK_SKEW_MS = 5 * 60_000;
const EC_P256: webcrypto.EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };

export const DEFAULT_CA_DAYS = 3650;
export const DEFAULT_LEAF_DAYS = 365;

export interface CertificateAuthority {
  readonly certPem: string;
  readonly keyPem: string;
  readonly cert: x509.X509Certificate;
  readonly signingKey: CryptoKey;
  /** How this CA's key signs: ECDSA with a hash, or RSASSA-PKCS1-v1_5. */
  readonly signingAlgorithm: SigningAlgorithm;
}

export interface IssuedCertificate {
  readonly certPem: string;
  readonly keyPem: string;
  readonly sans: readonly string[];
  readonly notAfter: Date;
  /** Size of the DER certificate: TLS clients limit the certificate message (Java: 32 KiB). */
  readonly derBytes: number;
}

export interface CaOptions {
  readonly commonName?: string;
  readonly days?: number;
  readonly now?: Date;
}

export interface LeafOptions {
  readonly ca: CertificateAuthority;
  /** DNS names (a leading `*.` allowed) and IP addresses. */
  readonly hosts: readonly string[];
  readonly days?: number;
  readonly commonName?: string;
  readonly now?: Date;
}

function subtle(): webcrypto.SubtleCrypto {
  return globalThis.crypto.subtle;
}

function randomSerial(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01; // positive and without a leading zero byte
  return Buffer.from(bytes).toString("hex");
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await subtle().exportKey("pkcs8", key), "PRIVATE KEY");
}

async function generateEcKeys(): Promise<CryptoKeyPair> {
  return subtle().generateKey(EC_P256, true, ["sign", "verify"]);
}

export async function createCa(opts: CaOptions = {}): Promise<CertificateAuthority> {
  const now = opts.now ?? new Date();
  const keys = await generateEcKeys();
  const signingAlgorithm: webcrypto.EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: `CN=${escapeDnValue(opts.commonName ?? "countersign local CA")}`,
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter: new Date(now.getTime() + (opts.days ?? DEFAULT_CA_DAYS) * DAY_MS),
      keys,
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    },
    globalThis.crypto,
  );
  return { certPem: cert.toString("pem"), keyPem: await privateKeyPem(keys.privateKey), cert, signingKey: keys.privateKey, signingAlgorithm };
}

/**
 * A CA from PEM files (e.g. an organisation's CA or one made earlier). Supports unencrypted EC
 * (P-256, P-384) and RSA keys; throws with a readable message otherwise.
 */
export async function loadCa(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const nodeCert = new NodeX509Certificate(certPem);
  if (!nodeCert.ca) throw new Error("the CA certificate is not a CA (basicConstraints CA:TRUE is missing)");
  const nodeKey = createPrivateKey(keyPem);
  const certSpki = nodeCert.publicKey.export({ type: "spki", format: "der" });
  const keySpki = createPublicKey(nodeKey).export({ type: "spki", format: "der" });
  if (!certSpki.equals(keySpki)) throw new Error("the CA key does not belong to the CA certificate");
  const pkcs8 = nodeKey.export({ type: "pkcs8", format: "der" });
  const { importAlgorithm, signingAlgorithm } = algorithmsFor(nodeKey.asymmetricKeyType, nodeKey.asymmetricKeyDetails?.namedCurve);
  const signingKey = await subtle().importKey("pkcs8", pkcs8, importAlgorithm, false, ["sign"]);
  return { certPem, keyPem, cert: new x509.X509Certificate(certPem), signingKey, signingAlgorithm };
}

function algorithmsFor(
  keyType: string | undefined,
  curve: string | undefined,
): { importAlgorithm: webcrypto.EcKeyImportParams | webcrypto.RsaHashedImportParams; signingAlgorithm: SigningAlgorithm } {
  if (keyType === "ec" && (curve === "prime256v1" || curve === "P-256")) {
    return { importAlgorithm: EC_P256, signingAlgorithm: { name: "ECDSA", hash: "SHA-256" } };
  }
  if (keyType === "ec" && (curve === "secp384r1" || curve === "P-384")) {
    return { importAlgorithm: { name: "ECDSA", namedCurve: "P-384" }, signingAlgorithm: { name: "ECDSA", hash: "SHA-384" } };
  }
  if (keyType === "rsa") {
    return { importAlgorithm: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }, signingAlgorithm: { name: "RSASSA-PKCS1-v1_5" } };
  }
  throw new Error(`unsupported CA key type ${keyType ?? "unknown"}${curve ? ` (${curve})` : ""}; use EC P-256, P-384 or RSA`);
}

/** A server certificate (ECDSA P-256, serverAuth) for `hosts`, signed by `ca`. */
export async function createLeaf(opts: LeafOptions): Promise<IssuedCertificate> {
  if (opts.hosts.length === 0) throw new Error("a server certificate needs at least one host name");
  const now = opts.now ?? new Date();
  const requested = new Date(now.getTime() + (opts.days ?? DEFAULT_LEAF_DAYS) * DAY_MS);
  const notAfter = requested > opts.ca.cert.notAfter ? opts.ca.cert.notAfter : requested;
  const keys = await generateEcKeys();
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: `CN=${escapeDnValue(opts.commonName ?? "countersign envoy sidecar")}`,
      issuer: opts.ca.cert.subjectName,
      notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
      notAfter,
      publicKey: keys.publicKey,
      signingKey: opts.ca.signingKey,
      signingAlgorithm: opts.ca.signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(opts.hosts.map(generalName)),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await authorityKeyIdentifier(opts.ca.cert),
      ],
    },
    globalThis.crypto,
  );
  return {
    certPem: cert.toString("pem"),
    keyPem: await privateKeyPem(keys.privateKey),
    sans: [...opts.hosts],
    notAfter,
    derBytes: cert.rawData.byteLength,
  };
}

/** Points at the CA's own subject key identifier when it has one (a loaded CA may use another method). */
async function authorityKeyIdentifier(ca: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = ca.getExtension(x509.SubjectKeyIdentifierExtension);
  return ski ? new x509.AuthorityKeyIdentifierExtension(ski.keyId) : x509.AuthorityKeyIdentifierExtension.create(ca.publicKey);
}

function generalName(host: string): x509.JsonGeneralName {
  return isIP(host) === 0 ? { type: "dns", value: host } : { type: "ip", value: host };
}

function escapeDnValue(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, "\\$1");
}
