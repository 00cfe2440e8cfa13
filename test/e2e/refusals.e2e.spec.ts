/**
 * Every kind of refusal countersign makes (README "Architecture" step 6 and "Operations": 403
 * policy, 400 malformed, 413 too large, 503 credentials unavailable or
 * overloaded), produced through REAL Envoy with the shipped envoy.yaml. Each must reach the client
 * as countersign's AWS-style XML error with its status, the JSON-protocol error header and the
 * denial reason; countersign logs the same request id and reason; and nothing reaches the fake AWS
 * (for a refusal in the middle of a chunk-signed upload, Envoy has already opened the upstream
 * request: it is cut short, never verified, nothing is stored).
 */
import https from "node:https";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { proxiedAgent } from "./clients.js";
import { sendHandSigned, type HandSigned, type HandSignedResponse } from "./handSigned.js";
import { E2E_POLICY, PLACEHOLDER, startStack, type Stack } from "./harness.js";
import { decisionFor, forwardedSince, parseXmlError } from "./observations.js";

const MiB = 1024 * 1024;
const BUCKET_HOST = "e2e-bucket.s3.eu-west-1.amazonaws.com";
const ZERO_SIG = "0".repeat(64);

/**
 * The e2e policy plus what the refusals need, on hosts the test certificate covers:
 * sts.amazonaws.com takes its signing service from the client (`auto`), and DynamoDB signs with a
 * profile whose credentials file does not exist (always unavailable).
 */
const REFUSALS_POLICY = E2E_POLICY.replace(
  "limits:",
  `  unavailable:
    file: { path: /nonexistent/countersign-e2e/credentials, profile: default }
limits:`,
)
  .replace(
    `  - host: "sts.amazonaws.com"
    credential_signing: sigv4
    signing_service: sts`,
    `  - host: "sts.amazonaws.com"
    credential_signing: sigv4
    signing_service: auto`,
  )
  .replace(
    `    signing_service: dynamodb
    credentials: workload`,
    `    signing_service: dynamodb
    credentials: unavailable`,
  );

let stack: Stack;
beforeAll(async () => {
  if (REFUSALS_POLICY === E2E_POLICY || !REFUSALS_POLICY.includes("signing_service: auto") || !REFUSALS_POLICY.includes("credentials: unavailable")) {
    throw new Error("E2E_POLICY changed shape: update REFUSALS_POLICY's replacements");
  }
  stack = await startStack({ policy: REFUSALS_POLICY });
});
afterAll(async () => {
  await stack?.close();
});

interface Refusal {
  name: string;
  request: HandSigned;
  status: 400 | 403 | 413 | 501 | 503;
  code: string;
  reason: string;
  message: RegExp;
  /** Refused while the body streams: Envoy has opened the upstream request, which is cut short. */
  midStream?: true;
  /**
   * Refused before the headers could be read: countersign does not know Envoy's x-request-id, so
   * the XML carries its own id (countersign-<pid>-<n>) and the log line an empty requestId.
   */
  beforeRequestId?: true;
}

const s3Put = (path: string, extra: Partial<HandSigned> = {}): HandSigned => ({ method: "PUT", host: BUCKET_HOST, path, service: "s3", region: "eu-west-1", ...extra });
const chunkSigned = (body: string, headers: Record<string, string> = {}): Partial<HandSigned> => ({
  contentSha256: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
  headers: { "content-encoding": "aws-chunked", "x-amz-decoded-content-length": "5", ...headers },
  body: Buffer.from(body),
});

const REFUSALS: Refusal[] = [
  // ---- 403: policy ----
  {
    name: "a host outside the policy",
    request: { method: "GET", host: "example.com", path: "/", service: "s3", region: "us-east-1", contentSha256: "UNSIGNED-PAYLOAD" },
    status: 403,
    code: "AccessDenied",
    reason: "no_endpoint",
    message: /^countersign policy has no endpoint for host &quot;example\.com&quot; \(https\); add it to the policy&apos;s endpoints to allow signing$/,
  },
  {
    name: "a placeholder key id the endpoint does not bind",
    request: { ...s3Put("/k"), method: "GET", contentSha256: "UNSIGNED-PAYLOAD", credentials: { accessKeyId: "AKIDOTHERWORKLOAD00", secretAccessKey: "x" } },
    status: 403,
    code: "InvalidAccessKeyId",
    reason: "key_id_not_allowed",
    message: /^placeholder key id AKID…AD00 is not in client_access_key_ids of endpoint \*\.s3\.\*\.amazonaws\.com$/,
  },
  {
    name: "an unsigned request to an endpoint that binds placeholder key ids",
    request: { ...s3Put("/k"), method: "GET", contentSha256: "UNSIGNED-PAYLOAD", sign: false },
    status: 403,
    code: "AccessDenied",
    reason: "unsigned_client",
    message: /only signs requests made with its placeholder key ids, and this request carries no SigV4 signature$/,
  },
  // ---- 400: malformed ----
  {
    name: "a malformed Authorization where the endpoint checks the key id",
    request: { ...s3Put("/k"), method: "GET", contentSha256: "UNSIGNED-PAYLOAD", after: { authorization: "AWS4-HMAC-SHA256 garbage" } },
    status: 400,
    code: "AuthorizationHeaderMalformed",
    reason: "malformed_request",
    message: /^the client&apos;s Authorization is malformed \(.+\); endpoint \*\.s3\.\*\.amazonaws\.com needs it to check the placeholder key id$/,
  },
  {
    name: "an unsigned request to a signing_service: auto endpoint",
    request: { method: "POST", host: "sts.amazonaws.com", path: "/", service: "sts", region: "us-east-1", sign: false, headers: { "content-type": "application/x-www-form-urlencoded" }, body: Buffer.from("Action=GetCallerIdentity&Version=2011-06-15") },
    status: 400,
    code: "MissingAuthenticationToken",
    reason: "unsigned_client",
    message: /^endpoint sts\.amazonaws\.com has signing_service: auto, .* but the request is not signed$/,
  },
  {
    name: "a header value that is not UTF-8",
    request: { ...s3Put("/k"), method: "GET", contentSha256: "UNSIGNED-PAYLOAD", after: { "x-amz-meta-note": "caf\u00e9" } },
    status: 400,
    code: "InvalidRequest",
    reason: "malformed_request",
    message: /^header &quot;x-amz-meta-note&quot; has bytes that are not UTF-8$/,
    beforeRequestId: true,
  },
  {
    name: "an x-amz-content-sha256 that is neither a hash nor a known literal",
    request: s3Put("/k", { contentSha256: "not-a-hash", body: Buffer.from("x") }),
    status: 400,
    code: "InvalidArgument",
    reason: "bad_payload_mode",
    message: /^x-amz-content-sha256 must be a 64-hex SHA-256, UNSIGNED-PAYLOAD or a STREAMING-\* value; got &quot;not-a-hash&quot;$/,
  },
  {
    name: "a request the client header-signed with SigV4A, to a SigV4 endpoint (never re-signed as SigV4)",
    request: {
      ...s3Put("/k"),
      method: "GET",
      contentSha256: "UNSIGNED-PAYLOAD",
      after: {
        authorization: `AWS4-ECDSA-P256-SHA256 Credential=${PLACEHOLDER.accessKeyId}/20240101/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-region-set, Signature=${"30".repeat(71)}`,
        "x-amz-region-set": "*",
      },
    },
    status: 400,
    code: "SigV4aNotEnabled",
    reason: "algorithm_mismatch",
    message: /^the client signed with SigV4A \(AWS4-ECDSA-P256-SHA256, in its Authorization header\), and SigV4A is not enabled for endpoint \*\.s3\.\*\.amazonaws\.com, which re-signs with SigV4 only; set credential_signing: sigv4a/,
  },
  {
    name: "a SigV4A streaming upload to a SigV4 endpoint",
    request: s3Put("/k", { ...chunkSigned("0;chunk-signature=00\r\n\r\n"), contentSha256: "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD" }),
    status: 400,
    code: "SigV4aNotEnabled",
    reason: "algorithm_mismatch",
    message: /^the client signed with SigV4A \(AWS4-ECDSA-P256-SHA256, in x-amz-content-sha256 STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD\), and SigV4A is not enabled for endpoint \*\.s3\.\*\.amazonaws\.com, which re-signs with SigV4 only/,
  },
  {
    name: "a chunk-signed upload to a sigv4:body endpoint (Bedrock)",
    request: { method: "POST", host: "bedrock-runtime.us-west-2.amazonaws.com", path: "/model/m1/invoke", service: "bedrock", region: "us-west-2", ...chunkSigned(`0;chunk-signature=${ZERO_SIG}\r\n\r\n`) },
    status: 400,
    code: "InvalidRequest",
    reason: "bad_payload_mode",
    message: /^credential_signing sigv4:body hashes the whole body, which cannot be done for an aws-chunked streaming upload/,
  },
  {
    name: "a chunk-signed upload without x-amz-decoded-content-length",
    request: s3Put("/k", { contentSha256: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", headers: { "content-encoding": "aws-chunked" }, body: Buffer.from(`0;chunk-signature=${ZERO_SIG}\r\n\r\n`) }),
    status: 400,
    code: "MissingContentLength",
    reason: "bad_chunk_framing",
    message: /^a chunk-signed upload needs x-amz-decoded-content-length \(the object size\); got none$/,
  },
  {
    name: "a chunk-signed upload with no body at all",
    request: s3Put("/k", { ...chunkSigned(""), body: Buffer.alloc(0) }),
    status: 400,
    code: "IncompleteBody",
    reason: "bad_chunk_framing",
    message: /announces an aws-chunked body, but the request has none$/,
  },
  {
    name: "broken aws-chunked framing in the middle of the upload (a non-hex chunk size)",
    request: s3Put("/refused/framing.bin", chunkSigned(`zz;chunk-signature=${ZERO_SIG}\r\nhello\r\n0;chunk-signature=${ZERO_SIG}\r\n\r\n`)),
    status: 400,
    code: "IncompleteBody",
    reason: "bad_chunk_framing",
    message: /^aws-chunked body is malformed: .*is not a hex number.*; nothing more was forwarded$/,
    midStream: true,
  },
  {
    name: "an aws-chunked chunk declared over 16 MiB",
    request: s3Put("/refused/huge-chunk.bin", chunkSigned(`1000001;chunk-signature=${ZERO_SIG}\r\nhello`, { "x-amz-decoded-content-length": String(16 * MiB + 1) })),
    status: 400,
    code: "IncompleteBody",
    reason: "bad_chunk_framing",
    message: /^aws-chunked body is malformed: .*16777216.*; nothing more was forwarded$/,
    midStream: true,
  },
  // ---- 413: too large to hash ----
  {
    name: "a body without a hash whose content-length is over max_buffered_body_bytes",
    request: s3Put("/refused/big.bin", { body: Buffer.alloc(MiB + 1, "b") }),
    status: 413,
    code: "EntityTooLarge",
    reason: "body_too_large",
    message: /^the body \(1048577 bytes\) must be hashed to sign this request and is over the 1048576-byte limit; /,
  },
  {
    name: "a body without a hash or content-length that grows over max_buffered_body_bytes",
    request: s3Put("/refused/big-chunked.bin", { body: Buffer.alloc(2 * MiB, "b"), chunked: true }),
    status: 413,
    code: "EntityTooLarge",
    reason: "body_too_large",
    message: /^the body \((\d+ bytes|at least \d+ bytes, sent without a content-length)\) is over the 1048576-byte limit for hashing$/,
  },
  {
    name: "a signed event stream (STREAMING-AWS4-HMAC-SHA256-EVENTS) whose body is no event-stream message",
    request: s3Put("/k", { contentSha256: "STREAMING-AWS4-HMAC-SHA256-EVENTS", body: Buffer.from("events") }),
    status: 400,
    code: "BadRequestException",
    reason: "bad_event_framing",
    message: /^event stream is malformed: body ended inside a message \(6 of its bytes received\); nothing more was forwarded$/,
  },
  // ---- 503: credentials unavailable ----
  {
    name: "an endpoint whose credential profile has no credentials",
    request: {
      method: "POST",
      host: "dynamodb.eu-west-1.amazonaws.com",
      path: "/",
      service: "dynamodb",
      region: "eu-west-1",
      headers: { "content-type": "application/x-amz-json-1.0", "x-amz-target": "DynamoDB_20120810.GetItem" },
      contentSha256: createHash("sha256").update("{}").digest("hex"),
      body: Buffer.from("{}"),
    },
    status: 503,
    code: "ServiceUnavailable",
    reason: "credentials_unavailable",
    message: /^credentials &quot;unavailable&quot; are unavailable: no credentials for profile &quot;unavailable&quot; \(file\); last refresh failed: .*ENOENT/,
  },
];

async function expectRefusal(s: Stack, res: HandSignedResponse, r: Pick<Refusal, "status" | "code" | "reason" | "message" | "beforeRequestId">): Promise<void> {
  expect({ status: res.status, contentType: res.headers["content-type"], errorType: res.headers["x-amzn-errortype"], denial: res.headers["x-countersign-denial"] }).toEqual({
    status: r.status,
    contentType: "application/xml",
    errorType: r.code,
    denial: r.reason,
  });
  const xml = parseXmlError(res.body);
  if (!xml) throw new Error(`not countersign's XML error: ${res.body.slice(0, 300)}`);
  expect(xml.code).toBe(r.code);
  expect(xml.message).toMatch(r.message);
  // A head refused before it is read has no x-request-id to go by: the RequestId is countersign's
  // own, and the decision is logged under the same id.
  if (r.beforeRequestId) expect(xml.requestId).toMatch(/^countersign-\d+-\d+$/);
  // Otherwise the RequestId is Envoy's x-request-id, and countersign logged the refusal under it.
  expect(await decisionFor(s, xml.requestId)).toMatchObject({ decision: "refused", reason: r.reason, status: r.status });
}

describe("every refusal reaches the client as countersign's AWS-style XML error, through real Envoy", () => {
  it.each(REFUSALS.map((r) => [`${r.status} ${r.code}: ${r.name}`, r] as const))("%s", async (_name, r) => {
    const start = stack.fake.requests.length;
    const res = await sendHandSigned(stack, r.request);
    await expectRefusal(stack, res, r);
    const seen = forwardedSince(stack, start);
    if (!r.midStream) {
      expect(seen).toEqual([]);
      return;
    }
    // Envoy had already sent the re-signed headers upstream: the request was cut off before its
    // body ended, so AWS never verified or stored anything.
    for (const f of seen) expect({ verified: f.verified, operation: f.operation }).toEqual({ verified: false, operation: undefined });
    expect(stack.fake.s3.getObject("e2e-bucket", r.request.path.slice(1))).toBeUndefined();
  });
});

describe("503 when countersign is at --max-streams", () => {
  let small: Stack;
  beforeAll(async () => {
    small = await startStack({ serveArgs: ["--max-streams", "1"] });
  });
  afterAll(async () => {
    await small?.close();
  });

  it("while one request holds the only stream, the next gets 503 ServiceUnavailable overloaded and nothing reaches AWS", async () => {
    const start = small.fake.requests.length;
    // A body without a hash: countersign answers the headers with mode_override BUFFERED and holds
    // the stream while Envoy waits for the rest of the body, which never comes.
    const host = BUCKET_HOST;
    const agent = proxiedAgent(small);
    const held = https.request({ host, port: 443, method: "PUT", path: "/held", agent, ca: small.caPem, servername: host, headers: { host, "content-length": "1000", authorization: `AWS4-HMAC-SHA256 Credential=${PLACEHOLDER.accessKeyId}/20240101/eu-west-1/s3/aws4_request, SignedHeaders=host, Signature=${ZERO_SIG}`, "x-amz-date": "20240101T000000Z" } });
    held.on("error", () => undefined);
    held.write(Buffer.alloc(10, "h"));
    try {
      await waitForMetric(small, "countersign_extproc_streams_active", 1);
      const res = await sendHandSigned(small, { ...s3Put("/k"), method: "GET", contentSha256: "UNSIGNED-PAYLOAD" });
      await expectRefusal(small, res, { status: 503, code: "ServiceUnavailable", reason: "overloaded", message: /^countersign is at its limit of 1 concurrent requests \(--max-streams\); retry later$/ });
    } finally {
      held.destroy();
      agent.destroy();
    }
    expect(forwardedSince(small, start)).toEqual([]);
  });
});

async function waitForMetric(s: Stack, name: string, value: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = await fetch(`${s.serve.adminUrl}/metrics`).then((r) => r.text());
    const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
    if (m && Number(m[1]) === value) return;
    if (Date.now() > deadline) throw new Error(`${name} did not reach ${value}; last: ${m?.[1] ?? "absent"}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
