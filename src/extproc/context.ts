import type { Policy } from "../policy/types.js";
import type { Credentials } from "../sigv4/types.js";

/** What a credential profile can give right now: one immutable set, or why not. */
export type CredentialLookupResult =
  | { readonly usable: true; readonly credentials: Credentials }
  | { readonly usable: false; readonly reason: string };

/** One request's outcome, for metrics and the decision log line. Nothing secret in it. */
export interface DecisionEvent {
  readonly requestId: string;
  readonly method: string;
  readonly host: string;
  readonly service: string;
  readonly region: string;
  readonly payloadMode: string;
  readonly profile: string;
  readonly endpointIndex: number;
  readonly decision: "signed" | "refused";
  readonly reason: string;
  readonly status: number;
  /** Time spent inside countersign (not waiting for Envoy), seconds. */
  readonly signingSeconds: number;
  readonly bytesHashed: number;
  readonly chunksResigned: number;
  readonly clientKeyId?: string;
}

/**
 * Everything a stream needs from the rest of the process. The policy and credentials are read
 * once per request, at its start, so a request is decided by one policy and one credential set.
 */
export interface SigningContext {
  policy(): Policy;
  credentials(profile: string): CredentialLookupResult;
  now(): Date;
  readonly maxHeaderBytes: number;
  onDecision?(event: DecisionEvent): void;
}
