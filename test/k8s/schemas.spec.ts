/**
 * Every object countersign ships for Kubernetes passes the schemas the API server would hold it to,
 * with unknown fields rejected: the objects of both overlays as the pinned kubectl builds them, and
 * every object of the YAML files under k8s/ (the cert-manager examples and the example Secret, which
 * no overlay builds, included). Built-in kinds are checked with kubernetes-validate's strict schemas
 * of the pinned Kubernetes version, custom resources with the openAPIV3Schema of the pinned released
 * CRDs of prometheus-operator, cert-manager and trust-manager (test/k8s/validate_objects.py).
 */
import { relative } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { assemble, type Doc, isDoc, loadYamlDocs, repoPath, yamlFilesUnder } from "./kustomize.js";
import { schemaProblems, type SchemaResult, validateObjects } from "./schemas.js";
import { K8S_SCHEMA_VERSION } from "./tools.js";
import { findOne, metadataOf } from "./workloads.js";

const OVERLAYS = ["sidecar", "shared-service"] as const;

const builtObjects = OVERLAYS.flatMap((overlay) =>
  assemble(repoPath("k8s", overlay)).resources.map((object) => ({ where: `kubectl kustomize k8s/${overlay}: ${String(object["kind"])}/${metadataOf(object).name}`, object })),
);

/** Every Kubernetes object in a YAML file under k8s/: not kustomizations, not generator sources (the policy, which has no kind). */
const fileObjects = yamlFilesUnder(repoPath("k8s")).flatMap((file) =>
  loadYamlDocs(file)
    .filter((d) => typeof d["kind"] === "string" && d["kind"] !== "Kustomization")
    .map((object) => ({ where: `${relative(repoPath(), file)}: ${String(object["kind"])}/${metadataOf(object).name}`, object })),
);

/** A deep copy of `doc` with `edit` applied. */
function edited(doc: Doc, edit: (copy: Doc) => void): Doc {
  const copy = structuredClone(doc);
  edit(copy);
  return copy;
}

function at(doc: unknown, ...path: (string | number)[]): Doc {
  let node = doc;
  for (const key of path) node = Array.isArray(node) ? node[key as number] : isDoc(node) ? node[key as string] : undefined;
  if (!isDoc(node)) throw new Error(`no mapping at ${path.join(".")}`);
  return node;
}

describe(`the Kubernetes objects, against the Kubernetes ${K8S_SCHEMA_VERSION} and CRD schemas (unknown fields rejected)`, () => {
  let results: SchemaResult[];
  beforeAll(() => {
    results = validateObjects([...builtObjects, ...fileObjects]);
  });

  it("every object of both overlays' builds and of every YAML file under k8s/ is valid", () => {
    expect(builtObjects.length).toBeGreaterThan(15);
    expect(fileObjects.map((o) => o.where)).toEqual(expect.arrayContaining([expect.stringMatching(/^k8s\/cert-manager\/certificates\.yaml: Certificate\//), expect.stringMatching(/^k8s\/sidecar\/tls-secret\.example\.yaml: Secret\//)]));
    expect(schemaProblems(results)).toEqual([]);
  });

  it("validates the custom resources against their CRDs and everything else against Kubernetes' own schemas", () => {
    const by = new Map(results.map((r) => [r.kind, r.validatedBy]));
    expect(Object.fromEntries(["PodMonitor", "ServiceMonitor", "PrometheusRule", "Certificate", "Issuer", "ClusterIssuer", "Bundle"].map((k) => [k, by.get(k)]))).toEqual({
      PodMonitor: "CRD monitoring.coreos.com_podmonitors.yaml",
      ServiceMonitor: "CRD monitoring.coreos.com_servicemonitors.yaml",
      PrometheusRule: "CRD monitoring.coreos.com_prometheusrules.yaml",
      Certificate: "CRD cert-manager.io_certificates.yaml",
      Issuer: "CRD cert-manager.io_issuers.yaml",
      ClusterIssuer: "CRD cert-manager.io_clusterissuers.yaml",
      Bundle: "CRD trust.cert-manager.io_bundles.yaml",
    });
    for (const kind of ["Deployment", "Service", "ConfigMap", "NetworkPolicy", "Secret"]) expect(by.get(kind), kind).toBe(`kubernetes-validate ${K8S_SCHEMA_VERSION} strict`);
  });
});

describe("the schema validator", () => {
  const sidecar = assemble(repoPath("k8s", "sidecar")).resources;
  const shared = assemble(repoPath("k8s", "shared-service")).resources;
  const deployment = findOne(sidecar, "Deployment");
  const podMonitor = findOne(sidecar, "PodMonitor");
  const serviceMonitor = findOne(shared, "ServiceMonitor");
  const [issuer] = loadYamlDocs(repoPath("k8s", "cert-manager", "cluster-ca.yaml")).filter((d) => d["kind"] === "ClusterIssuer");
  const certificate = loadYamlDocs(repoPath("k8s", "cert-manager", "certificates.yaml")).find((d) => d["kind"] === "Certificate") ?? {};

  it("rejects an unknown field and a wrong type, in built-in kinds, custom resources and their metadata", () => {
    const cases: Record<string, Doc> = {
      "Deployment, unknown container field": edited(deployment, (d) => (at(d, "spec", "template", "spec", "initContainers", 0)["imagePullPolicyy"] = "Always")),
      "Deployment, replicas as text": edited(deployment, (d) => (at(d, "spec")["replicas"] = "two")),
      "PodMonitor, unknown endpoint field": edited(podMonitor, (d) => (at(d, "spec", "podMetricsEndpoints", 0)["intervall"] = "30s")),
      "ServiceMonitor, endpoints as a mapping": edited(serviceMonitor, (d) => (at(d, "spec")["endpoints"] = { port: "metrics" })),
      "Certificate, unknown spec field": edited(certificate, (d) => (at(d, "spec")["dnsName"] = ["x.example"])),
      "Certificate, duration as a number": edited(certificate, (d) => (at(d, "spec")["duration"] = 2160)),
      "ClusterIssuer, unknown metadata field": edited(issuer ?? {}, (d) => (at(d, "metadata")["label"] = { a: "b" })),
    };
    const results = validateObjects(Object.entries(cases).map(([where, object]) => ({ where, object })));
    expect(Object.fromEntries(results.map((r) => [r.where, r.errors]))).toEqual({
      "Deployment, unknown container field": ["spec.template.spec.initContainers.0: Additional properties are not allowed ('imagePullPolicyy' was unexpected)"],
      "Deployment, replicas as text": ["spec.replicas: 'two' is not of type 'integer', 'null'"],
      "PodMonitor, unknown endpoint field": ["spec.podMetricsEndpoints.0: Additional properties are not allowed ('intervall' was unexpected)"],
      "ServiceMonitor, endpoints as a mapping": ["spec.endpoints: {'port': 'metrics'} is not of type 'array'"],
      "Certificate, unknown spec field": ["spec: Additional properties are not allowed ('dnsName' was unexpected)"],
      "Certificate, duration as a number": ["spec.duration: 2160 is not of type 'string'"],
      "ClusterIssuer, unknown metadata field": ["metadata: Additional properties are not allowed ('label' was unexpected)"],
    });
  });

  it("rejects a kind neither Kubernetes nor a pinned CRD defines", () => {
    const [result] = validateObjects([{ where: "unknown kind", object: { apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } } }]);
    expect(result?.validatedBy).toBe("nothing");
    expect(result?.errors).toEqual([`no schema for Widget example.com/v1: neither Kubernetes ${K8S_SCHEMA_VERSION} nor a CRD under ${repoPath(".tools", "crds")} defines it`]);
  });

  it("has the CRDs of every custom kind the manifests use or the cert-manager pattern needs (ClusterIssuer, trust-manager's Bundle)", () => {
    const minimal: Doc[] = [
      { apiVersion: "cert-manager.io/v1", kind: "ClusterIssuer", metadata: { name: "ca" }, spec: { ca: { secretName: "ca" } } },
      { apiVersion: "trust.cert-manager.io/v1alpha1", kind: "Bundle", metadata: { name: "ca" }, spec: { sources: [{ useDefaultCAs: false }], target: { configMap: { key: "ca.crt" } } } },
      { apiVersion: "cert-manager.io/v1", kind: "ClusterIssuer", metadata: { name: "ca" }, spec: { ca: { secretNam: "ca" } } },
    ];
    const results = validateObjects(minimal.map((object, i) => ({ where: String(i), object })));
    expect(results.map((r) => [r.validatedBy, r.errors])).toEqual([
      ["CRD cert-manager.io_clusterissuers.yaml", []],
      ["CRD trust.cert-manager.io_bundles.yaml", []],
      ["CRD cert-manager.io_clusterissuers.yaml", ["spec.ca: 'secretName' is a required property", "spec.ca: Additional properties are not allowed ('secretNam' was unexpected)"]],
    ]);
  });
});
