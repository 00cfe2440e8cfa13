/**
 * The compiled, immutable policy. `parsePolicy` (src/policy/parsePolicy.ts) builds it from YAML;
 * everything else reads it. A new policy replaces the old one as a whole object, never in parts.
 */

import type { Result } from "../result.js";
import type { Rule } from "./rules.js";

export type CredentialSigning = "sigv4" | "sigv4:body" | "sigv4:no_body" | "sigv4a";

/**
 * What an endpoint lets a workload do, by HTTP method: read-only (GET HEAD OPTIONS), read-write
 * (also POST PUT PATCH, but not S3's multi-object delete) or full (any method).
 */
export type Access = "read-only" | "read-write" | "full";

/** enforce: refuse what the endpoint's access does not allow; audit: sign it, log and count it. */
export type Enforcement = "enforce" | "audit";

export interface StaticCredentialSpec {
  readonly kind: "static";
  readonly accessKeyIdEnv: string;
  readonly secretAccessKeyEnv: string;
  readonly sessionTokenEnv?: string;
}

export interface FileCredentialSpec {
  readonly kind: "file";
  /** AWS shared-credentials file (INI). Re-read when it changes. */
  readonly path: string;
  readonly profile: string;
}

export interface DefaultChainCredentialSpec {
  readonly kind: "default_chain";
}

export interface AssumeRoleCredentialSpec {
  readonly kind: "assume_role";
  readonly roleArn: string;
  /** Default: countersign-<hostname> (cut to 64 characters). */
  readonly sessionName?: string;
  readonly externalId?: string;
  /** 900..43200; at most 3600 when the source is itself a role. Default 3600. */
  readonly durationSeconds: number;
  /** Default 300. */
  readonly refreshBeforeSeconds: number;
  /** Stop signing with a set this long before it expires. Less than the refresh window. Default 30. */
  readonly expiryMarginSeconds: number;
  /** Name of another credentials entry. */
  readonly source: string;
  /** Default us-east-1. */
  readonly stsRegion: string;
  readonly stsEndpoint?: string;
  readonly policy?: string;
  readonly tags?: Readonly<Record<string, string>>;
}

export type CredentialSpec =
  | StaticCredentialSpec
  | FileCredentialSpec
  | DefaultChainCredentialSpec
  | AssumeRoleCredentialSpec;

export interface Endpoint {
  /** Position in the policy's `endpoints` list (0-based); the first match wins. */
  readonly index: number;
  /** The pattern as written, e.g. "*.s3.*.amazonaws.com". */
  readonly host: string;
  /** Omitted: any port. */
  readonly port?: number;
  readonly credentialSigning: CredentialSigning;
  /** A SigV4 service name, or "auto" (taken from the client's own credential scope). */
  readonly signingService: string;
  /** Omitted: derived from the host. Never set with `sigv4a`. */
  readonly region?: string;
  /** `sigv4a` only: the region set to sign for. Omitted: the client's `x-amz-region-set`. */
  readonly regionSet?: readonly string[];
  /**
   * Name of a credentials entry: the profile requests are signed with, or with `callers`, the one
   * for placeholder key ids not listed there. Always present when `callers` is absent.
   */
  readonly credentials?: string;
  /** Omitted: any placeholder key id is accepted. */
  readonly clientAccessKeyIds?: ReadonlySet<string>;
  /** Placeholder key id → name of the credentials entry that signs its requests. */
  readonly callers?: ReadonlyMap<string, string>;
  /** Default full. */
  readonly access: Access;
  /** Default enforce. */
  readonly enforcement: Enforcement;
  /** Checked after access, in order; the first match decides, none matching refuses. Omitted: no rules. */
  readonly rules?: readonly Rule[];
}

export interface Limits {
  /** Largest body countersign asks Envoy to buffer (bytes). Must match Envoy's buffer limit. Default 1 MiB. */
  readonly maxBufferedBodyBytes: number;
}

export interface Policy {
  readonly version: 1;
  readonly credentials: ReadonlyMap<string, CredentialSpec>;
  readonly endpoints: readonly Endpoint[];
  readonly limits: Limits;
  /** Hex SHA-256 of the source text, for the policy-info metric and logs. */
  readonly sha256: string;
}

export interface PolicyError {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly col: number;
  readonly message: string;
}

/** A parsed policy, or every problem found in it (at least one), sorted by position. */
export type ParseResult = Result<{ readonly policy: Policy }, readonly PolicyError[]>;
