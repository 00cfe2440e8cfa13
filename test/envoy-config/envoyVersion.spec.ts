/**
 * One Envoy version, pinned in envoy/VERSION, everywhere: the binary the tests validate and run
 * (scripts/install-envoy.sh installs it into .venv), the Envoy image of the Kubernetes manifests, and
 * the README's Testing section.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { ENVOY_VERSION, envoyBinary } from "../support/envoy.js";
import { assemble, repoPath } from "../k8s/kustomize.js";
import { readmeSection } from "../support/readmeSection.js";

const ENVOY_IMAGE = /envoyproxy\/envoy[\w.-]*:([\w.-]+)/g;

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : [path];
  });
}

/** "distroless-v1.40.0", "v1.40.0" → "1.40.0"; anything else (e.g. "v1.40-latest") → the tag itself. */
function versionOfTag(tag: string): string {
  return /^(?:[a-z-]+-)?v(\d+\.\d+\.\d+)$/.exec(tag)?.[1] ?? tag;
}

const readmeTestingSection = (): string => readmeSection("Testing");

describe("the Envoy version pin (envoy/VERSION)", () => {
  it("names one Envoy release", () => {
    expect(readFileSync(repoPath("envoy", "VERSION"), "utf8")).toMatch(/^\d+\.\d+\.\d+\n?$/);
  });

  it("is the version of the Envoy binary the tests run", () => {
    const envoy = envoyBinary();
    const r = spawnSync(envoy, ["--version"], { encoding: "utf8", timeout: 10_000 });
    expect(r.stdout, `${envoy} --version: ${r.stdout}${r.stderr}`).toContain(`/${ENVOY_VERSION}/`);
  });

  it("is the tag of every Envoy image in k8s/, in the manifests and in what the overlays build", () => {
    const tags = filesUnder(repoPath("k8s")).flatMap((file) =>
      [...readFileSync(file, "utf8").matchAll(ENVOY_IMAGE)].map((m) => ({ where: relative(repoPath(), file), tag: m[1] ?? "" })),
    );
    // What the overlays deploy after kustomize's image overrides: every image of the real builds.
    for (const overlay of ["sidecar", "shared-service"]) {
      const built = JSON.stringify(assemble(repoPath("k8s", overlay)).resources);
      for (const m of built.matchAll(ENVOY_IMAGE)) tags.push({ where: `kubectl kustomize k8s/${overlay}`, tag: m[1] ?? "" });
    }
    expect(tags.length).toBeGreaterThan(0);
    expect(tags.map((t) => ({ ...t, version: versionOfTag(t.tag) }))).toEqual(tags.map((t) => ({ ...t, version: ENVOY_VERSION })));
  });

  it("is the Envoy the README's Testing section names, installed by make test with scripts/install-envoy.sh into .venv", () => {
    const section = readmeTestingSection();
    const named = [...section.matchAll(/\bEnvoy (\d+\.\d+\.\d+)\b/g)].map((m) => m[1]);
    expect(named.length).toBeGreaterThan(0);
    expect(named).toEqual(named.map(() => ENVOY_VERSION));
    expect(section).toContain("scripts/install-envoy.sh");
    expect(section).toContain(".venv");
  });
});
