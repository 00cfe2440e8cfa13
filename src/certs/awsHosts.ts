/**
 * AWS host names deeper than one label under a domain, for `**` patterns.
 *
 * A certificate wildcard covers exactly one left-most label, so `**.amazonaws.com` cannot be
 * written as one SAN. `*.amazonaws.com` covers the global hosts (sts.amazonaws.com,
 * s3.amazonaws.com, iam.amazonaws.com …); the list below adds the deeper names AWS uses:
 *
 * - `*.<region>.<suffix>`: every regional service host, e.g. sts.us-east-1.amazonaws.com,
 *   bedrock-runtime.eu-west-1.amazonaws.com, dynamodb-fips.us-west-2.amazonaws.com — one SAN per
 *   region covers all of COMMON_SERVICE_PREFIXES and every other service.
 * - `*.<prefix>.<region>.amazonaws.com` for services that put a bucket, access point, account or
 *   API id in front (REGIONAL_SUBDOMAIN_PREFIXES; FIPS ones only in FIPS_REGIONS).
 * - `*.<host>` for the global hosts that do the same (GLOBAL_SUBDOMAIN_HOSTS).
 *
 * Not covered (the workload's TLS check fails; add an explicit pattern or use endpoint mode):
 * bucket names containing dots, S3 Express zonal hosts (bucket--az--x-s3.s3express-<az>.<region>…),
 * VPC endpoint names (vpce-….<service>.<region>.vpce.amazonaws.com), S3 website endpoints and
 * anything else more than one label below the names above.
 */
import { AWS_PARTITIONS, FIPS_REGIONS } from "./regions.js";

export const REGIONAL_SUBDOMAIN_PREFIXES: readonly string[] = [
  "s3", // bucket.s3.us-east-1.amazonaws.com
  "s3-accesspoint", // name-account.s3-accesspoint.us-east-1.amazonaws.com
  "s3-control", // account.s3-control.us-east-1.amazonaws.com
  "execute-api", // api-id.execute-api.us-east-1.amazonaws.com
  "ecr", // api.ecr.us-east-1.amazonaws.com
  "sagemaker", // runtime.sagemaker.us-east-1.amazonaws.com
  "dualstack", // s3.dualstack.us-east-1.amazonaws.com
  "s3.dualstack", // bucket.s3.dualstack.us-east-1.amazonaws.com
  "s3-accesspoint.dualstack",
];

export const FIPS_SUBDOMAIN_PREFIXES: readonly string[] = [
  "s3-fips",
  "s3-fips.dualstack",
  "s3-accesspoint-fips",
  "s3-control-fips",
];

/** Global hosts with a bucket (or similar) label in front. */
export const GLOBAL_SUBDOMAIN_HOSTS: readonly string[] = ["s3.amazonaws.com", "s3-external-1.amazonaws.com"];

/**
 * Services whose regional hosts (`<prefix>.<region>.amazonaws.com`) `**.amazonaws.com` must
 * cover. They need no SAN of their own: `*.<region>.amazonaws.com` covers them all.
 */
export const COMMON_SERVICE_PREFIXES: readonly string[] = [
  "s3",
  "sts",
  "bedrock",
  "bedrock-runtime",
  "bedrock-agent",
  "bedrock-agent-runtime",
  "dynamodb",
  "sqs",
  "sns",
  "lambda",
  "kms",
  "secretsmanager",
  "ssm",
  "logs",
  "monitoring",
  "ecr",
  "execute-api",
  "events",
  "states",
  "athena",
  "glue",
  "kinesis",
  "firehose",
  "sagemaker",
  "runtime.sagemaker",
];

/** Global service hosts `**.amazonaws.com` must cover (through `*.amazonaws.com`). */
export const GLOBAL_SERVICE_HOSTS: readonly string[] = [
  "sts.amazonaws.com",
  "s3.amazonaws.com",
  "iam.amazonaws.com",
  "route53.amazonaws.com",
  "cloudfront.amazonaws.com",
  "organizations.us-east-1.amazonaws.com",
];

let known: readonly string[] | undefined;

/** Every deeper AWS wildcard SAN this module knows, for all partitions. */
export function knownAwsWildcards(): readonly string[] {
  known ??= listAwsWildcards();
  return known;
}

function listAwsWildcards(): string[] {
  const sans: string[] = [];
  for (const partition of AWS_PARTITIONS) {
    for (const region of partition.regions) {
      sans.push(`*.${region}.${partition.dnsSuffix}`, `*.${region}.${partition.dualStackDnsSuffix}`);
      for (const prefix of REGIONAL_SUBDOMAIN_PREFIXES) sans.push(`*.${prefix}.${region}.${partition.dnsSuffix}`);
      if (FIPS_REGIONS.has(region)) {
        for (const prefix of FIPS_SUBDOMAIN_PREFIXES) sans.push(`*.${prefix}.${region}.${partition.dnsSuffix}`);
      }
    }
  }
  for (const host of GLOBAL_SUBDOMAIN_HOSTS) sans.push(`*.${host}`);
  return sans;
}
