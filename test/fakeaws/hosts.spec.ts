import { describe, expect, it } from "vitest";
import { resolveEndpoint } from "./hosts.js";

describe("resolveEndpoint maps a Host header to (service, region)", () => {
  it.each([
    ["s3.amazonaws.com", { api: "s3", service: "s3", region: "us-east-1" }],
    ["my-bucket.s3.amazonaws.com", { service: "s3", region: "us-east-1", bucket: "my-bucket" }],
    ["s3.eu-west-1.amazonaws.com", { service: "s3", region: "eu-west-1" }],
    ["my.dotted.bucket.s3.eu-west-1.amazonaws.com", { service: "s3", region: "eu-west-1", bucket: "my.dotted.bucket" }],
    ["s3.dualstack.ap-southeast-2.amazonaws.com", { service: "s3", region: "ap-southeast-2" }],
    ["b.s3.dualstack.us-west-2.amazonaws.com", { service: "s3", region: "us-west-2", bucket: "b" }],
    ["s3-fips.us-gov-west-1.amazonaws.com", { service: "s3", region: "us-gov-west-1" }],
    ["s3-fips.dualstack.us-east-2.amazonaws.com", { service: "s3", region: "us-east-2" }],
    ["s3-us-west-2.amazonaws.com", { service: "s3", region: "us-west-2" }],
    ["s3-external-1.amazonaws.com", { service: "s3", region: "us-east-1" }],
    ["s3.cn-north-1.amazonaws.com.cn", { service: "s3", region: "cn-north-1" }],
    ["b.s3.cn-northwest-1.amazonaws.com.cn", { service: "s3", region: "cn-northwest-1", bucket: "b" }],
    ["S3.US-EAST-2.AMAZONAWS.COM:80", { service: "s3", region: "us-east-2", hostname: "s3.us-east-2.amazonaws.com" }],
    ["sts.amazonaws.com", { api: "sts", service: "sts", region: "us-east-1", protocol: "query" }],
    ["sts.eu-central-1.amazonaws.com", { service: "sts", region: "eu-central-1" }],
    ["sts-fips.us-east-1.amazonaws.com", { service: "sts", region: "us-east-1" }],
    ["bedrock-runtime.us-west-2.amazonaws.com", { api: "bedrock-runtime", service: "bedrock", region: "us-west-2", protocol: "json" }],
    ["dynamodb.ap-northeast-1.amazonaws.com", { api: "dynamodb", service: "dynamodb", region: "ap-northeast-1", protocol: "json" }],
    ["mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com", { api: "s3", service: "s3", region: "us-east-1", bucket: "mfzwi23gnjvgw", multiRegionAccessPoint: true }],
    ["mfzwi23gnjvgw.accesspoint.s3-global.amazonaws.com", { api: "s3", service: "s3", region: "us-east-1", bucket: "mfzwi23gnjvgw", multiRegionAccessPoint: true }],
  ])("%s", (host, expected) => {
    expect(resolveEndpoint(host)).toMatchObject(expected);
  });

  it.each(["example.com", "s3.cn-north-1.amazonaws.com.cn.evil.com", "s3.amazonaws.com.cn", "dynamodb.amazonaws.com", "sts.notaregion.amazonaws.com", "lambda.us-east-1.amazonaws.com", "127.0.0.1:8080", "a.b.mrap.accesspoint.s3-global.amazonaws.com", "x.mrap.accesspoint.s3-global.amazonaws.com.cn"])(
    "does not serve %s",
    (host) => {
      expect(resolveEndpoint(host)).toBeUndefined();
    },
  );
});
