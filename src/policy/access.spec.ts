import { describe, expect, it } from "vitest";
import { readmeSection } from "../../test/support/readmeSection.js";
import { ACCESS_METHODS, checkAccess, type AccessRequest } from "./access.js";
import { parsePolicy } from "./parsePolicy.js";
import type { Access, Endpoint } from "./types.js";

function endpoint(access: Access): Endpoint {
  return { index: 3, host: "*.s3.*.amazonaws.com", credentialSigning: "sigv4", signingService: "s3", credentials: "c", access, enforcement: "enforce" };
}

function req(method: string, query: Record<string, string> = {}, service = "s3"): AccessRequest {
  return { method, service, query };
}

const METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "TRACE", "PROPFIND"];

/** access level → the methods it lets through, in METHODS order. */
function allowedBy(access: Access): string[] {
  return METHODS.filter((m) => checkAccess(endpoint(access), req(m)).allowed);
}

describe("checkAccess: methods by access level", () => {
  it("read-only allows exactly GET, HEAD and OPTIONS", () => {
    expect(allowedBy("read-only")).toEqual(["GET", "HEAD", "OPTIONS"]);
  });

  it("read-write adds exactly POST, PUT and PATCH", () => {
    expect(allowedBy("read-write")).toEqual(["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"]);
  });

  it("full allows every method, DELETE and unusual ones included", () => {
    expect(allowedBy("full")).toEqual(METHODS);
  });

  it("compares the method case-insensitively (a lower-case delete is still DELETE)", () => {
    expect(checkAccess(endpoint("read-write"), req("delete")).allowed).toBe(false);
    expect(checkAccess(endpoint("read-only"), req("get")).allowed).toBe(true);
  });

  it("publishes the same table it checks", () => {
    expect(Object.fromEntries(Object.entries(ACCESS_METHODS).map(([k, v]) => [k, v === undefined ? "any" : [...v]]))).toEqual({
      "read-only": ["GET", "HEAD", "OPTIONS"],
      "read-write": ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH"],
      full: "any",
    });
  });
});

describe("checkAccess: S3 DeleteObjects deletes with a POST", () => {
  it("read-write refuses POST ?delete on S3, naming the operation", () => {
    expect(checkAccess(endpoint("read-write"), req("POST", { delete: "" }))).toEqual({
      allowed: false,
      kind: "access",
      message: "endpoints[3] (*.s3.*.amazonaws.com) is read-write: S3 DeleteObjects (POST ?delete) deletes objects and is not allowed",
    });
  });

  it("read-write allows other S3 POSTs (multipart uploads) and a delete parameter outside S3", () => {
    expect(checkAccess(endpoint("read-write"), req("POST", { uploads: "" })).allowed).toBe(true);
    expect(checkAccess(endpoint("read-write"), req("POST", { delete: "" }, "sqs")).allowed).toBe(true);
  });

  it("full allows DeleteObjects", () => {
    expect(checkAccess(endpoint("full"), req("POST", { delete: "" })).allowed).toBe(true);
  });
});

describe("checkAccess: the refusal message", () => {
  it("names the endpoint by index and host, the access level, its methods and the method refused", () => {
    expect(checkAccess(endpoint("read-only"), req("PUT"))).toEqual({
      allowed: false,
      kind: "access",
      message: "endpoints[3] (*.s3.*.amazonaws.com) is read-only (GET, HEAD, OPTIONS): PUT is not allowed",
    });
  });

  it("cuts a very long method name", () => {
    const verdict = checkAccess(endpoint("read-only"), req("X".repeat(200)));
    expect(verdict.allowed ? "" : verdict.message).toBe(`endpoints[3] (*.s3.*.amazonaws.com) is read-only (GET, HEAD, OPTIONS): ${"X".repeat(32)}… is not allowed`);
  });
});

describe("the README's policy examples", () => {
  it("the Access rules example is a valid policy whose endpoints are read-only, the second in audit mode", () => {
    const section = readmeSection("Policy reference");
    const example = /### Access rules\n[^]*?```yaml\n([^]*?)```/.exec(section)?.[1];
    expect(example).toBeDefined();
    const text = `version: 1\ncredentials:\n  workload:\n    default_chain: {}\n${example ?? ""}`;
    const parsed = parsePolicy(text, "README.md");
    expect(parsed.ok ? parsed.policy.endpoints.map((e) => [e.host, e.access, e.enforcement]) : parsed.error).toEqual([
      ["datasets.s3.eu-west-1.amazonaws.com", "read-only", "enforce"],
      ["scratch.s3.eu-west-1.amazonaws.com", "read-only", "audit"],
    ]);
  });

  it("the rules example is a valid endpoint whose rules compile in order", () => {
    const blocks = [...(/### Access rules\n([^]*?)### Callers/.exec(readmeSection("Policy reference"))?.[1] ?? "").matchAll(/```yaml\n([^]*?)```/g)];
    const example = blocks[2]?.[1];
    expect(example).toBeDefined();
    const parsed = parsePolicy(`version: 1\ncredentials:\n  workload: { default_chain: {} }\nendpoints:\n${example ?? ""}`, "README.md");
    expect(parsed.ok ? parsed.policy.endpoints[0]?.rules?.map((r) => [r.effect, r.methods && [...r.methods], r.paths?.map((g) => g.text), r.s3?.bucket?.map((g) => g.text), r.s3?.key?.map((g) => g.text)]) : parsed.error).toEqual([
      ["deny", undefined, undefined, undefined, ["team-a/secret/**"]],
      ["allow", ["GET", "HEAD", "PUT"], undefined, ["team"], ["team-a/**"]],
      ["allow", ["GET"], ["/"], undefined, undefined],
    ]);
  });

  it("the actions example is valid: a DynamoDB allow list and S3 deletes denied", () => {
    const blocks = [...(/### Access rules\n([^]*?)### Callers/.exec(readmeSection("Policy reference"))?.[1] ?? "").matchAll(/```yaml\n([^]*?)```/g)];
    const parsed = parsePolicy(`version: 1\ncredentials:\n  workload: { default_chain: {} }\nendpoints:\n${blocks[1]?.[1] ?? ""}`, "README.md");
    expect(parsed.ok ? parsed.policy.endpoints.map((e) => e.rules?.map((r) => [r.effect, r.actions?.map((g) => g.text)])) : parsed.error).toEqual([
      [["allow", ["dynamodb:GetItem", "dynamodb:PutItem"]]],
      [["deny", ["s3:DeleteObject", "s3:DeleteObjects"]], ["allow", ["s3:*"]]],
    ]);
  });

  it("the Callers example is a valid policy mapping two placeholder key ids to two profiles", () => {
    const example = /### Callers\n[^]*?```yaml\n([^]*?)```/.exec(readmeSection("Policy reference"))?.[1];
    expect(example).toBeDefined();
    const text = `version: 1\ncredentials:\n  workload: { default_chain: {} }\n  tenant-a: { default_chain: {} }\n  tenant-b: { default_chain: {} }\n${example ?? ""}`;
    const parsed = parsePolicy(text, "README.md");
    expect(parsed.ok ? parsed.policy.endpoints.map((e) => [e.credentials, e.callers]) : parsed.error).toEqual([
      ["workload", new Map([["AKIDTENANTA0000000000", "tenant-a"], ["AKIDTENANTB0000000000", "tenant-b"]])],
    ]);
  });
});
