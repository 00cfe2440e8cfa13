/**
 * Shared fixtures of the fuzz and security tests: one policy with every kind of endpoint, the real
 * and placeholder keys (the in-process SigningContext is test/support/extProcHarness.ts).
 */
import type { Credentials } from "../../../src/sigv4/types.js";

/** The real credentials countersign signs with. Tests assert these never leak. */
export const REAL: Required<Omit<Credentials, "expiration">> = {
  accessKeyId: "AKIAREALSECURITY0001",
  secretAccessKey: "real/security/secret/00000000000000000001",
  sessionToken: "REALSESSIONTOKEN/security/0000000000000000000000000000000000000001",
};

/** The placeholder key id the workload signs with, bound to the S3 endpoint. */
export const PLACEHOLDER_KEY_ID = "AKIDPLACEHOLDER00001";
/** Another workload's placeholder key id: not bound anywhere. */
export const OTHER_KEY_ID = "AKIDOTHERWORKLOAD001";

/** Env names the served policy reads its static credentials from. */
export const ENV_NAMES = {
  accessKeyId: "SEC_REAL_ACCESS_KEY_ID",
  secretAccessKey: "SEC_REAL_SECRET_ACCESS_KEY",
  sessionToken: "SEC_REAL_SESSION_TOKEN",
} as const;

export const REAL_ENV: NodeJS.ProcessEnv = {
  [ENV_NAMES.accessKeyId]: REAL.accessKeyId,
  [ENV_NAMES.secretAccessKey]: REAL.secretAccessKey,
  [ENV_NAMES.sessionToken]: REAL.sessionToken,
};

/**
 * Hosts the policy below allows, as an independent list (the fuzz oracle does not call
 * matchEndpoint). `*` stands for exactly one DNS label of [a-z0-9-].
 */
export const ALLOWED_HOST_PATTERNS: ReadonlyArray<{ pattern: string; port?: number }> = [
  { pattern: "bucket.s3.eu-west-1.amazonaws.com" },
  { pattern: "*.s3.us-west-2.amazonaws.com" },
  { pattern: "sts.amazonaws.com" },
  { pattern: "bedrock-runtime.us-east-1.amazonaws.com" },
  { pattern: "dynamodb.eu-central-1.amazonaws.com", port: 8443 },
];

/**
 * Five endpoints covering every signing option: key-id binding, one-label wildcard, sigv4:body
 * with a fixed region, signing_service auto with sigv4:no_body, a port restriction.
 */
export const SECURITY_POLICY = `version: 1
credentials:
  real:
    static:
      access_key_id_env: ${ENV_NAMES.accessKeyId}
      secret_access_key_env: ${ENV_NAMES.secretAccessKey}
      session_token_env: ${ENV_NAMES.sessionToken}
limits:
  max_buffered_body_bytes: 65536
endpoints:
  - host: "bucket.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: real
    client_access_key_ids: [${PLACEHOLDER_KEY_ID}]
  - host: "*.s3.us-west-2.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: real
  - host: "sts.amazonaws.com"
    credential_signing: "sigv4:body"
    signing_service: sts
    region: us-east-1
    credentials: real
  - host: "bedrock-runtime.us-east-1.amazonaws.com"
    credential_signing: "sigv4:no_body"
    signing_service: auto
    credentials: real
  - host: "dynamodb.eu-central-1.amazonaws.com"
    port: 8443
    credential_signing: sigv4
    signing_service: dynamodb
    credentials: real
`;

export const SECURITY_MAX_BUFFERED_BODY_BYTES = 65536;

/** A placeholder SigV4 Authorization header as an SDK would send it (the signature is junk). */
export function placeholderAuthorization(keyId: string, region: string, service: string, signedHeaders = "host;x-amz-content-sha256;x-amz-date"): string {
  return `AWS4-HMAC-SHA256 Credential=${keyId}/20240101/${region}/${service}/aws4_request, SignedHeaders=${signedHeaders}, Signature=${"0".repeat(64)}`;
}
