export { createCredentialProfiles } from "./createProfiles.js";
export { parseIniSections, parseSharedCredentials } from "./parseSharedCredentials.js";
export type {
  AwsCredentialIdentityProvider,
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
