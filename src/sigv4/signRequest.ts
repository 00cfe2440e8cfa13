import { Hash } from "@smithy/hash-node";
import { getSigningKey, SignatureV4 } from "@smithy/signature-v4";
import type { HttpRequest, SourceData } from "@smithy/types";
import {
  EMPTY_SHA256,
  H_AMZ_DATE,
  H_AUTHORIZATION,
  H_CONTENT_SHA256,
  H_SECURITY_TOKEN,
  SINGLE_ENCODE_SERVICES,
} from "./constants.js";
import type { SigningAlgorithm } from "./clientAlgorithm.js";
import { selectSignedHeaders } from "./selectSignedHeaders.js";
import type { DecodedQuery } from "./splitPath.js";
import type { Credentials, SignatureChainSeed } from "./types.js";

const Sha256 = Hash.bind(null, "sha256");

export interface SignInput {
  readonly method: string;
  /** The Host header value AWS will receive (Envoy forwards `:authority` as Host). */
  readonly host: string;
  /** The path part of `:path` as sent (percent-encoded once). */
  readonly path: string;
  readonly query: DecodedQuery;
  /** Request headers: lower-case names, repeated headers joined with ",". Pseudo-headers excluded. */
  readonly headers: ReadonlyMap<string, string>;
  /** Header names the client's own signature covered. */
  readonly clientSignedHeaders: readonly string[];
  /** Sign content-length when present (countersign always does: Envoy keeps it on every path it uses). */
  readonly signContentLength: boolean;
  readonly payloadHash: string;
  /**
   * Send and sign `x-amz-content-sha256` (default true; countersign always does). False exists only
   * so AWS's official test suite, whose requests carry no such header, runs through this function.
   */
  readonly sendContentSha256?: boolean;
  readonly service: string;
  /**
   * Path rules: true signs the path as sent (S3: encoded once, not normalised); false normalises it
   * and encodes each segment again. Default: true exactly for s3, s3-outposts and s3express.
   */
  readonly singleEncodePath?: boolean;
  /**
   * SigV4: the signing region. SigV4A: the region set (`x-amz-region-set`, e.g. `*` or
   * `us-east-1,us-west-2`), which the scope leaves out.
   */
  readonly region: string;
  /** Which signature: SigV4 (HMAC, the default) or SigV4A (ECDSA P-256). */
  readonly algorithm?: SigningAlgorithm;
  readonly credentials: Credentials;
  readonly now: Date;
}

/** The signed head, and the signature, scope and key that chunk signatures chain from. */
export interface SignOutput extends SignatureChainSeed {
  /** Headers to set on the forwarded request (overwriting). */
  readonly setHeaders: ReadonlyArray<readonly [string, string]>;
  /** Headers to remove from the forwarded request. */
  readonly removeHeaders: readonly string[];
  /** The `SignedHeaders` list: signed header names, sorted, joined with ";". */
  readonly signedHeaderNames: string;
}

/** What smithy's own request signing derived on the way to the Authorization header it built. */
interface Derived {
  amzDate: string | undefined;
  scope: string | undefined;
  signedHeaderNames: string | undefined;
  /** The key of the last HMAC whose output smithy asked for, and that output. */
  lastHmacKey: SourceData | undefined;
  lastHmac: Promise<Uint8Array> | undefined;
}

/**
 * smithy's node SHA-256 (an HMAC when given a key), the hash constructor handed to the signer,
 * noting the key and output of every HMAC whose output is asked for. smithy's request signing ends
 * with the HMAC of the string to sign under the signing key (asked for once the key itself is
 * derived), so the last HMAC of a signRequest call is the signature in its Authorization header;
 * `signRequest` checks that its key is the signing key before it uses it.
 */
class RecordingSha256 extends Hash {
  constructor(
    private readonly derived: Derived,
    private readonly key?: SourceData,
  ) {
    super("sha256", key);
  }

  override digest(): Promise<Uint8Array> {
    const out = super.digest();
    if (this.key !== undefined) {
      this.derived.lastHmacKey = this.key;
      this.derived.lastHmac = out;
    }
    return out;
  }
}

/**
 * @smithy/signature-v4's signer, recording the scope, date and signed-header list its request
 * signing derives, through the steps it leaves to subclasses, and the HMACs it computes, through
 * the hash constructor it is given. Nothing is re-computed or re-parsed here: these are the values
 * the Authorization header was built from.
 */
class RecordingSigner extends SignatureV4 {
  constructor(
    readonly derived: Derived,
    init: { service: string; region: string; credentials: Credentials; uriEscapePath: boolean },
  ) {
    // A bound class is a constructor, as smithy's own Hash.bind(null, "sha256") is. The options
    // are spelled out, not spread: an object spread here cost more than the signer's construction.
    super({
      service: init.service,
      region: init.region,
      credentials: init.credentials,
      uriEscapePath: init.uriEscapePath,
      applyChecksum: false,
      sha256: RecordingSha256.bind(null, derived),
    });
  }

  protected override createStringToSign(longDate: string, credentialScope: string, canonicalRequest: string, algorithmIdentifier: string): Promise<string> {
    this.derived.amzDate = longDate;
    this.derived.scope = credentialScope;
    return super.createStringToSign(longDate, credentialScope, canonicalRequest, algorithmIdentifier);
  }

  protected override getCanonicalHeaderList(headers: object): string {
    const names = super.getCanonicalHeaderList(headers);
    this.derived.signedHeaderNames = names;
    return names;
  }
}

/**
 * smithy's derived signing keys, per credentials object (credentials are swapped as one immutable
 * object, so a rotation starts a new entry and the old one goes with its object), by date, region
 * and service. smithy caches the key too, but finds it under an HMAC of the credentials, one more
 * HMAC per request; this look-up is a Map get. The key itself is smithy's getSigningKey.
 */
interface KeysOfCredentials {
  /** The key of the last scope asked for, derived: the common case is one scope per credentials. */
  last: { readonly shortDate: string; readonly region: string; readonly service: string; readonly key: Uint8Array } | undefined;
  readonly byScope: Map<string, Promise<Uint8Array>>;
}
const signingKeys = new WeakMap<Credentials, KeysOfCredentials>();
const MAX_KEYS_PER_CREDENTIALS = 64;

/** The key, or a promise of it while smithy derives it (no promise hop once it is known). */
export function cachedSigningKey(credentials: Credentials, shortDate: string, region: string, service: string): Uint8Array | Promise<Uint8Array> {
  let keys = signingKeys.get(credentials);
  if (keys === undefined) {
    keys = { last: undefined, byScope: new Map() };
    signingKeys.set(credentials, keys);
  }
  const last = keys.last;
  if (last !== undefined && last.shortDate === shortDate && last.region === region && last.service === service) return last.key;
  const scope = `${shortDate}/${region}/${service}`;
  let key = keys.byScope.get(scope);
  if (key === undefined) {
    const { byScope } = keys;
    if (byScope.size >= MAX_KEYS_PER_CREDENTIALS) byScope.clear();
    key = getSigningKey(Sha256, credentials, shortDate, region, service);
    byScope.set(scope, key);
    // A failed derivation is not kept.
    key.catch(() => byScope.delete(scope));
  }
  const owner = keys;
  return key.then((derivedKey) => {
    owner.last = { shortDate, region, service, key: derivedKey };
    return derivedKey;
  });
}

/** The request smithy signs: the selected headers, the payload hash header, the path rules. */
export interface PreparedRequest {
  readonly request: HttpRequest;
  /** The headers chosen for the signature, by lower-case name (also `request.headers`). */
  readonly headers: Record<string, string>;
  /** True: sign the path as sent (S3 rules); false: normalise and encode each segment again. */
  readonly s3Style: boolean;
}

/** Chooses the headers to sign and builds the request smithy's signers take. */
export function prepareRequest(input: SignInput, extraHeaders: Readonly<Record<string, string>> = {}): PreparedRequest {
  const s3Style = input.singleEncodePath ?? SINGLE_ENCODE_SERVICES.has(input.service);
  const headers = selectSignedHeaders(input.headers, input.host, input.clientSignedHeaders, input.signContentLength);
  Object.assign(headers, extraHeaders);
  const sendContentSha256 = input.sendContentSha256 ?? true;
  if (sendContentSha256) headers[H_CONTENT_SHA256] = input.payloadHash;

  // The signer takes the payload hash from x-amz-content-sha256; without that header (test suite
  // only) it signs the empty-payload hash, so nothing else may be asked for.
  if (!sendContentSha256 && input.payloadHash !== EMPTY_SHA256) {
    throw new Error("a payload hash other than the empty one needs x-amz-content-sha256");
  }
  const request: HttpRequest = {
    method: input.method,
    protocol: "https:",
    hostname: input.host,
    path: input.path,
    query: input.query,
    headers,
  };
  return { request, headers, s3Style };
}

/**
 * The header changes that carry a signature: the Authorization header and date the signer made,
 * the payload hash, the real session token (or the client's removed), and `extra` (SigV4A's region set).
 */
export function signedHeaderChanges(
  input: SignInput,
  authorization: string,
  amzDate: string,
  extra: ReadonlyArray<readonly [string, string]> = [],
): Pick<SignOutput, "setHeaders" | "removeHeaders"> {
  const setHeaders: Array<readonly [string, string]> = [
    [H_AUTHORIZATION, authorization],
    [H_AMZ_DATE, amzDate],
    ...extra,
  ];
  if (input.sendContentSha256 ?? true) setHeaders.push([H_CONTENT_SHA256, input.payloadHash]);
  const removeHeaders: string[] = [];
  if (input.credentials.sessionToken) setHeaders.push([H_SECURITY_TOKEN, input.credentials.sessionToken]);
  else if (input.headers.has(H_SECURITY_TOKEN)) removeHeaders.push(H_SECURITY_TOKEN);
  return { setHeaders, removeHeaders };
}

/**
 * Signs one request head with real credentials and SigV4 (HMAC). Pure apart from the signing-key
 * caches (smithy's, module-wide, and `signingKeys` above);
 * all SigV4 math is that library's. A SignatureV4 costs nothing to construct, so one is made per
 * request.
 */
export async function signRequest(input: SignInput): Promise<SignOutput> {
  const { request, headers, s3Style } = prepareRequest(input);
  const derived: Derived = { amzDate: undefined, scope: undefined, signedHeaderNames: undefined, lastHmacKey: undefined, lastHmac: undefined };
  const signer = new RecordingSigner(derived, {
    service: input.service,
    region: input.region,
    credentials: input.credentials,
    uriEscapePath: !s3Style,
  });
  const signed = await signer.sign(request, {
    signingDate: input.now,
    // Override the library's built-in unsignable list only for headers we chose on purpose.
    signableHeaders: new Set(Object.keys(headers)),
  });

  const { amzDate, scope, signedHeaderNames, lastHmacKey, lastHmac } = derived;
  const authorization = signed.headers[H_AUTHORIZATION];
  if (amzDate === undefined || scope === undefined || signedHeaderNames === undefined || lastHmac === undefined || authorization === undefined) {
    throw new Error("@smithy/signature-v4 signed without deriving a scope, signed-header list and signature");
  }
  const cached = cachedSigningKey(input.credentials, amzDate.slice(0, 8), input.region, input.service);
  const signingKey = cached instanceof Uint8Array ? cached : await cached;
  // The signature is smithy's last HMAC, made under the signing key (fail closed if it was not).
  if (!(lastHmacKey instanceof Uint8Array) || !Buffer.from(lastHmacKey.buffer, lastHmacKey.byteOffset, lastHmacKey.byteLength).equals(signingKey)) {
    throw new Error("@smithy/signature-v4's last HMAC was not made under the signing key");
  }
  const signatureBytes = await lastHmac;
  const signature = Buffer.from(signatureBytes.buffer, signatureBytes.byteOffset, signatureBytes.byteLength).toString("hex");
  const { setHeaders, removeHeaders } = signedHeaderChanges(input, authorization, amzDate);
  return { setHeaders, removeHeaders, signature, amzDate, scope, signingKey, signedHeaderNames };
}
