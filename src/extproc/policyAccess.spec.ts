/**
 * An endpoint's `access` and `enforcement` through one ext_proc stream: a refusal is 403
 * AccessDenied naming the endpoint, reported with reason "access"; audit mode signs the same
 * request and reports what would have refused it.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { requestBodyMessage, requestHead, requestHeadersMessage } from "../../test/fuzz/support/messages.js";
import { headersSetBy, inProcessContext, refusalOf } from "../../test/support/extProcHarness.js";
import { policyFrom } from "../../test/support/policyFrom.js";
import { ExtProcStream } from "./stream.js";

const CREDS = { accessKeyId: "AKIAACCESSSPEC000001", secretAccessKey: "access/spec/secret/0000000000000000000001" };
const POLICY = policyFrom(`version: 1
credentials:
  main:
    static: { access_key_id_env: ACCESS_ID, secret_access_key_env: ACCESS_SECRET }
endpoints:
  - host: "datasets.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
    access: read-only
  - host: "uploads.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
    access: read-write
  - host: "trial.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
    access: read-only
    enforcement: audit
  - host: "ruled.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
    rules:
      - { effect: deny, s3: { key: "public/secret/**" } }
      - { effect: allow, methods: [GET, HEAD], s3: { bucket: ruled, key: "public/**" } }
  - host: "ruled-trial.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
    enforcement: audit
    rules:
      - { effect: allow, methods: [GET], s3: { key: "public/**" } }
      - { effect: deny, s3: { key: "private/secret/**" } }
  - host: "dynamodb.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: dynamodb
    credentials: main
    rules:
      - { effect: allow, actions: ["dynamodb:GetItem", "dynamodb:Query"] }
  - host: "sts.amazonaws.com"
    credential_signing: sigv4
    signing_service: sts
    credentials: main
    rules:
      - { effect: allow, actions: ["sts:GetCallerIdentity"] }
  - host: "*.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
`);

async function send(method: string, host: string, path = "/key", extra: Array<[string, string]> = []) {
  const { ctx, decisions } = inProcessContext(POLICY, CREDS);
  const stream = new ExtProcStream(ctx);
  const head = requestHead(method, host, path, [["x-request-id", "rid-access"], ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"], ...extra]);
  const response = await stream.handle(requestHeadersMessage(head, true));
  return { response, decisions };
}

describe("access: enforce", () => {
  it.each([
    ["GET", "datasets"],
    ["HEAD", "datasets"],
    ["PUT", "uploads"],
    ["POST", "uploads"],
    ["DELETE", "other"],
  ])("%s on %s is signed", async (method, bucket) => {
    const { response, decisions } = await send(method, `${bucket}.s3.eu-west-1.amazonaws.com`);
    expect(refusalOf(response)).toBeUndefined();
    expect(headersSetBy(response).get("authorization")).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAACCESSSPEC000001\//);
    expect(decisions.map((d) => [d.decision, d.reason, d.audit])).toEqual([["signed", "signed", undefined]]);
  });

  it("PUT on a read-only endpoint is 403 AccessDenied naming the endpoint, reported with reason access", async () => {
    const { response, decisions } = await send("PUT", "datasets.s3.eu-west-1.amazonaws.com");
    const refusal = refusalOf(response);
    expect({ status: refusal?.status, code: refusal?.code, message: refusal?.message, denial: refusal?.headers.get("x-countersign-denial") }).toEqual({
      status: 403,
      code: "AccessDenied",
      message: "endpoints[0] (datasets.s3.eu-west-1.amazonaws.com) is read-only (GET, HEAD, OPTIONS): PUT is not allowed",
      denial: "access",
    });
    expect(decisions.map((d) => [d.decision, d.reason, d.status, d.endpointIndex])).toEqual([["refused", "access", 403, 0]]);
  });

  it("DELETE on a read-write endpoint is refused, and so is S3 DeleteObjects (POST ?delete)", async () => {
    const del = await send("DELETE", "uploads.s3.eu-west-1.amazonaws.com");
    expect(refusalOf(del.response)?.message).toBe("endpoints[1] (uploads.s3.eu-west-1.amazonaws.com) is read-write (GET, HEAD, OPTIONS, POST, PUT, PATCH): DELETE is not allowed");
    const multi = await send("POST", "uploads.s3.eu-west-1.amazonaws.com", "/?delete");
    expect(refusalOf(multi.response)?.message).toBe("endpoints[1] (uploads.s3.eu-west-1.amazonaws.com) is read-write: S3 DeleteObjects (POST ?delete) deletes objects and is not allowed");
    expect(multi.decisions.map((d) => d.reason)).toEqual(["access"]);
  });
});

describe("access: audit", () => {
  it("signs a PUT that read-only would refuse, and reports the check that would have refused it", async () => {
    const { response, decisions } = await send("PUT", "trial.s3.eu-west-1.amazonaws.com");
    expect(refusalOf(response)).toBeUndefined();
    expect(headersSetBy(response).get("authorization")).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAACCESSSPEC000001\//);
    expect(decisions.map((d) => [d.decision, d.reason, d.audit])).toEqual([
      ["signed", "signed", { reason: "access", message: "endpoints[2] (trial.s3.eu-west-1.amazonaws.com) is read-only (GET, HEAD, OPTIONS): PUT is not allowed" }],
    ]);
  });

  it("reports nothing for a request the endpoint allows", async () => {
    const { decisions } = await send("GET", "trial.s3.eu-west-1.amazonaws.com");
    expect(decisions.map((d) => [d.decision, d.audit])).toEqual([["signed", undefined]]);
  });
});

describe("rules", () => {
  it("signs what the first matching rule allows; the virtual-hosted bucket is read case-insensitively", async () => {
    for (const host of ["ruled.s3.eu-west-1.amazonaws.com", "RULED.s3.eu-west-1.amazonaws.com"]) {
      const { response, decisions } = await send("GET", host, "/public/a%2Fb.txt");
      expect(refusalOf(response)).toBeUndefined();
      expect(decisions.map((d) => [d.decision, d.audit])).toEqual([["signed", undefined]]);
    }
  });

  it("refuses by a deny rule with 403 AccessDenied naming the endpoint and the rule, reported with reason rule", async () => {
    const { response, decisions } = await send("GET", "ruled.s3.eu-west-1.amazonaws.com", "/public/secret/k");
    const refusal = refusalOf(response);
    expect({ status: refusal?.status, code: refusal?.code, message: refusal?.message, denial: refusal?.headers.get("x-countersign-denial") }).toEqual({
      status: 403,
      code: "AccessDenied",
      message: "endpoints[3] (ruled.s3.eu-west-1.amazonaws.com): rules[0] (deny) refuses this request",
      denial: "rule",
    });
    expect(decisions.map((d) => [d.decision, d.reason])).toEqual([["refused", "rule"]]);
  });

  it("refuses what no rule matches", async () => {
    const { response } = await send("PUT", "ruled.s3.eu-west-1.amazonaws.com", "/public/k");
    expect(refusalOf(response)?.message).toBe("endpoints[3] (ruled.s3.eu-west-1.amazonaws.com): no rule allows this request (PUT); rules are tried in order and the first match decides");
  });

  it("in audit mode signs what a deny rule refuses and reports the rule's index", async () => {
    const { response, decisions } = await send("GET", "ruled-trial.s3.eu-west-1.amazonaws.com", "/private/secret/k");
    expect(refusalOf(response)).toBeUndefined();
    expect(decisions.map((d) => [d.decision, d.audit])).toEqual([
      ["signed", { reason: "rule", rule: 1, message: "endpoints[4] (ruled-trial.s3.eu-west-1.amazonaws.com): rules[1] (deny) refuses this request" }],
    ]);
  });

  it("in audit mode signs what no rule matches and reports it with reason rule", async () => {
    const { response, decisions } = await send("DELETE", "ruled-trial.s3.eu-west-1.amazonaws.com", "/private/k");
    expect(refusalOf(response)).toBeUndefined();
    expect(decisions.map((d) => [d.decision, d.audit])).toEqual([
      ["signed", { reason: "rule", message: "endpoints[4] (ruled-trial.s3.eu-west-1.amazonaws.com): no rule allows this request (DELETE); rules are tried in order and the first match decides" }],
    ]);
  });
});

describe("rules: actions", () => {
  const dynamo = (target: string | undefined) =>
    send("POST", "dynamodb.eu-west-1.amazonaws.com", "/", [["content-type", "application/x-amz-json-1.0"], ...(target === undefined ? [] : [["x-amz-target", target] as [string, string]])]);

  it("signs an allowed action and reports the action the rules read", async () => {
    const { response, decisions } = await dynamo("DynamoDB_20120810.GetItem");
    expect(refusalOf(response)).toBeUndefined();
    expect(decisions.map((d) => [d.decision, d.action])).toEqual([["signed", "dynamodb:GetItem"]]);
  });

  it("refuses another action (reason rule) and reports it", async () => {
    const { response, decisions } = await dynamo("DynamoDB_20120810.DeleteItem");
    expect([refusalOf(response)?.status, refusalOf(response)?.code]).toEqual([403, "AccessDenied"]);
    expect(decisions.map((d) => [d.reason, d.action])).toEqual([["rule", "dynamodb:DeleteItem"]]);
  });

  it("refuses a request whose action cannot be determined, and says why in the decision", async () => {
    const { response, decisions } = await dynamo(undefined);
    expect(refusalOf(response)?.status).toBe(403);
    expect(decisions.map((d) => [d.reason, d.action])).toEqual([["rule", "undetermined: no X-Amz-Target header or Action parameter (a form body is not read)"]]);
  });
});

describe("rules: a query protocol's Action in a form body", () => {
  async function sts(body: string, extra: Array<[string, string]> = []) {
    const { ctx, decisions } = inProcessContext(POLICY, CREDS);
    const stream = new ExtProcStream(ctx);
    const head = requestHead("POST", "sts.amazonaws.com", "/", [["x-request-id", "rid-sts"], ["content-type", "application/x-www-form-urlencoded; charset=utf-8"], ["content-length", String(body.length)], ...extra]);
    const first = await stream.handle(requestHeadersMessage(head, false));
    const second = await stream.handle(requestBodyMessage(Buffer.from(body), true));
    return { first, second, decisions };
  }

  it("asks for the body, then signs an allowed Action and reports it", async () => {
    const { first, second, decisions } = await sts("Action=GetCallerIdentity&Version=2011-06-15");
    expect([refusalOf(first), first.mode_override?.request_body_mode]).toEqual([undefined, "BUFFERED"]);
    expect(refusalOf(second)).toBeUndefined();
    expect(headersSetBy(second).get("authorization")).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAACCESSSPEC000001\//);
    expect(decisions.map((d) => [d.decision, d.action])).toEqual([["signed", "sts:GetCallerIdentity"]]);
  });

  it("refuses another Action when the body arrives (403, reason rule), signing nothing", async () => {
    const { second, decisions } = await sts("Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fx&RoleSessionName=s&Version=2011-06-15");
    expect([refusalOf(second)?.status, refusalOf(second)?.code, headersSetBy(second).get("authorization")]).toEqual([403, "AccessDenied", undefined]);
    expect(decisions.map((d) => [d.decision, d.reason, d.action])).toEqual([["refused", "rule", "sts:AssumeRole"]]);
  });

  it("asks for the body even when the client sent its hash (the SDKs do), and signs with the body's hash", async () => {
    const body = "Action=GetCallerIdentity&Version=2011-06-15";
    const hash = createHash("sha256").update(body).digest("hex");
    const { first, second, decisions } = await sts(body, [["x-amz-content-sha256", hash]]);
    expect(first.mode_override?.request_body_mode).toBe("BUFFERED");
    expect(headersSetBy(second).get("x-amz-content-sha256")).toBe(hash);
    expect(decisions.map((d) => [d.decision, d.payloadMode, d.action])).toEqual([["signed", "buffered-body", "sts:GetCallerIdentity"]]);
  });
});
