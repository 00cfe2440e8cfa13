import { AssumeRoleCommand, STSClient, type AssumeRoleCommandInput, type STSClientConfig } from "@aws-sdk/client-sts";
import type { AssumeRoleCredentialSpec } from "../policy/types.js";
import type { Credentials } from "../sigv4/types.js";
import { STS_CONNECTION_TIMEOUT_MS, STS_REQUEST_TIMEOUT_MS } from "./constants.js";
import { describeError } from "./redact.js";
import type { AwsCredentialIdentityProvider, CredentialProfile, STSClientFactory } from "./types.js";

export interface AssumeRoleFetchOptions {
  readonly spec: AssumeRoleCredentialSpec;
  /** The profile whose credentials sign the AssumeRole call (any source, including another role). */
  readonly sourceProfile: CredentialProfile;
  readonly sessionName: string;
  readonly clientFactory?: STSClientFactory;
}

/** Raised when the source profile has nothing to sign with; its message is already a full sentence. */
class SourceUnusableError extends Error {}

export const defaultStsClientFactory: STSClientFactory = (config) => new STSClient(config);

/**
 * One STS AssumeRole call per invocation. A fresh client per attempt: the SDK memoizes a client's
 * credentials forever when they carry no expiration, which would pin a rotated file source's old key.
 * maxAttempts is 1 and the HTTP timeouts are short because the refresher owns retries.
 */
export function createAssumeRoleFetch(options: AssumeRoleFetchOptions): () => Promise<Credentials> {
  const { spec, sourceProfile } = options;
  const clientFactory = options.clientFactory ?? defaultStsClientFactory;
  const input = assumeRoleInput(spec, options.sessionName);

  const readSource = (): Credentials => {
    const state = sourceProfile.current();
    if (!state.ok) throw new SourceUnusableError(`source profile "${sourceProfile.name}" is unusable: ${state.error.message}`);
    return state.credentials;
  };
  // Read when the SDK signs the call, so the source's latest set is used.
  const sourceCredentials: AwsCredentialIdentityProvider = async () => readSource();

  const config: STSClientConfig = {
    region: spec.stsRegion,
    ...(spec.stsEndpoint ? { endpoint: spec.stsEndpoint } : {}),
    credentials: sourceCredentials,
    maxAttempts: 1,
    requestHandler: {
      requestTimeout: STS_REQUEST_TIMEOUT_MS,
      connectionTimeout: STS_CONNECTION_TIMEOUT_MS,
      throwOnRequestTimeout: true,
    },
  };

  return async () => {
    readSource(); // no STS call without something to sign it with
    const client = clientFactory(config);
    try {
      const output = await client.send(new AssumeRoleCommand(input));
      return credentialsFromOutput(output.Credentials);
    } catch (err) {
      if (err instanceof SourceUnusableError) throw err;
      throw new Error(`STS ${describeError(err)}`, { cause: err });
    } finally {
      client.destroy?.();
    }
  };
}

export function assumeRoleInput(spec: AssumeRoleCredentialSpec, sessionName: string): AssumeRoleCommandInput {
  const tags = spec.tags ? Object.entries(spec.tags).map(([Key, Value]) => ({ Key, Value })) : [];
  return {
    RoleArn: spec.roleArn,
    RoleSessionName: sessionName,
    DurationSeconds: spec.durationSeconds,
    ...(spec.externalId !== undefined ? { ExternalId: spec.externalId } : {}),
    ...(spec.policy !== undefined ? { Policy: spec.policy } : {}),
    ...(tags.length > 0 ? { Tags: tags } : {}),
  };
}

function credentialsFromOutput(
  c: { AccessKeyId?: string; SecretAccessKey?: string; SessionToken?: string; Expiration?: Date } | undefined,
): Credentials {
  if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken || !(c.Expiration instanceof Date)) {
    throw new Error("STS returned an AssumeRole response without complete Credentials");
  }
  return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken, expiration: c.Expiration };
}
