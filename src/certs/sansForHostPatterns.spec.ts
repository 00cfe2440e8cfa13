import { describe, expect, it } from "vitest";
import {
  COMMON_SERVICE_PREFIXES,
  FIPS_SUBDOMAIN_PREFIXES,
  GLOBAL_SERVICE_HOSTS,
  GLOBAL_SUBDOMAIN_HOSTS,
  REGIONAL_SUBDOMAIN_PREFIXES,
} from "./awsHosts.js";
import { FIPS_REGIONS, regionsForSuffix } from "./regions.js";
import { planSans, sanCoversHost, sansForHostPatterns } from "./sansForHostPatterns.js";

const COMMERCIAL_AND_GOV = regionsForSuffix("amazonaws.com");

function coveredBy(sans: readonly string[], host: string): boolean {
  return sans.some((san) => sanCoversHost(san, host));
}

describe("sansForHostPatterns", () => {
  it.each([
    ["sts.amazonaws.com", ["sts.amazonaws.com"]],
    ["STS.AmazonAWS.com.", ["sts.amazonaws.com"]],
    ["127.0.0.1", ["127.0.0.1"]],
    ["*.s3.amazonaws.com", ["*.s3.amazonaws.com"]],
    ["**.example.com", ["*.example.com"]],
    ["s3.*.amazonaws.com.cn", ["s3.cn-north-1.amazonaws.com.cn", "s3.cn-northwest-1.amazonaws.com.cn"]],
    ["*.s3.*.amazonaws.com.cn", ["*.s3.cn-north-1.amazonaws.com.cn", "*.s3.cn-northwest-1.amazonaws.com.cn"]],
    [
      "bedrock-fips.*.amazonaws.com",
      ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "ca-west-1", "us-gov-east-1", "us-gov-west-1"].map(
        (r) => `bedrock-fips.${r}.amazonaws.com`,
      ),
    ],
  ])("%s → %j", (pattern, expected) => {
    expect(sansForHostPatterns([pattern])).toEqual(expected);
  });

  it("expands a middle * over the commercial and GovCloud regions of amazonaws.com, one label wildcard kept in front", () => {
    const sans = sansForHostPatterns(["*.s3.*.amazonaws.com"]);
    expect(sans).toEqual(COMMERCIAL_AND_GOV.map((r) => `*.s3.${r}.amazonaws.com`));
    expect(sans).toContain("*.s3.us-east-1.amazonaws.com");
    expect(sans).toContain("*.s3.us-gov-west-1.amazonaws.com");
    expect(sans).not.toContain("*.s3.cn-north-1.amazonaws.com");
    expect(sans).toHaveLength(38);
  });

  it("expands a middle * before the dual-stack suffix api.aws", () => {
    expect(sansForHostPatterns(["bedrock-runtime.*.api.aws"])).toEqual(
      regionsForSuffix("api.aws").map((r) => `bedrock-runtime.${r}.api.aws`),
    );
  });

  it("keeps s3.<region> only when the policy lists it, as the aws-s3 profile does", () => {
    const sans = sansForHostPatterns(["*.s3.*.amazonaws.com", "s3.*.amazonaws.com"]);
    expect(sans).toContain("s3.us-east-1.amazonaws.com");
    expect(sans).toContain("*.s3.us-east-1.amazonaws.com");
    expect(sans).toHaveLength(2 * 38);
  });

  it("turns ** into one wildcard plus the known deeper AWS names, and says what is not covered", () => {
    const plan = planSans(["**.amazonaws.com"]);
    const fipsRegions = COMMERCIAL_AND_GOV.filter((r) => FIPS_REGIONS.has(r)).length;
    const expected =
      1 +
      COMMERCIAL_AND_GOV.length * (1 + REGIONAL_SUBDOMAIN_PREFIXES.length) +
      fipsRegions * FIPS_SUBDOMAIN_PREFIXES.length +
      GLOBAL_SUBDOMAIN_HOSTS.length;
    expect(plan.sans).toHaveLength(expected);
    expect(plan.sans[0]).toBe("*.amazonaws.com");
    expect(plan.sans).toEqual(
      expect.arrayContaining(["*.us-east-1.amazonaws.com", "*.s3.eu-west-1.amazonaws.com", "*.s3.amazonaws.com", "*.execute-api.ap-south-1.amazonaws.com"]),
    );
    expect(plan.sans.some((san) => san.endsWith(".amazonaws.com.cn"))).toBe(false);
    expect(plan.notes).toEqual([
      `"**.amazonaws.com": a certificate wildcard covers one label, so names deeper than the known AWS hosts are not covered (${expected} SANs)`,
    ]);
  });

  it("covers every common service in every region, the global hosts and the usual deeper names for **.amazonaws.com", () => {
    const sans = sansForHostPatterns(["**.amazonaws.com"]);
    const hosts = [
      ...COMMERCIAL_AND_GOV.flatMap((r) => COMMON_SERVICE_PREFIXES.map((s) => `${s}.${r}.amazonaws.com`)),
      ...GLOBAL_SERVICE_HOSTS,
      "my-bucket.s3.eu-west-1.amazonaws.com",
      "my-bucket.s3.amazonaws.com",
      "s3.dualstack.us-east-1.amazonaws.com",
      "my-bucket.s3.dualstack.us-east-1.amazonaws.com",
      "api.ecr.us-west-2.amazonaws.com",
      "runtime.sagemaker.eu-central-1.amazonaws.com",
      "abc123.execute-api.us-east-1.amazonaws.com",
      "my-bucket.s3-fips.us-gov-west-1.amazonaws.com",
    ];
    expect(hosts.filter((h) => !coveredBy(sans, h))).toEqual([]);
  });

  it.each([
    "amazonaws.com",
    "my.dotted.bucket.s3.us-east-1.amazonaws.com",
    "vpce-1a2b.s3.us-east-1.vpce.amazonaws.com",
    "s3.cn-north-1.amazonaws.com.cn",
    "example.com",
  ])("does not cover %s with **.amazonaws.com", (host) => {
    expect(coveredBy(sansForHostPatterns(["**.amazonaws.com"]), host)).toBe(false);
  });

  it("drops duplicates and names a wildcard already covers", () => {
    expect(
      sansForHostPatterns(["s3.us-east-1.amazonaws.com", "*.us-east-1.amazonaws.com", "*.us-east-1.amazonaws.com", "sts.amazonaws.com"]),
    ).toEqual(["*.us-east-1.amazonaws.com", "sts.amazonaws.com"]);
  });

  it("skips a middle * that no AWS DNS suffix follows, with a note", () => {
    const plan = planSans(["api.*.example.com", "sts.amazonaws.com"]);
    expect(plan.sans).toEqual(["sts.amazonaws.com"]);
    expect(plan.notes).toEqual([
      'skipped "api.*.example.com": a "*" in the middle is expanded over AWS regions only, and no AWS DNS suffix follows it',
    ]);
  });

  it("skips an invalid pattern with the policy's own explanation", () => {
    const plan = planSans(["s3-*.amazonaws.com"]);
    expect(plan.sans).toEqual([]);
    expect(plan.notes).toHaveLength(1);
    expect(plan.notes[0]).toContain('skipped "s3-*.amazonaws.com": host "s3-*.amazonaws.com": label "s3-*" is a partial wildcard');
  });
});

describe("sanCoversHost", () => {
  it.each([
    ["*.s3.us-east-1.amazonaws.com", "bucket.s3.us-east-1.amazonaws.com", true],
    ["*.s3.us-east-1.amazonaws.com", "BUCKET.S3.us-east-1.amazonaws.com.", true],
    ["*.s3.us-east-1.amazonaws.com", "s3.us-east-1.amazonaws.com", false],
    ["*.s3.us-east-1.amazonaws.com", "a.b.s3.us-east-1.amazonaws.com", false],
    ["sts.amazonaws.com", "sts.amazonaws.com", true],
    ["sts.amazonaws.com", "x.sts.amazonaws.com", false],
    ["127.0.0.1", "127.0.0.1", true],
  ])("%s covers %s: %s", (san, host, expected) => {
    expect(sanCoversHost(san, host)).toBe(expected);
  });
});
