import { Hash } from "@smithy/hash-node";
import { getSigningKey } from "@smithy/signature-v4";
import type { Credentials } from "./types.js";

const Sha256 = Hash.bind(null, "sha256");

/**
 * The derived SigV4 signing key for one date/region/service, for chunk and trailer signatures.
 * Derivation and its cache are @smithy/signature-v4's; `amzDate` is the request's x-amz-date.
 */
export function chunkSigningKey(credentials: Credentials, amzDate: string, region: string, service: string): Promise<Uint8Array> {
  return getSigningKey(Sha256, credentials, amzDate.slice(0, 8), region, service);
}
