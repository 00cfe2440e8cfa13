import { ALGORITHM_V4A } from "./constants.js";
import { AwsChunkedResigner, type ChunkSigningParams } from "./awsChunkedResigner.js";
import { signRequest, type SignInput, type SignOutput } from "./signRequest.js";

/** The body's framing rules; the chain's seed comes from signing the head. */
export type ChunkedBodyLimits = Omit<ChunkSigningParams, "seed">;

/** The seed-signed head's header changes, and the re-signer for the aws-chunked body that follows. */
export interface ChunkedResigning extends Pick<SignOutput, "setHeaders" | "removeHeaders"> {
  readonly resigner: AwsChunkedResigner;
}

/**
 * Signs the head of an aws-chunked request (its payload hash is the STREAMING-… marker) and
 * returns a re-signer whose chunk signatures chain from that new seed signature.
 */
export async function startChunkedResigning(input: SignInput, body: ChunkedBodyLimits): Promise<ChunkedResigning> {
  if (input.algorithm === ALGORITHM_V4A) throw new Error("SigV4A chunk signatures are not re-signed (the chain here is HMAC)");
  const signed = await signRequest(input);
  return {
    setHeaders: signed.setHeaders,
    removeHeaders: signed.removeHeaders,
    resigner: new AwsChunkedResigner({ ...body, seed: signed }),
  };
}
