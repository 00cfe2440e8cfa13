import { ALGORITHM, ALGORITHM_V4A, STREAMING_EVENTS, STREAMING_SIGNED, STREAMING_SIGNED_TRAILER, STREAMING_SIGV4A_PREFIX } from "./constants.js";
import type { CredentialSigning } from "../policy/types.js";
import type { ClientAuth } from "./parseClientAuth.js";

/** The two signature algorithms: SigV4 (HMAC) and SigV4A (ECDSA P-256). */
export type SigningAlgorithm = typeof ALGORITHM | typeof ALGORITHM_V4A;

/** The algorithm an endpoint re-signs with: SigV4A for `credential_signing: sigv4a`, else SigV4. */
export function endpointAlgorithm(signing: CredentialSigning): SigningAlgorithm {
  return signing === "sigv4a" ? ALGORITHM_V4A : ALGORITHM;
}

/** Why a request is refused for the algorithm its client used. */
export type AlgorithmRefusalReason =
  /** The client signed with SigV4A; the endpoint signs with SigV4. */
  | "sigv4a_not_enabled"
  /** The client signed with SigV4; the endpoint signs with SigV4A only. */
  | "sigv4a_required";

export type AlgorithmCheck = { readonly ok: true } | { readonly ok: false; readonly reason: AlgorithmRefusalReason; readonly message: string };

/**
 * The algorithm a request says its client signed with, from each place that says it: the
 * Authorization header's (or presigned URL's) algorithm, and the chunk-signing literal in
 * `x-amz-content-sha256`. A place that names no algorithm is left out.
 */
export function clientAlgorithms(clientAuth: ClientAuth, contentSha256: string | undefined): Array<{ readonly algorithm: SigningAlgorithm; readonly where: string }> {
  const out: Array<{ algorithm: SigningAlgorithm; where: string }> = [];
  if (clientAuth.kind === "header") out.push({ algorithm: clientAuth.algorithm, where: "its Authorization header" });
  if (clientAuth.kind === "query") out.push({ algorithm: clientAuth.algorithm, where: "its presigned URL (X-Amz-Algorithm)" });
  const literal = contentSha256?.trim();
  if (literal !== undefined) {
    if (literal.startsWith(STREAMING_SIGV4A_PREFIX)) out.push({ algorithm: ALGORITHM_V4A, where: `x-amz-content-sha256 ${literal}` });
    else if (literal === STREAMING_SIGNED || literal === STREAMING_SIGNED_TRAILER || literal === STREAMING_EVENTS) {
      out.push({ algorithm: ALGORITHM, where: `x-amz-content-sha256 ${literal}` });
    }
  }
  return out;
}

/**
 * A request is re-signed only with the algorithm its endpoint calls for, and only when the client
 * used that algorithm too (or did not sign at all): a SigV4A request re-signed as SigV4 is one AWS
 * can only reject (an S3 Multi-Region Access Point accepts SigV4A alone), and a SigV4 client on a
 * SigV4A endpoint is configured for another endpoint than the one it reached.
 */
export function checkClientAlgorithm(endpointAlgorithm: SigningAlgorithm, endpointHost: string, clientAuth: ClientAuth, contentSha256: string | undefined): AlgorithmCheck {
  for (const { algorithm, where } of clientAlgorithms(clientAuth, contentSha256)) {
    if (algorithm === endpointAlgorithm) continue;
    if (algorithm === ALGORITHM_V4A) {
      return {
        ok: false,
        reason: "sigv4a_not_enabled",
        message: `the client signed with SigV4A (${ALGORITHM_V4A}, in ${where}), and SigV4A is not enabled for endpoint ${endpointHost}, which re-signs with SigV4 only; set credential_signing: sigv4a on an endpoint for this host to re-sign SigV4A requests`,
      };
    }
    return {
      ok: false,
      reason: "sigv4a_required",
      message: `endpoint ${endpointHost} re-signs with SigV4A only (credential_signing: sigv4a), and the client signed with SigV4 (${ALGORITHM}, in ${where}); configure the client to sign with SigV4A (the AWS SDKs do for S3 Multi-Region Access Points), or use credential_signing: sigv4 for this host`,
    };
  }
  return { ok: true };
}
