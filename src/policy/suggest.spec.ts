import { describe, expect, it } from "vitest";
import { closestMatch, editDistance, listOr } from "./suggest.js";

describe("closestMatch", () => {
  const keys = ["host", "port", "credential_signing", "signing_service", "region", "credentials"];

  it.each([
    ["hots", "host"],
    ["prot", "port"],
    ["signing-service", "signing_service"],
    ["credential", "credentials"],
    ["Region", "region"],
  ])("suggests %s → %s", (typo, expected) => {
    expect(closestMatch(typo, keys)).toBe(expected);
  });

  it("suggests nothing when no candidate is close", () => {
    expect(closestMatch("zzzzzz", keys)).toBeUndefined();
    expect(closestMatch("ab", ["xy"])).toBeUndefined();
  });
});

describe("editDistance", () => {
  it.each([
    ["", "", 0],
    ["abc", "abc", 0],
    ["abc", "acb", 1],
    ["abc", "ab", 1],
    ["kitten", "sitting", 3],
  ])("%s → %s is %i", (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
  });
});

describe("listOr", () => {
  it.each([
    [[], ""],
    [["a"], "a"],
    [["a", "b"], "a or b"],
    [["a", "b", "c"], "a, b or c"],
  ])("%j → %s", (items, text) => {
    expect(listOr(items)).toBe(text);
  });
});
