/**
 * Both overlays build the way `kubectl apply -k` and Argo CD build them: with kustomize's default
 * load restrictor, which reads files only from inside the kustomization's own folder. Pieces kept
 * elsewhere (envoy/, k8s/grafana/) are kustomizations of their own, listed as resources.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import { loadAll } from "js-yaml";
import { describe, expect, it } from "vitest";
import { type Doc, isDoc, loadYamlDocs, repoPath } from "./kustomize.js";
import { kubectlBinary, runTool } from "./tools.js";
import { findOne, metadataOf, podTemplateOf } from "./workloads.js";

const OVERLAYS = ["sidecar", "shared-service"] as const;
/** Spelt in two parts so that this file does not find itself. */
const RESTRICTOR_FLAG = ["--load", "restrictor"].join("-");

function trackedFiles(): string[] {
  return execFileSync("git", ["ls-files", "-z"], { cwd: repoPath(), encoding: "utf8" }).split("\0").filter((f) => f !== "");
}

describe("building the overlays with kustomize's default load restrictor", () => {
  it.each(OVERLAYS)("%s: `kubectl kustomize` with the default restrictor, and with LoadRestrictionsRootOnly named, succeeds", (overlay) => {
    for (const args of [["kustomize", repoPath("k8s", overlay)], ["kustomize", RESTRICTOR_FLAG, "LoadRestrictionsRootOnly", repoPath("k8s", overlay)]]) {
      const r = runTool(kubectlBinary(), args);
      expect(r.status, r.transcript).toBe(0);
      expect(r.stdout).toContain("kind: Deployment");
    }
  });

  it("the sidecar build carries envoy/envoy.yaml and its SDS file byte for byte, in the ConfigMap the Envoy container mounts", () => {
    const r = runTool(kubectlBinary(), ["kustomize", repoPath("k8s", "sidecar")]);
    expect(r.status, r.transcript).toBe(0);
    const docs: Doc[] = [];
    loadAll(r.stdout, (d) => {
      if (isDoc(d)) docs.push(d);
    });
    const configMaps = docs.filter((d) => d["kind"] === "ConfigMap" && /^countersign-envoy-[a-z0-9]{10}$/.test(metadataOf(d).name));
    expect(configMaps).toHaveLength(1);
    const data = configMaps[0]?.["data"] as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual(["envoy.yaml", "tls-certificate.sds.yaml"]);
    for (const [key, value] of Object.entries(data)) expect(value, key).toBe(readFileSync(repoPath("envoy", key), "utf8"));
    const pod = podTemplateOf(findOne(docs, "Deployment", "aws-workload")).spec;
    expect(pod.volumes?.find((v) => v.name === "envoy-config")?.configMap?.name).toBe(metadataOf(configMaps[0] ?? {}).name);
  });

  it("no kustomization in the repository reads a file outside its own folder", () => {
    const kustomizations = trackedFiles().filter((f) => f.endsWith("kustomization.yaml"));
    expect(kustomizations).toEqual(
      expect.arrayContaining(["envoy/kustomization.yaml", "k8s/base/kustomization.yaml", "k8s/grafana/kustomization.yaml", "k8s/shared-service/kustomization.yaml", "k8s/sidecar/kustomization.yaml"]),
    );
    const outside: string[] = [];
    for (const file of kustomizations) {
      const dir = dirname(repoPath(file));
      const [k] = loadYamlDocs(repoPath(file));
      const generators = [...(Array.isArray(k?.["configMapGenerator"]) ? k["configMapGenerator"] : []), ...(Array.isArray(k?.["secretGenerator"]) ? k["secretGenerator"] : [])];
      const sources = generators.filter(isDoc).flatMap((g) => (Array.isArray(g["files"]) ? g["files"].map((f) => String(f).split("=").at(-1) ?? "") : []));
      const patches = (Array.isArray(k?.["patches"]) ? k["patches"] : []).filter(isDoc).flatMap((p) => (typeof p["path"] === "string" ? [p["path"]] : []));
      for (const source of [...sources, ...patches]) {
        const rel = relative(dir, resolve(dir, source));
        if (rel.startsWith("..") || rel.startsWith(sep)) outside.push(`${file}: ${source}`);
      }
    }
    expect(outside).toEqual([]);
  });

  it(`no document, script or test asks for ${RESTRICTOR_FLAG}`, () => {
    const mentions = trackedFiles().filter((f) => /\.(md|ya?ml|ts|sh|json)$|Makefile$/.test(f) && readFileSync(repoPath(f), "utf8").includes(RESTRICTOR_FLAG));
    expect(mentions).toEqual([]);
  });
});
