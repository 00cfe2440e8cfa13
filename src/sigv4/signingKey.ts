import { createHmac } from "node:crypto";
import type { Credentials } from "./types.js";

/**
 * The derived SigV4 signing key (HMAC chain "AWS4"+secret → date → region → service →
 * "aws4_request"), cached per credential set and date/region/service.
 *
 * A credential set is one immutable object, replaced whole on refresh, so the cache is keyed by the
 * object itself (a WeakMap: a retired set and its keys go with it) and then by
 * "date/region/service". Nothing derived from the secret is used as a map key, and a hit costs no
 * HMAC at all. Each entry remembers the secret it was derived from, so an object that was changed
 * in place (it never should be) gets a fresh key instead of a stale one.
 */
interface Entry {
  readonly secret: string;
  readonly key: Buffer;
}

/** Per credential set: a few regions × services × (today, yesterday) in practice. */
const MAX_KEYS_PER_CREDENTIALS = 256;

const cache = new WeakMap<Credentials, Map<string, Entry>>();

/** `shortDate` is YYYYMMDD (the first 8 characters of x-amz-date). */
export function signingKeyFor(credentials: Credentials, shortDate: string, region: string, service: string): Buffer {
  let perCredentials = cache.get(credentials);
  if (perCredentials === undefined) {
    perCredentials = new Map();
    cache.set(credentials, perCredentials);
  }
  const id = `${shortDate}/${region}/${service}`;
  const hit = perCredentials.get(id);
  if (hit !== undefined && hit.secret === credentials.secretAccessKey) return hit.key;
  const key = deriveSigningKey(credentials.secretAccessKey, shortDate, region, service);
  if (perCredentials.size >= MAX_KEYS_PER_CREDENTIALS) perCredentials.clear();
  perCredentials.set(id, { secret: credentials.secretAccessKey, key });
  return key;
}

/** The SigV4 key derivation itself (uncached). */
export function deriveSigningKey(secretAccessKey: string, shortDate: string, region: string, service: string): Buffer {
  const kDate = createHmac("sha256", `AWS4${secretAccessKey}`).update(shortDate, "utf8").digest();
  const kRegion = createHmac("sha256", kDate).update(region, "utf8").digest();
  const kService = createHmac("sha256", kRegion).update(service, "utf8").digest();
  return createHmac("sha256", kService).update("aws4_request", "utf8").digest();
}
