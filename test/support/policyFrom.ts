import { parsePolicy } from "../../src/policy/index.js";
import type { Policy } from "../../src/policy/types.js";

/** A policy from YAML text; throws, with every problem's line and column, when the text is invalid. */
export function policyFrom(text: string, name = "test-policy.yaml"): Policy {
  const parsed = parsePolicy(text, name);
  if (!parsed.ok) throw new Error(`test policy ${name} is invalid: ${parsed.error.map((e) => `${e.line}:${e.col} ${e.message}`).join("; ")}`);
  return parsed.policy;
}
