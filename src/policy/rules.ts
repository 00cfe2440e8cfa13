/**
 * An endpoint's `rules`: which requests to a host the workload may make, by method, path and S3
 * bucket and key. Checked after `access`; the first rule that matches decides, and a request no
 * rule matches is refused. Within a rule the fields AND together and a list ORs its items.
 *
 * Globs: `**` is any run of characters, `/` included; `*` is any run without `/`; every other
 * character stands for itself (case-sensitive).
 *
 * How the request is read, as the service reads it:
 * - `paths`: the path percent-decoded once (`+` stays `+`). For services other than S3, which
 *   normalise the path, a path with `.` or `..` segments or an empty segment (`//`) is refused
 *   whenever a rule reads paths: what the rule sees could differ from what the service serves.
 * - `s3`: the bucket from a virtual-hosted host (the labels before the `s3` / `s3-…` label), else
 *   the first path segment (path style); the key with S3's decoding (`+` is a space, then
 *   percent-decoded once) and never normalised (S3 keys are literal: `a/../b` is its own key).
 */
import type { ActionResult } from "./actions.js";
import type { Endpoint } from "./types.js";
import { decodeOnce } from "../decodeOnce.js";

export type RuleEffect = "allow" | "deny";

/** A glob as written and the expression it compiles to. */
export interface Glob {
  readonly text: string;
  readonly regex: RegExp;
}

export interface Rule {
  /** Position in the endpoint's `rules` list (0-based). */
  readonly index: number;
  readonly effect: RuleEffect;
  /** Upper-case HTTP methods. */
  readonly methods?: ReadonlySet<string>;
  readonly paths?: readonly Glob[];
  readonly s3?: { readonly bucket?: readonly Glob[]; readonly key?: readonly Glob[] };
  /** IAM-style action patterns (case-insensitive, `*` and `?`). */
  readonly actions?: readonly Glob[];
}

/** The facts of a request the rules read. */
export interface RuleRequest {
  readonly method: string;
  /** The SigV4 service the request is signed for. */
  readonly service: string;
  /** Normalised host (lower-case, no port). */
  readonly host: string;
  /** The path as sent (still percent-encoded), without the query. */
  readonly path: string;
  /** The request's action names (actions.ts), asked for only when a rule has `actions`. */
  readonly action?: () => ActionResult;
}

export type RuleVerdict =
  | { readonly allowed: true; readonly rule: number }
  | { readonly allowed: false; readonly kind: "rule"; readonly rule?: number; readonly message: string };

export const S3_SERVICES: ReadonlySet<string> = new Set(["s3", "s3express", "s3-outposts"]);

/** Compiles a glob: `**` any characters, `*` any but `/`, the rest literal. */
export function compileGlob(text: string): Glob {
  let source = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "*") {
      if (text[i + 1] === "*") {
        source += "[^]*";
        i++;
      } else {
        source += "[^/]*";
      }
    } else {
      source += c.replace(/[\\^$.|?+()[\]{}]/g, "\\$&");
    }
  }
  return { text, regex: new RegExp(`^${source}$`, "u") };
}

/** Where an S3 request addresses: its bucket and key, as S3 reads them. */
export interface S3Address {
  /** Undefined: a service-level request (ListBuckets). */
  readonly bucket?: string;
  /** Undefined: a bucket-level request. */
  readonly key?: string;
}

/**
 * The bucket and key of an S3 request, or undefined when the path cannot be decoded. A host is
 * virtual-hosted when a label after its first is `s3` or starts with `s3-` (the last such label
 * is the service's: `s3-logs.s3.eu-west-1.amazonaws.com` is bucket `s3-logs`); otherwise the
 * bucket is the first path segment.
 */
export function s3Address(host: string, rawPath: string): S3Address | undefined {
  const labels = host.split(".");
  let service = -1;
  for (let i = labels.length - 1; i >= 1; i--) {
    const label = labels[i] as string;
    if (label === "s3" || label.startsWith("s3-")) {
      service = i;
      break;
    }
  }
  const path = rawPath.startsWith("/") ? rawPath.slice(1) : rawPath;
  if (service > 0) {
    const key = s3Decode(path);
    if (key === undefined) return undefined;
    return { bucket: labels.slice(0, service).join("."), ...(key === "" ? {} : { key }) };
  }
  if (path === "") return {};
  const slash = path.indexOf("/");
  const bucket = s3Decode(slash < 0 ? path : path.slice(0, slash));
  const key = slash < 0 ? "" : s3Decode(path.slice(slash + 1));
  if (bucket === undefined || key === undefined) return undefined;
  return { bucket, ...(key === "" ? {} : { key }) };
}

/** S3's reading of a path: `+` is a space, then each %XX once. Undefined when malformed. */
export function s3Decode(raw: string): string | undefined {
  return decodeOnce(raw.replaceAll("+", " "));
}

/** A decoded path that a normalising service could read differently: `.`/`..` or empty segments. */
function ambiguousPath(decoded: string): boolean {
  const segments = decoded.split("/").slice(1);
  return segments.some((s, i) => s === "." || s === ".." || (s === "" && i < segments.length - 1));
}

/**
 * The first rule of `endpoint` that matches `request`: allowed when it is an allow rule; refused
 * when it is a deny rule, when none matches, or when the request cannot be read the way a rule
 * needs it. Undefined rules (the endpoint has none): allowed, rule -1.
 */
export function checkRules(endpoint: Endpoint, request: RuleRequest): RuleVerdict {
  const rules = endpoint.rules;
  if (rules === undefined) return { allowed: true, rule: -1 };
  const name = `endpoints[${endpoint.index}] (${endpoint.host})`;
  const method = request.method.toUpperCase();
  const isS3 = S3_SERVICES.has(request.service);
  let decodedPath: string | undefined | null = null; // null: not computed yet
  const pathOf = (): string | undefined => {
    if (decodedPath === null) decodedPath = decodeOnce(request.path);
    return decodedPath;
  };
  let address: S3Address | undefined | null = null;
  const addressOf = (): S3Address | undefined => {
    if (address === null) address = isS3 ? s3Address(request.host, request.path) : undefined;
    return address;
  };
  for (const rule of rules) {
    if (rule.methods !== undefined && !rule.methods.has(method)) continue;
    if (rule.paths !== undefined) {
      const path = pathOf();
      if (path === undefined) return refuse(`${name}: the path has a malformed percent-escape, so rules[${rule.index}] cannot read it`, rule.index);
      if (!isS3 && ambiguousPath(path)) {
        return refuse(`${name}: the path has "." or ".." segments or "//", which ${request.service} may normalise; rules[${rule.index}] reads paths, so it is refused`, rule.index);
      }
      if (!rule.paths.some((g) => g.regex.test(path))) continue;
    }
    if (rule.s3 !== undefined) {
      if (!isS3) continue;
      const at = addressOf();
      if (at === undefined) return refuse(`${name}: the path has a malformed percent-escape, so rules[${rule.index}] cannot read its S3 bucket and key`, rule.index);
      if (rule.s3.bucket !== undefined && (at.bucket === undefined || !rule.s3.bucket.some((g) => g.regex.test(at.bucket as string)))) continue;
      if (rule.s3.key !== undefined && (at.key === undefined || !rule.s3.key.some((g) => g.regex.test(at.key as string)))) continue;
    }
    if (rule.actions !== undefined) {
      const action = request.action?.();
      if (action === undefined || !("names" in action)) {
        // An action that cannot be determined matches no allow rule; a deny rule refuses it, since
        // it could be the action denied (fail closed).
        if (rule.effect === "deny") return refuse(`${name}: rules[${rule.index}] (deny) refuses this request: its action cannot be determined, and could be one the rule denies`, rule.index);
        continue;
      }
      if (!rule.actions.some((g) => action.names.some((name) => g.regex.test(name)))) continue;
    }
    if (rule.effect === "allow") return { allowed: true, rule: rule.index };
    return refuse(`${name}: rules[${rule.index}] (deny) refuses this request`, rule.index);
  }
  return refuse(`${name}: no rule allows this request (${clip(method)}); rules are tried in order and the first match decides`);
}

function refuse(message: string, rule?: number): RuleVerdict {
  return { allowed: false, kind: "rule", ...(rule === undefined ? {} : { rule }), message };
}

function clip(s: string): string {
  return s.length > 32 ? `${s.slice(0, 32)}…` : s;
}
