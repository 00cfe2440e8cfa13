/**
 * The two ways an aws-chunked body's signatures are made. The framing is the same for both
 * (`awsChunkedResigner.ts`); only the algorithm and the width of a signature field differ:
 *
 * - SigV4 (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`): HMAC-SHA256 under the request's derived
 *   signing key, 64 hex characters.
 * - SigV4A (`STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD[-TRAILER]`): ECDSA P-256 over SHA-256 with the
 *   key derived from the secret, hex DER, 140 to 144 characters. aws-c-auth (the CRT signer every
 *   SDK's SigV4A chunk signing comes from) pads every chunk and trailer signature with `*` to 144
 *   characters, so the body's length is known before any chunk is signed; the next link of the
 *   chain is made from the signature without its padding. The seed (the Authorization header's
 *   signature) is never padded.
 */
import { ALGORITHM, ALGORITHM_V4A } from "./constants.js";
import { HmacSha256 } from "./hmacSha256.js";

export interface ChunkSigner {
  /** `AWS4-HMAC-SHA256` or `AWS4-ECDSA-P256-SHA256`: chunk and trailer strings to sign begin with it and `-PAYLOAD` / `-TRAILER`. */
  readonly algorithm: string;
  /** Characters in every `chunk-signature=` and `x-amz-trailer-signature:` value, the client's and ours. */
  readonly fieldWidth: number;
  /** What a signature field must look like, for error messages. */
  readonly fieldForm: string;
  /** True when the client's signature field has the form (and so the width) this signer writes. */
  isField(field: string): boolean;
  /** The signature of one string to sign, unpadded: what the next link chains from. */
  sign(stringToSign: string): string | Promise<string>;
  /** A signature as it is written in the body: exactly `fieldWidth` characters. */
  field(signature: string): string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** SigV4: HMAC-SHA256 under the derived signing key (its HMAC blocks set up once for every chunk). */
export function hmacChunkSigner(signingKey: Uint8Array): ChunkSigner {
  const key = new HmacSha256(signingKey);
  return {
    algorithm: ALGORITHM,
    fieldWidth: 64,
    fieldForm: "64 lower-case hex characters",
    isField: (field) => HEX64.test(field),
    sign: (stringToSign) => key.hex(stringToSign),
    field: (signature) => signature,
  };
}

/** Width of a SigV4A chunk or trailer signature field: the longest hex DER P-256 signature (72 bytes). */
export const V4A_SIGNATURE_FIELD_WIDTH = 144;
/** What aws-c-auth pads a shorter SigV4A chunk signature with. */
export const V4A_SIGNATURE_PADDING = "*";
/** Hex DER (at least 8 bytes), then `*` padding, 144 characters in all. */
const V4A_FIELD = /^(?:[0-9a-f]{2}){8,72}\**$/;

/**
 * SigV4A: `signString` is the ECDSA signing of the library that signed the seed, holding the key it
 * derived (see `signRequestV4a.ts`); it returns hex DER, which is padded here to 144 characters.
 */
export function ecdsaChunkSigner(signString: (stringToSign: string) => Promise<string>): ChunkSigner {
  return {
    algorithm: ALGORITHM_V4A,
    fieldWidth: V4A_SIGNATURE_FIELD_WIDTH,
    fieldForm: `${V4A_SIGNATURE_FIELD_WIDTH} characters: a hex DER ECDSA signature padded with "${V4A_SIGNATURE_PADDING}" (as aws-c-auth writes it)`,
    isField: (field) => field.length === V4A_SIGNATURE_FIELD_WIDTH && V4A_FIELD.test(field),
    sign: async (stringToSign) => {
      const signature = await signString(stringToSign);
      if (signature.length > V4A_SIGNATURE_FIELD_WIDTH || !V4A_FIELD.test(signature)) {
        throw new Error(`SigV4A chunk signature is not hex DER of at most ${V4A_SIGNATURE_FIELD_WIDTH} characters`);
      }
      return signature;
    },
    field: (signature) => signature.padEnd(V4A_SIGNATURE_FIELD_WIDTH, V4A_SIGNATURE_PADDING),
  };
}
