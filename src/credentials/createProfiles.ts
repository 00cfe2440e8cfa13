import { hostname as osHostname } from "node:os";
import type { AssumeRoleCredentialSpec, CredentialSpec } from "../policy/types.js";
import { createAssumeRoleFetch } from "./assumeRoleFetch.js";
import { DEFAULT_CHAIN_EXPIRY_MARGIN_MS, DEFAULT_CHAIN_REFRESH_BEFORE_MS, NO_EXPIRY_REFRESH_MS } from "./constants.js";
import { createDefaultChainFetch } from "./defaultChainFetch.js";
import { createFileProfile } from "./fileProfile.js";
import { createRefreshingProfile } from "./refresher.js";
import { defaultSessionName } from "./sessionName.js";
import { createStaticProfile } from "./staticProfile.js";
import type { CredentialDeps, CredentialProfile } from "./types.js";
import { createUnusableProfile } from "./unusableProfile.js";

/**
 * Builds one profile per credentials entry of the policy. assume_role entries are wired to their
 * source profile (any kind, including another role); a missing source or a cycle (which the
 * policy validator rejects first) gives a profile that is never usable and says why.
 * Nothing is fetched until each profile's start().
 */
export function createCredentialProfiles(
  specs: ReadonlyMap<string, CredentialSpec>,
  deps: CredentialDeps = {},
): Map<string, CredentialProfile> {
  const now = deps.now ?? Date.now;
  const random = deps.random ?? Math.random;
  const common = {
    now,
    ...(deps.events ? { events: deps.events } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
  };
  const built = new Map<string, CredentialProfile>();

  function build(name: string, resolving: readonly string[]): CredentialProfile {
    const existing = built.get(name);
    if (existing) return existing;
    const spec = specs.get(name);
    if (spec === undefined) throw new Error(`unknown credentials entry "${name}"`);
    const profile = buildOne(name, spec, resolving);
    built.set(name, profile);
    return profile;
  }

  function buildOne(name: string, spec: CredentialSpec, resolving: readonly string[]): CredentialProfile {
    switch (spec.kind) {
      case "static":
        return createStaticProfile({ name, spec, env: deps.env ?? process.env, ...common });
      case "file":
        return createFileProfile({ name, spec, ...deps.file, ...common });
      case "default_chain":
        return createRefreshingProfile({
          name,
          source: "default_chain",
          origin: "the default credential chain",
          fetch: createDefaultChainFetch(deps.defaultChain),
          refreshBeforeMs: DEFAULT_CHAIN_REFRESH_BEFORE_MS,
          expiryMarginMs: DEFAULT_CHAIN_EXPIRY_MARGIN_MS,
          noExpiryRefreshMs: NO_EXPIRY_REFRESH_MS,
          random,
          ...common,
        });
      case "assume_role":
        return buildAssumeRole(name, spec, resolving);
    }
  }

  function buildAssumeRole(name: string, spec: AssumeRoleCredentialSpec, resolving: readonly string[]): CredentialProfile {
    const chain = [...resolving, name];
    const unusable = (error: string): CredentialProfile =>
      createUnusableProfile({ name, source: "assume_role", error, ...common });
    if (chain.includes(spec.source)) {
      return unusable(`credential source cycle: ${[...chain, spec.source].join(" -> ")}`);
    }
    if (!specs.has(spec.source)) return unusable(`source "${spec.source}" is not a credentials entry`);
    const sourceProfile = build(spec.source, chain);
    const refreshBeforeMs = effectiveRefreshBeforeMs(spec);
    if (refreshBeforeMs < spec.refreshBeforeSeconds * 1000) {
      deps.logger?.warn(
        { profile: name, refreshBeforeSeconds: spec.refreshBeforeSeconds, durationSeconds: spec.durationSeconds },
        "refreshBeforeSeconds is not below half of durationSeconds; refreshing at half the session lifetime instead",
      );
    }
    return createRefreshingProfile({
      name,
      source: "assume_role",
      origin: "STS",
      fetch: createAssumeRoleFetch({
        spec,
        sourceProfile,
        sessionName: spec.sessionName ?? defaultSessionName(deps.hostname ?? osHostname()),
        ...(deps.stsClientFactory ? { clientFactory: deps.stsClientFactory } : {}),
      }),
      refreshBeforeMs,
      expiryMarginMs: spec.expiryMarginSeconds * 1000,
      beforeFirstFetch: () => sourceProfile.start(),
      random,
      ...common,
    });
  }

  const profiles = new Map<string, CredentialProfile>();
  for (const name of specs.keys()) profiles.set(name, build(name, []));
  return profiles;
}

/** A refresh window as long as the session would make every fresh set count as expiring; cap it at half. */
function effectiveRefreshBeforeMs(spec: AssumeRoleCredentialSpec): number {
  return Math.min(spec.refreshBeforeSeconds, spec.durationSeconds / 2) * 1000;
}
