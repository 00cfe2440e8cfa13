import type { CredentialsResult } from "./parseSharedCredentials.js";
import type { StaticCredentialSpec } from "../policy/types.js";
import { createCredentialStore } from "./credentialStore.js";
import type { CredentialEvents, CredentialLogger, CredentialProfile } from "./types.js";

export interface StaticProfileOptions {
  readonly name: string;
  readonly spec: StaticCredentialSpec;
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => number;
  readonly events?: CredentialEvents;
  readonly logger?: CredentialLogger;
}

/** Credentials from environment variables, read once at start. Errors name the variable, never its value. */
export function createStaticProfile(options: StaticProfileOptions): CredentialProfile {
  const { name, spec, env } = options;
  const store = createCredentialStore({
    profile: name,
    source: "static",
    now: options.now,
    ...(options.events ? { events: options.events } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  let started = false;

  return {
    name,
    source: "static",
    current: store.current,
    status: store.status,
    start() {
      if (started) return Promise.resolve();
      started = true;
      const result = readStaticCredentials(spec, env);
      if (result.ok) store.recordSuccess(result.credentials, 0);
      else store.recordFailure(result.error, 0);
      return Promise.resolve();
    },
    stop() {},
  };
}

export function readStaticCredentials(
  spec: StaticCredentialSpec,
  env: NodeJS.ProcessEnv,
): CredentialsResult {
  // The session token variable may be named and left unset: long-term keys have no token.
  const wanted = [spec.accessKeyIdEnv, spec.secretAccessKeyEnv];
  const missing = wanted.filter((variable) => !env[variable]);
  if (missing.length > 0) {
    const list = missing.map((variable) => `$${variable}`).join(", ");
    return { ok: false, error: `environment variable${missing.length > 1 ? "s" : ""} ${list} not set or empty` };
  }
  const accessKeyId = env[spec.accessKeyIdEnv] ?? "";
  const secretAccessKey = env[spec.secretAccessKeyEnv] ?? "";
  const sessionToken = spec.sessionTokenEnv ? env[spec.sessionTokenEnv] : undefined;
  return { ok: true, credentials: sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey } };
}
