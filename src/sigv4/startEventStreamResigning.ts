import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { ALGORITHM_V4A } from "./constants.js";
import { EventStreamResigner, type EventMessageSigner, type EventStreamParams } from "./eventStreamResigner.js";
import { signRequest, type SignInput, type SignOutput } from "./signRequest.js";

/** The stream's framing limits; the chain's seed and signer come from the signed head. */
export type EventStreamLimits = Omit<EventStreamParams, "seedSignature" | "signer">;

/** The seed-signed head's header changes, and the re-signer for the event stream that follows. */
export interface EventStreamResigning extends Pick<SignOutput, "setHeaders" | "removeHeaders"> {
  readonly resigner: EventStreamResigner;
}

const Sha256 = Hash.bind(null, "sha256");

/**
 * @smithy/signature-v4's event signing for one request's credentials, region and service: the
 * string to sign (AWS4-HMAC-SHA256-PAYLOAD, the message's date and scope, the prior signature,
 * the hashes of the `:date` header and of the payload) and its HMAC are the library's. The signing
 * key is derived once per date, region and service and found again in the library's cache.
 */
function eventSigner(input: SignInput): EventMessageSigner {
  const signer = new SignatureV4({ service: input.service, region: input.region, credentials: input.credentials, sha256: Sha256 });
  return {
    async sign(date, payload, priorSignature) {
      const signed = await signer.signMessage(
        { message: { headers: { ":date": { type: "timestamp", value: date } }, body: payload }, priorSignature },
        { signingDate: date },
      );
      return signed.signature;
    },
  };
}

/**
 * Signs the head of a signed event stream (its payload hash is STREAMING-AWS4-HMAC-SHA256-EVENTS)
 * and returns a re-signer whose message signatures chain from that new seed signature.
 */
export async function startEventStreamResigning(input: SignInput, limits: EventStreamLimits): Promise<EventStreamResigning> {
  if (input.algorithm === ALGORITHM_V4A) throw new Error("event streams are signed with SigV4 only (the chain is HMAC)");
  const signed = await signRequest(input);
  return {
    setHeaders: signed.setHeaders,
    removeHeaders: signed.removeHeaders,
    resigner: new EventStreamResigner({ ...limits, seedSignature: signed.signature, signer: eventSigner(input) }),
  };
}
