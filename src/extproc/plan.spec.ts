import { describe, expect, it } from "vitest";
import { inProcessContext } from "../../test/support/extProcHarness.js";
import { extProcPolicy, PLACEHOLDER_KEY_ID } from "../../test/support/extProcPolicy.js";
import { Admission } from "./admission.js";
import type { Denial } from "./denial.js";
import type { RequestHead } from "./headers.js";
import { planRequest, signInputFor, type Plan, type Planned } from "./plan.js";

const CREDS = { accessKeyId: "AKIAPLANSPEC00000001", secretAccessKey: "plan/spec/secret/000000000000000000000001" };
const POLICY = extProcPolicy(1000);

/** Only "main" has credentials; "missing" resolves to unusable. */
function context(admission?: Admission) {
  const { ctx } = inProcessContext(POLICY, CREDS, admission ? { admission } : {});
  const snapshot = ctx.snapshot();
  return { ...ctx, snapshot: () => ({ policy: snapshot.policy, credentials: (p: string) => (p === "main" ? snapshot.credentials(p) : { ok: false as const, error: { cause: "unavailable" as const, message: "the test's STS is down" } }) }) };
}

function head(authority: string, headers: Record<string, string> = {}, path = "/key", method = "PUT"): RequestHead {
  return { method, path, authority, scheme: "https", headers: new Map(Object.entries(headers)) };
}

function auth(keyId: string, region: string, service: string): string {
  return `AWS4-HMAC-SHA256 Credential=${keyId}/20240101/${region}/${service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=${"0".repeat(64)}`;
}

function plan(h: RequestHead, endOfStream: boolean, admission?: Admission): Planned {
  return planRequest(h, endOfStream, context(admission));
}

function planned(h: RequestHead, endOfStream: boolean): Plan {
  const { result } = plan(h, endOfStream);
  if ("reason" in result) throw new Error(`expected a plan, got ${result.status} ${result.message}`);
  return result;
}

describe("planRequest: the plan for a request the policy allows", () => {
  it("matches the endpoint, takes the region from the host and signs headers-only when the client sent a payload hash", () => {
    const p = planned(head("photos.s3.us-west-2.amazonaws.com", { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, "/a%20b?x=1"), false);
    expect({ host: p.host, service: p.service, region: p.region, mode: p.mode, path: p.path, creds: p.credentials, endpoint: p.endpoint.index }).toEqual({
      host: "photos.s3.us-west-2.amazonaws.com",
      service: "s3",
      region: "us-west-2",
      mode: { kind: "header", name: "unsigned-payload", payloadHash: "UNSIGNED-PAYLOAD" },
      path: "/a%20b",
      creds: CREDS,
      endpoint: 1,
    });
    expect(p.maxBufferedBodyBytes).toBe(1000);
  });

  it("asks for the body (buffer mode) when a body follows and the client sent no hash", () => {
    expect(planned(head("photos.s3.us-west-2.amazonaws.com", { "content-length": "10" }), false).mode).toEqual({ kind: "buffer", name: "buffered-body" });
  });

  it("plans a chunk-signed upload with its x-amz-decoded-content-length", () => {
    const p = planned(head("photos.s3.us-west-2.amazonaws.com", { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "x-amz-decoded-content-length": "66560" }), false);
    expect(p.mode).toEqual({ kind: "chunked", name: "streaming-signed", payloadHash: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", trailer: false });
    expect(p.decodedContentLength).toBe(66560);
  });

  it("takes the endpoint's region over the host's, and the client's scope region when the host names none", () => {
    expect(planned(head("fixed.example.com"), true).region).toBe("ap-south-1");
    expect(planned(head("storage.example.com", { authorization: auth("AKIDANY", "eu-north-1", "s3") }), true).region).toBe("eu-north-1");
  });

  it("with signing_service auto takes the service from the client's credential scope", () => {
    const p = planned(head("bedrock-runtime.us-east-1.amazonaws.com", { authorization: auth("AKIDANY", "us-east-1", "bedrock") }, "/model/x/invoke", "POST"), false);
    expect({ service: p.service, region: p.region, mode: p.mode.name }).toEqual({ service: "bedrock", region: "us-east-1", mode: "unsigned-payload" });
  });

  it("accepts a placeholder key id the endpoint binds, and records it masked", () => {
    const { result, facts } = plan(head("locked.s3.eu-west-1.amazonaws.com", { authorization: auth(PLACEHOLDER_KEY_ID, "eu-west-1", "s3") }), true);
    expect("reason" in result).toBe(false);
    expect(facts).toEqual({ host: "locked.s3.eu-west-1.amazonaws.com", endpointIndex: 0, profile: "main", clientKeyId: "AKID…0001", service: "s3", region: "eu-west-1", payloadMode: "empty-body" });
  });

  it("signInputFor hands the signer the client's head with the given payload hash, content-length signed", () => {
    const p = planned(head("photos.s3.us-west-2.amazonaws.com", { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }), false);
    const now = new Date("2024-01-01T00:00:00Z");
    expect(signInputFor(p, "abc", now)).toMatchObject({ method: "PUT", host: "photos.s3.us-west-2.amazonaws.com", path: "/key", payloadHash: "abc", signContentLength: true, service: "s3", region: "us-west-2", credentials: CREDS, now });
  });
});

function authV4a(keyId: string, service: string): string {
  return `AWS4-ECDSA-P256-SHA256 Credential=${keyId}/20240101/${service}/aws4_request, SignedHeaders=host;x-amz-date;x-amz-region-set, Signature=${"30".repeat(71)}`;
}
const MRAP = "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com";

describe("planRequest: SigV4A endpoints (credential_signing: sigv4a)", () => {
  it("plans SigV4A for a SigV4A client, signing for the region set the client sent", () => {
    const p = planned(head(MRAP, { authorization: authV4a("AKIDANY", "s3"), "x-amz-region-set": "*", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }), false);
    expect({ algorithm: p.algorithm, region: p.region, service: p.service, mode: p.mode.name }).toEqual({ algorithm: "AWS4-ECDSA-P256-SHA256", region: "*", service: "s3", mode: "unsigned-payload" });
    expect(signInputFor(p, "UNSIGNED-PAYLOAD", new Date(0))).toMatchObject({ algorithm: "AWS4-ECDSA-P256-SHA256", region: "*" });
  });

  it("plans SigV4 (and says so) for every other endpoint", () => {
    const p = planned(head("photos.s3.us-west-2.amazonaws.com", { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }), false);
    expect(p.algorithm).toBe("AWS4-HMAC-SHA256");
  });

  it("takes the endpoint's region_set over the client's, joined with commas", () => {
    const p = planned(head("pinned.accesspoint.s3-global.amazonaws.com", { authorization: authV4a("AKIDANY", "s3"), "x-amz-region-set": "*" }), true);
    expect(p.region).toBe("us-east-1,eu-west-1");
  });

  it("signs an unsigned client with SigV4A too (the endpoint forces it)", () => {
    const p = planned(head("pinned.accesspoint.s3-global.amazonaws.com"), true);
    expect({ algorithm: p.algorithm, region: p.region, mode: p.mode.name }).toEqual({ algorithm: "AWS4-ECDSA-P256-SHA256", region: "us-east-1,eu-west-1", mode: "empty-body" });
  });

  it("reads the region set of a SigV4A presigned URL and takes it out of the forwarded path with the other X-Amz-* parameters", () => {
    const p = planned(head(MRAP, {}, "/k?X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=AKIDANY%2F20240101%2Fs3%2Faws4_request&X-Amz-Region-Set=us-west-2%2Cus-east-1&X-Amz-Signature=3045&versionId=1", "GET"), true);
    expect({ algorithm: p.algorithm, region: p.region, rewrittenPath: p.rewrittenPath, query: p.query }).toEqual({
      algorithm: "AWS4-ECDSA-P256-SHA256",
      region: "us-west-2,us-east-1",
      rewrittenPath: "/k?versionId=1",
      query: { versionId: "1" },
    });
  });

  it("records the payload mode as refused when the algorithm is, for the decision log", () => {
    const { facts } = plan(head(MRAP, { authorization: auth("AKIDANY", "us-east-1", "s3") }), true);
    expect(facts).toEqual({ host: MRAP, endpointIndex: 7, profile: "main", clientKeyId: "****", payloadMode: "refused" });
  });

  it("normalises the client's region set: whitespace out, lower case", () => {
    expect(planned(head(MRAP, { authorization: authV4a("AKIDANY", "s3"), "x-amz-region-set": " US-East-1, us-west-2 " }), true).region).toBe("us-east-1,us-west-2");
  });
});

describe("planRequest: refusals, each a Denial with its status, AWS code and reason", () => {
  const cases: Array<{ name: string; head: RequestHead; eos?: boolean; want: Omit<Denial, "message">; message: RegExp }> = [
    {
      name: "no endpoint for the host: 403 AccessDenied",
      head: head("evil.example.net"),
      want: { status: 403, code: "AccessDenied", reason: "no_endpoint" },
      message: /^countersign policy has no endpoint for host "evil\.example\.net" \(https\); add it/,
    },
    {
      name: "cannot derive region: a host that names no region, no region in the policy, an unsigned client",
      head: head("storage.example.com"),
      eos: true,
      want: { status: 400, code: "AuthorizationHeaderMalformed", reason: "malformed_request" },
      message: /^cannot tell the signing region for host "storage\.example\.com"; set region on endpoint storage\.example\.com$/,
    },
    {
      name: "chunk-signed upload without x-amz-decoded-content-length: 400 MissingContentLength",
      head: head("photos.s3.us-west-2.amazonaws.com", { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD" }),
      want: { status: 400, code: "MissingContentLength", reason: "bad_chunk_framing" },
      message: /^a chunk-signed upload needs x-amz-decoded-content-length \(the object size\); got none$/,
    },
    {
      name: "chunk-signed upload with a non-numeric x-amz-decoded-content-length",
      head: head("photos.s3.us-west-2.amazonaws.com", { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "x-amz-decoded-content-length": "12a" }),
      want: { status: 400, code: "MissingContentLength", reason: "bad_chunk_framing" },
      message: /; got "12a"$/,
    },
    {
      name: "chunk-signed upload whose headers end the stream: 400 IncompleteBody",
      head: head("photos.s3.us-west-2.amazonaws.com", { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "x-amz-decoded-content-length": "1" }),
      eos: true,
      want: { status: 400, code: "IncompleteBody", reason: "bad_chunk_framing" },
      message: /announces an aws-chunked body, but the request has none$/,
    },
    {
      name: "bound endpoint, unsigned client: 403",
      head: head("locked.s3.eu-west-1.amazonaws.com"),
      want: { status: 403, code: "AccessDenied", reason: "unsigned_client" },
      message: /only signs requests made with its placeholder key ids/,
    },
    {
      name: "bound endpoint, malformed Authorization: 400",
      head: head("locked.s3.eu-west-1.amazonaws.com", { authorization: "AWS4-HMAC-SHA256 garbage" }),
      want: { status: 400, code: "AuthorizationHeaderMalformed", reason: "malformed_request" },
      message: /^the client's Authorization is malformed/,
    },
    {
      name: "bound endpoint, another key id: 403 InvalidAccessKeyId naming it masked",
      head: head("locked.s3.eu-west-1.amazonaws.com", { authorization: auth("AKIDOTHERWORKLOAD001", "eu-west-1", "s3") }),
      want: { status: 403, code: "InvalidAccessKeyId", reason: "key_id_not_allowed" },
      message: /^placeholder key id AKID…D001 is not in client_access_key_ids of endpoint locked\.s3\.eu-west-1\.amazonaws\.com$/,
    },
    {
      name: "signing_service auto, unsigned client: 400 MissingAuthenticationToken",
      head: head("bedrock-runtime.us-east-1.amazonaws.com"),
      want: { status: 400, code: "MissingAuthenticationToken", reason: "unsigned_client" },
      message: /signing_service: auto.*the request is not signed$/,
    },
    {
      name: "a client that header-signed with SigV4A, on a SigV4 endpoint: 400 SigV4aNotEnabled, never re-signed as SigV4",
      head: head("photos.s3.us-west-2.amazonaws.com", { authorization: `AWS4-ECDSA-P256-SHA256 Credential=AKIDANY/20240101/s3/aws4_request, SignedHeaders=host;x-amz-date;x-amz-region-set, Signature=${"0".repeat(142)}`, "x-amz-region-set": "*", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }),
      want: { status: 400, code: "SigV4aNotEnabled", reason: "algorithm_mismatch" },
      message: /^the client signed with SigV4A \(AWS4-ECDSA-P256-SHA256, in its Authorization header\), and SigV4A is not enabled for endpoint \*\.s3\.us-west-2\.amazonaws\.com, which re-signs with SigV4 only; set credential_signing: sigv4a/,
    },
    {
      name: "a SigV4A presigned URL on a SigV4 endpoint: 400 SigV4aNotEnabled",
      head: head("photos.s3.us-west-2.amazonaws.com", {}, "/k?X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=AKIDANY%2F20240101%2Fs3%2Faws4_request&X-Amz-Region-Set=%2A", "GET"),
      eos: true,
      want: { status: 400, code: "SigV4aNotEnabled", reason: "algorithm_mismatch" },
      message: /in its presigned URL \(X-Amz-Algorithm\)\), and SigV4A is not enabled/,
    },
    {
      name: "a SigV4A chunk-signed upload (HMAC Authorization) on a SigV4 endpoint: 400 SigV4aNotEnabled",
      head: head("photos.s3.us-west-2.amazonaws.com", { authorization: auth("AKIDANY", "us-west-2", "s3"), "x-amz-content-sha256": "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "x-amz-decoded-content-length": "5" }),
      want: { status: 400, code: "SigV4aNotEnabled", reason: "algorithm_mismatch" },
      message: /in x-amz-content-sha256 STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD\), and SigV4A is not enabled/,
    },
    {
      name: "a SigV4 client on a SigV4A endpoint: 400 SigV4aRequired",
      head: head(MRAP, { authorization: auth("AKIDANY", "us-east-1", "s3"), "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }),
      want: { status: 400, code: "SigV4aRequired", reason: "algorithm_mismatch" },
      message: /^endpoint \*\.mrap\.accesspoint\.s3-global\.amazonaws\.com re-signs with SigV4A only \(credential_signing: sigv4a\), and the client signed with SigV4 \(AWS4-HMAC-SHA256, in its Authorization header\)/,
    },
    {
      name: "a signed event stream on a SigV4A endpoint, even from an unsigned client: 400 SigV4aRequired (the message chain is HMAC)",
      head: head(MRAP, { "x-amz-region-set": "*", "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-EVENTS" }),
      want: { status: 400, code: "SigV4aRequired", reason: "algorithm_mismatch" },
      message: /and the client signed with SigV4 \(AWS4-HMAC-SHA256, in x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-EVENTS\)/,
    },
    {
      name: "a SigV4A endpoint without region_set and a request without x-amz-region-set: 400",
      head: head(MRAP, { "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }),
      want: { status: 400, code: "AuthorizationHeaderMalformed", reason: "malformed_request" },
      message: /^endpoint \*\.mrap\.accesspoint\.s3-global\.amazonaws\.com signs with SigV4A, which needs a region set, and the request carries no x-amz-region-set; set region_set on the endpoint \(e\.g\. \["\*"\]\)$/,
    },
    {
      name: "a malformed x-amz-region-set: 400",
      head: head(MRAP, { authorization: authV4a("AKIDANY", "s3"), "x-amz-region-set": "us-east-1;DROP", "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }),
      want: { status: 400, code: "AuthorizationHeaderMalformed", reason: "malformed_request" },
      message: /^x-amz-region-set "us-east-1;DROP" is not "\*" or a comma-separated list of regions$/,
    },
    {
      name: "a SigV4A chunk-signed upload on a SigV4A endpoint: 400 SigV4aNotSupported (chunk signatures are not re-signed yet)",
      head: head(MRAP, { authorization: authV4a("AKIDANY", "s3"), "x-amz-region-set": "*", "x-amz-content-sha256": "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "x-amz-decoded-content-length": "5" }),
      want: { status: 400, code: "SigV4aNotSupported", reason: "bad_payload_mode" },
      message: /is a SigV4A chunk-signed upload, whose chunk signatures countersign does not re-sign yet/,
    },
    {
      name: "signed event stream without a body: 400 BadRequestException",
      head: head("photos.s3.us-west-2.amazonaws.com", { "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-EVENTS" }),
      eos: true,
      want: { status: 400, code: "BadRequestException", reason: "bad_event_framing" },
      message: /^x-amz-content-sha256 STREAMING-AWS4-HMAC-SHA256-EVENTS announces a signed event stream, but the request has no body$/,
    },
    {
      name: "sigv4:body with a streaming upload: 400 bad_payload_mode",
      head: head("sts.amazonaws.com", { "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER" }),
      want: { status: 400, code: "InvalidRequest", reason: "bad_payload_mode" },
      message: /^credential_signing sigv4:body hashes the whole body/,
    },
    {
      name: "declared content-length over the buffered-body limit: 413",
      head: head("photos.s3.us-west-2.amazonaws.com", { "content-length": "1001" }),
      want: { status: 413, code: "EntityTooLarge", reason: "body_too_large" },
      message: /^the body \(1001 bytes\) must be hashed to sign this request and is over the 1000-byte limit/,
    },
    {
      name: "credentials unavailable: 503",
      head: head("vault.s3.eu-central-1.amazonaws.com"),
      eos: true,
      want: { status: 503, code: "ServiceUnavailable", reason: "credentials_unavailable" },
      message: /^credentials "missing" are unavailable: the test's STS is down$/,
    },
    {
      name: "a path that cannot be split: 400 InvalidURI",
      head: head("photos.s3.us-west-2.amazonaws.com", {}, "no-leading-slash"),
      eos: true,
      want: { status: 400, code: "InvalidURI", reason: "malformed_request" },
      message: /./,
    },
  ];

  it.each(cases)("$name", ({ head: h, eos, want, message }) => {
    const { result } = plan(h, eos ?? false);
    expect(result).toMatchObject(want);
    expect((result as Denial).message).toMatch(message);
  });

  it("a refusal's facts say what was known: the raw authority when no endpoint matched", () => {
    const { facts } = plan(head("evil.example.net:8443"), true);
    expect(facts).toEqual({ host: "evil.example.net:8443" });
  });

  it("the region refusal's facts name the endpoint and service but no region", () => {
    const { facts } = plan(head("storage.example.com"), true);
    expect(facts).toEqual({ host: "storage.example.com", endpointIndex: 2, profile: "main", service: "s3" });
  });

  it("the held-bytes budget lowers the body limit: a declared body over it is 413, not 503 on every retry", () => {
    const { result } = plan(head("photos.s3.us-west-2.amazonaws.com", { "content-length": "600" }), false, new Admission({ maxConcurrentStreams: 10, maxHeldBytes: 500 }));
    expect(result).toMatchObject({ status: 413, code: "EntityTooLarge", reason: "body_too_large" });
    expect((result as Denial).message).toMatch(/over the 500-byte limit/);
  });
});
