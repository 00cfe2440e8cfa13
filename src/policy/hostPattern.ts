/**
 * Host patterns of policy endpoints.
 *
 * - `*` is exactly one DNS label.
 * - `**` is one or more labels, and only as the whole first label: `**.x.com` does not match `x.com`.
 * - Every other label compares case-insensitively and exactly.
 *
 * A pattern is compiled once into an array of labels compared with the host's labels from the end:
 * no regular expression, no backtracking, no allocation while matching.
 */

export interface HostMatcher {
  /** The pattern as written. */
  readonly pattern: string;
  /** Matches any host spelling: upper case, a trailing dot and IPv6 brackets are normalised first. */
  matches(host: string): boolean;
  /** For a host already returned by {@link normaliseHost} (or `splitAuthority`). */
  matchesNormalised(host: string): boolean;
  /**
   * Fast path: the labels of a normalised DNS host (`host.split(".")`), so that one split serves
   * every endpoint of a policy. Never called with an IPv6 literal.
   */
  matchesLabels(hostLabels: readonly string[]): boolean;
}

const MAX_HOST_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;

/**
 * Lower-cases a host, drops one trailing dot and strips IPv6 brackets. Returns undefined when the
 * result is not a host name, an IPv4 address or an IPv6 literal (empty labels, spaces, other
 * characters).
 */
export function normaliseHost(host: string): string | undefined {
  if (host.length === 0) return undefined;
  if (host.charCodeAt(0) === 0x5b /* [ */) {
    if (host.charCodeAt(host.length - 1) !== 0x5d /* ] */) return undefined;
    return normaliseIpv6(host.slice(1, -1));
  }
  if (host.includes(":")) return normaliseIpv6(host);
  // ASCII only, checked before lower-casing: Unicode case folding maps some non-ASCII letters to
  // ASCII ones (U+212A KELVIN SIGN → "k"), which would let a foreign authority match an endpoint.
  if (!/^[\x21-\x7e]+$/.test(host)) return undefined;
  let lower = host.toLowerCase();
  if (lower.charCodeAt(lower.length - 1) === 0x2e /* . */) lower = lower.slice(0, -1);
  return isDnsName(lower) ? lower : undefined;
}

function normaliseIpv6(literal: string): string | undefined {
  if (literal.length < 2 || literal.length > 45) return undefined;
  for (let i = 0; i < literal.length; i++) {
    const c = literal.charCodeAt(i);
    const ok =
      (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46) || c === 0x3a || c === 0x2e;
    if (!ok) return undefined;
  }
  return literal.includes(":") ? literal.toLowerCase() : undefined;
}

/** Lower-case labels of [a-z0-9_-], none empty, at most 253 characters in all. */
function isDnsName(host: string): boolean {
  if (host.length === 0 || host.length > MAX_HOST_LENGTH) return false;
  let labelLength = 0;
  for (let i = 0; i < host.length; i++) {
    const c = host.charCodeAt(i);
    if (c === 0x2e /* . */) {
      if (labelLength === 0) return false;
      labelLength = 0;
    } else if ((c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f) {
      labelLength++;
    } else {
      return false;
    }
  }
  return labelLength > 0;
}

/** Drops one trailing dot (a fully qualified spelling) and lower-cases. */
export function normalisePattern(pattern: string): string {
  const lower = pattern.toLowerCase();
  return lower.endsWith(".") && lower.length > 1 ? lower.slice(0, -1) : lower;
}

/**
 * Every problem with a host pattern, as messages a person can act on. Empty when the pattern is
 * valid.
 */
export function validateHostPattern(pattern: string): string[] {
  if (pattern.trim().length === 0) return ["host must not be empty"];
  const quoted = JSON.stringify(pattern);
  const normal = normalisePattern(pattern);
  if (normal === "*" || normal === "**") {
    return [`host ${quoted} would match every host; name the domain too, e.g. "*.amazonaws.com"`];
  }
  const problems: string[] = [];
  if (normal.length > MAX_HOST_LENGTH) problems.push(`host ${quoted} is longer than ${MAX_HOST_LENGTH} characters`);
  const labels = normal.split(".");
  if (labels.some((label) => label.length === 0)) {
    problems.push(`host ${quoted} has an empty label (two dots in a row, or a leading dot)`);
  }
  labels.forEach((label, index) => {
    const problem = labelProblem(label, index);
    if (problem !== undefined) problems.push(`host ${quoted}: ${problem}`);
  });
  const last = labels[labels.length - 1] ?? "";
  if (isWildcard(last)) {
    problems.push(`host ${quoted}: the last label (the top-level domain) cannot be a wildcard`);
  } else if (labels.some(isWildcard) && /^[0-9]+$/.test(last)) {
    problems.push(`host ${quoted}: a wildcard cannot be combined with a numeric address; write IP addresses in full`);
  }
  return problems;
}

function isWildcard(label: string): boolean {
  return label === "*" || label === "**";
}

function labelProblem(label: string, index: number): string | undefined {
  if (label.length === 0) return undefined;
  if (label === "*") return undefined;
  if (label === "**") {
    return index === 0 ? undefined : `"**" is only allowed as the whole first label (e.g. "**.amazonaws.com")`;
  }
  if (label.includes("*")) {
    return `label "${label}" is a partial wildcard; "*" must be a whole label (e.g. "*.s3.*.amazonaws.com")`;
  }
  const bad = /[^a-z0-9_-]/.exec(label);
  if (bad !== null) {
    return `label "${label}" has the invalid character ${JSON.stringify(bad[0])} (allowed: letters, digits, "-" and "_")`;
  }
  if (label.startsWith("-") || label.endsWith("-")) return `label "${label}" must not start or end with "-"`;
  if (label.length > MAX_LABEL_LENGTH) return `label "${label}" is longer than ${MAX_LABEL_LENGTH} characters`;
  return undefined;
}

/**
 * Compiles a host pattern into a matcher. Throws when the pattern is invalid: `parsePolicy` validates
 * patterns first, so this only fails on a programming error.
 */
export function compileHostPattern(pattern: string): HostMatcher {
  const problems = validateHostPattern(pattern);
  if (problems.length > 0) throw new Error(`invalid host pattern: ${problems.join("; ")}`);
  return new CompiledHostPattern(pattern);
}

/**
 * The pattern's labels after any leading `**`, with `null` for `*`. Matching compares them with the
 * host's last labels, from the end, so most mismatches end at the label count or the top-level
 * label.
 */
class CompiledHostPattern implements HostMatcher {
  private readonly labels: readonly (string | null)[];
  /** The pattern starts with `**`: the host needs at least one label more than `labels`. */
  private readonly multi: boolean;

  constructor(readonly pattern: string) {
    const all = normalisePattern(pattern).split(".");
    this.multi = all[0] === "**";
    this.labels = (this.multi ? all.slice(1) : all).map((label) => (label === "*" ? null : label));
  }

  matches(host: string): boolean {
    const normal = normaliseHost(host);
    return normal !== undefined && this.matchesNormalised(normal);
  }

  matchesNormalised(host: string): boolean {
    return !host.includes(":") && this.matchesLabels(host.split("."));
  }

  matchesLabels(hostLabels: readonly string[]): boolean {
    const labels = this.labels;
    const count = labels.length;
    const hostCount = hostLabels.length;
    if (this.multi ? hostCount <= count : hostCount !== count) return false;
    for (let i = 1; i <= count; i++) {
      const label = labels[count - i];
      if (label !== null && label !== hostLabels[hostCount - i]) return false;
    }
    return true;
  }
}
