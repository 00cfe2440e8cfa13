/**
 * JSON echo services: Bedrock Runtime (REST-JSON) and DynamoDB (JSON-RPC 1.0). They exist so
 * tests can prove a JSON request arrived intact and verified; they answer with what they got.
 */
import { awsError, type AwsError } from "./errors.js";
import { headerValue, percentDecode, type HeaderList } from "./verifier.js";

export interface JsonResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  operation: string;
}

function parseJsonOrText(body: Buffer): unknown {
  const text = body.toString("utf8");
  if (text === "") return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

const BEDROCK_ROUTE = /^\/model\/([^/]+)\/(invoke|converse)$/;

/** `POST /model/{modelId}/invoke` → `{ echo, modelId }`; `…/converse` → a Converse answer echoing the request. */
export function handleBedrock(method: string, rawPath: string, body: Buffer): JsonResponse | AwsError {
  const route = BEDROCK_ROUTE.exec(rawPath);
  if (method !== "POST" || !route) return awsError(404, "UnknownOperationException", `fakeaws bedrock-runtime has no route ${method} ${rawPath}`, "operation");
  const modelId = percentDecode(route[1] as string);
  const echo = parseJsonOrText(body);
  if (route[2] === "invoke") {
    return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify({ echo, modelId }), operation: "InvokeModel" };
  }
  const answer = {
    output: { message: { role: "assistant", content: [{ text: JSON.stringify({ echo, modelId }) }] } },
    stopReason: "end_turn",
    usage: { inputTokens: 1, outputTokens: 1, totalTokens: 2 },
    metrics: { latencyMs: 1 },
  };
  return { status: 200, headers: { "content-type": "application/json" }, body: JSON.stringify(answer), operation: "Converse" };
}

const DYNAMODB_PREFIX = "DynamoDB_20120810.";
export const DYNAMODB_CONTENT_TYPE = "application/x-amz-json-1.0";

/** `x-amz-target: DynamoDB_20120810.<Op>` → `{ echo, operation }`. */
export function handleDynamoDb(method: string, headers: HeaderList, body: Buffer): JsonResponse | AwsError {
  const target = headerValue(headers, "x-amz-target") ?? "";
  if (method !== "POST" || !target.startsWith(DYNAMODB_PREFIX)) {
    return awsError(400, "UnknownOperationException", `fakeaws dynamodb: unknown target '${target}'`, "operation");
  }
  const contentType = headerValue(headers, "content-type") ?? "";
  if (!contentType.startsWith(DYNAMODB_CONTENT_TYPE)) {
    return awsError(400, "SerializationException", `Expected content type ${DYNAMODB_CONTENT_TYPE}, got '${contentType}'`, "operation");
  }
  const operation = target.slice(DYNAMODB_PREFIX.length);
  return {
    status: 200,
    headers: { "content-type": DYNAMODB_CONTENT_TYPE },
    body: JSON.stringify({ echo: parseJsonOrText(body), operation }),
    operation,
  };
}
