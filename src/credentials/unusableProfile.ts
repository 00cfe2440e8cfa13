import { createCredentialStore } from "./credentialStore.js";
import type { CredentialEvents, CredentialLogger, CredentialProfile, CredentialSourceKind } from "./types.js";

/** A profile that can never produce credentials (a configuration the policy validator should have rejected). */
export function createUnusableProfile(options: {
  readonly name: string;
  readonly source: CredentialSourceKind;
  readonly error: string;
  readonly now: () => number;
  readonly events?: CredentialEvents;
  readonly logger?: CredentialLogger;
}): CredentialProfile {
  const store = createCredentialStore({
    profile: options.name,
    source: options.source,
    now: options.now,
    ...(options.events ? { events: options.events } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  let started = false;
  return {
    name: options.name,
    source: options.source,
    current: store.current,
    status: store.status,
    start() {
      if (!started) store.recordFailure(options.error, 0);
      started = true;
      return Promise.resolve();
    },
    stop() {},
  };
}
