/** Real AWS credentials. Swapped as one immutable object, never field by field. */
export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration?: Date;
}

/**
 * What chunk and trailer signatures chain from: a request's SigV4 signature and the date, scope
 * and derived key it was made with.
 */
export interface SignatureChainSeed {
  /** The request signature, the first link of the chain. */
  readonly signature: string;
  /** `x-amz-date` of the signed request, reused by every chunk string-to-sign. */
  readonly amzDate: string;
  /** `<date>/<region>/<service>/aws4_request`. */
  readonly scope: string;
  /** Derived SigV4 signing key for that date, region and service. */
  readonly signingKey: Uint8Array;
}
