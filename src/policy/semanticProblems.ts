import { actionPatternProblem } from "./actions.js";
import { DEFAULT_ASSUME_ROLE_DURATION_SECONDS, DEFAULT_EXPIRY_MARGIN_SECONDS, DEFAULT_REFRESH_BEFORE_SECONDS } from "./buildPolicy.js";
import { normalisePattern, validateHostPattern } from "./hostPattern.js";
import { problemAtKey, problemAtValue, type Problem } from "./problem.js";
import { didYouMean, listOr } from "./suggest.js";

/**
 * Rules the JSON Schema cannot express: host pattern shapes, references between entries, source
 * cycles, role-chaining limits, duplicate endpoints. Runs on the raw data even when the schema
 * found problems, skipping whatever has the wrong shape (the schema has reported it), so that a
 * person sees every problem in one go.
 */
export function semanticProblems(data: unknown): Problem[] {
  const root = asRecord(data);
  if (root === undefined) return [];
  const credentials = asRecord(root["credentials"]) ?? {};
  return [...credentialsProblems(credentials), ...endpointsProblems(root["endpoints"], Object.keys(credentials))];
}

export const SOURCE_KINDS = ["static", "file", "default_chain", "assume_role"] as const;

/** Longest session AWS grants a role assumed with another role's credentials (role chaining). */
const ROLE_CHAINING_MAX_SECONDS = 3600;

function credentialsProblems(credentials: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const names = Object.keys(credentials);
  for (const name of names) {
    const entry = asRecord(credentials[name]);
    if (entry === undefined) continue;
    problems.push(...sourceCountProblems(name, entry));
    const role = asRecord(entry["assume_role"]);
    if (role !== undefined) problems.push(...assumeRoleProblems(name, role, credentials));
  }
  problems.push(...sourceCycleProblems(credentials));
  return problems;
}

/** Exactly one of static, file, default_chain, assume_role. */
function sourceCountProblems(name: string, entry: Record<string, unknown>): Problem[] {
  const keys = Object.keys(entry);
  const sources = keys.filter((key) => (SOURCE_KINDS as readonly string[]).includes(key));
  if (keys.length === 0) {
    return [problemAtKey(["credentials", name], `credentials entry "${name}" needs a source: ${listOr([...SOURCE_KINDS])}`)];
  }
  if (sources.length > 1) {
    const second = sources[1] as string;
    return [
      problemAtKey(
        ["credentials", name, second],
        `credentials entry "${name}" has ${sources.length} sources (${sources.join(", ")}); use exactly one`,
      ),
    ];
  }
  return [];
}

function assumeRoleProblems(name: string, role: Record<string, unknown>, credentials: Record<string, unknown>): Problem[] {
  const problems: Problem[] = [];
  const at = (key: string): (string | number)[] => ["credentials", name, "assume_role", key];
  const source = role["source"];
  if (typeof source === "string" && source.length > 0) {
    if (!(source in credentials)) {
      problems.push(
        problemAtValue(
          at("source"),
          `unknown source "${source}" (no such credentials entry${namesHint(Object.keys(credentials), source)})`,
        ),
      );
    }
  }
  const duration = role["duration_seconds"];
  const durationInRange = isInteger(duration) && duration >= 900 && duration <= 43200;
  if (
    durationInRange &&
    duration > ROLE_CHAINING_MAX_SECONDS &&
    typeof source === "string" &&
    source !== name &&
    asRecord(asRecord(credentials[source])?.["assume_role"]) !== undefined
  ) {
    problems.push(
      problemAtValue(
        at("duration_seconds"),
        `duration_seconds ${duration} is over ${ROLE_CHAINING_MAX_SECONDS}: source "${source}" is itself an assume_role entry, and AWS limits chained role sessions to one hour`,
      ),
    );
  }
  const refresh = role["refresh_before_seconds"];
  const effectiveDuration = duration === undefined ? DEFAULT_ASSUME_ROLE_DURATION_SECONDS : duration;
  if (isInteger(refresh) && refresh >= 1 && isInteger(effectiveDuration) && refresh >= effectiveDuration) {
    problems.push(
      problemAtValue(
        at("refresh_before_seconds"),
        `refresh_before_seconds (${refresh}) must be less than duration_seconds (${effectiveDuration}${duration === undefined ? ", the default" : ""})`,
      ),
    );
  }
  problems.push(...expiryMarginProblems(role, at));
  const policy = role["policy"];
  if (typeof policy === "string" && policy.length > 0) {
    const reason = jsonObjectProblem(policy);
    if (reason !== undefined) problems.push(problemAtValue(at("policy"), `policy is not a JSON session policy: ${reason}`));
  }
  const endpoint = role["sts_endpoint"];
  if (typeof endpoint === "string" && /^https?:\/\//.test(endpoint)) {
    const reason = stsEndpointProblem(endpoint);
    if (reason !== undefined) problems.push(problemAtValue(at("sts_endpoint"), `sts_endpoint ${JSON.stringify(endpoint)} ${reason}`));
  }
  return problems;
}

/**
 * expiry_margin_seconds must end before the refresh starts: below refresh_before_seconds, and
 * below half of duration_seconds where the refresh window is capped there. Otherwise a fresh set
 * would stop being used before anything tries to replace it.
 */
function expiryMarginProblems(role: Record<string, unknown>, at: (key: string) => (string | number)[]): Problem[] {
  const margin = role["expiry_margin_seconds"];
  const refresh = role["refresh_before_seconds"] ?? DEFAULT_REFRESH_BEFORE_SECONDS;
  const duration = role["duration_seconds"] ?? DEFAULT_ASSUME_ROLE_DURATION_SECONDS;
  if (!isInteger(refresh) || !isInteger(duration)) return [];
  const marginSeconds = margin === undefined ? DEFAULT_EXPIRY_MARGIN_SECONDS : margin;
  if (!isInteger(marginSeconds) || marginSeconds < 0) return [];
  const where = margin === undefined ? at("refresh_before_seconds") : at("expiry_margin_seconds");
  const marginText = `expiry_margin_seconds (${marginSeconds}${margin === undefined ? ", the default" : ""})`;
  if (marginSeconds >= refresh) {
    return [problemAtValue(where, `${marginText} must be less than refresh_before_seconds (${refresh}${role["refresh_before_seconds"] === undefined ? ", the default" : ""})`)];
  }
  if (marginSeconds >= duration / 2) {
    return [problemAtValue(where, `${marginText} must be less than half of duration_seconds (${duration}), where the refresh window is capped`)];
  }
  return [];
}

/**
 * a → b → a and a → a. Each cycle is reported once, at the `source` of its first member in the
 * file.
 */
function sourceCycleProblems(credentials: Record<string, unknown>): Problem[] {
  const sourceOf = (name: string): string | undefined => {
    const source = asRecord(asRecord(credentials[name])?.["assume_role"])?.["source"];
    return typeof source === "string" && source in credentials ? source : undefined;
  };
  const reported = new Set<string>();
  const problems: Problem[] = [];
  for (const start of Object.keys(credentials)) {
    if (reported.has(start)) continue;
    const chain: string[] = [];
    let current: string | undefined = start;
    while (current !== undefined && !chain.includes(current)) {
      chain.push(current);
      current = sourceOf(current);
    }
    if (current !== start) continue; // no cycle, or a cycle this entry only leads into
    chain.forEach((member) => reported.add(member));
    const message =
      chain.length === 1
        ? `credentials entry "${start}" uses itself as its assume_role source`
        : `assume_role sources form a cycle: ${[...chain, start].join(" → ")}`;
    problems.push(problemAtValue(["credentials", start, "assume_role", "source"], message));
  }
  return problems;
}

function endpointsProblems(endpoints: unknown, credentialNames: readonly string[]): Problem[] {
  if (!Array.isArray(endpoints)) return [];
  const problems: Problem[] = [];
  const seen: { host: string; port: number | undefined; index: number }[] = [];
  endpoints.forEach((raw: unknown, index) => {
    const endpoint = asRecord(raw);
    if (endpoint === undefined) return;
    const host = endpoint["host"];
    const hostValid = typeof host === "string" && host.length > 0 && validateHostPattern(host).length === 0;
    if (typeof host === "string" && host.length > 0) {
      for (const message of validateHostPattern(host)) problems.push(problemAtValue(["endpoints", index, "host"], message));
    }
    const credentials = endpoint["credentials"];
    if (typeof credentials === "string" && credentials.length > 0 && !credentialNames.includes(credentials)) {
      problems.push(
        problemAtValue(
          ["endpoints", index, "credentials"],
          `unknown credentials "${credentials}" (no such credentials entry${namesHint(credentialNames, credentials)})`,
        ),
      );
    }
    const signing = endpoint["credential_signing"];
    if (signing === "sigv4a" && endpoint["region"] !== undefined) {
      problems.push(problemAtKey(["endpoints", index, "region"], "region does not apply to credential_signing: sigv4a, whose signature has no region; use region_set (e.g. [\"*\"])"));
    }
    if (typeof signing === "string" && signing !== "sigv4a" && endpoint["region_set"] !== undefined) {
      problems.push(problemAtKey(["endpoints", index, "region_set"], `region_set applies only to credential_signing: sigv4a (SigV4A signs for a set of regions); with ${signing} use region`));
    }
    problems.push(...callersProblems(endpoint, index, credentialNames));
    problems.push(...rulesProblems(endpoint, index));
    const port = endpoint["port"];
    if (hostValid && (port === undefined || isInteger(port))) {
      const normalHost = normalisePattern(host);
      const earlier = seen.find((e) => e.host === normalHost && (e.port === undefined || e.port === port));
      if (earlier !== undefined) {
        problems.push(problemAtValue(["endpoints", index, "host"], duplicateMessage(host, port, earlier.port, earlier.index)));
      } else {
        seen.push({ host: normalHost, port, index });
      }
    }
  });
  return problems;
}

/**
 * Each caller must name a credentials entry, and, when the endpoint also has client_access_key_ids,
 * be one of them (a caller that list refuses could never be signed for). A caller written twice is
 * a duplicate YAML key, which the YAML parser reports at its second occurrence.
 */
function callersProblems(endpoint: Record<string, unknown>, index: number, credentialNames: readonly string[]): Problem[] {
  const callers = asRecord(endpoint["callers"]);
  if (callers === undefined) return [];
  const allowList = endpoint["client_access_key_ids"];
  const allowed = Array.isArray(allowList) ? new Set(allowList.filter((id): id is string => typeof id === "string")) : undefined;
  const problems: Problem[] = [];
  for (const [keyId, profile] of Object.entries(callers)) {
    const at: (string | number)[] = ["endpoints", index, "callers", keyId];
    if (typeof profile === "string" && profile.length > 0 && !credentialNames.includes(profile)) {
      problems.push(problemAtValue(at, `caller ${keyId} is mapped to unknown credentials "${profile}" (no such credentials entry${namesHint(credentialNames, profile)})`));
    }
    if (allowed !== undefined && allowed.size > 0 && !allowed.has(keyId)) {
      problems.push(problemAtKey(at, `caller ${keyId} is not in this endpoint's client_access_key_ids, which refuses it first: add it there or remove it here`));
    }
  }
  return problems;
}

/** What a rule can test; a rule testing none of them would match every request. */
const RULE_CONDITIONS = ["methods", "paths", "s3", "actions"] as const;
const S3_SIGNING_SERVICES = ["s3", "s3express", "s3-outposts"];

/** Empty rules, and s3 blocks on endpoints that do not sign for S3 (they could never match). */
function rulesProblems(endpoint: Record<string, unknown>, index: number): Problem[] {
  const rules = endpoint["rules"];
  if (!Array.isArray(rules)) return [];
  const service = endpoint["signing_service"];
  const problems: Problem[] = [];
  rules.forEach((raw: unknown, r) => {
    const rule = asRecord(raw);
    if (rule === undefined) return;
    const at: (string | number)[] = ["endpoints", index, "rules", r];
    if (!RULE_CONDITIONS.some((key) => key in rule)) {
      problems.push(
        problemAtValue(at, `rules[${r}] has no condition (${listOr([...RULE_CONDITIONS])}) and would match every request; say what it matches, e.g. paths: ["/**"]`),
      );
    }
    const actions = rule["actions"];
    if (Array.isArray(actions)) {
      actions.forEach((action: unknown, a) => {
        if (typeof action !== "string" || action === "") return;
        const problem = actionPatternProblem(action, didYouMean);
        if (problem !== undefined) problems.push(problemAtValue([...at, "actions", a], problem));
      });
    }
    if ("s3" in rule && typeof service === "string" && service !== "auto" && !S3_SIGNING_SERVICES.includes(service)) {
      problems.push(problemAtKey([...at, "s3"], `rules[${r}] has an s3 block, but endpoints[${index}] signs for ${JSON.stringify(service)}, not S3, so it could never match`));
    }
  });
  return problems;
}

function duplicateMessage(host: string, port: number | undefined, earlierPort: number | undefined, earlierIndex: number): string {
  const what = port === undefined ? "any port" : `port ${port}`;
  const earlierWhat = earlierPort === undefined ? "any port" : `port ${earlierPort}`;
  return `duplicate endpoint: host ${JSON.stringify(host)} (${what}) can never match, because endpoints[${earlierIndex}] has the same host (${earlierWhat}) and comes first`;
}

/** ` (did you mean "x"?)`, or the defined names, for an unknown reference. */
function namesHint(names: readonly string[], wanted: string): string {
  const suggestion = didYouMean(wanted, names);
  if (suggestion !== "") return `; ${suggestion.slice(2, -1)}`;
  return names.length === 0 ? "" : `; defined: ${names.join(", ")}`;
}

function jsonObjectProblem(text: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  return asRecord(parsed) === undefined ? "expected a JSON object" : undefined;
}

function stsEndpointProblem(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return "is not a valid URL";
  }
  if (url.username !== "" || url.password !== "") return "must not contain user info";
  if (url.protocol === "http:" && !isLoopback(url.hostname)) {
    return "must use https (http is only allowed for loopback test servers)";
  }
  return undefined;
}

function isLoopback(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

function isInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isInteger(value);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
