/**
 * Decides how one request is signed, from its headers alone: which endpoint of the policy, which
 * service, region and credential set, which payload mode. Pure apart from reading the context.
 */
import type { CredentialRefusalCause } from "../credentials/index.js";
import { matchEndpoint } from "../policy/index.js";
import type { Endpoint } from "../policy/types.js";
import {
  ALGORITHM_V4A,
  checkClientAlgorithm,
  endpointAlgorithm,
  H_AUTHORIZATION,
  H_CONTENT_LENGTH,
  H_CONTENT_SHA256,
  H_DECODED_CONTENT_LENGTH,
  H_REGION_SET,
  parseAuthorizationHeader,
  parsePresignedQuery,
  regionFromHost,
  selectPayloadMode,
  splitPath,
  type ClientAuthResult,
  type DecodedQuery,
  type PayloadMode,
  type SignInput,
  type SigningAlgorithm,
} from "../sigv4/index.js";
import type { Credentials } from "../sigv4/types.js";
import type { SigningContext } from "./context.js";
import { deny, maskKeyId, type Denial } from "./denial.js";
import type { RequestHead } from "./headers.js";

export interface Plan {
  readonly head: RequestHead;
  readonly endpoint: Endpoint;
  readonly host: string;
  readonly service: string;
  /** The algorithm the endpoint signs with (the client used it too, or did not sign). */
  readonly algorithm: SigningAlgorithm;
  /** SigV4: the signing region; SigV4A: the region set (`x-amz-region-set`). */
  readonly region: string;
  readonly mode: Exclude<PayloadMode, { kind: "refuse" }>;
  readonly credentials: Credentials;
  readonly path: string;
  readonly query: DecodedQuery;
  readonly rewrittenPath: string | undefined;
  readonly clientSignedHeaders: readonly string[];
  readonly maxBufferedBodyBytes: number;
  /** x-amz-decoded-content-length of a chunk-signed upload (0 otherwise). */
  readonly decodedContentLength: number;
}

/** Partial facts known when a request is refused, for the decision log. */
export interface PlanFacts {
  host?: string;
  service?: string;
  region?: string;
  payloadMode?: string;
  profile?: string;
  endpointIndex?: number;
  clientKeyId?: string;
  /** Set when the request is refused because its profile had no set to sign with. */
  credentialsRefusal?: CredentialRefusalCause;
}

/** The plan, or the refusal, and in both cases what was learned about the request on the way. */
export interface Planned {
  readonly result: Plan | Denial;
  readonly facts: Readonly<PlanFacts>;
}

export function planRequest(head: RequestHead, endOfStream: boolean, ctx: SigningContext): Planned {
  const facts: PlanFacts = {};
  return { result: plan(head, endOfStream, ctx, facts), facts };
}

/** Fills `facts`, its own object, as it learns them, so a refusal's log line says what was known. */
function plan(head: RequestHead, endOfStream: boolean, ctx: SigningContext, facts: PlanFacts): Plan | Denial {
  const snapshot = ctx.snapshot();
  const policy = snapshot.policy;
  // The raw authority until an endpoint matched, so a refusal's log line names what was refused.
  facts.host = clip(head.authority);
  const match = matchEndpoint(policy, head.authority, head.scheme);
  if (!match) {
    return deny("no_endpoint", `countersign policy has no endpoint for host "${clip(head.authority)}" (${head.scheme}); add it to the policy's endpoints to allow signing`);
  }
  const { endpoint, host } = match;
  facts.host = host;
  facts.endpointIndex = endpoint.index;
  facts.profile = endpoint.credentials;

  const split = splitPath(head.path);
  if (!split.ok) return deny("malformed_path", split.error);

  const authHeader = head.headers.get(H_AUTHORIZATION);
  const clientAuth: ClientAuthResult = authHeader !== undefined ? parseAuthorizationHeader(authHeader) : parsePresignedQuery(split.presign);
  const signature = clientAuth.ok && clientAuth.auth.kind !== "none" ? clientAuth.auth : undefined;
  if (signature) facts.clientKeyId = maskKeyId(signature.accessKeyId);

  if (endpoint.clientAccessKeyIds) {
    if (!clientAuth.ok) {
      return deny("malformed_client_auth", `the client's Authorization is malformed (${clientAuth.error}); endpoint ${endpoint.host} needs it to check the placeholder key id`);
    }
    if (!signature) {
      return deny("no_client_signature", `endpoint ${endpoint.host} only signs requests made with its placeholder key ids, and this request carries no SigV4 signature`);
    }
    if (!endpoint.clientAccessKeyIds.has(signature.accessKeyId)) {
      return deny("key_id_not_allowed", `placeholder key id ${maskKeyId(signature.accessKeyId)} is not in client_access_key_ids of endpoint ${endpoint.host}`);
    }
  }

  const algorithm = endpointAlgorithm(endpoint.credentialSigning);
  const algorithmCheck = checkClientAlgorithm(algorithm, endpoint.host, signature ?? { kind: "none" }, head.headers.get(H_CONTENT_SHA256));
  if (!algorithmCheck.ok) {
    // Whatever the payload mode would have been, the request is refused before it is chosen.
    facts.payloadMode = "refused";
    return deny(algorithmCheck.reason, algorithmCheck.message);
  }

  let service = endpoint.signingService;
  if (service === "auto") {
    if (!signature) {
      const why = clientAuth.ok ? "is not signed" : `has a malformed signature (${clientAuth.error})`;
      return deny("no_service_for_auto", `endpoint ${endpoint.host} has signing_service: auto, which takes the service from the client's own SigV4 credential scope, but the request ${why}`);
    }
    service = signature.service;
  }
  facts.service = service;

  let region: string;
  if (algorithm === ALGORITHM_V4A) {
    const regionSet = regionSetFor(endpoint, head, split.presign);
    if (typeof regionSet !== "string") return regionSet;
    region = regionSet;
  } else {
    const derived = endpoint.region ?? regionFromHost(host) ?? signature?.region;
    if (derived === undefined) {
      return deny("unknown_region", `cannot tell the signing region for host "${clip(host)}"; set region on endpoint ${endpoint.host}`);
    }
    region = derived;
  }
  facts.region = region;

  const mode = selectPayloadMode({ signing: endpoint.credentialSigning, contentSha256: head.headers.get(H_CONTENT_SHA256), endOfStream });
  if (mode.kind === "refuse") {
    facts.payloadMode = "refused";
    return deny(mode.reason, mode.message);
  }
  facts.payloadMode = mode.name;

  let decodedContentLength = 0;
  if (mode.kind === "chunked") {
    if (endOfStream) return deny("chunked_without_body", `x-amz-content-sha256 ${mode.payloadHash} announces an aws-chunked body, but the request has none`);
    const decoded = head.headers.get(H_DECODED_CONTENT_LENGTH);
    if (decoded === undefined || !/^\d{1,15}$/.test(decoded)) {
      return deny("missing_decoded_content_length", `a chunk-signed upload needs x-amz-decoded-content-length (the object size); got ${decoded === undefined ? "none" : `"${clip(decoded)}"`}`);
    }
    decodedContentLength = Number(decoded);
  }

  // A body larger than the whole process's held-bytes budget could never be taken: refuse it as
  // too large (413) up front instead of as overloaded (503) on every retry.
  const maxBody = Math.min(policy.limits.maxBufferedBodyBytes, ctx.admission.limits.maxHeldBytes);
  if (mode.kind === "buffer") {
    const declared = head.headers.get(H_CONTENT_LENGTH);
    if (declared !== undefined) {
      if (Number(declared) > maxBody) {
        return deny("body_too_large", `the body (${declared} bytes) must be hashed to sign this request and is over the ${maxBody}-byte limit; send x-amz-content-sha256 (a hex hash or UNSIGNED-PAYLOAD) from the client, or raise limits.max_buffered_body_bytes and Envoy's buffer limit together`);
      }
    }
  }

  const creds = snapshot.credentials(endpoint.credentials);
  if (!creds.ok) {
    facts.credentialsRefusal = creds.error.cause;
    return deny("credentials_unavailable", `credentials "${endpoint.credentials}" are unavailable: ${creds.error.message}`);
  }

  return {
    head,
    endpoint,
    host: head.authority,
    service,
    algorithm,
    region,
    mode,
    credentials: creds.credentials,
    path: split.path,
    query: split.query,
    rewrittenPath: split.rewrittenPath,
    clientSignedHeaders: signature?.signedHeaders ?? [],
    maxBufferedBodyBytes: maxBody,
    decodedContentLength,
  };
}

/** A region set: `*`, or regions (or `us-*`-style prefixes) joined by commas. */
const REGION_SET = /^(\*|[a-z0-9-]+\*?)(,(\*|[a-z0-9-]+\*?))*$/;

/**
 * The region set a SigV4A request is signed for: the endpoint's `region_set`, else the client's own
 * (its `x-amz-region-set` header, or `X-Amz-Region-Set` of its presigned URL).
 */
function regionSetFor(endpoint: Endpoint, head: RequestHead, presign: ReadonlyMap<string, string>): string | Denial {
  if (endpoint.regionSet) return endpoint.regionSet.join(",");
  let client = head.headers.get(H_REGION_SET);
  for (const [name, value] of presign) if (name.toLowerCase() === H_REGION_SET) client ??= value;
  if (client === undefined) {
    return deny("no_region_set", `endpoint ${endpoint.host} signs with SigV4A, which needs a region set, and the request carries no x-amz-region-set; set region_set on the endpoint (e.g. ["*"])`);
  }
  const trimmed = client.replace(/\s+/g, "").toLowerCase();
  if (!REGION_SET.test(trimmed)) {
    return deny("no_region_set", `x-amz-region-set "${clip(client)}" is not "*" or a comma-separated list of regions`);
  }
  return trimmed;
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

/**
 * What the signer gets for a planned request: its head as the client sent it, with `payloadHash`.
 * content-length is signed whenever present: Envoy keeps it on every path countersign uses
 * (headers only, BUFFERED, and STREAMED switched on by mode_override).
 */
export function signInputFor(plan: Plan, payloadHash: string, now: Date): SignInput {
  return {
    method: plan.head.method,
    host: plan.host,
    path: plan.path,
    query: plan.query,
    headers: plan.head.headers,
    clientSignedHeaders: plan.clientSignedHeaders,
    signContentLength: true,
    payloadHash,
    service: plan.service,
    region: plan.region,
    algorithm: plan.algorithm,
    credentials: plan.credentials,
    now,
  };
}
