import { ALGORITHM_V4A } from "./constants.js";
import { signRequest, type SignInput, type SignOutput } from "./signRequest.js";
import { signRequestV4a } from "./signRequestV4a.js";

/** Signs a request head with the algorithm `input.algorithm` names and returns its header changes. */
export async function signHead(input: SignInput): Promise<Pick<SignOutput, "setHeaders" | "removeHeaders">> {
  return input.algorithm === ALGORITHM_V4A ? signRequestV4a(input) : signRequest(input);
}
