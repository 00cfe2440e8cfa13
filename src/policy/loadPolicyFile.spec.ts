import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadPolicyFile } from "./loadPolicyFile.js";

const dir = mkdtempSync(join(tmpdir(), "countersign-policy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("loadPolicyFile", () => {
  it("parses the file's contents", async () => {
    const path = join(dir, "ok.yaml");
    writeFileSync(
      path,
      "version: 1\ncredentials: { a: { default_chain: {} } }\nendpoints:\n  - { host: s3.amazonaws.com, credential_signing: sigv4, signing_service: s3, credentials: a }\n",
    );
    const result = await loadPolicyFile(path);
    expect(result.ok && result.policy.endpoints.map((e) => e.host)).toEqual(["s3.amazonaws.com"]);
  });

  it("labels parse errors with the file's path", async () => {
    const path = join(dir, "bad.yaml");
    writeFileSync(path, "version: 2\n");
    const result = await loadPolicyFile(path);
    expect(result.ok ? [] : result.error.map((e) => e.file)).toContain(path);
  });

  it("reports a missing file as an error at 1:1 with the operating system's reason", async () => {
    const path = join(dir, "missing.yaml");
    expect(await loadPolicyFile(path)).toStrictEqual({
      ok: false,
      error: [{ file: path, line: 1, col: 1, message: `cannot read the policy file: ENOENT: no such file or directory, open '${path}'` }],
    });
  });

  it("reports a directory as unreadable", async () => {
    const result = await loadPolicyFile(dir);
    expect(result.ok ? "" : result.error[0]?.message).toMatch(/^cannot read the policy file: EISDIR/);
  });
});
