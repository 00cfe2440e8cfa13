import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import policySchema from "../../policies/policy.schema.json" with { type: "json" };
import { problemAtKey, problemAtValue, type Problem } from "./problem.js";
import { didYouMean, listOr } from "./suggest.js";
import type { DataPath } from "./yamlLocator.js";

/**
 * Structural validation against `policies/policy.schema.json` (the single source of truth for the
 * policy's shape), with each ajv error turned into a message a person can act on.
 */
export function schemaProblems(data: unknown): Problem[] {
  const validate = policyValidator();
  if (validate(data)) return [];
  const problems: Problem[] = [];
  const errors = validate.errors ?? [];
  // "a glob or a list of globs" says it once; the alternatives' own errors at the same place add nothing.
  const eitherOr = new Set(errors.filter((e) => e.keyword === "anyOf").map((e) => e.instancePath));
  for (const error of errors) {
    if (error.keyword !== "anyOf" && eitherOr.has(error.instancePath)) continue;
    const problem = describeError(error);
    if (problem !== undefined) problems.push(problem);
  }
  return problems;
}

let compiled: ValidateFunction | undefined;

function policyValidator(): ValidateFunction {
  compiled ??= new Ajv({ allErrors: true, verbose: true, strict: true }).compile(policySchema);
  return compiled;
}

/** What a top-level key should hold, appended to "missing" and "empty" messages. */
const TOP_LEVEL_HINTS: Readonly<Record<string, string>> = {
  version: "1",
  credentials: "named credentials entries",
  endpoints: "a list of endpoints",
};

/** What a nested key should hold, appended to "missing" and "empty" messages. */
const VALUE_HINTS: Readonly<Record<string, string>> = {
  credentials: "the name of a credentials entry, unless callers names one for each placeholder key id",
  host: 'a host pattern such as "*.s3.*.amazonaws.com"',
  credential_signing: "sigv4, sigv4:body, sigv4:no_body or sigv4a",
  signing_service: "a SigV4 service name such as s3, or auto",
  role_arn: "arn:aws:iam::<12-digit account id>:role/<name>",
  source: "the name of another credentials entry",
  access_key_id_env: "an environment variable name",
  secret_access_key_env: "an environment variable name",
  path: "the path of an AWS shared-credentials file",
};

type PatternMessage = (name: string, quoted: string) => string;

const ENV_NAME: PatternMessage = (name, quoted) =>
  `${name} ${quoted} is not an environment variable name (letters, digits and "_", not starting with a digit)`;
const REGION: PatternMessage = (name, quoted) =>
  `${name} ${quoted} is not shaped like an AWS region (e.g. us-east-1, cn-north-1, us-gov-west-1)`;

/** Messages for `pattern` failures, by the key that holds the value. */
const PATTERN_MESSAGES: Readonly<Record<string, PatternMessage>> = {
  region: REGION,
  sts_region: REGION,
  access_key_id_env: ENV_NAME,
  secret_access_key_env: ENV_NAME,
  session_token_env: ENV_NAME,
  role_arn: (_name, quoted) =>
    `role_arn ${quoted} is not an IAM role ARN (expected arn:<aws|aws-cn|aws-us-gov>:iam::<12-digit account id>:role/<path/name>)`,
  session_name: (_name, quoted) =>
    `session_name ${quoted} must be 2 to 64 characters of letters, digits and _+=,.@-`,
  // An external id is treated as semi-secret: never echoed.
  external_id: () => "external_id must be 2 to 1224 characters of letters, digits and _+=,.@:/-",
  signing_service: (_name, quoted) =>
    `signing_service ${quoted} is not a SigV4 service name (lower-case letters, digits, ".", "-" and "_", e.g. s3 or execute-api) or auto`,
  sts_endpoint: (_name, quoted) =>
    `sts_endpoint ${quoted} must be an http(s) URL such as https://sts.us-east-1.amazonaws.com`,
  region_set: (name, quoted) => `${name} ${quoted} is neither "*" nor shaped like an AWS region (e.g. us-east-1)`,
  client_access_key_ids: (name, quoted) => `${name} ${quoted} is not an access key id (1 to 128 letters and digits)`,
  methods: (name, quoted) => `${name} ${quoted} is not an HTTP method (letters only, e.g. GET)`,
  paths: (name, quoted) => `${name} ${quoted} must start with "/" (a glob over the request's path)`,
};

/** Messages for `minItems` failures, by key. */
const EMPTY_LIST_MESSAGES: Readonly<Record<string, string>> = {
  region_set: 'region_set must not be an empty list; omit it to sign for the client\'s own x-amz-region-set, or write ["*"]',
  client_access_key_ids:
    "client_access_key_ids must not be an empty list (it would refuse every request); omit it to accept any placeholder key id",
  endpoints: "endpoints must list at least one endpoint",
};

function describeError(error: ErrorObject): Problem | undefined {
  const path = parseInstancePath(error.instancePath);
  const parent = schemaObject(error.parentSchema);
  const name = displayName(path);
  const hint = hintFor(path.length <= 1, lastKey(path));
  switch (error.keyword) {
    case "additionalProperties": {
      const key = String(error.params["additionalProperty"]);
      return problemAtKey([...path, key], unknownKeyMessage(key, path, parent));
    }
    case "required": {
      const missing = String(error.params["missingProperty"]);
      const missingHint = hintFor(path.length === 0, missing);
      return problemAtValue(
        path,
        `${contextNoun(path, parent)} is missing required key "${missing}"${missingHint === undefined ? "" : ` (${missingHint})`}`,
      );
    }
    case "type": {
      const expected = describeType(String(error.params["type"]));
      if (path.length === 0) {
        return problemAtValue(path, `the policy must be a mapping with version, credentials and endpoints, got ${describeData(error.data)}`);
      }
      if (error.data === null) {
        return problemAtValue(path, `${name} has no value (expected ${hint ?? expected})`);
      }
      return problemAtValue(path, `${name} must be ${expected}, got ${describeData(error.data)}`);
    }
    case "const":
      if (lastKey(path) === "version") {
        return problemAtValue(path, `unsupported version ${JSON.stringify(error.data)} (expected 1)`);
      }
      return problemAtValue(path, `${name} must be ${JSON.stringify(error.params["allowedValue"])}`);
    case "enum": {
      const allowed = asStrings(error.params["allowedValues"]);
      const got = typeof error.data === "string" ? JSON.stringify(error.data) : describeData(error.data);
      return problemAtValue(path, `unknown ${name} ${got} (expected ${listOr(allowed)})`);
    }
    case "minimum":
    case "maximum":
      return problemAtValue(path, rangeMessage(name, error.data, parent));
    case "minLength": {
      const limit = Number(error.params["limit"]);
      if (limit === 1) return problemAtValue(path, `${name} must not be empty${hint === undefined ? "" : ` (expected ${hint})`}`);
      return propertyNameOr(error, path, `${name} must be at least ${limit} characters long`);
    }
    case "maxLength":
      return propertyNameOr(error, path, `${name} must be at most ${Number(error.params["limit"])} characters long`);
    case "pattern":
      if (error.data === "" && typeof parent["minLength"] === "number") return undefined; // "must not be empty" says it
      return patternProblem(error, path, name);
    case "minItems":
      return problemAtValue(path, EMPTY_LIST_MESSAGES[lastKey(path) ?? ""] ?? `${name} must not be empty`);
    case "minProperties":
      if (parent["title"] === "credentials entry") return undefined; // "exactly one source" is checked in code
      if (parent["title"] === "s3") return problemAtValue(path, "s3 must name a bucket, a key or both");
      return problemAtValue(path, `${name} must define at least one entry`);
    case "maxProperties":
      if (parent["title"] === "credentials entry") return undefined;
      return problemAtValue(path, `${name} may have at most ${Number(error.params["limit"])} entries`);
    case "propertyNames":
      return undefined; // reported by the inner error, which knows the offending name
    case "if":
      return undefined; // the "then" schema's own error (a missing key) says it
    case "anyOf":
      return problemAtValue(path, `${name} must be a glob or a list of globs, got ${describeData(error.data)}`);
    default:
      return problemAtValue(path, `${name} ${error.message ?? "is invalid"}`);
  }
}

function hintFor(topLevel: boolean, key: string | undefined): string | undefined {
  if (key === undefined) return undefined;
  return topLevel ? TOP_LEVEL_HINTS[key] : VALUE_HINTS[key];
}

function patternProblem(error: ErrorObject, path: DataPath, name: string): Problem {
  if (error.propertyName !== undefined) {
    const key = error.propertyName;
    if (lastKey(path) === "credentials") {
      return problemAtKey(
        [...path, key],
        `credentials name ${JSON.stringify(key)} is invalid (letters, digits, ".", "-" and "_", starting with a letter or digit)`,
      );
    }
    if (lastKey(path) === "callers") {
      return problemAtKey([...path, key], `caller ${JSON.stringify(key)} is not an access key id (1 to 128 letters and digits)`);
    }
    return problemAtKey([...path, key], `key ${JSON.stringify(key)} is invalid`);
  }
  const quoted = JSON.stringify(error.data);
  const message = PATTERN_MESSAGES[lastKey(path) ?? ""];
  return problemAtValue(path, message === undefined ? `${name} ${quoted} must match ${String(error.schema)}` : message(name, quoted));
}

/** Length errors on map keys (propertyNames) point at the key. */
function propertyNameOr(error: ErrorObject, path: DataPath, message: string): Problem {
  if (error.propertyName === undefined) return problemAtValue(path, message);
  const key = error.propertyName;
  const noun = lastKey(path) === "tags" ? "tag key" : "key";
  return problemAtKey([...path, key], message.replace(/^\S+/, `${noun} ${JSON.stringify(key)}`));
}

function unknownKeyMessage(key: string, path: DataPath, parent: Record<string, unknown>): string {
  const known = Object.keys(schemaObject(parent["properties"]));
  const where = parent["title"] === "policy" ? "at the top level" : `in ${contextNoun(path, parent)}`;
  if (known.length === 0) return `unknown key "${key}" ${where} (it takes no settings; write ${lastKey(path) ?? "it"}: {})`;
  const suggestion = didYouMean(key, known);
  return `unknown key "${key}" ${where}${suggestion === "" ? ` (expected ${listOr(known)})` : suggestion}`;
}

/** How a message names the object an error is about. */
function contextNoun(path: DataPath, schema: Record<string, unknown>): string {
  const title = typeof schema["title"] === "string" ? schema["title"] : displayName(path);
  const entry = path[0] === "credentials" && typeof path[1] === "string" ? path[1] : undefined;
  if (title === "policy") return "the policy";
  if (entry === undefined) return title;
  if (title === "credentials entry") return `credentials entry "${entry}"`;
  return `${title} of credentials entry "${entry}"`;
}

function rangeMessage(name: string, data: unknown, schema: Record<string, unknown>): string {
  const min = schema["minimum"];
  const max = schema["maximum"];
  const got = describeData(data);
  if (typeof min === "number" && typeof max === "number") return `${name} must be between ${min} and ${max}, got ${got}`;
  if (typeof min === "number") return `${name} must be at least ${min}, got ${got}`;
  return `${name} must be at most ${String(max)}, got ${got}`;
}

/** "/endpoints/0/host" → ["endpoints", 0, "host"] (JSON pointer, `~1` and `~0` decoded). */
export function parseInstancePath(pointer: string): DataPath {
  if (pointer === "") return [];
  return pointer
    .slice(1)
    .split("/")
    .map((raw) => raw.replaceAll("~1", "/").replaceAll("~0", "~"))
    .map((segment) => (/^(0|[1-9][0-9]*)$/.test(segment) ? Number(segment) : segment));
}

/** The last map key along a path ("client_access_key_ids" for ["endpoints", 0, "client_access_key_ids", 1]). */
function lastKey(path: DataPath): string | undefined {
  for (let i = path.length - 1; i >= 0; i--) {
    const segment = path[i];
    if (typeof segment === "string") return segment;
  }
  return undefined;
}

/** How a message names a value: `port`, `client_access_key_ids[1]`, `endpoints[2]`. */
function displayName(path: DataPath): string {
  if (path.length === 0) return "the policy";
  const last = path[path.length - 1];
  if (path[path.length - 2] === "tags") return `tag ${JSON.stringify(last)}`;
  if (typeof last === "number") {
    const key = path[path.length - 2];
    return `${typeof key === "string" ? key : "item"}[${last}]`;
  }
  return String(last);
}

function describeType(type: string): string {
  if (type.startsWith("object")) return "a mapping";
  const names: Record<string, string> = {
    string: "a string",
    integer: "a whole number",
    number: "a number",
    array: "a list",
    boolean: "true or false",
  };
  return names[type] ?? type;
}

function describeData(data: unknown): string {
  if (data === null || data === undefined) return "nothing";
  if (Array.isArray(data)) return "a list";
  if (typeof data === "object") return "a mapping";
  if (typeof data === "string") return `the string ${JSON.stringify(data)}`;
  return String(data);
}

function schemaObject(value: unknown): Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function asStrings(value: unknown): string[] {
  return Array.isArray(value) ? value.map(String) : [];
}
