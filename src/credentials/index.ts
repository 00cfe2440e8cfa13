export { createCredentialProfiles } from "./createProfiles.js";
export { parseIniSections, parseSharedCredentials } from "./parseSharedCredentials.js";
export { CREDENTIAL_REFUSAL_CAUSES } from "./types.js";
export type {
  AwsCredentialIdentityProvider,
  CredentialRefusalCause,
  CredentialDeps,
  CredentialEvents,
  CredentialLogger,
  CredentialProfile,
  CredentialProfileStatus,
  CredentialSourceKind,
  CredentialState,
  FileWatchOptions,
  RefreshEvent,
  STSClientFactory,
  STSClientLike,
} from "./types.js";
