import { describe, expect, it } from "vitest";
import { looksLikeRegion, regionFromHost } from "./regionFromHost.js";

describe("regionFromHost", () => {
  it.each([
    // regional
    ["s3.eu-west-1.amazonaws.com", "eu-west-1"],
    ["my-bucket.s3.eu-west-1.amazonaws.com", "eu-west-1"],
    ["my.dotted.bucket.s3.ap-southeast-2.amazonaws.com", "ap-southeast-2"],
    ["bedrock-runtime.us-west-2.amazonaws.com", "us-west-2"],
    ["dynamodb.eu-central-2.amazonaws.com", "eu-central-2"],
    ["sts.il-central-1.amazonaws.com", "il-central-1"],
    // dualstack
    ["s3.dualstack.us-east-2.amazonaws.com", "us-east-2"],
    ["bucket.s3.dualstack.sa-east-1.amazonaws.com", "sa-east-1"],
    // FIPS and FIPS + dualstack
    ["s3-fips.us-east-1.amazonaws.com", "us-east-1"],
    ["bucket.s3-fips.dualstack.us-west-1.amazonaws.com", "us-west-1"],
    ["dynamodb-fips.ca-central-1.amazonaws.com", "ca-central-1"],
    ["sts-fips.us-east-2.amazonaws.com", "us-east-2"],
    // legacy dash forms
    ["s3-us-west-2.amazonaws.com", "us-west-2"],
    ["bucket.s3-eu-west-1.amazonaws.com", "eu-west-1"],
    ["s3-external-1.amazonaws.com", "us-east-1"],
    // China
    ["s3.cn-north-1.amazonaws.com.cn", "cn-north-1"],
    ["bucket.s3.cn-northwest-1.amazonaws.com.cn", "cn-northwest-1"],
    ["iam.amazonaws.com.cn", "cn-north-1"],
    // GovCloud
    ["s3.us-gov-west-1.amazonaws.com", "us-gov-west-1"],
    ["s3-fips.dualstack.us-gov-east-1.amazonaws.com", "us-gov-east-1"],
    ["iam.us-gov.amazonaws.com", "us-gov-west-1"],
    // global hosts
    ["s3.amazonaws.com", "us-east-1"],
    ["bucket.s3.amazonaws.com", "us-east-1"],
    ["sts.amazonaws.com", "us-east-1"],
    ["iam.amazonaws.com", "us-east-1"],
    ["route53.amazonaws.com", "us-east-1"],
    // newer domains
    ["bedrock-mantle.us-east-1.api.aws", "us-east-1"],
    ["abc123.lambda-url.eu-west-3.on.aws", "eu-west-3"],
    // case and trailing dot
    ["S3.EU-WEST-1.AmazonAWS.com.", "eu-west-1"],
  ])("%s → %s", (host, region) => {
    expect(regionFromHost(host)).toBe(region);
  });

  it.each(["example.com", "amazonaws.com", "evil-amazonaws.com", "s3.eu-west-1.amazonaws.com.evil.net", "localhost", "127.0.0.1"])(
    "non-AWS host %s has no region",
    (host) => {
      expect(regionFromHost(host)).toBeUndefined();
    },
  );

  it("recognises region shapes and rejects look-alikes", () => {
    for (const r of ["us-east-1", "eu-central-2", "us-gov-west-1", "cn-north-1", "us-isob-east-1", "ap-southeast-5"]) {
      expect(looksLikeRegion(r)).toBe(true);
    }
    for (const r of ["dualstack", "s3", "us-east", "fips", "us-east-1a", "1-us-east"]) {
      expect(looksLikeRegion(r)).toBe(false);
    }
  });
});
