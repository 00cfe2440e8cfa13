/**
 * The swappable state of a running countersign: the policy and the credential profiles built for
 * it, published together as one immutable PolicySnapshot. A reload builds the next snapshot fully
 * (validated policy, profiles started) before swapping it in; profiles whose spec did not change
 * are carried over with their refresh state.
 */
import { isDeepStrictEqual } from "node:util";
import { createCredentialProfiles, type CredentialDeps, type CredentialProfile } from "./credentials/index.js";
import type { PolicySnapshot } from "./extproc/context.js";
import type { Policy } from "./policy/types.js";

export interface Runtime extends PolicySnapshot {
  readonly profiles: ReadonlyMap<string, CredentialProfile>;
}

/** The profiles the endpoints need, with the sources they chain from. */
export function profilesInUse(policy: Policy): Set<string> {
  const used = new Set<string>();
  const visit = (name: string): void => {
    if (used.has(name)) return;
    used.add(name);
    const spec = policy.credentials.get(name);
    if (spec?.kind === "assume_role") visit(spec.source);
  };
  for (const e of policy.endpoints) {
    if (e.credentials !== undefined) visit(e.credentials);
    for (const profile of e.callers?.values() ?? []) visit(profile);
  }
  return used;
}

function snapshotOf(policy: Policy, profiles: ReadonlyMap<string, CredentialProfile>): Runtime {
  return Object.freeze({
    policy,
    profiles,
    credentials(name: string) {
      return (
        profiles.get(name)?.current() ?? {
          ok: false as const,
          error: { cause: "unavailable" as const, message: `no credentials entry "${name}" in the policy` },
        }
      );
    },
  });
}

/**
 * Builds the runtime for `policy`. When the credentials section is unchanged from `previous`, its
 * profiles are carried over with their refresh state; otherwise every profile is built anew (an
 * assume_role profile is wired to its source at creation, so they are replaced together). The
 * profiles in use are started and their first fetch attempt awaited before this returns.
 * Returns the runtime and the previous profiles that are no longer used.
 */
export async function buildRuntime(
  policy: Policy,
  deps: CredentialDeps,
  previous?: Runtime,
): Promise<{ runtime: Runtime; retired: CredentialProfile[] }> {
  if (previous && isDeepStrictEqual(policy.credentials, previous.policy.credentials)) {
    return { runtime: snapshotOf(policy, previous.profiles), retired: [] };
  }
  const profiles = createCredentialProfiles(policy.credentials, deps);
  await Promise.all([...profilesInUse(policy)].map((name) => profiles.get(name)?.start()));
  return { runtime: snapshotOf(policy, profiles), retired: previous ? [...previous.profiles.values()] : [] };
}

/**
 * Why the runtime cannot start serving: one line per profile in use that has never obtained
 * credentials. A profile that had a set and lost it (expired, STS down) does not count: that is
 * answered with 503s and counted, not by /readyz (src/admin/readiness.ts).
 */
export function notReadyReasons(runtime: Runtime): string[] {
  const reasons: string[] = [];
  for (const name of profilesInUse(runtime.policy)) {
    const profile = runtime.profiles.get(name);
    if (profile !== undefined && profile.status().refreshSuccesses > 0) continue;
    const state = runtime.credentials(name);
    reasons.push(`credentials "${name}": ${state.ok ? "not obtained yet" : state.error.message}`);
  }
  return reasons;
}
