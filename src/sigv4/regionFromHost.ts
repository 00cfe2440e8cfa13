/**
 * Derives the signing region from an AWS host name.
 *
 *   bucket.s3.dualstack.eu-west-1.amazonaws.com  → eu-west-1
 *   s3-fips.dualstack.us-gov-west-1.amazonaws.com → us-gov-west-1
 *   s3-us-west-2.amazonaws.com (legacy dash form)  → us-west-2
 *   s3.cn-north-1.amazonaws.com.cn                 → cn-north-1
 *   sts.amazonaws.com, iam.amazonaws.com           → us-east-1 (global, aws partition)
 *   iam.amazonaws.com.cn                           → cn-north-1 (global, China)
 *   iam.us-gov.amazonaws.com                       → us-gov-west-1 (global, GovCloud)
 *
 * Returns undefined for hosts that are not AWS service hosts.
 */

const REGION = /^(?:[a-z]{2}|[a-z]{2}-gov|[a-z]{2}-iso[a-z]?)-[a-z]+-\d+$/;
/** Legacy S3 hosts that carry the region after a dash: s3-us-west-2, s3-fips-us-gov-west-1. */
const LEGACY_S3 = /^s3(?:-fips)?-((?:[a-z]{2}|[a-z]{2}-gov)-[a-z]+-\d+)$/;

interface Suffix {
  readonly suffix: string;
  readonly globalRegion: string;
}

// Longest suffix first.
const SUFFIXES: readonly Suffix[] = [
  { suffix: ".us-gov.amazonaws.com", globalRegion: "us-gov-west-1" },
  { suffix: ".amazonaws.com.cn", globalRegion: "cn-north-1" },
  { suffix: ".amazonaws.com", globalRegion: "us-east-1" },
  { suffix: ".api.aws", globalRegion: "us-east-1" },
  { suffix: ".on.aws", globalRegion: "us-east-1" },
];

/** S3's one global-looking regional host. */
const S3_EXTERNAL_1 = "s3-external-1";

export function looksLikeRegion(label: string): boolean {
  return REGION.test(label);
}

export function regionFromHost(hostname: string): string | undefined {
  const host = normaliseHost(hostname);
  for (const { suffix, globalRegion } of SUFFIXES) {
    if (!host.endsWith(suffix) || host.length === suffix.length) continue;
    const labels = host.slice(0, host.length - suffix.length).split(".");
    // Scan right to left: the region is the label nearest the suffix that looks like one
    // (skipping dualstack / fips / service labels on the way).
    for (let i = labels.length - 1; i >= 0; i--) {
      const label = labels[i] as string;
      if (REGION.test(label)) return label;
      const legacy = LEGACY_S3.exec(label);
      if (legacy) return legacy[1];
      if (label === S3_EXTERNAL_1) return "us-east-1";
    }
    return globalRegion;
  }
  return undefined;
}

function normaliseHost(hostname: string): string {
  let h = hostname.toLowerCase();
  if (h.endsWith(".")) h = h.slice(0, -1);
  return h;
}
