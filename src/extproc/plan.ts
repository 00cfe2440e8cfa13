/**
 * Decides how one request is signed, from its headers alone: which endpoint of the policy, which
 * service, region and credential set, which payload mode. Pure apart from reading the context.
 */
import type { CredentialRefusalCause } from "../credentials/index.js";
import { checkAccess, checkRules, endpointName, matchEndpoint, requestAction, type ActionResult, type RuleVerdict } from "../policy/index.js";
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
  type ClientSignature,
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
  /**
   * The endpoint's rules, decided once the buffered body is here (a query protocol's Action in a
   * form body): the refusal, or undefined to sign. Absent when the rules were decided already.
   */
  readonly afterBody?: (body: Buffer) => Denial | undefined;
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
  /** The action names the endpoint's rules read (or "undetermined: why"); absent when no rule read it. */
  action?: string;
  /** Audit mode: the check that would have refused the request, which was signed anyway. */
  audit?: AuditFinding;
}

/** What an endpoint in `enforcement: audit` would have refused, and why. */
export interface AuditFinding {
  readonly reason: "access" | "rule";
  readonly message: string;
  /** The index of the rule that would have refused it; absent for access, or when no rule matched. */
  readonly rule?: number;
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
  if (endpoint.credentials !== undefined) facts.profile = endpoint.credentials;

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

  const profile = callerProfile(endpoint, signature);
  if (profile === undefined) {
    const who = signature ? `placeholder key id ${maskKeyId(signature.accessKeyId)} is not` : "a request without a readable SigV4 signature names no caller, and is not";
    return deny("caller_not_mapped", `${who} one of the callers of ${endpointName(endpoint)}, which has no default credentials`);
  }
  facts.profile = profile;

  /** Set when the rules can be decided only from the form body (a query protocol's Action). */
  let rulesNeedBody: ((formBody: string | undefined) => RulesOutcome) | undefined;

  let service = endpoint.signingService;
  if (service === "auto") {
    if (!signature) {
      const why = clientAuth.ok ? "is not signed" : `has a malformed signature (${clientAuth.error})`;
      return deny("no_service_for_auto", `endpoint ${endpoint.host} has signing_service: auto, which takes the service from the client's own SigV4 credential scope, but the request ${why}`);
    }
    service = signature.service;
  }
  facts.service = service;

  const access = checkAccess(endpoint, { method: head.method, service, query: split.query });
  if (!access.allowed) {
    if (endpoint.enforcement === "enforce") return deny("access_not_allowed", access.message);
    facts.audit = { reason: access.kind, message: access.message };
  } else if (endpoint.rules !== undefined) {
    // Only endpoints with rules pay for them (the closures below): the signing path stays as it was.
    const evaluate = (formBody: string | undefined): RulesOutcome => {
      let action: ActionResult | undefined;
      const actionOf = (): ActionResult => {
        action ??= requestAction({ method: head.method, service, host, path: split.path, query: split.query, header: (name) => head.headers.get(name), noBody: endOfStream, ...(formBody === undefined ? {} : { formBody }) });
        return action;
      };
      const verdict = checkRules(endpoint, { method: head.method, service, host, path: split.path, action: actionOf });
      return { verdict, action };
    };
    const first = evaluate(undefined);
    if (first.action !== undefined && "needsBody" in first.action) rulesNeedBody = evaluate;
    else {
      const refusal = applyRules(first, endpoint, facts);
      if (refusal !== undefined) return refusal;
    }
  }

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

  let mode = selectPayloadMode({ signing: endpoint.credentialSigning, contentSha256: head.headers.get(H_CONTENT_SHA256), endOfStream });
  if (mode.kind === "refuse") {
    facts.payloadMode = "refused";
    return deny(mode.reason, mode.message);
  }
  facts.payloadMode = mode.name;

  let afterBody: ((body: Buffer) => Denial | undefined) | undefined;
  if (rulesNeedBody !== undefined) {
    const evaluate = rulesNeedBody;
    if (mode.kind === "header" && !endOfStream && (mode.name === "client-hash" || mode.name === "unsigned-payload")) {
      // The rules must read the form body, which the signature alone did not need: buffer it and
      // sign with its own hash (the same as a correct client hash).
      mode = { kind: "buffer", name: "buffered-body" };
      facts.payloadMode = mode.name;
    }
    if (mode.kind === "buffer") {
      // The body is coming anyway (it is hashed to sign): decide when it is here.
      afterBody = (body) => applyRules(evaluate(body.toString("utf8")), endpoint, facts);
    } else {
      const refusal = applyRules(evaluate(undefined), endpoint, facts);
      if (refusal !== undefined) return refusal;
    }
  }

  let decodedContentLength = 0;
  if (mode.kind === "chunked") {
    if (endOfStream) return deny("chunked_without_body", `x-amz-content-sha256 ${mode.payloadHash} announces an aws-chunked body, but the request has none`);
    const decoded = head.headers.get(H_DECODED_CONTENT_LENGTH);
    if (decoded === undefined || !/^\d{1,15}$/.test(decoded)) {
      return deny("missing_decoded_content_length", `a chunk-signed upload needs x-amz-decoded-content-length (the object size); got ${decoded === undefined ? "none" : `"${clip(decoded)}"`}`);
    }
    decodedContentLength = Number(decoded);
  }

  if (mode.kind === "eventstream" && endOfStream) {
    return deny("malformed_event", `x-amz-content-sha256 ${mode.payloadHash} announces a signed event stream, but the request has no body`);
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

  const creds = snapshot.credentials(profile);
  if (!creds.ok) {
    facts.credentialsRefusal = creds.error.cause;
    return deny("credentials_unavailable", `credentials "${profile}" are unavailable: ${creds.error.message}`);
  }

  // Built without an object spread (they are slow on this path); afterBody only when there is one.
  const planned: { -readonly [K in keyof Plan]: Plan[K] } = {
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
  if (afterBody !== undefined) planned.afterBody = afterBody;
  return planned;
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

interface RulesOutcome {
  readonly verdict: RuleVerdict;
  readonly action: ActionResult | undefined;
}

/** Records what the rules read; the refusal under enforce, or the audit finding under audit. */
function applyRules(outcome: RulesOutcome, endpoint: Endpoint, facts: PlanFacts): Denial | undefined {
  const { verdict, action } = outcome;
  // Only set when a rule needed it: the log says which action the rules saw, or why there was none.
  if (action !== undefined) facts.action = "names" in action ? action.names.join(" ") : `undetermined: ${action.undetermined}`;
  if (verdict.allowed) return undefined;
  if (endpoint.enforcement === "enforce") return deny("rule_not_allowed", verdict.message);
  facts.audit = { reason: verdict.kind, message: verdict.message, ...(verdict.rule === undefined ? {} : { rule: verdict.rule }) };
  return undefined;
}

/**
 * The credentials entry that signs for this client: its placeholder key id's entry in `callers`,
 * else the endpoint's `credentials`; undefined when neither applies (the request is refused).
 */
function callerProfile(endpoint: Endpoint, signature: ClientSignature | undefined): string | undefined {
  if (endpoint.callers !== undefined && signature !== undefined) {
    const mapped = endpoint.callers.get(signature.accessKeyId);
    if (mapped !== undefined) return mapped;
  }
  return endpoint.credentials;
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
