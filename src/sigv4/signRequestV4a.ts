import { Hash } from "@smithy/hash-node";
import { SignatureV4a } from "@smithy/signature-v4a";
import { H_AUTHORIZATION, H_REGION_SET } from "./constants.js";
import { prepareRequest, signedHeaderChanges, type SignInput, type SignOutput } from "./signRequest.js";

const Sha256 = Hash.bind(null, "sha256");

/** A SigV4A-signed head: its header changes, and what its Authorization header was built from. */
export interface SignOutputV4a extends Pick<SignOutput, "setHeaders" | "removeHeaders" | "signedHeaderNames"> {
  /** Hex DER ECDSA signature (its length varies, about 140 to 144 characters). */
  readonly signature: string;
  readonly amzDate: string;
  /** `<date>/<service>/aws4_request`: a SigV4A scope has no region. */
  readonly scope: string;
}

/** What smithy's SigV4A request signing derived on the way to the Authorization header it built. */
interface Derived {
  amzDate?: string;
  scope?: string;
  signedHeaderNames?: string;
}

/**
 * @smithy/signature-v4a's signer (the one the AWS SDK for JavaScript v3 loads for S3 Multi-Region
 * Access Points when the CRT is absent), recording the date, scope and signed-header list through
 * the two steps it leaves to subclasses, as `signRequest` does for SigV4.
 */
class RecordingSignerV4a extends SignatureV4a {
  readonly derived: Derived = {};

  protected override async createStringToSign(longDate: string, credentialScope: string, canonicalRequest: string, algorithmIdentifier: string): Promise<string> {
    Object.assign(this.derived, { amzDate: longDate, scope: credentialScope });
    return super.createStringToSign(longDate, credentialScope, canonicalRequest, algorithmIdentifier);
  }

  protected override getCanonicalHeaderList(headers: object): string {
    const names = super.getCanonicalHeaderList(headers);
    this.derived.signedHeaderNames = names;
    return names;
  }
}

/** smithy's ECDSA step, which its d.ts declares private: hex DER of the string to sign under a derived key. */
interface EcdsaStep {
  getSignature(privateKey: Uint8Array, stringToSign: string): Promise<string>;
}

/**
 * Signs one request head with real credentials and SigV4A: the ECDSA P-256 key derived from the
 * secret, the region set `input.region` sent and signed as `x-amz-region-set`. Every piece of
 * SigV4A (key derivation, canonical request, string to sign, ECDSA) is @smithy/signature-v4a's.
 */
export async function signRequestV4a(input: SignInput): Promise<SignOutputV4a> {
  return (await signRequestV4aForChunks(input)).head;
}

/**
 * `signRequestV4a`, and `signString`: smithy's ECDSA signing of further strings with the private
 * key it derived for the head (captured on its way into smithy's own signing step), for a chunk
 * signature chain. The key lives only in that closure: whoever holds `signString` (the chunk
 * re-signer) holds the key, and it goes when they do.
 */
export async function signRequestV4aForChunks(input: SignInput): Promise<{ head: SignOutputV4a; signString: (stringToSign: string) => Promise<string> }> {
  const regionSet = input.region;
  const { request, headers, s3Style } = prepareRequest(input, { [H_REGION_SET]: regionSet });
  const signer = new RecordingSignerV4a({
    service: input.service,
    region: regionSet,
    credentials: input.credentials,
    sha256: Sha256,
    uriEscapePath: !s3Style,
    applyChecksum: false,
  });
  const ecdsa = signer as unknown as EcdsaStep;
  const smithyGetSignature = ecdsa.getSignature.bind(signer);
  let privateKey: Uint8Array | undefined;
  ecdsa.getSignature = (key, stringToSign) => {
    privateKey = key;
    return smithyGetSignature(key, stringToSign);
  };
  const signed = (await signer.sign(request, { signingDate: input.now, signableHeaders: new Set(Object.keys(headers)) })) as { headers: Record<string, string> };
  const { amzDate, scope, signedHeaderNames } = signer.derived;
  const authorization = signed.headers[H_AUTHORIZATION];
  const key = privateKey;
  if (amzDate === undefined || scope === undefined || signedHeaderNames === undefined || authorization === undefined || key === undefined) {
    throw new Error("@smithy/signature-v4a signed without deriving a scope, signed-header list and key");
  }
  // The signer hands back only the header; the signature is its last component.
  const signature = authorization.slice(authorization.lastIndexOf("Signature=") + "Signature=".length);
  const changes = signedHeaderChanges(input, authorization, amzDate, [[H_REGION_SET, regionSet]]);
  return {
    head: { ...changes, signature, amzDate, scope, signedHeaderNames },
    signString: (stringToSign) => smithyGetSignature(key, stringToSign),
  };
}
