/**
 * Action rules through REAL Envoy with the AWS SDK for JavaScript v3 (README "Access rules",
 * actions): a DynamoDB endpoint whose rules allow GetItem and PutItem by their IAM action (read
 * from X-Amz-Target) signs those and refuses DeleteItem and Scan before anything reaches AWS; an
 * S3 endpoint that denies s3:DeleteObject and s3:DeleteObjects by action and allows s3:* signs
 * uploads and refuses both kinds of delete; an STS endpoint that allows sts:GetCallerIdentity reads
 * the Action from the SDK's form body (countersign asks Envoy for it) and refuses AssumeRole; a
 * Bedrock runtime endpoint allows InvokeModel (and Converse, which IAM authorises as InvokeModel)
 * for one model family, matched by the model id in the path. Each
 * decision log line names the action the rules read.
 */
import { DeleteItemCommand, type DynamoDBClient, DynamoDBServiceException, GetItemCommand, PutItemCommand, ScanCommand } from "@aws-sdk/client-dynamodb";
import { CreateBucketCommand, DeleteObjectCommand, DeleteObjectsCommand, PutObjectCommand, S3ServiceException } from "@aws-sdk/client-s3";
import { ConverseCommand, InvokeModelCommand } from "@aws-sdk/client-bedrock-runtime";
import { AssumeRoleCommand, GetCallerIdentityCommand, STSServiceException } from "@aws-sdk/client-sts";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bedrockClient, dynamoClient, s3Client, stsClient } from "./clients.js";
import { REAL, startStack, type Stack } from "./harness.js";
import { runBoto3Policy } from "./boto3Policy.js";

const POLICY = `version: 1
credentials:
  workload:
    static:
      access_key_id_env: COUNTERSIGN_AWS_ACCESS_KEY_ID
      secret_access_key_env: COUNTERSIGN_AWS_SECRET_ACCESS_KEY
endpoints:
  - host: "dynamodb.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: dynamodb
    credentials: workload
    rules:
      - { effect: allow, actions: ["dynamodb:GetItem", "dynamodb:PutItem"] }
  - host: "bedrock-runtime.*.amazonaws.com"
    credential_signing: sigv4:body
    signing_service: bedrock
    credentials: workload
    rules:
      - { effect: allow, actions: ["bedrock:InvokeModel"], paths: ["/model/anthropic.*/*"] }
  - host: "sts.amazonaws.com"
    credential_signing: sigv4
    signing_service: sts
    credentials: workload
    rules:
      - { effect: allow, actions: ["sts:GetCallerIdentity"] }
  - host: "*.s3.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: workload
    rules:
      - { effect: deny, actions: ["s3:DeleteObject", "s3:DeleteObjects"] }
      - { effect: allow, actions: ["s3:*"] }
`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ policy: POLICY });
});
afterAll(async () => {
  await stack?.close();
});

function reachedSince(start: number): Array<[string | undefined, boolean, string | undefined]> {
  return stack.fake.requests.slice(start).map((r) => [r.operation, r.verified, r.accessKeyId]);
}

/**
 * Status and error code of a refusal. The S3 client parses countersign's XML error; the DynamoDB
 * client (a JSON protocol) cannot parse an XML body and throws its SyntaxError with the response
 * attached, and the STS client (query protocol) names it "Unknown": for both, the code is read
 * from the x-amzn-errortype header.
 */
async function refused(send: Promise<unknown>): Promise<[number | undefined, string]> {
  try {
    await send;
  } catch (err) {
    if (err instanceof DynamoDBServiceException || err instanceof S3ServiceException) return [err.$metadata.httpStatusCode, err.name];
    // The query protocol's parser expects <ErrorResponse> and names countersign's <Error> "Unknown".
    if (err instanceof STSServiceException) return [err.$metadata.httpStatusCode, err.$response?.headers["x-amzn-errortype"] ?? err.name];
    const response = (err as { $response?: { statusCode?: number; headers?: Record<string, string> } }).$response;
    if (response !== undefined) return [response.statusCode, response.headers?.["x-amzn-errortype"] ?? ""];
    throw err;
  }
  throw new Error("the request was not refused");
}

/** The decision log line of the next refusal, after `from` lines. */
async function refusalLine(from: number): Promise<Record<string, unknown>> {
  const line = await stack.serve.waitForLine((l) => stack.serve.lines.indexOf(l) >= from && l.includes('"decision":"refused"'));
  return JSON.parse(line) as Record<string, unknown>;
}

describe("actions: DynamoDB through real Envoy", () => {
  const key = { pk: { S: "k1" } };

  it("signs GetItem and PutItem, which the rule allows by action; AWS verifies them with the real key", async () => {
    const ddb = dynamoClient(stack);
    const start = stack.fake.requests.length;
    await ddb.send(new PutItemCommand({ TableName: "t", Item: { ...key, v: { S: "x" } } }));
    await ddb.send(new GetItemCommand({ TableName: "t", Key: key }));
    expect(reachedSince(start)).toEqual([
      ["PutItem", true, REAL.accessKeyId],
      ["GetItem", true, REAL.accessKeyId],
    ]);
  });

  it.each([
    ["DeleteItem", (ddb: DynamoDBClient) => ddb.send(new DeleteItemCommand({ TableName: "t", Key: key }))],
    ["Scan", (ddb: DynamoDBClient) => ddb.send(new ScanCommand({ TableName: "t" }))],
  ] as const)("refuses %s (no rule allows it) with 403 AccessDenied; nothing reaches AWS; the log names the action", async (op, send) => {
    const start = stack.fake.requests.length;
    const logFrom = stack.serve.lines.length;
    expect(await refused(send(dynamoClient(stack)))).toEqual([403, "AccessDenied"]);
    expect(reachedSince(start)).toEqual([]);
    expect(await refusalLine(logFrom)).toMatchObject({ host: "dynamodb.eu-west-1.amazonaws.com", reason: "rule", status: 403, action: `dynamodb:${op}` });
  });
});

describe("actions: S3 through real Envoy", () => {
  it("signs CreateBucket and PutObject (s3:*), refuses DeleteObject and DeleteObjects by the deny rule", async () => {
    const s3 = s3Client(stack);
    const start = stack.fake.requests.length;
    await s3.send(new CreateBucketCommand({ Bucket: "acts" }));
    await s3.send(new PutObjectCommand({ Bucket: "acts", Key: "k", Body: "v" }));
    expect(reachedSince(start)).toEqual([
      ["CreateBucket", true, REAL.accessKeyId],
      ["PutObject", true, REAL.accessKeyId],
    ]);
    let logFrom = stack.serve.lines.length;
    expect(await refused(s3.send(new DeleteObjectCommand({ Bucket: "acts", Key: "k" })))).toEqual([403, "AccessDenied"]);
    expect(await refusalLine(logFrom)).toMatchObject({ reason: "rule", action: "s3:DeleteObject" });
    logFrom = stack.serve.lines.length;
    expect(await refused(s3.send(new DeleteObjectsCommand({ Bucket: "acts", Delete: { Objects: [{ Key: "k" }] } })))).toEqual([403, "AccessDenied"]);
    expect(await refusalLine(logFrom)).toMatchObject({ reason: "rule", action: "s3:DeleteObject s3:DeleteObjects" });
    expect(reachedSince(start)).toHaveLength(2);
    expect(stack.fake.s3.listKeys("acts")).toEqual(["k"]);
  });
});

describe("actions: STS, the Action in a form body, through real Envoy", () => {
  it("signs GetCallerIdentity, whose Action the SDK sends in the form body", async () => {
    const start = stack.fake.requests.length;
    const id = await stsClient(stack).send(new GetCallerIdentityCommand({}));
    expect(id.UserId).toBe(REAL.accessKeyId);
    expect(reachedSince(start)).toEqual([["GetCallerIdentity", true, REAL.accessKeyId]]);
  });

  it("refuses AssumeRole, read from the form body, with 403 AccessDenied; nothing reaches AWS", async () => {
    const start = stack.fake.requests.length;
    const logFrom = stack.serve.lines.length;
    expect(await refused(stsClient(stack).send(new AssumeRoleCommand({ RoleArn: "arn:aws:iam::123456789012:role/x", RoleSessionName: "s" })))).toEqual([403, "AccessDenied"]);
    expect(reachedSince(start)).toEqual([]);
    expect(await refusalLine(logFrom)).toMatchObject({ host: "sts.amazonaws.com", reason: "rule", status: 403, action: "sts:AssumeRole" });
  });
});

describe("actions: STS with boto3 through real Envoy", () => {
  it("get_caller_identity is signed; assume_role, read from boto3's form body, is refused with 403 AccessDenied", async () => {
    const start = stack.fake.requests.length;
    const out = await runBoto3Policy(stack, "sts");
    // boto3's query-protocol parser looks for <ErrorResponse> and finds no code in countersign's
    // S3-shaped <Error> body (README "Access rules"); the status and x-amzn-errortype say it.
    expect(out).toEqual({ user: REAL.accessKeyId, assume_role: { status: 403, code: null, errortype: "AccessDenied" } });
    expect(reachedSince(start)).toEqual([["GetCallerIdentity", true, REAL.accessKeyId]]);
  }, 120_000);
});

describe("actions: DynamoDB with boto3 through real Envoy", () => {
  it("put_item and get_item are signed; delete_item is refused with 403", async () => {
    const start = stack.fake.requests.length;
    const out = await runBoto3Policy(stack, "dynamodb");
    // botocore's JSON parser finds no __type in countersign's XML body and falls back to the
    // status as the code; x-amzn-errortype carries AccessDenied.
    expect(out).toEqual({ delete_item: { status: 403, code: "403", errortype: "AccessDenied" } });
    expect(reachedSince(start)).toEqual([
      ["PutItem", true, REAL.accessKeyId],
      ["GetItem", true, REAL.accessKeyId],
    ]);
  }, 120_000);
});

describe("actions and paths: Bedrock runtime through real Envoy", () => {
  const body = JSON.stringify({ messages: [{ role: "user", content: "hi" }] });

  it("signs InvokeModel and Converse for an anthropic model (its id, %3A included, decoded in the path)", async () => {
    const start = stack.fake.requests.length;
    const bedrock = bedrockClient(stack);
    await bedrock.send(new InvokeModelCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", contentType: "application/json", body }));
    await bedrock.send(new ConverseCommand({ modelId: "anthropic.claude-3-haiku-20240307-v1:0", messages: [{ role: "user", content: [{ text: "hi" }] }] }));
    expect(reachedSince(start)).toEqual([
      ["InvokeModel", true, REAL.accessKeyId],
      ["Converse", true, REAL.accessKeyId],
    ]);
  });

  it("refuses another model family with 403; nothing reaches AWS; the log names the action", async () => {
    const start = stack.fake.requests.length;
    const logFrom = stack.serve.lines.length;
    expect(await refused(bedrockClient(stack).send(new InvokeModelCommand({ modelId: "meta.llama3-8b-instruct-v1:0", contentType: "application/json", body })))).toEqual([403, "AccessDenied"]);
    expect(reachedSince(start)).toEqual([]);
    expect(await refusalLine(logFrom)).toMatchObject({ host: "bedrock-runtime.us-west-2.amazonaws.com", reason: "rule", status: 403 });
  });
});
