import { readFile } from "node:fs/promises";
import { parsePolicy } from "./parsePolicy.js";
import type { ParseResult } from "./types.js";

/**
 * Reads and parses a policy file. A file that cannot be read is reported like any other policy
 * error, at line 1 column 1, with the operating system's reason.
 */
export async function loadPolicyFile(path: string): Promise<ParseResult> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, error: [{ file: path, line: 1, col: 1, message: `cannot read the policy file: ${reason}` }] };
  }
  return parsePolicy(text, path);
}
