/**
 * `forward_rules` (allowed_headers / disallowed_headers) as `MutationUtils::headerCanBeForwarded`
 * applies them to the headers sent to the ext_proc server.
 */
import type { StringMatcher } from "./config.js";

export function stringMatches(m: StringMatcher, value: string): boolean {
  const v = m.ignoreCase ? value.toLowerCase() : value;
  const norm = (s: string): string => (m.ignoreCase ? s.toLowerCase() : s);
  if (m.exact !== undefined) return v === norm(m.exact);
  if (m.prefix !== undefined) return v.startsWith(norm(m.prefix));
  if (m.suffix !== undefined) return v.endsWith(norm(m.suffix));
  if (m.contains !== undefined) return v.includes(norm(m.contains));
  if (m.regex !== undefined) return new RegExp(`^(?:${m.regex})$`).test(value);
  return false;
}

export function headerCanBeForwarded(
  key: string,
  rules: { allowedHeaders: readonly StringMatcher[]; disallowedHeaders: readonly StringMatcher[] },
): boolean {
  if (rules.disallowedHeaders.some((m) => stringMatches(m, key))) return false;
  return rules.allowedHeaders.length === 0 || rules.allowedHeaders.some((m) => stringMatches(m, key));
}
