export type * from "./types.js";
export { parsePolicy, formatPolicyError } from "./parsePolicy.js";
export { loadPolicyFile } from "./loadPolicyFile.js";
export { requestAction, compileActionPattern, KNOWN_ACTIONS, type ActionRequest, type ActionResult } from "./actions.js";
export { checkRules, compileGlob, s3Address, s3Decode, type Rule, type RuleEffect, type RuleRequest, type RuleVerdict, type Glob, type S3Address } from "./rules.js";
export { checkAccess, endpointName, ACCESS_METHODS, type AccessRequest, type AccessVerdict, type AccessRefusalKind } from "./access.js";
export { matchEndpoint, splitAuthority, type EndpointMatch } from "./matchEndpoint.js";
export type { HostAndPort } from "./splitAuthority.js";
export { compileHostPattern, validateHostPattern, normaliseHost, type HostMatcher } from "./hostPattern.js";
export {
  DEFAULT_MAX_BUFFERED_BODY_BYTES,
  DEFAULT_ASSUME_ROLE_DURATION_SECONDS,
  DEFAULT_REFRESH_BEFORE_SECONDS,
  DEFAULT_EXPIRY_MARGIN_SECONDS,
  DEFAULT_STS_REGION,
  DEFAULT_FILE_PROFILE,
  DEFAULT_ACCESS,
  DEFAULT_ENFORCEMENT,
} from "./buildPolicy.js";
