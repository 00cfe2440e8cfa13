/**
 * The fuzz oracle: what a valid ext_proc answer from countersign looks like, and the security
 * invariants over one stream's transcript. Written from Envoy's rules (reference/envoy-ext-proc.md
 * §2) and the policy fixture's host list; it calls nothing in src/ to decide, so a bug there
 * cannot hide itself.
 */
import { ALLOWED_HOST_PATTERNS, PLACEHOLDER_KEY_ID, REAL } from "../../security/support/fixtures.js";
import type { HeaderSpec, MessageKind } from "./messages.js";

export type ResponseKind =
  | "request_headers"
  | "response_headers"
  | "request_body"
  | "response_body"
  | "request_trailers"
  | "response_trailers"
  | "immediate_response";

const RESPONSE_KINDS: readonly ResponseKind[] = [
  "request_headers",
  "response_headers",
  "request_body",
  "response_body",
  "request_trailers",
  "response_trailers",
  "immediate_response",
];

/** Statuses countersign may refuse with (src/extproc/denial.ts), by number and by Envoy enum name. */
const REFUSAL_STATUS: ReadonlyMap<string, number> = new Map([
  ["400", 400], ["BadRequest", 400],
  ["403", 403], ["Forbidden", 403],
  ["413", 413], ["PayloadTooLarge", 413],
  ["500", 500], ["InternalServerError", 500],
  ["501", 501], ["NotImplemented", 501],
  ["503", 503], ["ServiceUnavailable", 503],
]);

/** Headers Envoy's default mutation rules refuse to set or remove (reference §2 "Rejected mutations"). */
const ROUTING_HEADERS = new Set(["host", ":authority", ":method", ":scheme"]);

type Loose = Record<string, unknown>;

function asObject(x: unknown): Loose | undefined {
  return typeof x === "object" && x !== null && !Array.isArray(x) && !Buffer.isBuffer(x) ? (x as Loose) : undefined;
}

function asBytes(x: unknown): Buffer {
  if (Buffer.isBuffer(x)) return x;
  if (x instanceof Uint8Array) return Buffer.from(x);
  if (typeof x === "string") return Buffer.from(x, "utf8");
  return Buffer.alloc(0);
}

function asArray(x: unknown): unknown[] {
  return Array.isArray(x) ? x : [];
}

/** The oneof member set in a response (in-process objects and gRPC-decoded ones alike). */
export function responseKinds(response: unknown): ResponseKind[] {
  const r = asObject(response);
  if (!r) return [];
  if (typeof r["response"] === "string") return [r["response"] as ResponseKind];
  return RESPONSE_KINDS.filter((k) => r[k] !== undefined && r[k] !== null);
}

export function refusalStatus(response: unknown): number | undefined {
  const ir = asObject(asObject(response)?.["immediate_response"]);
  if (!ir) return undefined;
  const code = asObject(ir["status"])?.["code"];
  return REFUSAL_STATUS.get(String(code)) ?? Number.NaN;
}

export function refusalBody(response: unknown): string {
  return asBytes(asObject(asObject(response)?.["immediate_response"])?.["body"]).toString("utf8");
}

export function refusalDetails(response: unknown): string {
  const d = asObject(asObject(response)?.["immediate_response"])?.["details"];
  return typeof d === "string" ? d : "";
}

function commonOf(response: unknown): Loose | undefined {
  const r = asObject(response);
  return asObject(asObject(r?.["request_headers"])?.["response"]) ?? asObject(asObject(r?.["request_body"])?.["response"]);
}

export interface SetHeader {
  readonly key: string;
  readonly value: string;
  readonly raw: Buffer;
  readonly alsoValue: string;
}

function setHeadersOf(mutation: unknown): SetHeader[] {
  return asArray(asObject(mutation)?.["set_headers"]).map((opt) => {
    const h = asObject(asObject(opt)?.["header"]);
    const raw = asBytes(h?.["raw_value"]);
    const value = h?.["value"];
    return { key: String(h?.["key"] ?? ""), raw, value: raw.toString("utf8"), alsoValue: typeof value === "string" ? value : "" };
  });
}

/** Headers a continuation sets on the request (request_headers or request_body answer). */
export function headersSet(response: unknown): Map<string, string> {
  const out = new Map<string, string>();
  for (const h of setHeadersOf(commonOf(response)?.["header_mutation"])) out.set(h.key, h.value);
  return out;
}

export function headersRemoved(response: unknown): string[] {
  return asArray(asObject(commonOf(response)?.["header_mutation"])?.["remove_headers"]).map(String);
}

export function modeOverride(response: unknown): { request?: string; response?: string } | undefined {
  const m = asObject(asObject(response)?.["mode_override"]);
  if (!m) return undefined;
  const req = m["request_body_mode"];
  const res = m["response_body_mode"];
  return { request: req === undefined ? undefined : String(req), response: res === undefined ? undefined : String(res) };
}

/** Bytes a STREAMED body answer forwards (`clear_body` forwards nothing), or undefined when it leaves the body alone. */
export function bodyReplacement(response: unknown): Buffer | undefined {
  const bm = asObject(commonOf(response)?.["body_mutation"]);
  if (!bm) return undefined;
  if (bm["clear_body"] === true) return Buffer.alloc(0);
  if (bm["body"] !== undefined && bm["body"] !== null) return asBytes(bm["body"]);
  return undefined;
}

const EXPECTED_KIND: Record<MessageKind, ResponseKind> = {
  request_headers: "request_headers",
  request_body: "request_body",
  request_trailers: "request_trailers",
  response_headers: "response_headers",
  response_body: "response_body",
  response_trailers: "response_trailers",
  none: "immediate_response",
};

const FORBIDDEN_BYTES = /[\r\n\0]/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
const SIGNATURE_OF_REAL_KEY = new RegExp(
  `^AWS4-HMAC-SHA256 Credential=${REAL.accessKeyId}/\\d{8}/[a-z0-9-]+/[a-z0-9-]+/aws4_request, SignedHeaders=[a-z0-9;._-]+, Signature=[0-9a-f]{64}$`,
);
const SECRETS = [REAL.secretAccessKey, REAL.sessionToken, REAL.accessKeyId];

/**
 * Problems with one response to one message: wrong kind, or a shape Envoy would reject or
 * misapply. `streamed` says whether an earlier answer switched the request body to STREAMED.
 */
export function responseProblems(msgKind: MessageKind, response: unknown, streamed: boolean): string[] {
  const problems: string[] = [];
  const kinds = responseKinds(response);
  if (kinds.length !== 1) return [`expected exactly one oneof member in the response, got [${kinds.join(", ")}]`];
  const kind = kinds[0] as ResponseKind;
  if (kind !== EXPECTED_KIND[msgKind] && kind !== "immediate_response") {
    problems.push(`a ${msgKind} message was answered with ${kind}`);
  }
  if (kind === "immediate_response") return [...problems, ...refusalProblems(response)];

  const common = commonOf(response);
  const status = common?.["status"];
  if (status !== undefined && status !== "CONTINUE" && status !== 0) problems.push(`status ${String(status)} is not CONTINUE`);
  for (const h of setHeadersOf(common?.["header_mutation"])) {
    if (!TOKEN.test(h.key) && h.key !== ":path") problems.push(`sets header name ${JSON.stringify(h.key)} that is not a lower-case token`);
    if (ROUTING_HEADERS.has(h.key) || h.key.startsWith("x-envoy")) problems.push(`sets ${h.key}, which Envoy's mutation rules refuse`);
    if (h.alsoValue !== "") problems.push(`sets ${h.key} in value (Envoy ignores value; with raw_value too it fails the request)`);
    if (h.raw.length === 0) problems.push(`sets ${h.key} to an empty raw_value`);
    if (FORBIDDEN_BYTES.test(h.raw.toString("latin1"))) problems.push(`sets ${h.key} to a value with CR, LF or NUL`);
  }
  for (const name of headersRemoved(response)) {
    if (name.startsWith(":") || name === "host") problems.push(`removes ${name}, which Envoy refuses`);
  }
  if (kind === "request_body" && streamed && headersSet(response).size > 0) {
    problems.push("sets headers in a STREAMED body answer (Envoy drops them silently)");
  }
  if (kind === "request_body" && !streamed && bodyReplacement(response) !== undefined) {
    problems.push("replaces the body outside STREAMED mode");
  }
  const mo = modeOverride(response);
  if (mo) {
    if (kind !== "request_headers") problems.push(`mode_override on a ${kind} answer (Envoy ignores it)`);
    if (mo.request !== "BUFFERED" && mo.request !== "BUFFERED_PARTIAL" && mo.request !== "STREAMED") problems.push(`mode_override request_body_mode ${String(mo.request)}`);
    if (mo.response !== "NONE") problems.push(`mode_override response_body_mode ${String(mo.response)} (must be NONE, set explicitly)`);
  }
  const auth = headersSet(response).get("authorization");
  if (auth !== undefined) {
    if (!SIGNATURE_OF_REAL_KEY.test(auth)) problems.push(`authorization is not a SigV4 signature with the real key: ${auth.slice(0, 60)}`);
    if (headersSet(response).get("x-amz-security-token") !== REAL.sessionToken) problems.push("signed without the real session token");
    if (!/^\d{8}T\d{6}Z$/.test(headersSet(response).get("x-amz-date") ?? "")) problems.push("signed without a fresh x-amz-date");
  }
  return problems;
}

function refusalProblems(response: unknown): string[] {
  const problems: string[] = [];
  const status = refusalStatus(response);
  if (status === undefined || Number.isNaN(status)) problems.push("immediate_response without a refusal status countersign uses");
  const body = refusalBody(response);
  if (!body.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>')) problems.push(`refusal body is not an AWS XML error: ${body.slice(0, 60)}`);
  if (!/^countersign_[a-z_]+$/.test(refusalDetails(response))) problems.push(`refusal details ${JSON.stringify(refusalDetails(response))}`);
  const ir = asObject(asObject(response)?.["immediate_response"]);
  const set = setHeadersOf(ir?.["headers"]);
  for (const h of set) {
    if (h.key === "authorization" || h.key === "x-amz-security-token") problems.push(`a refusal sets ${h.key}`);
    if (h.alsoValue !== "") problems.push(`refusal header ${h.key} in value`);
    if (FORBIDDEN_BYTES.test(h.raw.toString("latin1"))) problems.push(`refusal header ${h.key} has CR, LF or NUL`);
  }
  const text = `${body}\n${refusalDetails(response)}\n${set.map((h) => h.value).join("\n")}`;
  for (const s of SECRETS) if (text.includes(s)) problems.push("a refusal carries the real key id, secret or token");
  return problems;
}

// -------------------------------------------------------------------------------------------
// Which hosts the fixture policy allows, computed independently of src/policy.

export type HostVerdict = "allowed" | "refused" | "unicode-folding";

/** What countersign should decide for this header list's :authority (first request_headers message). */
export function hostVerdict(headers: readonly HeaderSpec[]): HostVerdict {
  const valueOf = (h: HeaderSpec): string | undefined => {
    if (h.encoding === "value") return h.bytes.toString("latin1");
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(h.bytes);
    } catch {
      return undefined;
    }
  };
  // Ambiguous heads must never be signed: a pseudo-header twice in any letter case or in upper
  // case, :authority or :scheme missing (no falling back to Host), a Host naming another
  // authority, or a `value` that disagrees with its `raw_value`.
  const pseudo = headers.filter((h) => h.key.startsWith(":")).map((h) => h.key.toLowerCase());
  if (new Set(pseudo).size !== pseudo.length) return "refused";
  if (headers.some((h) => h.key.startsWith(":") && h.key !== h.key.toLowerCase())) return "refused";
  if (headers.some((h) => h.encoding === "both" && h.value !== undefined && !h.value.equals(h.bytes))) return "refused";
  const authorityHeader = headers.find((h) => h.key === ":authority");
  const schemeHeader = headers.find((h) => h.key === ":scheme");
  const authority = authorityHeader && valueOf(authorityHeader);
  const scheme = schemeHeader && valueOf(schemeHeader);
  if (authority === undefined || scheme === undefined) return "refused";
  const hosts = headers.filter((h) => h.key === "host").map(valueOf);
  if (hosts.some((host) => host === undefined || host.toLowerCase() !== authority.toLowerCase())) return "refused";
  return authorityVerdict(authority, scheme);
}

export function authorityVerdict(authority: string, scheme: string): HostVerdict {
  const ascii = /^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$/;
  if (!ascii.test(authority)) {
    // A non-ASCII letter that String.prototype.toLowerCase folds to ASCII (U+212A KELVIN SIGN → k).
    const folded = authority.toLowerCase();
    if (folded !== authority && ascii.test(folded) && authorityVerdict(folded, scheme) === "allowed") return "unicode-folding";
    return "refused";
  }
  const colon = authority.indexOf(":");
  let host = (colon < 0 ? authority : authority.slice(0, colon)).toLowerCase();
  const port = colon < 0 ? (scheme === "https" ? 443 : scheme === "http" ? 80 : NaN) : Number(authority.slice(colon + 1));
  if (!(port >= 1 && port <= 65535)) return "refused";
  if (host.endsWith(".")) host = host.slice(0, -1);
  const labels = host.split(".");
  if (labels.some((l) => l === "")) return "refused";
  for (const { pattern, port: only } of ALLOWED_HOST_PATTERNS) {
    if (only !== undefined && only !== port) continue;
    const want = pattern.split(".");
    if (want.length === labels.length && want.every((w, i) => w === "*" || w === labels[i])) return "allowed";
  }
  return "refused";
}

/** The placeholder key id in the message's client Authorization header, if it has a parsable one. */
export function clientKeyId(headers: readonly HeaderSpec[]): string | undefined {
  const auth = headers.filter((h) => h.key === "authorization").map((h) => h.bytes.toString("latin1"));
  if (auth.length === 1) return /Credential=([A-Za-z0-9]+)\//.exec(auth[0] as string)?.[1];
  if (auth.length > 1) return undefined;
  // Presigned URL: X-Amz-Credential=<key id>%2F<date>%2F… in the query.
  const path = headers.find((h) => h.key === ":path")?.bytes.toString("latin1") ?? "";
  return /[?&]X-Amz-Credential=([A-Za-z0-9]+)(?:%2F|\/)/.exec(path)?.[1];
}

/** True when the header list addresses the endpoint bound to PLACEHOLDER_KEY_ID. */
export function addressesBoundEndpoint(headers: readonly HeaderSpec[]): boolean {
  const a = headers.find((h) => h.key === ":authority")?.bytes.toString("latin1").toLowerCase().replace(/\.$/, "").replace(/:443$/, "");
  return a === "bucket.s3.eu-west-1.amazonaws.com";
}

export interface TranscriptEntry {
  readonly kind: MessageKind;
  /** The request_headers message's header list, for the host and key-id checks. */
  readonly headers?: readonly HeaderSpec[];
  readonly response: unknown;
}

/** responseProblems over a whole stream, each prefixed with its message's index; tracks the STREAMED switch itself. */
export function transcriptProblems(transcript: readonly TranscriptEntry[]): string[] {
  let streamed = false;
  const problems: string[] = [];
  for (const [i, e] of transcript.entries()) {
    problems.push(...responseProblems(e.kind, e.response, streamed).map((p) => `message ${i}: ${p}`));
    if (e.kind === "request_headers" && modeOverride(e.response)?.request === "STREAMED") streamed = true;
  }
  return problems;
}

/**
 * Security invariants over one stream:
 * - a signature is only set when the first request head's :authority is allowed by the policy;
 * - the endpoint bound to a placeholder key id signs only requests bearing it;
 * - nothing is signed after the stream was refused.
 * `tolerate` lists known src/ bugs (by HostVerdict) that are pinned by their own it.fails test.
 */
export function streamProblems(transcript: readonly TranscriptEntry[], tolerate: ReadonlySet<HostVerdict> = new Set()): string[] {
  const problems: string[] = [];
  const firstHead = transcript.find((e) => e.kind === "request_headers")?.headers;
  let refused = false;
  for (const [i, e] of transcript.entries()) {
    const signed = headersSet(e.response).has("authorization");
    if (signed && refused) problems.push(`message ${i} sets a signature after the stream was refused`);
    if (signed) {
      const verdict = firstHead ? hostVerdict(firstHead) : "refused";
      if (verdict !== "allowed" && !tolerate.has(verdict)) {
        const authority = firstHead?.find((h) => h.key === ":authority")?.bytes.toString("latin1");
        problems.push(`message ${i} signs for :authority ${JSON.stringify(authority)} (${verdict}), which the policy does not allow`);
      }
      if (firstHead && addressesBoundEndpoint(firstHead) && clientKeyId(firstHead) !== PLACEHOLDER_KEY_ID) {
        problems.push(`message ${i} signs for the key-id-bound endpoint with client key id ${String(clientKeyId(firstHead))}`);
      }
    }
    if (responseKinds(e.response)[0] === "immediate_response") refused = true;
  }
  return problems;
}
