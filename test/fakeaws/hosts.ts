/**
 * Which AWS service and region a `Host` header names, the way AWS's DNS would route it.
 * Only the services the fake implements are known; anything else is undefined.
 */

export type Protocol = "s3" | "query" | "json";
export type Api = "s3" | "sts" | "bedrock-runtime" | "dynamodb" | "transcribe-streaming";

export interface Endpoint {
  api: Api;
  /** SigV4 signing name expected in the credential scope. */
  service: string;
  region: string;
  protocol: Protocol;
  /** Virtual-hosted-style S3 bucket, when the host carries one. */
  bucket?: string;
  /** Host without port, lowercase. */
  hostname: string;
  /** An S3 Multi-Region Access Point: SigV4A only, served here from `region`. */
  multiRegionAccessPoint?: true;
}

/** The region the fake serves S3 Multi-Region Access Points from (a region set must cover it). */
export const MRAP_SERVING_REGION = "us-east-1";

const REGION_RE = /^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d{1,2}$/;

export function looksLikeRegion(label: string): boolean {
  return REGION_RE.test(label);
}

/** `Bucket.s3.us-west-2.amazonaws.com:443` → `bucket.s3.us-west-2.amazonaws.com` */
export function hostnameOf(hostHeader: string): string {
  const host = hostHeader.trim().toLowerCase();
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon >= 0 && /^\d+$/.test(host.slice(colon + 1)) ? host.slice(0, colon) : host;
}

function splitPartition(hostname: string): { labels: string[]; china: boolean } | undefined {
  for (const [suffix, china] of [
    [".amazonaws.com.cn", true],
    [".amazonaws.com", false],
  ] as const) {
    if (hostname.endsWith(suffix)) return { labels: hostname.slice(0, -suffix.length).split("."), china };
  }
  return undefined;
}

const S3_LEGACY_DASH_RE = /^s3-([a-z]{2}(?:-gov)?-[a-z]+-\d{1,2})$/;

/** Index of the S3 service label, searching from the right so dotted bucket names work. */
function s3LabelIndex(labels: string[]): number {
  for (let i = labels.length - 1; i >= 0; i--) {
    const l = labels[i] as string;
    if (l === "s3" || l === "s3-fips" || l === "s3-external-1" || S3_LEGACY_DASH_RE.test(l)) return i;
  }
  return -1;
}

function resolveS3(labels: string[], china: boolean, hostname: string): Endpoint | undefined {
  const i = s3LabelIndex(labels);
  if (i < 0) return undefined;
  const label = labels[i] as string;
  const rest = labels.slice(i + 1);
  const bucket = i > 0 ? labels.slice(0, i).join(".") : undefined;
  let region: string | undefined;
  const legacy = S3_LEGACY_DASH_RE.exec(label);
  if (legacy) {
    if (rest.length !== 0) return undefined;
    region = legacy[1];
  } else if (label === "s3-external-1") {
    if (rest.length !== 0) return undefined;
    region = "us-east-1";
  } else if (rest.length === 0) {
    region = china ? undefined : "us-east-1";
  } else if (rest.length === 1 && looksLikeRegion(rest[0] as string)) {
    region = rest[0];
  } else if (rest.length === 2 && rest[0] === "dualstack" && looksLikeRegion(rest[1] as string)) {
    region = rest[1];
  }
  if (region === undefined) return undefined;
  return { api: "s3", service: "s3", region, protocol: "s3", hostname, ...(bucket !== undefined ? { bucket } : {}) };
}

const REGIONAL_SERVICES: Record<string, { api: Api; service: string; protocol: Protocol; globalRegion?: string }> = {
  sts: { api: "sts", service: "sts", protocol: "query", globalRegion: "us-east-1" },
  "sts-fips": { api: "sts", service: "sts", protocol: "query" },
  "bedrock-runtime": { api: "bedrock-runtime", service: "bedrock", protocol: "json" },
  "bedrock-runtime-fips": { api: "bedrock-runtime", service: "bedrock", protocol: "json" },
  dynamodb: { api: "dynamodb", service: "dynamodb", protocol: "json" },
  "dynamodb-fips": { api: "dynamodb", service: "dynamodb", protocol: "json" },
  transcribestreaming: { api: "transcribe-streaming", service: "transcribe", protocol: "json" },
  "transcribestreaming-fips": { api: "transcribe-streaming", service: "transcribe", protocol: "json" },
};

/** Resolves a Host header (port allowed) to the fake service it names, or undefined. */
export function resolveEndpoint(hostHeader: string): Endpoint | undefined {
  const hostname = hostnameOf(hostHeader);
  const split = splitPartition(hostname);
  if (!split) return undefined;
  const { labels, china } = split;
  // <alias>.mrap.accesspoint.s3-global.amazonaws.com, or <alias>.accesspoint.s3-global.amazonaws.com:
  // the alias is the bucket the fake stores under.
  const mrap = /^([a-z0-9]+(?:\.mrap)?)\.accesspoint\.s3-global$/.exec(labels.join("."));
  if (mrap && !china) {
    const alias = (mrap[1] as string).replace(/\.mrap$/, "");
    return { api: "s3", service: "s3", region: MRAP_SERVING_REGION, protocol: "s3", hostname, bucket: alias, multiRegionAccessPoint: true };
  }
  const s3 = resolveS3(labels, china, hostname);
  if (s3) return s3;
  const known = REGIONAL_SERVICES[labels[0] as string];
  if (!known) return undefined;
  if (labels.length === 1 && known.globalRegion && !china) {
    return { api: known.api, service: known.service, region: known.globalRegion, protocol: known.protocol, hostname };
  }
  if (labels.length === 2 && looksLikeRegion(labels[1] as string)) {
    return { api: known.api, service: known.service, region: labels[1] as string, protocol: known.protocol, hostname };
  }
  return undefined;
}
