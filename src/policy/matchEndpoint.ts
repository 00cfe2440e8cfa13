import { compileHostPattern, type HostMatcher } from "./hostPattern.js";
import { splitAuthority } from "./splitAuthority.js";
import type { Endpoint, Policy } from "./types.js";

export { splitAuthority } from "./splitAuthority.js";

export interface EndpointMatch {
  readonly endpoint: Endpoint;
  /** Normalised host (lower-case, no trailing dot, IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
}

interface CompiledEndpoint {
  readonly endpoint: Endpoint;
  readonly port: number | undefined;
  readonly matcher: HostMatcher;
}

/** Matchers compiled once per policy object; a replaced policy's entry goes with it. */
const compiledByPolicy = new WeakMap<Policy, readonly CompiledEndpoint[]>();

/** The policy's endpoints with their host matchers, compiled on first use and then cached. */
export function compiledEndpoints(policy: Policy): readonly CompiledEndpoint[] {
  let compiled = compiledByPolicy.get(policy);
  if (compiled === undefined) {
    compiled = Object.freeze(
      policy.endpoints.map((endpoint) => ({
        endpoint,
        port: endpoint.port,
        matcher: compileHostPattern(endpoint.host),
      })),
    );
    compiledByPolicy.set(policy, compiled);
  }
  return compiled;
}

/**
 * The first endpoint of the policy (in order) whose host pattern and port match the request's
 * `:authority`; undefined when none does or the authority is malformed. Without a port in the
 * authority the scheme's default port is used (443 https, 80 http).
 */
export function matchEndpoint(policy: Policy, authority: string, scheme: string): EndpointMatch | undefined {
  const split = splitAuthority(authority, scheme);
  if (split === undefined) return undefined;
  const { host, port } = split;
  if (host.includes(":")) return undefined; // an IPv6 literal: host patterns are DNS names
  const hostLabels = host.split(".");
  for (const candidate of compiledEndpoints(policy)) {
    if (candidate.port !== undefined && candidate.port !== port) continue;
    if (candidate.matcher.matchesLabels(hostLabels)) return { endpoint: candidate.endpoint, host, port };
  }
  return undefined;
}
