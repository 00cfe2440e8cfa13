import { ALGORITHM_V4A } from "./constants.js";
import { AwsChunkedResigner, type ChunkSigningParams } from "./awsChunkedResigner.js";
import { ecdsaChunkSigner, hmacChunkSigner } from "./chunkSigners.js";
import { signRequest, type SignInput, type SignOutput } from "./signRequest.js";
import { signRequestV4aForChunks } from "./signRequestV4a.js";

/** The body's framing rules; the chain's seed and signer come from signing the head. */
export type ChunkedBodyLimits = Omit<ChunkSigningParams, "seed" | "signer">;

/** The seed-signed head's header changes, and the re-signer for the aws-chunked body that follows. */
export interface ChunkedResigning extends Pick<SignOutput, "setHeaders" | "removeHeaders"> {
  readonly resigner: AwsChunkedResigner;
}

/**
 * Signs the head of an aws-chunked request (its payload hash is the STREAMING-… marker) with
 * `input.algorithm` and returns a re-signer whose chunk signatures chain from that new seed
 * signature: SigV4 chunks by HMAC under the head's signing key, SigV4A chunks by ECDSA under the
 * key smithy derived for the head (held only by the re-signer).
 */
export async function startChunkedResigning(input: SignInput, body: ChunkedBodyLimits): Promise<ChunkedResigning> {
  if (input.algorithm === ALGORITHM_V4A) {
    const { head, signString } = await signRequestV4aForChunks(input);
    return {
      setHeaders: head.setHeaders,
      removeHeaders: head.removeHeaders,
      resigner: new AwsChunkedResigner({ ...body, seed: head, signer: ecdsaChunkSigner(signString) }),
    };
  }
  const signed = await signRequest(input);
  return {
    setHeaders: signed.setHeaders,
    removeHeaders: signed.removeHeaders,
    resigner: new AwsChunkedResigner({ ...body, seed: signed, signer: hmacChunkSigner(signed.signingKey) }),
  };
}
