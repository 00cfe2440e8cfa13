import { describe, expect, it } from "vitest";
import { actionPatternProblem, compileActionPattern, KNOWN_ACTIONS, requestAction, type ActionRequest } from "./actions.js";
import { didYouMean } from "./suggest.js";

function req(method: string, host: string, pathAndQuery: string, headers: Record<string, string> = {}, extra: Partial<ActionRequest> = {}): ActionRequest {
  const q = pathAndQuery.indexOf("?");
  const path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  const query: Record<string, string> = {};
  if (q >= 0) {
    for (const pair of pathAndQuery.slice(q + 1).split("&")) {
      const eq = pair.indexOf("=");
      query[decodeURIComponent(eq < 0 ? pair : pair.slice(0, eq))] = eq < 0 ? "" : decodeURIComponent(pair.slice(eq + 1));
    }
  }
  const lower = new Map(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
  return { method, service: "s3", host, path, query, header: (name) => lower.get(name), noBody: true, ...extra };
}

const VH = "data.s3.eu-west-1.amazonaws.com";
const PS = "s3.eu-west-1.amazonaws.com";

/** "names joined" or "undetermined". */
function action(r: ActionRequest): string {
  const a = requestAction(r);
  return "names" in a ? a.names.join(" ") : "undetermined";
}

describe("requestAction: the S3 operation table (virtual-hosted and path style alike)", () => {
  it.each([
    ["GET", "/k", {}, "s3:GetObject"],
    ["GET", "/k?versionId=3", {}, "s3:GetObjectVersion s3:GetObject"],
    ["GET", "/k?x-id=GetObject&response-content-type=text%2Fplain", {}, "s3:GetObject"],
    ["HEAD", "/k", {}, "s3:GetObject s3:HeadObject"],
    ["PUT", "/k", {}, "s3:PutObject"],
    ["PUT", "/k", { "x-amz-copy-source": "/src/k" }, "s3:PutObject s3:CopyObject"],
    ["DELETE", "/k", {}, "s3:DeleteObject"],
    ["DELETE", "/k?versionId=3", {}, "s3:DeleteObjectVersion s3:DeleteObject"],
    ["POST", "/?delete", {}, "s3:DeleteObject s3:DeleteObjects"],
    ["GET", "/?list-type=2&prefix=a", {}, "s3:ListBucket s3:ListObjectsV2"],
    ["GET", "/?prefix=a&delimiter=%2F", {}, "s3:ListBucket s3:ListObjects"],
    ["GET", "/?versions", {}, "s3:ListBucketVersions s3:ListObjectVersions"],
    ["HEAD", "/", {}, "s3:ListBucket s3:HeadBucket"],
    ["PUT", "/", {}, "s3:CreateBucket"],
    ["DELETE", "/", {}, "s3:DeleteBucket"],
    ["GET", "/?location", {}, "s3:GetBucketLocation"],
    ["POST", "/k?uploads", {}, "s3:PutObject s3:CreateMultipartUpload"],
    ["PUT", "/k?partNumber=1&uploadId=u", {}, "s3:PutObject s3:UploadPart"],
    ["PUT", "/k?partNumber=1&uploadId=u", { "x-amz-copy-source": "/src/k" }, "s3:PutObject s3:UploadPartCopy"],
    ["POST", "/k?uploadId=u", {}, "s3:PutObject s3:CompleteMultipartUpload"],
    ["DELETE", "/k?uploadId=u", {}, "s3:AbortMultipartUpload"],
    ["GET", "/k?uploadId=u", {}, "s3:ListMultipartUploadParts s3:ListParts"],
    ["GET", "/?uploads", {}, "s3:ListBucketMultipartUploads s3:ListMultipartUploads"],
    ["GET", "/k?tagging", {}, "s3:GetObjectTagging"],
    ["PUT", "/k?tagging", {}, "s3:PutObjectTagging"],
    ["DELETE", "/k?tagging", {}, "s3:DeleteObjectTagging"],
    ["GET", "/k?acl", {}, "s3:GetObjectAcl"],
    ["PUT", "/k?acl", {}, "s3:PutObjectAcl"],
    ["GET", "/?tagging", {}, "s3:GetBucketTagging"],
    ["PUT", "/?tagging", {}, "s3:PutBucketTagging"],
    ["GET", "/?acl", {}, "s3:GetBucketAcl"],
    ["PUT", "/?acl", {}, "s3:PutBucketAcl"],
    ["PUT", "/?policy", {}, "s3:PutBucketPolicy"],
  ] as const)("%s %s %j", (method, path, headers, want) => {
    expect(action(req(method, VH, path, headers))).toBe(want);
    expect(action(req(method, PS, `/data${path === "/" || path.startsWith("/?") ? path.slice(1) : path}`, headers))).toBe(want);
  });

  it("GET on the service itself is ListAllMyBuckets (ListBuckets)", () => {
    expect(action(req("GET", PS, "/"))).toBe("s3:ListAllMyBuckets s3:ListBuckets");
  });

  it.each([
    ["an unknown sub-resource", "GET", "/?replication"],
    ["two sub-resources", "GET", "/k?tagging&acl"],
    ["a method S3 has no operation for", "PATCH", "/k"],
    ["a bucket-level POST without ?delete (a browser form upload)", "POST", "/"],
    ["a malformed escape", "GET", "/k%zz"],
  ])("is undetermined for %s", (_name, method, path) => {
    expect(action(req(method, VH, path))).toBe("undetermined");
  });
});

describe("requestAction: JSON, query and Bedrock protocols", () => {
  const json = { "content-type": "application/x-amz-json-1.0" };
  it("takes a JSON protocol's action from X-Amz-Target with the endpoint's service", () => {
    expect(action(req("POST", "dynamodb.eu-west-1.amazonaws.com", "/", { ...json, "x-amz-target": "DynamoDB_20120810.GetItem" }, { service: "dynamodb" }))).toBe("dynamodb:GetItem");
    expect(action(req("POST", "kms.eu-west-1.amazonaws.com", "/", { "content-type": "application/x-amz-json-1.1", "x-amz-target": "TrentService.Decrypt" }, { service: "kms" }))).toBe("kms:Decrypt");
  });

  it("is undetermined for X-Amz-Target without a JSON content-type (a form body would be read by its Action)", () => {
    expect(action(req("POST", "sts.amazonaws.com", "/", { "content-type": "application/x-www-form-urlencoded", "x-amz-target": "X.GetCallerIdentity" }, { service: "sts", noBody: false }))).toBe("undetermined");
  });

  it("takes a query protocol's action from Action= in the query string", () => {
    expect(action(req("GET", "sts.amazonaws.com", "/?Action=GetCallerIdentity&Version=2011-06-15", {}, { service: "sts" }))).toBe("sts:GetCallerIdentity");
  });

  it("is undetermined for Action= with a form body, for both Action and X-Amz-Target, and for neither", () => {
    const form = { "content-type": "application/x-www-form-urlencoded" };
    expect(action(req("POST", "sts.amazonaws.com", "/?Action=GetCallerIdentity", form, { service: "sts", noBody: false }))).toBe("undetermined");
    expect(action(req("POST", "sts.amazonaws.com", "/?Action=GetCallerIdentity", { ...json, "x-amz-target": "X.AssumeRole" }, { service: "sts" }))).toBe("undetermined");
    expect(action(req("POST", "sts.amazonaws.com", "/", form, { service: "sts", noBody: false }))).toBe("undetermined");
  });

  it("reads a query protocol's Action from a form body once it has been read, and asks for it before", () => {
    const form = { "content-type": "application/x-www-form-urlencoded; charset=utf-8" };
    const sts = (query: string, formBody: string | undefined) => requestAction(req("POST", "sts.amazonaws.com", `/${query}`, form, { service: "sts", noBody: false, ...(formBody === undefined ? {} : { formBody }) }));
    expect(sts("", undefined)).toEqual({ undetermined: "a form body, which carries the Action, has not been read", needsBody: true });
    expect(sts("", "Action=GetCallerIdentity&Version=2011-06-15")).toEqual({ names: ["sts:GetCallerIdentity"] });
    expect(sts("?Action=GetCallerIdentity", "Version=2011-06-15")).toEqual({ names: ["sts:GetCallerIdentity"] });
    expect(sts("?Action=GetCallerIdentity", "Action=AssumeRole")).toEqual({ undetermined: "Action both in the query string and in the form body" });
    expect(sts("", "Action=GetCallerIdentity&Action=AssumeRole")).toEqual({ undetermined: "more than one Action in the form body" });
    expect(sts("", "Version=2011-06-15")).toEqual({ undetermined: "no Action in the query string or the form body" });
    expect(sts("", "Action=Get+Caller")).toEqual({ undetermined: "the Action parameter does not name one operation" });
  });

  it("is undetermined for a target or Action that is not one operation name", () => {
    expect(action(req("POST", "dynamodb.eu-west-1.amazonaws.com", "/", { ...json, "x-amz-target": "DynamoDB_20120810.Get Item" }, { service: "dynamodb" }))).toBe("undetermined");
    expect(action(req("GET", "sts.amazonaws.com", "/?Action=a%26b", {}, { service: "sts" }))).toBe("undetermined");
  });

  it.each([
    ["/model/anthropic.claude-v2/invoke", "bedrock:InvokeModel"],
    ["/model/anthropic.claude-v2/invoke-with-response-stream", "bedrock:InvokeModelWithResponseStream"],
    ["/model/anthropic.claude-v2/converse", "bedrock:InvokeModel bedrock:Converse"],
    ["/model/anthropic.claude-v2/converse-stream", "bedrock:InvokeModelWithResponseStream bedrock:ConverseStream"],
    ["/model/a/b/invoke", "undetermined"],
  ])("Bedrock runtime POST %s → %s", (path, want) => {
    expect(action(req("POST", "bedrock-runtime.us-east-1.amazonaws.com", path, {}, { service: "bedrock", noBody: false }))).toBe(want);
  });
});

describe("action patterns", () => {
  it("match as IAM does: case-insensitive, * any run, ? one character", () => {
    const m = (p: string, name: string) => compileActionPattern(p).test(name);
    expect([m("s3:GetObject", "S3:getobject"), m("s3:Get*", "s3:GetObjectTagging"), m("s3:*", "s3:PutObject"), m("s3:?etObject", "s3:GetObject"), m("s3:Get*", "s3:PutObject"), m("s3:GetObject", "s3:GetObjectAcl")]).toEqual([true, true, true, true, false, false]);
  });

  it("are checked against the known services and operations, with the nearest name", () => {
    const problem = (text: string) => actionPatternProblem(text, didYouMean);
    expect([problem("s3:GetObject"), problem("s3:get*"), problem("*"), problem("dynamodb:Query")]).toEqual([undefined, undefined, undefined, undefined]);
    expect(problem("s3:GetObjet")).toBe('action "s3:GetObjet" is not a known s3 action (did you mean "s3:GetObject"?)');
    expect(problem("s3:Frobnicate")).toBe('action "s3:Frobnicate" is not a known s3 action');
    expect(problem("s4:GetObject")).toBe('action "s4:GetObject" names unknown service "s4" (did you mean "s3"?)');
    expect(problem("athena:StartQueryExecution")).toBe(`action "athena:StartQueryExecution" names unknown service "athena" (known: ${Object.keys(KNOWN_ACTIONS).join(", ")})`);
    expect(problem("GetObject")).toBe('action "GetObject" must be service:Operation, e.g. s3:GetObject');
    expect(problem("s3:Zz*")).toBe('action "s3:Zz*" is not a known s3 action');
  });

  it("every name the S3 table derives is a known action", () => {
    const s3 = new Set(KNOWN_ACTIONS["s3"]);
    for (const [m, p] of [["GET", "/k?versionId=1"], ["DELETE", "/k?versionId=1"], ["GET", "/?list-type=2"], ["PUT", "/k?uploadId=u"], ["HEAD", "/"], ["POST", "/k?uploads"]] as const) {
      const a = requestAction(req(m, VH, p));
      for (const n of "names" in a ? a.names : []) expect(s3.has(n.slice(3))).toBe(true);
    }
  });
});
