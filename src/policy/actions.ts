/**
 * What API action a request performs, named as in IAM (`service:Operation`), for the `actions`
 * field of an endpoint's rules. Pure: reads the method, host, path, query and headers only.
 *
 * A request gets every name that describes it: its IAM action and, where the SDK operation is
 * named differently, the operation too (HeadObject is `s3:GetObject` and `s3:HeadObject`;
 * ListObjectsV2 is `s3:ListBucket` and `s3:ListObjectsV2`; DeleteObjects is `s3:DeleteObject` and
 * `s3:DeleteObjects`). A rule matches when one of its patterns matches one of the names.
 *
 * Sources, by protocol:
 * - S3 (REST): the table below, from the method, whether there is a bucket and a key, the
 *   sub-resource in the query, and `x-amz-copy-source`;
 * - JSON protocols: `X-Amz-Target` (`DynamoDB_20120810.GetItem` → `dynamodb:GetItem`), only with
 *   an `application/x-amz-json-*` content-type (a form body would be read by its `Action`);
 * - query protocols: `Action=` in a form-encoded body (read once the body has been buffered) or in
 *   the query string; in both at once it is undetermined;
 * - Bedrock runtime: the model operations from the path.
 * Anything else, or both a target and an Action, is undetermined: it matches no allow rule with
 * `actions`, and a deny rule with `actions` refuses it (rules.ts).
 */
import { s3Address, S3_SERVICES } from "./rules.js";

/** The facts of a request the action table reads. */
export interface ActionRequest {
  readonly method: string;
  readonly service: string;
  /** Normalised host. */
  readonly host: string;
  /** Path as sent, without the query. */
  readonly path: string;
  readonly query: Readonly<Record<string, unknown>>;
  /** Header value by lower-case name. */
  header(name: string): string | undefined;
  /** True when no body follows the headers. */
  readonly noBody: boolean;
  /** A form-encoded body's text, once it has been read; undefined before. */
  readonly formBody?: string;
}

/** The names of the request's action, or why it has none. */
export type ActionResult =
  | { readonly names: readonly string[] }
  /** `needsBody`: a form body, not read yet, decides it. */
  | { readonly undetermined: string; readonly needsBody?: true };

/** Known services (IAM prefixes) and their operations, for validation and "did you mean". */
export const KNOWN_ACTIONS: Readonly<Record<string, readonly string[]>> = {
  s3: [
    "GetObject", "GetObjectVersion", "HeadObject", "PutObject", "CopyObject", "DeleteObject", "DeleteObjectVersion", "DeleteObjects",
    "ListBucket", "ListObjects", "ListObjectsV2", "ListBucketVersions", "ListObjectVersions", "ListAllMyBuckets", "ListBuckets",
    "HeadBucket", "CreateBucket", "DeleteBucket", "GetBucketLocation", "CreateMultipartUpload", "UploadPart", "UploadPartCopy",
    "CompleteMultipartUpload", "AbortMultipartUpload", "ListMultipartUploadParts", "ListParts", "ListBucketMultipartUploads",
    "ListMultipartUploads", "GetObjectTagging", "PutObjectTagging", "DeleteObjectTagging", "GetObjectAcl", "PutObjectAcl",
    "GetBucketTagging", "PutBucketTagging", "DeleteBucketTagging", "GetBucketAcl", "PutBucketAcl", "GetBucketPolicy",
    "PutBucketPolicy", "DeleteBucketPolicy", "GetBucketVersioning", "PutBucketVersioning", "GetObjectAttributes", "RestoreObject",
    "SelectObjectContent",
  ],
  dynamodb: [
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem", "TransactGetItems",
    "TransactWriteItems", "DescribeTable", "ListTables", "CreateTable", "DeleteTable", "UpdateTable", "DescribeTimeToLive",
    "ExecuteStatement", "BatchExecuteStatement", "ExecuteTransaction", "DescribeEndpoints", "ListTagsOfResource", "TagResource",
    "UntagResource",
  ],
  sts: ["GetCallerIdentity", "AssumeRole", "AssumeRoleWithWebIdentity", "AssumeRoleWithSAML", "GetSessionToken", "GetFederationToken", "DecodeAuthorizationMessage", "GetAccessKeyInfo", "TagSession"],
  sqs: [
    "SendMessage", "SendMessageBatch", "ReceiveMessage", "DeleteMessage", "DeleteMessageBatch", "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch", "GetQueueUrl", "GetQueueAttributes", "SetQueueAttributes", "ListQueues", "CreateQueue",
    "DeleteQueue", "PurgeQueue", "ListQueueTags", "TagQueue", "UntagQueue",
  ],
  sns: ["Publish", "PublishBatch", "Subscribe", "Unsubscribe", "ListTopics", "CreateTopic", "DeleteTopic", "ListSubscriptions", "ListSubscriptionsByTopic", "GetTopicAttributes", "SetTopicAttributes"],
  kms: [
    "Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateDataKeyPair", "GenerateRandom",
    "DescribeKey", "ListKeys", "ListAliases", "Sign", "Verify", "GetPublicKey", "CreateKey", "ScheduleKeyDeletion",
  ],
  secretsmanager: ["GetSecretValue", "BatchGetSecretValue", "DescribeSecret", "ListSecrets", "PutSecretValue", "CreateSecret", "UpdateSecret", "DeleteSecret", "RotateSecret"],
  bedrock: ["InvokeModel", "InvokeModelWithResponseStream", "Converse", "ConverseStream", "ListFoundationModels", "GetFoundationModel", "ApplyGuardrail"],
  logs: ["PutLogEvents", "CreateLogGroup", "CreateLogStream", "DescribeLogGroups", "DescribeLogStreams", "GetLogEvents", "FilterLogEvents"],
};

/** IAM prefixes that differ from the SigV4 signing service. */
const IAM_PREFIX: Readonly<Record<string, string>> = { monitoring: "cloudwatch", "s3express": "s3express", "s3-outposts": "s3-outposts" };

/** Query parameters that never change which S3 operation a request is. */
const S3_NEUTRAL_PARAMS = new Set([
  "x-id", "versionId", "partNumber", "list-type", "prefix", "delimiter", "marker", "max-keys", "encoding-type", "continuation-token",
  "fetch-owner", "start-after", "key-marker", "version-id-marker", "upload-id-marker", "max-uploads", "max-parts",
  "part-number-marker", "response-content-type", "response-content-language", "response-expires", "response-cache-control",
  "response-content-disposition", "response-content-encoding", "optional-object-attributes",
]);

type S3Table = Readonly<Record<string, readonly string[]>>;

/** Object-level sub-resources: method → sub-resource → names ("" = none). */
const S3_OBJECT: Readonly<Record<string, S3Table>> = {
  GET: {
    "": ["GetObject"],
    tagging: ["GetObjectTagging"],
    acl: ["GetObjectAcl"],
    uploadId: ["ListMultipartUploadParts", "ListParts"],
    attributes: ["GetObjectAttributes", "GetObject"],
  },
  HEAD: { "": ["GetObject", "HeadObject"] },
  PUT: {
    "": ["PutObject"],
    tagging: ["PutObjectTagging"],
    acl: ["PutObjectAcl"],
    uploadId: ["PutObject", "UploadPart"],
  },
  POST: {
    uploads: ["PutObject", "CreateMultipartUpload"],
    uploadId: ["PutObject", "CompleteMultipartUpload"],
    restore: ["RestoreObject"],
    select: ["GetObject", "SelectObjectContent"],
  },
  DELETE: {
    "": ["DeleteObject"],
    tagging: ["DeleteObjectTagging"],
    uploadId: ["AbortMultipartUpload"],
  },
};

/** Bucket-level sub-resources. */
const S3_BUCKET: Readonly<Record<string, S3Table>> = {
  GET: {
    "": ["ListBucket", "ListObjects"],
    versions: ["ListBucketVersions", "ListObjectVersions"],
    uploads: ["ListBucketMultipartUploads", "ListMultipartUploads"],
    location: ["GetBucketLocation"],
    tagging: ["GetBucketTagging"],
    acl: ["GetBucketAcl"],
    policy: ["GetBucketPolicy"],
    versioning: ["GetBucketVersioning"],
  },
  HEAD: { "": ["ListBucket", "HeadBucket"] },
  PUT: { "": ["CreateBucket"], tagging: ["PutBucketTagging"], acl: ["PutBucketAcl"], policy: ["PutBucketPolicy"], versioning: ["PutBucketVersioning"] },
  POST: { delete: ["DeleteObject", "DeleteObjects"] },
  DELETE: { "": ["DeleteBucket"], tagging: ["DeleteBucketTagging"], policy: ["DeleteBucketPolicy"] },
};

const OPERATION = /^[A-Za-z][A-Za-z0-9]{0,127}$/;

export function requestAction(request: ActionRequest): ActionResult {
  if (S3_SERVICES.has(request.service)) return s3Action(request);
  const prefix = IAM_PREFIX[request.service] ?? request.service;
  const target = request.header("x-amz-target");
  const action = request.query["Action"];
  if (target !== undefined && action !== undefined) return { undetermined: "the request carries both X-Amz-Target and an Action parameter" };
  if (target !== undefined) {
    const contentType = request.header("content-type") ?? "";
    if (!/^application\/x-amz-json-1\.[01]\b/i.test(contentType)) {
      return { undetermined: "X-Amz-Target without an application/x-amz-json content-type" };
    }
    const operation = target.slice(target.lastIndexOf(".") + 1);
    if (!OPERATION.test(operation)) return { undetermined: "X-Amz-Target does not name an operation" };
    return { names: [`${prefix}:${operation}`] };
  }
  const formBody = !request.noBody && /^application\/x-www-form-urlencoded\b/i.test(request.header("content-type") ?? "");
  if (formBody) {
    if (request.formBody === undefined) return { undetermined: "a form body, which carries the Action, has not been read", needsBody: true };
    const inBody = new URLSearchParams(request.formBody).getAll("Action");
    if (inBody.length > 0 && action !== undefined) return { undetermined: "Action both in the query string and in the form body" };
    if (inBody.length > 1) return { undetermined: "more than one Action in the form body" };
    const only = inBody[0] ?? action;
    if (only === undefined) return { undetermined: "no Action in the query string or the form body" };
    if (typeof only !== "string" || !OPERATION.test(only)) return { undetermined: "the Action parameter does not name one operation" };
    return { names: [`${prefix}:${only}`] };
  }
  if (action !== undefined) {
    if (typeof action !== "string" || !OPERATION.test(action)) return { undetermined: "the Action parameter does not name one operation" };
    return { names: [`${prefix}:${action}`] };
  }
  if (request.service === "bedrock") return bedrockAction(request);
  return { undetermined: "no X-Amz-Target header or Action parameter (a form body is not read)" };
}

function s3Action(request: ActionRequest): ActionResult {
  const method = request.method.toUpperCase();
  const at = s3Address(request.host, request.path);
  if (at === undefined) return { undetermined: "the path has a malformed percent-escape" };
  if (at.bucket === undefined) {
    return method === "GET" && Object.keys(request.query).every((k) => S3_NEUTRAL_PARAMS.has(k))
      ? { names: ["s3:ListAllMyBuckets", "s3:ListBuckets"] }
      : { undetermined: `${clip(method)} on the S3 service itself` };
  }
  const table = (at.key === undefined ? S3_BUCKET : S3_OBJECT)[method];
  if (table === undefined) return { undetermined: `${clip(method)} is not an S3 operation` };
  const subresources = Object.keys(request.query).filter((k) => !S3_NEUTRAL_PARAMS.has(k));
  // uploadId and uploads are sub-resources here (they change the operation).
  if (subresources.length > 1) return { undetermined: `more than one S3 sub-resource (${subresources.slice(0, 3).map((s) => clip(s)).join(", ")})` };
  const sub = subresources[0] ?? "";
  let names = table[sub];
  if (names === undefined) return { undetermined: sub === "" ? `${method} without a sub-resource is not an S3 operation here` : `unknown S3 sub-resource "${clip(sub)}"` };
  const copy = request.header("x-amz-copy-source") !== undefined;
  if (at.key !== undefined && method === "PUT" && copy) {
    if (sub === "") names = ["PutObject", "CopyObject"];
    else if (sub === "uploadId") names = ["PutObject", "UploadPartCopy"];
  }
  if (at.key !== undefined && Object.hasOwn(request.query, "versionId")) {
    if (method === "GET" && sub === "") names = ["GetObjectVersion", "GetObject"];
    if (method === "DELETE" && sub === "") names = ["DeleteObjectVersion", "DeleteObject"];
  }
  if (at.key === undefined && method === "GET" && sub === "" && request.query["list-type"] === "2") names = ["ListBucket", "ListObjectsV2"];
  return { names: names.map((n) => `s3:${n}`) };
}

const BEDROCK_PATHS: ReadonlyArray<readonly [RegExp, readonly string[]]> = [
  [/^\/model\/[^/]+\/invoke$/, ["bedrock:InvokeModel"]],
  [/^\/model\/[^/]+\/invoke-with-response-stream$/, ["bedrock:InvokeModelWithResponseStream"]],
  [/^\/model\/[^/]+\/converse$/, ["bedrock:InvokeModel", "bedrock:Converse"]],
  [/^\/model\/[^/]+\/converse-stream$/, ["bedrock:InvokeModelWithResponseStream", "bedrock:ConverseStream"]],
];

function bedrockAction(request: ActionRequest): ActionResult {
  if (request.method.toUpperCase() === "POST") {
    for (const [pattern, names] of BEDROCK_PATHS) if (pattern.test(request.path)) return { names };
  }
  return { undetermined: "not a Bedrock runtime model operation" };
}

/** An action pattern as IAM reads it: case-insensitive, `*` any run, `?` one character. */
export function compileActionPattern(text: string): RegExp {
  const source = text.replace(/[\\^$.|+()[\]{}]/g, "\\$&").replaceAll("*", "[^]*").replaceAll("?", "[^]");
  return new RegExp(`^${source}$`, "iu");
}

/**
 * Why an action pattern in a policy is wrong, or undefined: `service:Operation` with a known
 * service and an operation of it (wildcards must match at least one), or `*`.
 */
export function actionPatternProblem(text: string, suggest: (word: string, candidates: readonly string[]) => string): string | undefined {
  if (text === "*") return undefined;
  const colon = text.indexOf(":");
  if (colon < 0) return `action ${JSON.stringify(text)} must be service:Operation, e.g. s3:GetObject`;
  const service = text.slice(0, colon).toLowerCase();
  const operation = text.slice(colon + 1);
  const known = KNOWN_ACTIONS[service];
  if (known === undefined) {
    return `action ${JSON.stringify(text)} names unknown service "${service}"${suggest(service, Object.keys(KNOWN_ACTIONS)) || ` (known: ${Object.keys(KNOWN_ACTIONS).join(", ")})`}`;
  }
  const pattern = compileActionPattern(operation);
  if (known.some((op) => pattern.test(op))) return undefined;
  const hint = suggest(operation, known);
  return `action ${JSON.stringify(text)} is not a known ${service} action${hint === "" ? "" : hint.replace('"', `"${service}:`)}`;
}

function clip(s: string): string {
  return s.length > 32 ? `${s.slice(0, 32)}…` : s;
}
