/**
 * countersign's version: the `version` field of its own package.json, found by walking up from
 * this file (src/cli/ when run from source, dist/src/cli/ when built, /app/dist/src/cli/ in the
 * image, which ships package.json at /app).
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";

export const PACKAGE_NAME = "countersign";

export function packageVersion(from: string = import.meta.dirname): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const found = readPackage(join(dir, "package.json"));
    if (found !== undefined) return found;
    if (dirname(dir) === dir) throw new Error(`no package.json named "${PACKAGE_NAME}" above ${from}`);
  }
}

function readPackage(path: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
  const pkg = JSON.parse(text) as { name?: unknown; version?: unknown };
  return pkg.name === PACKAGE_NAME && typeof pkg.version === "string" ? pkg.version : undefined;
}
