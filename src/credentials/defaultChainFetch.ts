import { fromNodeProviderChain } from "@aws-sdk/credential-providers";
import type { Credentials } from "../sigv4/types.js";
import type { AwsCredentialIdentityProvider } from "./types.js";

/** A new SDK default chain per refresh: the chain memoizes, and the refresher decides when to refresh. */
export const defaultChainFactory = (): AwsCredentialIdentityProvider => fromNodeProviderChain();

/**
 * One resolution of the SDK's default chain (env, SSO, ini, process, IRSA web identity,
 * EKS Pod Identity / ECS container credentials, IMDS), called only by the refresher.
 */
export function createDefaultChainFetch(factory: () => AwsCredentialIdentityProvider = defaultChainFactory): () => Promise<Credentials> {
  return async () => {
    const identity = await factory()();
    if (!identity.accessKeyId || !identity.secretAccessKey) {
      throw new Error("the default credential chain returned incomplete credentials");
    }
    return {
      accessKeyId: identity.accessKeyId,
      secretAccessKey: identity.secretAccessKey,
      ...(identity.sessionToken ? { sessionToken: identity.sessionToken } : {}),
      ...(identity.expiration ? { expiration: identity.expiration } : {}),
    };
  };
}
