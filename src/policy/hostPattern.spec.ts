import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileHostPattern, normaliseHost, validateHostPattern } from "./hostPattern.js";

describe("compileHostPattern: matching", () => {
  it.each([
    // exact
    ["s3.amazonaws.com", "s3.amazonaws.com", true],
    ["s3.amazonaws.com", "S3.AmazonAWS.com", true],
    ["s3.amazonaws.com", "s3.amazonaws.com.", true],
    ["S3.AMAZONAWS.COM", "s3.amazonaws.com", true],
    ["s3.amazonaws.com.", "s3.amazonaws.com", true],
    ["s3.amazonaws.com", "x.s3.amazonaws.com", false],
    ["s3.amazonaws.com", "s3.amazonaws.co", false],
    ["s3.amazonaws.com", "s3.amazonaws.com.evil.example", false],
    // '*' is exactly one label
    ["*.s3.*.amazonaws.com", "bucket.s3.eu-west-1.amazonaws.com", true],
    ["*.s3.*.amazonaws.com", "BUCKET.S3.EU-WEST-1.AMAZONAWS.COM.", true],
    ["*.s3.*.amazonaws.com", "a.b.s3.eu-west-1.amazonaws.com", false],
    ["*.s3.*.amazonaws.com", "s3.eu-west-1.amazonaws.com", false],
    ["*.s3.*.amazonaws.com", "bucket.s3.amazonaws.com", false],
    ["*.s3.*.amazonaws.com", "bucket.s3.dualstack.eu-west-1.amazonaws.com", false],
    ["s3.*.amazonaws.com", "s3.us-east-1.amazonaws.com", true],
    ["s3.*.amazonaws.com", "s3.amazonaws.com", false],
    ["*.example.com", "example.com", false],
    ["*.example.com", "notexample.com", false],
    ["*.example.com", "a.example.com", true],
    // '**' is one or more labels, first label only
    ["**.amazonaws.com", "sts.amazonaws.com", true],
    ["**.amazonaws.com", "a.b.c.d.amazonaws.com", true],
    ["**.amazonaws.com", "amazonaws.com", false],
    ["**.amazonaws.com", "amazonaws.com.", false],
    ["**.amazonaws.com", "xamazonaws.com", false],
    ["**.amazonaws.com", "sts.amazonaws.com.cn", false],
    ["**.amazonaws.com", "STS.AMAZONAWS.COM.", true],
    ["**.s3.*.amazonaws.com", "a.b.s3.us-east-1.amazonaws.com", true],
    ["**.s3.*.amazonaws.com", "bucket.s3.us-east-1.amazonaws.com", true],
    ["**.s3.*.amazonaws.com", "s3.us-east-1.amazonaws.com", false],
    ["**.s3.*.amazonaws.com", "bucket.s3.dualstack.us-east-1.amazonaws.com", false],
    // never a match for what is not a host name
    ["**.amazonaws.com", "a..amazonaws.com", false],
    ["**.amazonaws.com", "a b.amazonaws.com", false],
    ["*.amazonaws.com", "", false],
    ["localhost", "[::1]", false],
    ["1.2.3.4", "1.2.3.4", true],
  ])("pattern %s vs host %s → %s", (pattern, host, expected) => {
    expect(compileHostPattern(pattern).matches(host)).toBe(expected);
  });

  it("keeps the pattern as written", () => {
    expect(compileHostPattern("*.S3.amazonaws.com").pattern).toBe("*.S3.amazonaws.com");
  });

  it("throws for an invalid pattern, naming the problem", () => {
    expect(() => compileHostPattern("s3-*.amazonaws.com")).toThrow(/partial wildcard/);
  });
});

describe("validateHostPattern", () => {
  it.each([
    ["*.s3.*.amazonaws.com"],
    ["**.amazonaws.com"],
    ["**.s3.*.amazonaws.com"],
    ["s3.amazonaws.com."],
    ["localhost"],
    ["127.0.0.1"],
    ["my_host.example.com"],
  ])("accepts %s", (pattern) => {
    expect(validateHostPattern(pattern)).toEqual([]);
  });

  it.each([
    ["", "host must not be empty"],
    ["*", 'host "*" would match every host; name the domain too, e.g. "*.amazonaws.com"'],
    ["**", 'host "**" would match every host; name the domain too, e.g. "*.amazonaws.com"'],
    ["*.", 'host "*." would match every host; name the domain too, e.g. "*.amazonaws.com"'],
    ["s3.us-*.amazonaws.com", 'host "s3.us-*.amazonaws.com": label "us-*" is a partial wildcard; "*" must be a whole label (e.g. "*.s3.*.amazonaws.com")'],
    ["***.amazonaws.com", 'host "***.amazonaws.com": label "***" is a partial wildcard; "*" must be a whole label (e.g. "*.s3.*.amazonaws.com")'],
    ["s3.**.com", 'host "s3.**.com": "**" is only allowed as the whole first label (e.g. "**.amazonaws.com")'],
    ["amazonaws.*", 'host "amazonaws.*": the last label (the top-level domain) cannot be a wildcard'],
    ["a..com", 'host "a..com" has an empty label (two dots in a row, or a leading dot)'],
    [".a.com", 'host ".a.com" has an empty label (two dots in a row, or a leading dot)'],
    ["a/b.com", 'host "a/b.com": label "a/b" has the invalid character "/" (allowed: letters, digits, "-" and "_")'],
    ["-a.com", 'host "-a.com": label "-a" must not start or end with "-"'],
    ["*.0.0.1", 'host "*.0.0.1": a wildcard cannot be combined with a numeric address; write IP addresses in full'],
    [`${"a".repeat(64)}.com`, `host "${"a".repeat(64)}.com": label "${"a".repeat(64)}" is longer than 63 characters`],
  ])("rejects %j", (pattern, message) => {
    expect(validateHostPattern(pattern)).toEqual([message]);
  });

  it("reports a wildcard top-level label after a bad '**' as two problems", () => {
    expect(validateHostPattern("a.**")).toEqual([
      'host "a.**": "**" is only allowed as the whole first label (e.g. "**.amazonaws.com")',
      'host "a.**": the last label (the top-level domain) cannot be a wildcard',
    ]);
  });
});

describe("normaliseHost", () => {
  it.each([
    ["S3.AmazonAWS.com", "s3.amazonaws.com"],
    ["s3.amazonaws.com.", "s3.amazonaws.com"],
    ["[::1]", "::1"],
    ["[2001:DB8::1]", "2001:db8::1"],
    ["127.0.0.1", "127.0.0.1"],
  ])("%s → %s", (host, expected) => {
    expect(normaliseHost(host)).toBe(expected);
  });

  it.each(["", ".", "a..b", ".a", "a b", "a/b", "[::1", "[]", "[xyz]", "a.b..", "é.com", "buc\u212Aet.s3.amazonaws.com", "\u017Fts.amazonaws.com"])("rejects %j", (host) => {
    expect(normaliseHost(host)).toBeUndefined();
  });
});

describe("compileHostPattern: properties", () => {
  const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
  const topLevel = fc.stringMatching(/^[a-z]{2,6}$/);
  /** 2..7 labels ending in an alphabetic top-level label (a numeric one would be an IP address). */
  const host = fc.tuple(fc.array(label, { minLength: 1, maxLength: 6 }), topLevel).map(([labels, tld]) => [...labels, tld]);

  it("a host matches any pattern made by replacing some of its non-last labels with '*'", () => {
    fc.assert(
      fc.property(host, fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }), (labels, wild) => {
        const pattern = labels.map((l, i) => (i < labels.length - 1 && wild[i] === true ? "*" : l)).join(".");
        expect(compileHostPattern(pattern).matches(labels.join("."))).toBe(true);
      }),
    );
  });

  it("a host never matches a pattern without '**' that has a different number of labels", () => {
    fc.assert(
      fc.property(host, host, fc.array(fc.boolean(), { minLength: 7, maxLength: 7 }), (hostLabels, patternLabels, wild) => {
        fc.pre(hostLabels.length !== patternLabels.length);
        const pattern = patternLabels.map((l, i) => (i < patternLabels.length - 1 && wild[i] === true ? "*" : l)).join(".");
        expect(compileHostPattern(pattern).matches(hostLabels.join("."))).toBe(false);
      }),
    );
  });

  it("'**.' plus a suffix matches exactly the hosts with at least one more label than the suffix", () => {
    fc.assert(
      fc.property(host, fc.array(label, { minLength: 0, maxLength: 3 }), (suffix, prefix) => {
        const matcher = compileHostPattern(`**.${suffix.join(".")}`);
        expect(matcher.matches([...prefix, ...suffix].join("."))).toBe(prefix.length > 0);
      }),
    );
  });

  it("matching ignores case and a trailing dot", () => {
    fc.assert(
      fc.property(host, (labels) => {
        const matcher = compileHostPattern(labels.join("."));
        expect(matcher.matches(`${labels.join(".").toUpperCase()}.`)).toBe(true);
      }),
    );
  });
});
