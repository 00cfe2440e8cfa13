import { readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./startServe.js";

/** The text of the README's `## <heading>` section, up to the next `## ` heading. */
export function readmeSection(heading: string): string {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const start = readme.indexOf(`\n## ${heading}\n`);
  if (start < 0) throw new Error(`README.md has no ## ${heading} section`);
  const end = readme.indexOf("\n## ", start + 1);
  return readme.slice(start, end < 0 ? undefined : end);
}
