import { createHash } from "node:crypto";
import { compileActionPattern } from "./actions.js";
import { compileGlob, type Rule, type RuleEffect } from "./rules.js";
import type { Access, CredentialSigning, CredentialSpec, Endpoint, Enforcement, Policy } from "./types.js";

/** The policy data as written, once it has passed the schema and the semantic checks. */
export interface PolicyDocument {
  readonly version: 1;
  readonly credentials: Readonly<Record<string, CredentialsEntryDocument>>;
  readonly limits?: { readonly max_buffered_body_bytes?: number };
  readonly endpoints: readonly EndpointDocument[];
}

interface CredentialsEntryDocument {
  readonly static?: {
    readonly access_key_id_env: string;
    readonly secret_access_key_env: string;
    readonly session_token_env?: string;
  };
  readonly file?: { readonly path: string; readonly profile?: string };
  readonly default_chain?: Record<string, never> | null;
  readonly assume_role?: {
    readonly role_arn: string;
    readonly session_name?: string;
    readonly external_id?: string;
    readonly duration_seconds?: number;
    readonly refresh_before_seconds?: number;
    readonly expiry_margin_seconds?: number;
    readonly source: string;
    readonly sts_region?: string;
    readonly sts_endpoint?: string;
    readonly policy?: string;
    readonly tags?: Readonly<Record<string, string>>;
  };
}

interface EndpointDocument {
  readonly host: string;
  readonly port?: number;
  readonly credential_signing: CredentialSigning;
  readonly signing_service: string;
  readonly region?: string;
  readonly region_set?: readonly string[];
  readonly credentials?: string;
  readonly client_access_key_ids?: readonly string[];
  readonly callers?: Readonly<Record<string, string>>;
  readonly access?: Access;
  readonly enforcement?: Enforcement;
  readonly rules?: readonly RuleDocument[];
}

interface RuleDocument {
  readonly effect: RuleEffect;
  readonly methods?: readonly string[];
  readonly paths?: readonly string[];
  readonly s3?: { readonly bucket?: string | readonly string[]; readonly key?: string | readonly string[] };
  readonly actions?: readonly string[];
}

export const DEFAULT_MAX_BUFFERED_BODY_BYTES = 1024 * 1024;
export const DEFAULT_ASSUME_ROLE_DURATION_SECONDS = 3600;
export const DEFAULT_REFRESH_BEFORE_SECONDS = 300;
export const DEFAULT_EXPIRY_MARGIN_SECONDS = 30;
export const DEFAULT_STS_REGION = "us-east-1";
export const DEFAULT_FILE_PROFILE = "default";
export const DEFAULT_ACCESS: Access = "full";
export const DEFAULT_ENFORCEMENT: Enforcement = "enforce";

/**
 * Compiles validated policy data into the immutable {@link Policy}: camelCase, defaults filled in,
 * optional settings absent (not `undefined`) when not written.
 */
export function buildPolicy(document: PolicyDocument, sourceText: string): Policy {
  const credentials = new Map<string, CredentialSpec>();
  for (const [name, entry] of Object.entries(document.credentials)) credentials.set(name, buildCredentialSpec(entry));
  return Object.freeze({
    version: 1,
    credentials,
    endpoints: Object.freeze(document.endpoints.map(buildEndpoint)),
    limits: Object.freeze({
      maxBufferedBodyBytes: document.limits?.max_buffered_body_bytes ?? DEFAULT_MAX_BUFFERED_BODY_BYTES,
    }),
    sha256: createHash("sha256").update(sourceText, "utf8").digest("hex"),
  });
}

function buildCredentialSpec(entry: CredentialsEntryDocument): CredentialSpec {
  if (entry.static !== undefined) {
    const s = entry.static;
    return Object.freeze({
      kind: "static",
      accessKeyIdEnv: s.access_key_id_env,
      secretAccessKeyEnv: s.secret_access_key_env,
      ...(s.session_token_env === undefined ? {} : { sessionTokenEnv: s.session_token_env }),
    });
  }
  if (entry.file !== undefined) {
    return Object.freeze({ kind: "file", path: entry.file.path, profile: entry.file.profile ?? DEFAULT_FILE_PROFILE });
  }
  if (entry.assume_role !== undefined) {
    const r = entry.assume_role;
    return Object.freeze({
      kind: "assume_role",
      roleArn: r.role_arn,
      ...(r.session_name === undefined ? {} : { sessionName: r.session_name }),
      ...(r.external_id === undefined ? {} : { externalId: r.external_id }),
      durationSeconds: r.duration_seconds ?? DEFAULT_ASSUME_ROLE_DURATION_SECONDS,
      refreshBeforeSeconds: r.refresh_before_seconds ?? DEFAULT_REFRESH_BEFORE_SECONDS,
      expiryMarginSeconds: r.expiry_margin_seconds ?? DEFAULT_EXPIRY_MARGIN_SECONDS,
      source: r.source,
      stsRegion: r.sts_region ?? DEFAULT_STS_REGION,
      ...(r.sts_endpoint === undefined ? {} : { stsEndpoint: r.sts_endpoint }),
      ...(r.policy === undefined ? {} : { policy: r.policy }),
      ...(r.tags === undefined ? {} : { tags: Object.freeze({ ...r.tags }) }),
    });
  }
  return Object.freeze({ kind: "default_chain" });
}

function buildEndpoint(e: EndpointDocument, index: number): Endpoint {
  return Object.freeze({
    index,
    host: e.host,
    ...(e.port === undefined ? {} : { port: e.port }),
    credentialSigning: e.credential_signing,
    signingService: e.signing_service,
    ...(e.region === undefined ? {} : { region: e.region }),
    ...(e.region_set === undefined ? {} : { regionSet: Object.freeze([...e.region_set]) }),
    ...(e.credentials === undefined ? {} : { credentials: e.credentials }),
    ...(e.client_access_key_ids === undefined ? {} : { clientAccessKeyIds: new Set(e.client_access_key_ids) }),
    ...(e.callers === undefined ? {} : { callers: new Map(Object.entries(e.callers)) }),
    access: e.access ?? DEFAULT_ACCESS,
    enforcement: e.enforcement ?? DEFAULT_ENFORCEMENT,
    ...(e.rules === undefined ? {} : { rules: Object.freeze(e.rules.map(buildRule)) }),
  });
}

function buildRule(r: RuleDocument, index: number): Rule {
  const globs = (value: string | readonly string[]) => Object.freeze((typeof value === "string" ? [value] : value).map(compileGlob));
  const s3 = r.s3;
  return Object.freeze({
    index,
    effect: r.effect,
    ...(r.methods === undefined ? {} : { methods: new Set(r.methods.map((m) => m.toUpperCase())) }),
    ...(r.paths === undefined ? {} : { paths: globs(r.paths) }),
    ...(s3 === undefined
      ? {}
      : {
          s3: Object.freeze({
            ...(s3.bucket === undefined ? {} : { bucket: globs(s3.bucket) }),
            ...(s3.key === undefined ? {} : { key: globs(s3.key) }),
          }),
        }),
    ...(r.actions === undefined ? {} : { actions: Object.freeze(r.actions.map((text) => ({ text, regex: compileActionPattern(text) }))) }),
  });
}
