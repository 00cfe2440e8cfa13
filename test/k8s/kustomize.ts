/**
 * The objects an overlay deploys, as the pinned kubectl's built-in kustomize builds them
 * (`kubectl kustomize`, test/k8s/tools.ts): no reading of kustomization files by hand. What a real
 * build does not keep, such as the file a generated ConfigMap key was read from, the tests check
 * through what it does keep: the ConfigMap's data, compared with the file.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadAll } from "js-yaml";
import { repoPath } from "./repoPath.js";
import { kubectlBinary, runTool } from "./tools.js";

export { repoPath };

export type Doc = Record<string, unknown>;

export function isDoc(value: unknown): value is Doc {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The mappings of a multi-document YAML text; throws when a document is not a mapping. */
export function parseYamlDocs(text: string, filename: string): Doc[] {
  const docs: Doc[] = [];
  loadAll(text, (doc) => {
    if (doc === null || doc === undefined) return;
    if (!isDoc(doc)) throw new Error(`${filename}: a document is not a mapping`);
    docs.push(doc);
  }, { filename });
  return docs;
}

export function loadYamlDocs(path: string): Doc[] {
  return parseYamlDocs(readFileSync(path, "utf8"), path);
}

/** Every .yaml/.yml file under `dir`, recursively. */
export function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return yamlFilesUnder(path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

/** An overlay (or any kustomization) as `kubectl kustomize` builds it. */
export interface Built {
  /** The kustomization directory, absolute. */
  readonly dir: string;
  /** Every object of the build, in kustomize's output order. */
  readonly resources: readonly Doc[];
}

/** The documents `kubectl kustomize` builds from `dir` with the given kubectl binary. */
export function kustomizeBuild(kubectl: string, dir: string): Doc[] {
  const r = runTool(kubectl, ["kustomize", dir]);
  if (r.status !== 0) throw new Error(`kubectl kustomize failed:\n${r.transcript}`);
  return parseYamlDocs(r.stdout, `kubectl kustomize ${dir}`);
}

const builds = new Map<string, Built>();

/** `dir` built by the pinned kubectl (once per directory and test file); throws, saying how to install kubectl, when it is missing. */
export function assemble(dir: string): Built {
  const root = resolve(dir);
  let built = builds.get(root);
  if (built === undefined) {
    built = { dir: root, resources: kustomizeBuild(kubectlBinary(), root) };
    builds.set(root, built);
  }
  return built;
}

/** A ConfigMap of a build, as its configMapGenerator names it. */
export interface GeneratedConfigMap {
  /** The name the generator declares. */
  readonly name: string;
  /** The name in the build: `name`, or `name-<content hash>`. */
  readonly builtName: string;
  /** Whether kustomize appended a content hash to the name. */
  readonly hashSuffix: boolean;
  readonly data: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
}

/** kustomize's name suffix: ten characters of the content hash, in its vowel-free alphabet. */
const HASH_SUFFIX = /^-[2456789bcdfghkmt]{10}$/;

function asGenerated(doc: Doc, name: string): GeneratedConfigMap {
  const metadata = isDoc(doc["metadata"]) ? doc["metadata"] : {};
  const builtName = String(metadata["name"]);
  const strings = (value: unknown): Record<string, string> => (isDoc(value) ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)])) : {});
  return { name, builtName, hashSuffix: builtName !== name, data: strings(doc["data"]), labels: strings(metadata["labels"]) };
}

/** The ConfigMap a generator named `name` made in this build, or undefined when there is none. */
export function findGeneratedConfigMap(built: Built, name: string): GeneratedConfigMap | undefined {
  const found = built.resources.filter((d) => {
    if (d["kind"] !== "ConfigMap" || !isDoc(d["metadata"])) return false;
    const builtName = String(d["metadata"]["name"]);
    return builtName === name || (builtName.startsWith(name) && HASH_SUFFIX.test(builtName.slice(name.length)));
  });
  if (found.length > 1) throw new Error(`${built.dir}: ${found.length} ConfigMaps generated as ${name}`);
  return found[0] && asGenerated(found[0], name);
}

/** The ConfigMap a generator named `name` made in this build; throws when there is none. */
export function generatedConfigMap(built: Built, name: string): GeneratedConfigMap {
  const found = findGeneratedConfigMap(built, name);
  if (found === undefined) throw new Error(`${built.dir}: the build has no ConfigMap generated as ${name}`);
  return found;
}

/** The ConfigMap of this build named exactly `builtName` (as a pod's volume refers to it). */
export function configMapNamed(built: Built, builtName: string): GeneratedConfigMap {
  const doc = built.resources.find((d) => d["kind"] === "ConfigMap" && isDoc(d["metadata"]) && d["metadata"]["name"] === builtName);
  if (doc === undefined) throw new Error(`${built.dir}: the build has no ConfigMap ${builtName}`);
  const name = builtName.length > 11 && HASH_SUFFIX.test(builtName.slice(-11)) ? builtName.slice(0, -11) : builtName;
  return asGenerated(doc, name);
}
