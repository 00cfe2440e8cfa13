import { describe, expect, it } from "vitest";
import type { HeaderMutation__Output } from "../../protos/generated/envoy/service/ext_proc/v3/HeaderMutation.js";
import { applyHeaderMutations, type MutationOptions } from "./applyHeaderMutations.js";
import { HeaderMap } from "./headerMap.js";
import { createChecker, DEFAULT_MUTATION_RULES, type MutationRules } from "./mutationRules.js";

function options(rules: Partial<MutationRules> = {}, extra: Partial<MutationOptions> = {}): MutationOptions {
  return {
    checker: createChecker({ ...DEFAULT_MUTATION_RULES, ...rules }),
    replacingMessage: false,
    removeContentLength: false,
    maxHeadersCount: 100,
    maxHeadersKb: 60,
    ...extra,
  };
}

function set(key: string, raw: string, append?: boolean): HeaderMutation__Output["set_headers"][number] {
  return {
    header: { key, value: "", raw_value: Buffer.from(raw, "latin1") },
    append: append === undefined ? null : { value: append },
    append_action: "APPEND_IF_EXISTS_OR_ADD",
    keep_empty_value: false,
  };
}

function mutation(sets: HeaderMutation__Output["set_headers"], removes: string[] = []): HeaderMutation__Output {
  return { set_headers: sets, remove_headers: removes };
}

function request(): HeaderMap {
  return HeaderMap.from([
    [":method", "PUT"],
    [":path", "/b/k"],
    [":authority", "s3.amazonaws.com"],
    [":scheme", "https"],
    ["content-length", "5"],
  ]);
}

describe("applyHeaderMutations", () => {
  it("with remove_content_length skips a set of content-length silently (uncounted) and leaves the existing header alone", () => {
    const headers = request();
    const out = applyHeaderMutations(mutation([set("Content-Length", "9"), set("x-a", "1")]), headers, options({}, { removeContentLength: true }));
    expect(out).toEqual({ status: { ok: true }, rejected: 0 });
    expect(headers.get("content-length")).toEqual(["5"]);
    expect(headers.get("x-a")).toEqual(["1"]);
  });

  it("lower-cases names, treats append on an absent header as a set, and keeps raw bytes (obs-text) intact", () => {
    const headers = request();
    const out = applyHeaderMutations(mutation([set("X-Amz-Meta-Name", "caf\xe9", true)]), headers, options());
    expect(out.status.ok).toBe(true);
    expect(headers.get("x-amz-meta-name")).toEqual(["caf\xe9"]);
  });

  it("lets CONTINUE_AND_REPLACE set :method", () => {
    const headers = request();
    applyHeaderMutations(mutation([set(":method", "POST")]), headers, options({}, { replacingMessage: true }));
    expect(headers.first(":method")).toBe("POST");
  });

  it("applies allow_all_routing, allow_envoy, disallow_system, disallow_all and the expressions as mutation_rules.cc orders them", () => {
    const cases: [Partial<MutationRules>, string, boolean][] = [
      [{ allowAllRouting: true }, ":authority", true],
      [{ allowEnvoy: true }, "x-envoy-foo", true],
      [{ disallowSystem: true }, ":path", false],
      [{ disallowAll: true }, "x-amz-date", false],
      [{ disallowAll: true, allowExpression: "x-amz-.*" }, "x-amz-date", true],
      [{ allowExpression: "x-amz-.*", disallowExpression: "x-amz-date" }, "x-amz-date", false],
    ];
    for (const [rules, name, applied] of cases) {
      const headers = request();
      const out = applyHeaderMutations(mutation([set(name, "v")]), headers, options(rules));
      expect([name, headers.first(name) === "v", out.rejected]).toEqual([name, applied, applied ? 0 : 1]);
    }
  });

  it("fails when a mutation has more entries than the header count limit, or the result exceeds it", () => {
    const many = Array.from({ length: 3 }, (_, i) => set(`x-${i}`, "v"));
    expect(applyHeaderMutations(mutation(many), request(), options({}, { maxHeadersCount: 2 })).status.ok).toBe(false);
    expect(applyHeaderMutations(mutation([set("x-a", "v")]), request(), options({}, { maxHeadersCount: 5 })).status).toMatchObject({
      ok: false,
      code: "INVALID_ARGUMENT",
    });
  });

  it("fails on an invalid remove_headers name", () => {
    const out = applyHeaderMutations(mutation([], ["bad name"]), request(), options());
    expect(out).toEqual({ status: { ok: false, code: "INVALID_ARGUMENT", message: "Invalid character in remove_headers mutation." }, rejected: 1 });
  });
});
