import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { AWS_PARTITIONS, FIPS_REGIONS, regionsForSuffix } from "./regions.js";

const require = createRequire(import.meta.url);
/** The partition table the installed AWS SDK uses (not a public entry point, hence the skip). */
const SDK_PARTITIONS = join(
  dirname(require.resolve("@aws-sdk/core/package.json")),
  "dist-es/submodules/client/util-endpoints/lib/aws/partitions.js",
);

interface SdkPartition {
  readonly id: string;
  readonly outputs: { readonly dnsSuffix: string; readonly dualStackDnsSuffix: string };
  readonly regions: Readonly<Record<string, unknown>>;
}

describe("regions", () => {
  it.skipIf(!existsSync(SDK_PARTITIONS))(
    "lists every region and suffix of the installed AWS SDK's commercial, China and GovCloud partitions (skipped when the SDK moves its table)",
    async () => {
      const mod = (await import(pathToFileURL(SDK_PARTITIONS).href)) as { partitionsInfo: { partitions: SdkPartition[] } };
      for (const ours of AWS_PARTITIONS) {
        const sdk = mod.partitionsInfo.partitions.find((p) => p.id === ours.id);
        expect(sdk, ours.id).toBeDefined();
        const sdkRegions = Object.keys(sdk?.regions ?? {}).filter((r) => !r.endsWith("-global"));
        expect([...ours.regions].sort(), ours.id).toEqual(sdkRegions.sort());
        expect(ours.dnsSuffix).toBe(sdk?.outputs.dnsSuffix);
        expect(ours.dualStackDnsSuffix).toBe(sdk?.outputs.dualStackDnsSuffix);
      }
    },
  );

  it("maps each DNS suffix to the regions of every partition that uses it", () => {
    expect(regionsForSuffix("amazonaws.com.cn")).toEqual(["cn-north-1", "cn-northwest-1"]);
    expect(regionsForSuffix("amazonaws.com")).toContain("us-gov-west-1");
    expect(regionsForSuffix("amazonaws.com")).toContain("eu-west-1");
    expect(regionsForSuffix("example.com")).toEqual([]);
  });

  it("has FIPS regions only from the partitions above", () => {
    const all = new Set(AWS_PARTITIONS.flatMap((p) => p.regions));
    expect([...FIPS_REGIONS].filter((r) => !all.has(r))).toEqual([]);
  });
});
