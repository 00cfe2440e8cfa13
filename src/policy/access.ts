/**
 * What an endpoint lets a workload do with a host it may reach: the `access` level, checked
 * against one request. Pure: the caller (extproc/plan.ts) turns a refusal into its answer and
 * decides, from the endpoint's `enforcement`, whether to refuse or only to report it.
 */
import type { Access, Endpoint } from "./types.js";

/** The facts of a request the access checks read. */
export interface AccessRequest {
  /** The HTTP method as sent (compared upper-case). */
  readonly method: string;
  /** The SigV4 service the request is signed for (s3, dynamodb, ...). */
  readonly service: string;
  /** The decoded query, by parameter name. */
  readonly query: Readonly<Record<string, unknown>>;
}

/** Why a check refused a request; also the bounded `reason` label of logs and metrics. */
export type AccessRefusalKind = "access";

export type AccessVerdict =
  | { readonly allowed: true }
  | { readonly allowed: false; readonly kind: AccessRefusalKind; readonly message: string };

const READ_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);
const WRITE_METHODS: ReadonlySet<string> = new Set([...READ_METHODS, "POST", "PUT", "PATCH"]);

/** The methods each access level allows; undefined: any. */
export const ACCESS_METHODS: { readonly [A in Access]: ReadonlySet<string> | undefined } = {
  "read-only": READ_METHODS,
  "read-write": WRITE_METHODS,
  full: undefined,
};

/** S3 services whose POST ?delete deletes a list of objects (DeleteObjects). */
const S3_SERVICES: ReadonlySet<string> = new Set(["s3", "s3express", "s3-outposts"]);

const ALLOWED: AccessVerdict = Object.freeze({ allowed: true });

/**
 * Checks `request` against `endpoint.access`. read-write refuses S3's DeleteObjects (POST with a
 * `delete` query parameter) as well as DELETE: it deletes, whatever its method.
 */
export function checkAccess(endpoint: Endpoint, request: AccessRequest): AccessVerdict {
  const allowed = ACCESS_METHODS[endpoint.access];
  if (allowed === undefined) return ALLOWED;
  const method = request.method.toUpperCase();
  const name = endpointName(endpoint);
  if (!allowed.has(method)) {
    return refuse(`${name} is ${endpoint.access} (${[...allowed].join(", ")}): ${clip(method)} is not allowed`);
  }
  if (endpoint.access === "read-write" && method === "POST" && S3_SERVICES.has(request.service) && Object.hasOwn(request.query, "delete")) {
    return refuse(`${name} is read-write: S3 DeleteObjects (POST ?delete) deletes objects and is not allowed`);
  }
  return ALLOWED;
}

/** How refusals name an endpoint: its index in the policy and its host pattern. */
export function endpointName(endpoint: Endpoint): string {
  return `endpoints[${endpoint.index}] (${endpoint.host})`;
}

function refuse(message: string): AccessVerdict {
  return { allowed: false, kind: "access", message };
}

function clip(s: string): string {
  return s.length > 32 ? `${s.slice(0, 32)}…` : s;
}
