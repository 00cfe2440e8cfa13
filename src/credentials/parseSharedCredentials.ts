import type { Result } from "../result.js";
import type { Credentials } from "../sigv4/types.js";

export type IniSections = ReadonlyMap<string, ReadonlyMap<string, string>>;

/**
 * Parses an AWS shared-credentials / config INI file into sections of lower-cased keys.
 * - `[name]` and `[profile name]` both name the section `name`; repeated sections merge, later keys win.
 * - Whole-line comments start with `#` or `;`; an inline comment needs whitespace before its `#`/`;`.
 * - Keys are case-insensitive; values are trimmed; CRLF and a leading BOM are accepted.
 * - Indented lines under a key with an empty value are nested settings (config file style) and skipped.
 * - Lines outside a section, and lines that are neither a section nor `key = value`, are ignored.
 */
export function parseIniSections(text: string): IniSections {
  const sections = new Map<string, Map<string, string>>();
  let section: Map<string, string> | undefined;
  let inNestedBlock = false;

  for (const rawLine of text.replace(/^\uFEFF/, "").split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;

    const header = /^\[\s*(?:profile\s+)?([^\]]*?)\s*\]$/.exec(stripInlineComment(line));
    if (header) {
      const name = header[1] ?? "";
      section = sections.get(name) ?? new Map<string, string>();
      sections.set(name, section);
      inNestedBlock = false;
      continue;
    }

    const isIndented = /^\s/.test(rawLine);
    if (inNestedBlock && isIndented) continue;

    const eq = line.indexOf("=");
    if (section === undefined || eq <= 0) continue;
    const key = line.slice(0, eq).trim().toLowerCase();
    const value = stripInlineComment(line.slice(eq + 1)).trim();
    inNestedBlock = value === "";
    if (!inNestedBlock) section.set(key, value);
  }
  return sections;
}

function stripInlineComment(text: string): string {
  const match = /\s[#;]/.exec(text);
  return match ? text.slice(0, match.index) : text;
}

/** A set of credentials, or why there is none. */
export type CredentialsResult = Result<{ readonly credentials: Credentials }>;

/**
 * The credentials of one profile in a shared-credentials file. A profile without both an access
 * key id and a secret access key is incomplete (often a file caught half-written). Errors name
 * the profile and the missing key, never a value.
 */
export function parseSharedCredentials(text: string, profile: string): CredentialsResult {
  const section = parseIniSections(text).get(profile);
  if (section === undefined) return { ok: false, error: `profile [${profile}] not found` };
  const accessKeyId = section.get("aws_access_key_id");
  const secretAccessKey = section.get("aws_secret_access_key");
  const sessionToken = section.get("aws_session_token");
  const missing = [
    accessKeyId ? undefined : "aws_access_key_id",
    secretAccessKey ? undefined : "aws_secret_access_key",
  ].filter((k): k is string => k !== undefined);
  if (!accessKeyId || !secretAccessKey) {
    return { ok: false, error: `profile [${profile}] has no ${missing.join(" or ")}` };
  }
  return {
    ok: true,
    credentials: sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey },
  };
}
