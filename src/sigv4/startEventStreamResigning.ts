import { ALGORITHM_V4A } from "./constants.js";
import { EventStreamResigner, type EventStreamParams } from "./eventStreamResigner.js";
import { cachedSigningKey, signRequest, type SignInput, type SignOutput } from "./signRequest.js";

/** The stream's framing limits; the chain's seed and signing keys come from the signed head. */
export type EventStreamLimits = Omit<EventStreamParams, "seed" | "signingKeyFor">;

/** The seed-signed head's header changes, and the re-signer for the event stream that follows. */
export interface EventStreamResigning extends Pick<SignOutput, "setHeaders" | "removeHeaders"> {
  readonly resigner: EventStreamResigner;
}

/**
 * Signs the head of a signed event stream (its payload hash is STREAMING-AWS4-HMAC-SHA256-EVENTS)
 * and returns a re-signer whose message signatures chain from that new seed signature, signed
 * with the key smithy derived for the request (and, for a message dated on another day, smithy's
 * key for that day, region and service).
 */
export async function startEventStreamResigning(input: SignInput, limits: EventStreamLimits): Promise<EventStreamResigning> {
  if (input.algorithm === ALGORITHM_V4A) throw new Error("event streams are signed with SigV4 only (the chain is HMAC)");
  const signed = await signRequest(input);
  const { credentials, region, service } = input;
  return {
    setHeaders: signed.setHeaders,
    removeHeaders: signed.removeHeaders,
    resigner: new EventStreamResigner({
      ...limits,
      seed: { signature: signed.signature, amzDate: signed.amzDate, scope: signed.scope, signingKey: signed.signingKey },
      signingKeyFor: async (shortDate) => cachedSigningKey(credentials, shortDate, region, service),
    }),
  };
}
