/**
 * SigV4A (`AWS4-ECDSA-P256-SHA256`) for the fake AWS, written from the spec and sharing no code
 * with `src/sigv4` (nor with @smithy/signature-v4a, which countersign signs with). Only node:crypto
 * does the cryptography: HMAC-SHA256 for the key derivation, P-256 ECDSA for the signature.
 *
 * - The scope has no region: `<YYYYMMDD>/<service>/aws4_request`; the regions the signature is
 *   good for travel in the signed `x-amz-region-set` header (`*`, or regions joined by commas).
 * - The canonical request is built exactly as for SigV4 (`verifier.ts`).
 * - String to sign: `AWS4-ECDSA-P256-SHA256\n<x-amz-date>\n<scope>\n<hex sha256(canonical request)>`.
 * - Signature: ECDSA P-256 over SHA-256 of the string to sign, DER-encoded, hex.
 * - aws-chunked bodies (`STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD[-TRAILER]`): each chunk signature
 *   signs `AWS4-ECDSA-P256-SHA256-PAYLOAD\n<x-amz-date>\n<scope>\n<previous>\n<sha256("")>\n<sha256(data)>`,
 *   the trailer signature `AWS4-ECDSA-P256-SHA256-TRAILER\n<x-amz-date>\n<scope>\n<previous>\n<sha256(trailer text)>`,
 *   the first previous being the Authorization header's signature. A chunk or trailer signature is
 *   written padded with `*` to 144 characters (the longest hex DER P-256 signature); the padding
 *   is taken off before it is verified and before it becomes the next link's previous signature.
 * - Key: not random but derived from the secret with the NIST SP 800-108 KDF in counter mode,
 *   PRF = HMAC-SHA256 keyed by `"AWS4A" + secret`, one 256-bit block of fixed input
 *   `be32(1) || "AWS4-ECDSA-P256-SHA256" || 0x00 || access key id || counter || be32(256)`,
 *   counter = 1, 2, … (one byte) until the output k0 satisfies k0 <= n - 2 (n = the P-256 group
 *   order); the private key is k0 + 1, so it lies in [1, n - 1].
 */
import { createECDH, createHmac, createPublicKey, verify, type KeyObject } from "node:crypto";
import { sha256Hex } from "./verifier.js";

export const SIGV4A_ALGORITHM = "AWS4-ECDSA-P256-SHA256";

/** The order n of the P-256 group (FIPS 186-4, D.1.2.3). */
export const P256_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;

function be32(value: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(value);
  return b;
}

/** The KDF's fixed input for one counter value. */
export function kdfFixedInput(accessKeyId: string, counter: number): Buffer {
  if (!Number.isInteger(counter) || counter < 1 || counter > 255) throw new RangeError("the KDF counter is one byte, from 1");
  return Buffer.concat([be32(1), Buffer.from(SIGV4A_ALGORITHM, "ascii"), Buffer.from([0]), Buffer.from(accessKeyId, "utf8"), Buffer.from([counter]), be32(256)]);
}

/** The SigV4A private key (a scalar in [1, n - 1]) for a key pair, and how many counters it took. */
export function deriveSigV4aPrivateKey(accessKeyId: string, secretAccessKey: string): { d: bigint; counter: number } {
  const prfKey = Buffer.from(`AWS4A${secretAccessKey}`, "utf8");
  for (let counter = 1; counter <= 254; counter++) {
    const k0 = BigInt(`0x${createHmac("sha256", prfKey).update(kdfFixedInput(accessKeyId, counter)).digest("hex")}`);
    if (k0 <= P256_ORDER - 2n) return { d: k0 + 1n, counter };
  }
  throw new Error("SigV4A key derivation found no candidate below n - 1 in 254 tries");
}

/** The public point (hex X and Y, 32 bytes each) of a private scalar, computed by node:crypto. */
export function publicPoint(d: bigint): { x: string; y: string } {
  const ecdh = createECDH("prime256v1");
  ecdh.setPrivateKey(Buffer.from(d.toString(16).padStart(64, "0"), "hex"));
  const point = ecdh.getPublicKey(); // 0x04 || X || Y
  return { x: point.subarray(1, 33).toString("hex"), y: point.subarray(33, 65).toString("hex") };
}

/** A P-256 public key object from hex X and Y. */
export function publicKeyFromPoint(point: { x: string; y: string }): KeyObject {
  const b64url = (hex: string): string => Buffer.from(hex, "hex").toString("base64url");
  return createPublicKey({ key: { kty: "EC", crv: "P-256", x: b64url(point.x), y: b64url(point.y) }, format: "jwk" });
}

const keyCache = new Map<string, KeyObject>();

/** The verification key for a key pair (cached per key id and secret; the fake's accounts are few). */
export function sigV4aPublicKey(accessKeyId: string, secretAccessKey: string): KeyObject {
  const cacheKey = `${accessKeyId}\u0000${sha256Hex(secretAccessKey)}`;
  let key = keyCache.get(cacheKey);
  if (!key) {
    key = publicKeyFromPoint(publicPoint(deriveSigV4aPrivateKey(accessKeyId, secretAccessKey).d));
    keyCache.set(cacheKey, key);
  }
  return key;
}

/** `20150830/service/aws4_request` */
export function sigV4aScope(date: string, service: string): string {
  return `${date}/${service}/aws4_request`;
}

/** AWS4-ECDSA-P256-SHA256 \n x-amz-date \n scope \n hex(sha256(canonical request)) */
export function sigV4aStringToSign(amzDate: string, scope: string, canonicalRequest: string): string {
  return [SIGV4A_ALGORITHM, amzDate, scope, sha256Hex(canonicalRequest)].join("\n");
}

/** True when `signatureHex` is a DER ECDSA P-256/SHA-256 signature of `stringToSign` under `key`. Never throws. */
export function verifySigV4aSignature(key: KeyObject, stringToSign: string, signatureHex: string): boolean {
  if (!/^([0-9a-f]{2}){8,80}$/.test(signatureHex)) return false;
  try {
    return verify("sha256", Buffer.from(stringToSign, "utf8"), { key, dsaEncoding: "der" }, Buffer.from(signatureHex, "hex"));
  } catch {
    return false;
  }
}

/**
 * Whether a region set (`*`, `us-east-1,us-west-2`, `us-*`) covers the region that serves the
 * request. Entries are compared case-insensitively; a trailing `*` matches any suffix.
 */
export function regionSetCovers(regionSet: string, region: string): boolean {
  return regionSet
    .split(",")
    .map((r) => r.trim().toLowerCase())
    .some((entry) => (entry.endsWith("*") ? region.startsWith(entry.slice(0, -1)) : entry === region));
}

/** String-to-sign prefixes of SigV4A chunk and trailer signatures. */
export const SIGV4A_CHUNK_PREFIX = `${SIGV4A_ALGORITHM}-PAYLOAD`;
export const SIGV4A_TRAILER_PREFIX = `${SIGV4A_ALGORITHM}-TRAILER`;
/** Width of a padded SigV4A chunk or trailer signature: 72 DER bytes, in hex. */
export const SIGV4A_PADDED_SIGNATURE_LENGTH = 144;

/** A chunk or trailer signature as sent (hex DER, then `*` up to 144 characters) without its padding; undefined if not of that form. */
export function unpadSigV4aSignature(field: string): string | undefined {
  if (field.length > SIGV4A_PADDED_SIGNATURE_LENGTH) return undefined;
  const m = /^((?:[0-9a-f]{2})+)\**$/.exec(field);
  return m?.[1];
}
