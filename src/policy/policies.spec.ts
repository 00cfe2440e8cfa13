import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Ajv } from "ajv";
import { parseDocument } from "yaml";
import { describe, expect, it } from "vitest";
import { formatPolicyError } from "./parsePolicy.js";
import { loadPolicyFile } from "./loadPolicyFile.js";
import { matchEndpoint } from "./matchEndpoint.js";
import type { Policy } from "./types.js";

const POLICIES_DIR = fileURLToPath(new URL("../../policies/", import.meta.url));
const policyFiles = readdirSync(POLICIES_DIR).filter((name) => name.endsWith(".yaml") || name.endsWith(".yml"));

async function load(name: string): Promise<Policy> {
  const result = await loadPolicyFile(join(POLICIES_DIR, name));
  if (!result.ok) throw new Error(result.error.map(formatPolicyError).join("\n"));
  return result.policy;
}

describe("policies/", () => {
  it("ships aws.yaml, aws-s3.yaml and bedrock.yaml", () => {
    expect(policyFiles).toEqual(expect.arrayContaining(["aws.yaml", "aws-s3.yaml", "bedrock.yaml"]));
  });

  it.each(policyFiles)("%s parses with no errors", async (name) => {
    const result = await loadPolicyFile(join(POLICIES_DIR, name));
    expect(result.ok ? [] : result.error.map(formatPolicyError)).toEqual([]);
  });

  it.each(policyFiles)("%s points editors at the JSON Schema on its first line", (name) => {
    const firstLine = readFileSync(join(POLICIES_DIR, name), "utf8").split("\n")[0];
    expect(firstLine).toBe("# yaml-language-server: $schema=./policy.schema.json");
  });

  it.each(policyFiles)("%s satisfies policy.schema.json on its own (as an editor sees it)", (name) => {
    const schema: unknown = JSON.parse(readFileSync(join(POLICIES_DIR, "policy.schema.json"), "utf8"));
    const validate = new Ajv({ allErrors: true, strict: true }).compile(schema as object);
    const data: unknown = parseDocument(readFileSync(join(POLICIES_DIR, name), "utf8")).toJS();
    expect(validate(data) ? [] : validate.errors).toEqual([]);
  });
});

/** host → the matching endpoint's signing service, region override and "sigv4a" if it signs SigV4A, or "none". */
async function matchTable(name: string, hosts: readonly string[]): Promise<Record<string, string>> {
  const policy = await load(name);
  return Object.fromEntries(
    hosts.map((host) => {
      const match = matchEndpoint(policy, host, "https");
      if (match === undefined) return [host, "none"];
      const { signingService, region, credentialSigning } = match.endpoint;
      return [host, `${signingService}${region ? ` ${region}` : ""}${credentialSigning === "sigv4a" ? " sigv4a" : ""}`];
    }),
  );
}

describe("policies/aws-s3.yaml", () => {
  it("signs S3 hosts of every documented shape and nothing else", async () => {
    expect(
      await matchTable("aws-s3.yaml", [
        "my-bucket.s3.eu-west-1.amazonaws.com",
        "s3.eu-west-1.amazonaws.com",
        "a.b.s3.us-east-1.amazonaws.com",
        "s3.amazonaws.com",
        "my-bucket.s3.amazonaws.com",
        "a.b.s3.amazonaws.com",
        "s3.dualstack.us-west-2.amazonaws.com",
        "my-bucket.s3.dualstack.us-west-2.amazonaws.com",
        "s3-fips.us-gov-west-1.amazonaws.com",
        "my-bucket.s3-fips.us-east-1.amazonaws.com",
        "s3-fips.dualstack.us-east-1.amazonaws.com",
        "my-bucket.s3-fips.dualstack.us-east-1.amazonaws.com",
        "ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com",
        "ap-123456789012.s3-accesspoint.dualstack.eu-west-1.amazonaws.com",
        "123456789012.s3-control.eu-west-1.amazonaws.com",
        "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com",
        "mfzwi23gnjvgw.accesspoint.s3-global.amazonaws.com",
        "s3.cn-north-1.amazonaws.com.cn",
        "my-bucket.s3.cn-north-1.amazonaws.com.cn",
        "sts.amazonaws.com",
        "dynamodb.us-east-1.amazonaws.com",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "amazonaws.com",
        "s3.amazonaws.com.evil.example",
        "s3-us-west-2.amazonaws.com",
      ]),
    ).toStrictEqual({
      "my-bucket.s3.eu-west-1.amazonaws.com": "s3",
      "s3.eu-west-1.amazonaws.com": "s3",
      "a.b.s3.us-east-1.amazonaws.com": "s3",
      "s3.amazonaws.com": "s3 us-east-1",
      "my-bucket.s3.amazonaws.com": "s3 us-east-1",
      "a.b.s3.amazonaws.com": "s3 us-east-1",
      "s3.dualstack.us-west-2.amazonaws.com": "s3",
      "my-bucket.s3.dualstack.us-west-2.amazonaws.com": "s3",
      "s3-fips.us-gov-west-1.amazonaws.com": "s3",
      "my-bucket.s3-fips.us-east-1.amazonaws.com": "s3",
      "s3-fips.dualstack.us-east-1.amazonaws.com": "s3",
      "my-bucket.s3-fips.dualstack.us-east-1.amazonaws.com": "s3",
      "ap-123456789012.s3-accesspoint.eu-west-1.amazonaws.com": "s3",
      "ap-123456789012.s3-accesspoint.dualstack.eu-west-1.amazonaws.com": "s3",
      "123456789012.s3-control.eu-west-1.amazonaws.com": "s3",
      "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com": "s3 sigv4a",
      "mfzwi23gnjvgw.accesspoint.s3-global.amazonaws.com": "s3 sigv4a",
      "s3.cn-north-1.amazonaws.com.cn": "s3",
      "my-bucket.s3.cn-north-1.amazonaws.com.cn": "s3",
      "sts.amazonaws.com": "none",
      "dynamodb.us-east-1.amazonaws.com": "none",
      "bedrock-runtime.us-east-1.amazonaws.com": "none",
      "amazonaws.com": "none",
      "s3.amazonaws.com.evil.example": "none",
      "s3-us-west-2.amazonaws.com": "none",
    });
  });
});

describe("policies/aws.yaml", () => {
  it("signs every AWS host with the client's own service, and nothing outside AWS", async () => {
    expect(
      await matchTable("aws.yaml", [
        "sts.amazonaws.com",
        "my-bucket.s3.eu-west-1.amazonaws.com",
        "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com",
        "dynamodb.us-east-1.amazonaws.com",
        "s3.cn-north-1.amazonaws.com.cn",
        "bedrock-runtime.us-east-1.api.aws",
        "amazonaws.com",
        "amazonaws.com.evil.example",
        "example.com",
      ]),
    ).toStrictEqual({
      "sts.amazonaws.com": "auto",
      "my-bucket.s3.eu-west-1.amazonaws.com": "auto",
      "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com": "s3 sigv4a",
      "dynamodb.us-east-1.amazonaws.com": "auto",
      "s3.cn-north-1.amazonaws.com.cn": "auto",
      "bedrock-runtime.us-east-1.api.aws": "auto",
      "amazonaws.com": "none",
      "amazonaws.com.evil.example": "none",
      "example.com": "none",
    });
  });
});

describe("policies/bedrock.yaml", () => {
  it("signs Bedrock hosts and refuses every other AWS service", async () => {
    expect(
      await matchTable("bedrock.yaml", [
        "bedrock-runtime.us-east-1.amazonaws.com",
        "bedrock-runtime-fips.us-east-1.amazonaws.com",
        "bedrock-runtime.eu-central-1.api.aws",
        "bedrock.us-west-2.amazonaws.com",
        "bedrock-agent.us-west-2.amazonaws.com",
        "bedrock-agent-runtime.us-west-2.amazonaws.com",
        "bedrock-agentcore.us-west-2.amazonaws.com",
        "bedrock-runtime.amazonaws.com",
        "s3.us-east-1.amazonaws.com",
        "sts.amazonaws.com",
      ]),
    ).toStrictEqual({
      "bedrock-runtime.us-east-1.amazonaws.com": "bedrock",
      "bedrock-runtime-fips.us-east-1.amazonaws.com": "bedrock",
      "bedrock-runtime.eu-central-1.api.aws": "bedrock",
      "bedrock.us-west-2.amazonaws.com": "bedrock",
      "bedrock-agent.us-west-2.amazonaws.com": "bedrock",
      "bedrock-agent-runtime.us-west-2.amazonaws.com": "bedrock",
      "bedrock-agentcore.us-west-2.amazonaws.com": "auto",
      "bedrock-runtime.amazonaws.com": "none",
      "s3.us-east-1.amazonaws.com": "none",
      "sts.amazonaws.com": "none",
    });
  });

  it("hashes Bedrock bodies itself (sigv4:body)", async () => {
    const policy = await load("bedrock.yaml");
    expect(new Set(policy.endpoints.map((e) => e.credentialSigning))).toStrictEqual(new Set(["sigv4:body"]));
  });
});
