/**
 * Reads a kustomization the way `kustomize build` assembles it, for the parts k8s/ uses:
 * resources (files and directories, recursively), configMapGenerator with `files`, delete patches,
 * images and namespace. It keeps generator file paths, which a real build forgets, so tests can
 * check where each ConfigMap comes from. The spec compares it with a real build by the pinned
 * kubectl's built-in kustomize (test/k8s/tools.ts).
 */
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { loadAll } from "js-yaml";

export type Doc = Record<string, unknown>;

export interface GeneratedFile {
  /** Key in the ConfigMap's data. */
  readonly key: string;
  /** Absolute path of the file it is read from. */
  readonly path: string;
}

export interface ConfigMapGenerator {
  readonly name: string;
  readonly files: readonly GeneratedFile[];
  readonly labels: Readonly<Record<string, string>>;
  readonly hashSuffix: boolean;
  /** The kustomization.yaml that declares it. */
  readonly declaredIn: string;
}

export interface ImageOverride {
  readonly name: string;
  readonly newName?: string;
  readonly newTag?: string;
}

export interface Assembled {
  /** Resource documents, before kustomize's transformations (namespace, hashes, images). */
  readonly resources: readonly Doc[];
  readonly generators: readonly ConfigMapGenerator[];
  readonly images: readonly ImageOverride[];
  readonly namespace?: string;
  /** Every file the build reads, absolute. */
  readonly files: readonly string[];
}

export function isDoc(value: unknown): value is Doc {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function loadYamlDocs(path: string): Doc[] {
  const docs: Doc[] = [];
  loadAll(readFileSync(path, "utf8"), (doc) => {
    if (doc === null || doc === undefined) return;
    if (!isDoc(doc)) throw new Error(`${path}: a document is not a mapping`);
    docs.push(doc);
  }, { filename: path });
  return docs;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

function kindAndName(doc: Doc): string {
  const metadata = isDoc(doc["metadata"]) ? doc["metadata"] : {};
  return `${String(doc["kind"])}/${String(metadata["name"])}`;
}

/** Kind/name pairs removed by `$patch: delete` patches of this kustomization. */
function deletedByPatches(kustomization: Doc): Set<string> {
  const deleted = new Set<string>();
  const patches = Array.isArray(kustomization["patches"]) ? kustomization["patches"] : [];
  for (const patch of patches) {
    if (!isDoc(patch) || typeof patch["patch"] !== "string") continue;
    const docs: Doc[] = [];
    loadAll(patch["patch"], (d) => {
      if (isDoc(d)) docs.push(d);
    });
    for (const d of docs) if (d["$patch"] === "delete") deleted.add(kindAndName(d));
  }
  return deleted;
}

export function assemble(dir: string): Assembled {
  const root = resolve(dir);
  const kustomizationPath = join(root, "kustomization.yaml");
  const [kustomization] = loadYamlDocs(kustomizationPath);
  if (kustomization === undefined) throw new Error(`${kustomizationPath} is empty`);
  const resources: Doc[] = [];
  const generators: ConfigMapGenerator[] = [];
  const images: ImageOverride[] = [];
  const files = [kustomizationPath];
  let namespace: string | undefined;

  for (const entry of strings(kustomization["resources"])) {
    const path = resolve(root, entry);
    if (!existsSync(path)) throw new Error(`${kustomizationPath}: resource ${entry} does not exist`);
    if (statSync(path).isDirectory()) {
      const inner = assemble(path);
      resources.push(...inner.resources);
      generators.push(...inner.generators);
      images.push(...inner.images);
      files.push(...inner.files);
      namespace ??= inner.namespace;
    } else {
      resources.push(...loadYamlDocs(path));
      files.push(path);
    }
  }

  const generatorEntries = Array.isArray(kustomization["configMapGenerator"]) ? kustomization["configMapGenerator"] : [];
  for (const entry of generatorEntries) {
    if (!isDoc(entry) || typeof entry["name"] !== "string") throw new Error(`${kustomizationPath}: a configMapGenerator entry has no name`);
    const options = isDoc(entry["options"]) ? entry["options"] : {};
    const labels = isDoc(options["labels"]) ? Object.fromEntries(Object.entries(options["labels"]).map(([k, v]) => [k, String(v)])) : {};
    const generated = strings(entry["files"]).map((spec) => {
      const [key, source] = spec.includes("=") ? (spec.split("=", 2) as [string, string]) : [spec.split("/").at(-1) ?? spec, spec];
      return { key, path: resolve(root, source) };
    });
    generators.push({ name: entry["name"], files: generated, labels, hashSuffix: options["disableNameSuffixHash"] !== true, declaredIn: kustomizationPath });
    files.push(...generated.map((g) => g.path));
  }

  const deleted = deletedByPatches(kustomization);
  const kept = resources.filter((doc) => !deleted.has(kindAndName(doc)));
  const keptGenerators = generators.filter((g) => !deleted.has(`ConfigMap/${g.name}`));

  for (const image of Array.isArray(kustomization["images"]) ? kustomization["images"] : []) {
    if (isDoc(image) && typeof image["name"] === "string") {
      images.push({
        name: image["name"],
        ...(typeof image["newName"] === "string" ? { newName: image["newName"] } : {}),
        ...(typeof image["newTag"] === "string" ? { newTag: image["newTag"] } : {}),
      });
    }
  }
  if (typeof kustomization["namespace"] === "string") namespace = kustomization["namespace"];

  return { resources: kept, generators: keptGenerators, images, ...(namespace !== undefined ? { namespace } : {}), files };
}

/**
 * The documents `kubectl kustomize` builds from `dir` (the pinned kubectl, test/k8s/tools.ts), with
 * kustomize's default load restrictor, as `kubectl apply -k` and Argo CD build it.
 */
export function kustomizeBuild(kubectl: string, dir: string): Doc[] {
  const args = ["kustomize", dir];
  const r = spawnSync(kubectl, args, { encoding: "utf8", timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw new Error(`${kubectl} ${args.join(" ")}: ${r.error.message}`, { cause: r.error });
  if (r.status !== 0) throw new Error(`${kubectl} ${args.join(" ")} exited ${String(r.status)}:\n${r.stderr}`);
  const docs: Doc[] = [];
  loadAll(r.stdout, (d) => {
    if (isDoc(d)) docs.push(d);
  });
  return docs;
}

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** An absolute path inside the repository. */
export function repoPath(...parts: string[]): string {
  return resolve(REPO_ROOT, ...parts);
}
