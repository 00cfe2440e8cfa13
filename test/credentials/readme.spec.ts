/**
 * The README's Credentials section documents every source with an example, and the examples are
 * a valid policy as written.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parsePolicy } from "../../src/policy/index.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
const start = readme.indexOf("\n## Credentials\n");
const section = readme.slice(start, readme.indexOf("\n## ", start + 5));
const yamlBlocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");

describe("README: Credentials", () => {
  it("has a YAML example for static, file and assume_role and names every default_chain platform", () => {
    expect(start).toBeGreaterThan(0);
    const text = yamlBlocks.join("");
    for (const source of ["static:", "file:", "assume_role:"]) expect(text).toContain(source);
    expect(section).toContain("default_chain: {}");
    for (const env of [
      "AWS_WEB_IDENTITY_TOKEN_FILE",
      "AWS_ROLE_ARN",
      "AWS_CONTAINER_CREDENTIALS_FULL_URI",
      "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
      "AWS_CONTAINER_AUTHORIZATION_TOKEN",
      "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
      "IMDS",
    ]) {
      expect(section).toContain(env);
    }
  });

  it("its examples, put together, are a valid policy with one profile of each kind", () => {
    const [first = "", ...rest] = yamlBlocks;
    const policy =
      `version: 1\n${first}${rest.join("")}  ambient:\n    default_chain: {}\n` +
      `endpoints:\n  - host: "*.s3.us-east-1.amazonaws.com"\n    credential_signing: sigv4\n    signing_service: s3\n    credentials: sandbox-role\n`;
    // The session policy example elides its statements; give it a complete one.
    const parsed = parsePolicy(policy.replace('"Statement":[...]', '"Statement":[]'), "README.md");
    if (!parsed.ok) throw new Error(parsed.error.map((e) => `${e.line}:${e.col} ${e.message}`).join("\n"));
    expect([...parsed.policy.credentials.values()].map((c) => c.kind).sort()).toEqual(["assume_role", "default_chain", "file", "static"]);
  });
});
