/**
 * Subject alternative names for the certificate Envoy presents to the workload, derived from the
 * policy's host patterns.
 *
 * Policy patterns and X.509 wildcards differ: in a policy `*` is any one label anywhere and `**`
 * one or more leading labels; in a certificate `*` is allowed only as the whole left-most label
 * and covers exactly one label. So:
 *
 * - `host.example`           → `host.example` (IP addresses become IP SANs)
 * - `*.rest`                 → `*.rest`
 * - `a.*.amazonaws.com`      → `a.<region>.amazonaws.com` for every region of the partitions with
 *                              that suffix (commercial + GovCloud for amazonaws.com and api.aws,
 *                              China for amazonaws.com.cn); when a label names FIPS (`s3-fips`,
 *                              `bedrock-fips`) only over the regions that have FIPS endpoints
 * - `*.s3.*.amazonaws.com`   → `*.s3.<region>.amazonaws.com` per region (the path-style host
 *                              `s3.<region>…` only if the policy lists `s3.*.amazonaws.com` too)
 * - `**.rest`                → `*.rest` plus the deeper AWS names under `rest` that awsHosts.ts
 *                              knows; deeper names beyond those are not covered
 *
 * A `*` in the middle that is not followed by an AWS DNS suffix cannot be expanded; it is reported
 * in `notes` and left out. Names already covered by a wildcard in the set are dropped.
 */
import { isIP } from "node:net";
import { validateHostPattern } from "../policy/index.js";
import { knownAwsWildcards } from "./awsHosts.js";
import { AWS_PARTITIONS, FIPS_REGIONS } from "./regions.js";

export interface SanPlan {
  /** Deduplicated, in the order the patterns produced them. */
  readonly sans: readonly string[];
  /** Limitations and skipped patterns, as sentences for a person. */
  readonly notes: readonly string[];
}

export function sansForHostPatterns(patterns: string[]): string[] {
  return [...planSans(patterns).sans];
}

export function planSans(patterns: readonly string[]): SanPlan {
  const sans = new Set<string>();
  const notes: string[] = [];
  for (const raw of patterns) {
    const pattern = normalise(raw);
    const problems = validateHostPattern(pattern);
    if (problems.length > 0) {
      notes.push(`skipped ${JSON.stringify(raw)}: ${problems.join("; ")}`);
      continue;
    }
    const expanded = expandMiddleWildcards(pattern.split("."));
    if (expanded === undefined) {
      notes.push(
        `skipped ${JSON.stringify(raw)}: a "*" in the middle is expanded over AWS regions only, and no AWS DNS suffix follows it`,
      );
      continue;
    }
    const before = sans.size;
    for (const candidate of expanded) {
      for (const san of sansForSimplePattern(candidate)) sans.add(san);
    }
    if (pattern.startsWith("**.")) {
      notes.push(
        `${JSON.stringify(raw)}: a certificate wildcard covers one label, so names deeper than the known AWS hosts are not covered (${sans.size - before} SANs)`,
      );
    }
  }
  return { sans: withoutCoveredNames([...sans]), notes };
}

/** Drops plain names that a wildcard in the same list already covers. */
function withoutCoveredNames(sans: readonly string[]): string[] {
  const wildcards = new Set(sans.filter((san) => san.startsWith("*.")).map((san) => san.slice(2)));
  return sans.filter((san) => {
    if (san.startsWith("*.")) return true;
    const dot = san.indexOf(".");
    return dot <= 0 || !wildcards.has(san.slice(dot + 1));
  });
}

function normalise(pattern: string): string {
  let host = pattern.trim().toLowerCase();
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  return host.endsWith(".") && host.length > 1 ? host.slice(0, -1) : host;
}

/**
 * Replaces every `*` label after the first label by each region of the partitions whose DNS suffix
 * follows it (only FIPS regions when a label mentions "fips"). Returns undefined when some `*` has
 * no AWS suffix after it.
 */
function expandMiddleWildcards(labels: readonly string[]): string[] | undefined {
  const index = labels.lastIndexOf("*");
  if (index < 1) return [labels.join(".")];
  const tail = labels.slice(index + 1).join(".");
  const fipsOnly = labels.some((label) => label.includes("fips"));
  const regions = AWS_PARTITIONS.filter((p) =>
    [p.dnsSuffix, p.dualStackDnsSuffix].some((suffix) => tail === suffix || tail.endsWith(`.${suffix}`)),
  )
    .flatMap((p) => p.regions)
    .filter((region) => !fipsOnly || FIPS_REGIONS.has(region));
  if (regions.length === 0) return undefined;
  const out: string[] = [];
  for (const region of regions) {
    const expanded = expandMiddleWildcards([...labels.slice(0, index), region, ...labels.slice(index + 1)]);
    if (expanded === undefined) return undefined;
    out.push(...expanded);
  }
  return out;
}

/** SANs for a pattern whose only wildcard, if any, is the whole first label (`*` or `**`). */
function sansForSimplePattern(pattern: string): string[] {
  const [first, ...restLabels] = pattern.split(".");
  const rest = restLabels.join(".");
  if (first === "*") return [`*.${rest}`];
  if (first === "**") return [`*.${rest}`, ...knownAwsWildcards().filter((san) => san.slice(2).endsWith(`.${rest}`))];
  return [pattern];
}

/** Whether a SAN (`host`, `*.domain` or an IP address) covers `host`, as a TLS client checks it. */
export function sanCoversHost(san: string, host: string): boolean {
  const name = normalise(host);
  const pattern = san.toLowerCase();
  if (isIP(name) !== 0 || !pattern.startsWith("*.")) return pattern === name;
  const dot = name.indexOf(".");
  return dot > 0 && name.slice(dot + 1) === pattern.slice(2);
}
