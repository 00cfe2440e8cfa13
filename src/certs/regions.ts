/**
 * AWS partitions and regions that certificate SANs are expanded over.
 *
 * Region names and DNS suffixes follow the partition table the AWS SDKs ship (partitions.json in
 * @aws-sdk/core); `regions.spec.ts` fails when the installed SDK knows a region that is missing
 * here. Add new regions to the right partition below.
 */

export interface AwsPartition {
  readonly id: string;
  /** e.g. "amazonaws.com": service.region.amazonaws.com. */
  readonly dnsSuffix: string;
  /** e.g. "api.aws": the newer dual-stack service.region.api.aws endpoints. */
  readonly dualStackDnsSuffix: string;
  readonly regions: readonly string[];
}

export const AWS_PARTITIONS: readonly AwsPartition[] = [
  {
    id: "aws",
    dnsSuffix: "amazonaws.com",
    dualStackDnsSuffix: "api.aws",
    regions: [
      "us-east-1",
      "us-east-2",
      "us-west-1",
      "us-west-2",
      "af-south-1",
      "ap-east-1",
      "ap-east-2",
      "ap-northeast-1",
      "ap-northeast-2",
      "ap-northeast-3",
      "ap-south-1",
      "ap-south-2",
      "ap-southeast-1",
      "ap-southeast-2",
      "ap-southeast-3",
      "ap-southeast-4",
      "ap-southeast-5",
      "ap-southeast-6",
      "ap-southeast-7",
      "ca-central-1",
      "ca-west-1",
      "eu-central-1",
      "eu-central-2",
      "eu-north-1",
      "eu-south-1",
      "eu-south-2",
      "eu-west-1",
      "eu-west-2",
      "eu-west-3",
      "il-central-1",
      "me-central-1",
      "me-south-1",
      "me-west-1",
      "mx-central-1",
      "sa-east-1",
      "sa-west-1",
    ],
  },
  {
    id: "aws-cn",
    dnsSuffix: "amazonaws.com.cn",
    dualStackDnsSuffix: "api.amazonwebservices.com.cn",
    regions: ["cn-north-1", "cn-northwest-1"],
  },
  {
    id: "aws-us-gov",
    dnsSuffix: "amazonaws.com",
    dualStackDnsSuffix: "api.aws",
    regions: ["us-gov-east-1", "us-gov-west-1"],
  },
];

/** Regions with FIPS endpoints (service-fips.region.amazonaws.com). */
export const FIPS_REGIONS: ReadonlySet<string> = new Set([
  "us-east-1",
  "us-east-2",
  "us-west-1",
  "us-west-2",
  "ca-central-1",
  "ca-west-1",
  "us-gov-east-1",
  "us-gov-west-1",
]);

/** Regions of every partition whose DNS suffix (or dual-stack suffix) is `suffix`. */
export function regionsForSuffix(suffix: string): string[] {
  return AWS_PARTITIONS.filter((p) => p.dnsSuffix === suffix || p.dualStackDnsSuffix === suffix).flatMap((p) => p.regions);
}
