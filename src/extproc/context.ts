import type { CredentialRefusalCause, CredentialState } from "../credentials/index.js";
import type { Policy } from "../policy/types.js";
import type { Admission } from "./admission.js";

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
  /** "cancelled": the stream ended (Envoy or the client went away) before the request was decided. */
  readonly decision: "signed" | "refused" | "cancelled";
  readonly reason: string;
  readonly status: number;
  /** Time spent inside countersign (not waiting for Envoy), seconds. */
  readonly signingSeconds: number;
  readonly bytesHashed: number;
  /** Chunk, trailer and event-stream message signatures re-computed. */
  readonly chunksResigned: number;
  readonly clientKeyId?: string;
  /** Refused for want of credentials: why the profile had no set to sign with. */
  readonly credentialsRefusal?: CredentialRefusalCause;
  /** The action names an endpoint's `actions` rules read, or "undetermined: why". */
  readonly action?: string;
  /**
   * Signed by an endpoint in `enforcement: audit` although a check would have refused it: the
   * check's bounded reason (access, rule, caller) and its message.
   */
  readonly audit?: { readonly reason: string; readonly message: string; readonly rule?: number };
}

/**
 * A policy and the credential profiles built for it, swapped together as one object on reload.
 * A request reads one snapshot, at its start, so it is decided by one policy, never a mix.
 */
export interface PolicySnapshot {
  readonly policy: Policy;
  credentials(profile: string): CredentialState;
}

/** Everything a stream needs from the rest of the process. */
export interface SigningContext {
  snapshot(): PolicySnapshot;
  now(): Date;
  readonly maxHeaderBytes: number;
  /** Process-wide stream and held-bytes limits (unit tests: unlimitedAdmission()). */
  readonly admission: Admission;
  onDecision?(event: DecisionEvent): void;
}
