/**
 * The Node running the tests is one that package.json's `engines` accepts, and, when
 * COUNTERSIGN_EXPECT_NODE_MAJOR is set (`make test-node24` sets 24), exactly that major: otherwise
 * a second CI run meant for Node 24 could pass on the machine's Node 20 without anyone noticing.
 * Every process the tests spawn uses process.execPath, so this one check covers them too.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const PACKAGE = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8")) as { engines: { node: string } };

type Version = readonly [number, number, number];

function parseVersion(text: string): Version {
  const m = /^v?(\d+)\.(\d+)\.(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`not a version: ${text}`);
  return [Number(m[1]), Number(m[2]), Number(m[3])];
}

function atLeast(v: Version, floor: Version): boolean {
  for (let i = 0; i < 3; i++) if ((v[i] ?? 0) !== (floor[i] ?? 0)) return (v[i] ?? 0) > (floor[i] ?? 0);
  return true;
}

/** The two comparator forms `engines` uses, `^X.Y.Z` (same major, at least X.Y.Z) and `>=X[.Y.Z]`, joined by `||`; anything else is refused. */
function satisfiesEngines(version: string, range: string): boolean {
  const v = parseVersion(version);
  return range.split("||").some((part) => {
    const p = part.trim();
    if (p.startsWith("^")) {
      const floor = parseVersion(p.slice(1));
      return v[0] === floor[0] && atLeast(v, floor);
    }
    const m = /^>=(\d+)(?:\.(\d+)\.(\d+))?$/.exec(p);
    if (m) return atLeast(v, [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)]);
    throw new Error(`engines comparator ${JSON.stringify(p)} is not ^X.Y.Z or >=X[.Y.Z]: teach satisfiesEngines it`);
  });
}

describe("the Node running the tests", () => {
  it("is one package.json's engines accepts", () => {
    expect({ node: process.version, accepted: satisfiesEngines(process.version, PACKAGE.engines.node) }).toEqual({ node: process.version, accepted: true });
  });

  it("is the major COUNTERSIGN_EXPECT_NODE_MAJOR names, when it names one", () => {
    const expected = process.env["COUNTERSIGN_EXPECT_NODE_MAJOR"];
    expect(process.versions.node.split(".")[0]).toBe(expected ?? process.versions.node.split(".")[0]);
  });

  it("reads the engines range as npm does for the Node lines in question", () => {
    const range = "^20.19.0 || ^22.13.0 || >=24";
    expect(["v20.18.3", "v20.19.0", "v21.7.3", "v22.12.0", "v22.13.0", "v23.11.0", "v24.0.0", "v24.21.0", "v26.1.0"].filter((v) => satisfiesEngines(v, range))).toEqual([
      "v20.19.0",
      "v22.13.0",
      "v24.0.0",
      "v24.21.0",
      "v26.1.0",
    ]);
    expect(() => satisfiesEngines("v24.0.0", "~24.1.0")).toThrow(/is not \^X\.Y\.Z or >=X/);
  });
});
