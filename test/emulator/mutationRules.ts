/**
 * Envoy's header mutation rules checker (`source/extensions/filters/common/mutation_rules/
 * mutation_rules.cc`, `Checker::check` / `isAllowed` / `isValidValue`), as a pure function.
 */
import { authorityIsValid, headerValueIsValid, isModifiableHeader } from "./headerMap.js";

export interface MutationRules {
  allowAllRouting: boolean;
  allowEnvoy: boolean;
  disallowSystem: boolean;
  disallowAll: boolean;
  /** RE2 pattern, full match (Envoy regex matchers match the whole string). */
  allowExpression: string | null;
  disallowExpression: string | null;
  disallowIsError: boolean;
}

export const DEFAULT_MUTATION_RULES: MutationRules = Object.freeze({
  allowAllRouting: false,
  allowEnvoy: false,
  disallowSystem: false,
  disallowAll: false,
  allowExpression: null,
  disallowExpression: null,
  disallowIsError: false,
});

export type CheckOperation = "SET" | "APPEND" | "REMOVE";
export type CheckResult = "OK" | "IGNORE" | "FAIL";

/** `host`, `:authority`, `:method`, `:scheme` — refused unless `allow_all_routing`. */
const ROUTING_HEADERS = new Set(["host", ":authority", ":method", ":scheme"]);
/** Bootstrap `header_prefix` default. */
const ENVOY_PREFIX = "x-envoy";

export interface Checker {
  check(op: CheckOperation, lowerName: string, value: string): CheckResult;
}

export function createChecker(rules: MutationRules): Checker {
  const allow = rules.allowExpression === null ? null : fullMatch(rules.allowExpression);
  const disallow = rules.disallowExpression === null ? null : fullMatch(rules.disallowExpression);

  const isAllowed = (op: CheckOperation, name: string): boolean => {
    if (op === "REMOVE" && !isModifiableHeader(name)) return false;
    if (disallow?.test(name)) return false;
    if (allow?.test(name)) return true;
    if (rules.disallowAll) return false;
    if (!rules.allowAllRouting && ROUTING_HEADERS.has(name)) return false;
    if (name.startsWith(":") && (op === "APPEND" || rules.disallowSystem)) return false;
    if (!rules.allowEnvoy && name.startsWith(ENVOY_PREFIX)) return false;
    return true;
  };

  return {
    check(op, name, value) {
      if (isAllowed(op, name) && (op === "REMOVE" || isValidValue(name, value))) return "OK";
      return rules.disallowIsError ? "FAIL" : "IGNORE";
    },
  };
}

function isValidValue(name: string, value: string): boolean {
  if (!name.startsWith(":") && !headerValueIsValid(value)) return false;
  if ((name === "host" || name === ":authority") && !authorityIsValid(value)) return false;
  if (name === ":scheme" && value !== "http" && value !== "https") return false;
  if (name === ":status") {
    const status = Number(value);
    if (!/^\d+$/.test(value) || status < 200) return false;
  }
  return true;
}

function fullMatch(pattern: string): RegExp {
  return new RegExp(`^(?:${pattern})$`);
}
