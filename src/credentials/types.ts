/**
 * Credential profiles: one named source of real AWS credentials each, kept fresh in the
 * background and read synchronously on the request path. Providers are separate from signing
 * (the shape of Envoy's source/extensions/common/aws/); every refresh outcome is counted.
 */
import type { AssumeRoleCommand, AssumeRoleCommandOutput, STSClientConfig } from "@aws-sdk/client-sts";
import type { MountedFileTiming } from "../files/types.js";
import type { CredentialSpec } from "../policy/types.js";
import type { Result } from "../result.js";
import type { Credentials } from "../sigv4/types.js";

export type CredentialSourceKind = CredentialSpec["kind"];

/**
 * Why a profile has no set to sign with (the `reason` label of countersign_credentials_refusals_total):
 * - "expiry_margin": the set held expires within the profile's expiry margin (signing now could
 *   reach AWS after it expired);
 * - "expired": the set held has expired;
 * - "unavailable": no set was ever obtained (or the source cannot give one).
 */
export type CredentialRefusalCause = "expiry_margin" | "expired" | "unavailable";

/** Every CredentialRefusalCause, for metrics that export each at 0 from the start. */
export const CREDENTIAL_REFUSAL_CAUSES: readonly CredentialRefusalCause[] = ["expiry_margin", "expired", "unavailable"];

/**
 * Why a profile cannot sign right now: the cause (a metric label, never a status; the request path
 * refuses with `credentials_unavailable` and extproc/denial.ts looks the answer up) and a message a
 * person can act on, free of secrets.
 */
export interface CredentialRefusal {
  readonly cause: CredentialRefusalCause;
  readonly message: string;
}

/** What a credential profile can give right now: one immutable set, or, as `error`, why not. */
export type CredentialState = Result<{ readonly credentials: Credentials }, CredentialRefusal>;

export interface CredentialProfileStatus {
  readonly usable: boolean;
  /** Expiry of the credentials currently held (none for static and file sources). */
  readonly expiresAt?: Date;
  /** When the credentials currently held were obtained. */
  readonly lastRefreshAt?: Date;
  /** Error of the most recent attempt, cleared by the next success. Never holds a secret. */
  readonly lastError?: string;
  readonly refreshSuccesses: number;
  readonly refreshFailures: number;
  /** When the next background refresh attempt is due, if one is scheduled. */
  readonly nextRefreshAt?: Date;
}

export interface CredentialProfile {
  readonly name: string;
  readonly source: CredentialSourceKind;
  /** Synchronous, O(1), never does I/O, never throws: the request path calls it per request. */
  current(): CredentialState;
  /** First fetch. Resolves (never rejects) when the first attempt has finished; retries go on in the background. Idempotent. */
  start(): Promise<void>;
  /** Clears timers and watchers. */
  stop(): void;
  status(): CredentialProfileStatus;
}

export interface RefreshEvent {
  readonly profile: string;
  readonly source: string;
  readonly result: "success" | "failure";
  readonly durationMs: number;
  readonly expiresAt?: Date;
  readonly error?: string;
  /** At most the last 4 characters of the access key id. */
  readonly keyIdSuffix?: string;
}

export interface CredentialEvents {
  onRefresh?(e: RefreshEvent): void;
}

/** The subset of a pino logger this module uses. */
export interface CredentialLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** An SDK credential provider; what it returns is structurally our Credentials (the SDK's AwsCredentialIdentity). */
export type AwsCredentialIdentityProvider = () => Promise<Credentials>;

/** The part of STSClient the assume_role source uses; tests can supply their own. */
export interface STSClientLike {
  send(command: AssumeRoleCommand): Promise<AssumeRoleCommandOutput>;
  destroy?(): void;
}

export type STSClientFactory = (config: STSClientConfig) => STSClientLike;

/** Test overrides of the mounted-file watcher's timings (src/files/constants.ts). */
export type FileWatchOptions = Partial<MountedFileTiming>;

export interface CredentialDeps {
  readonly env?: NodeJS.ProcessEnv;
  readonly now?: () => number;
  readonly random?: () => number;
  readonly events?: CredentialEvents;
  readonly logger?: CredentialLogger;
  readonly stsClientFactory?: STSClientFactory;
  /** Called once per default_chain refresh; each call must return a fresh (un-memoized) provider. */
  readonly defaultChain?: () => AwsCredentialIdentityProvider;
  /** For the default RoleSessionName. Default os.hostname(). */
  readonly hostname?: string;
  readonly file?: FileWatchOptions;
}
