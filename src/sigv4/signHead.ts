import { ALGORITHM_V4A } from "./constants.js";
import { signRequest, type SignInput, type SignOutput } from "./signRequest.js";
import { signRequestV4a } from "./signRequestV4a.js";

/**
 * Signs a request head with the algorithm `input.algorithm` names and returns its header changes.
 * Not async itself: it hands back the signer's own promise (one promise hop fewer per request).
 */
export function signHead(input: SignInput): Promise<Pick<SignOutput, "setHeaders" | "removeHeaders">> {
  return input.algorithm === ALGORITHM_V4A ? signRequestV4a(input) : signRequest(input);
}
