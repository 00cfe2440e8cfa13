/**
 * The cert-manager example keeps the CA key out of the workload's namespace: the leaf certificate is
 * issued by a ClusterIssuer whose CA Secret lives in cert-manager's own namespace, and the workload
 * trusts the CA through a trust-manager Bundle, which copies the CA certificate (never its key) into a
 * ConfigMap in the labelled namespaces, the ConfigMap the sidecar workload mounts.
 */
import { basename, dirname } from "node:path";
import { describe, expect, it } from "vitest";
import { assemble, type Doc, loadYamlDocs, repoPath } from "./kustomize.js";
import { containerNamed, envValue, findOne, metadataOf, mountAt, podTemplateOf, selectorMatches } from "./workloads.js";

/** The namespace ClusterIssuers read CA Secrets from, and trust-manager its Bundle sources from (both defaults). */
const CLUSTER_RESOURCE_NAMESPACE = "cert-manager";

const perNamespace = loadYamlDocs(repoPath("k8s", "cert-manager", "certificates.yaml"));
const clusterWide = loadYamlDocs(repoPath("k8s", "cert-manager", "cluster-ca.yaml"));
const sidecar = assemble(repoPath("k8s", "sidecar"));
const pod = podTemplateOf(findOne(sidecar.resources, "Deployment", "aws-workload")).spec;

interface CertificateSpec {
  readonly isCA?: boolean;
  readonly secretName: string;
  readonly issuerRef: { readonly kind?: string; readonly name: string; readonly group?: string };
}
const spec = <T>(doc: Doc | undefined): T => (doc?.["spec"] ?? {}) as T;
const ofKind = (docs: readonly Doc[], kind: string): Doc[] => docs.filter((d) => d["kind"] === kind);

describe("the cert-manager example", () => {
  it("applies nothing to the workload namespace but leaf Certificates: no Issuer, no CA, no self-signed certificate", () => {
    expect(perNamespace.map((d) => d["kind"])).toEqual(["Certificate"]);
    for (const cert of perNamespace) {
      const s = spec<CertificateSpec>(cert);
      expect(s.isCA ?? false, metadataOf(cert).name).toBe(false);
      expect(s.issuerRef.kind, metadataOf(cert).name).toBe("ClusterIssuer");
      expect(metadataOf(cert).namespace).toBeUndefined();
    }
  });

  it("issues the leaf from a ClusterIssuer whose CA Secret is a CA Certificate kept in cert-manager's namespace", () => {
    const leaf = spec<CertificateSpec>(perNamespace[0]);
    const issuer = ofKind(clusterWide, "ClusterIssuer").find((d) => metadataOf(d).name === leaf.issuerRef.name);
    const caSecret = spec<{ ca?: { secretName: string } }>(issuer).ca?.secretName;
    expect(caSecret).toBeDefined();
    const ca = ofKind(clusterWide, "Certificate").filter((d) => spec<CertificateSpec>(d).secretName === caSecret);
    expect(ca).toHaveLength(1);
    expect(metadataOf(ca[0] ?? {}).namespace).toBe(CLUSTER_RESOURCE_NAMESPACE);
    expect(spec<CertificateSpec>(ca[0]).isCA).toBe(true);
    const root = ofKind(clusterWide, "ClusterIssuer").find((d) => metadataOf(d).name === spec<CertificateSpec>(ca[0]).issuerRef.name);
    expect(spec<{ selfSigned?: unknown }>(root).selfSigned).toEqual({});
    // Every namespaced object of the cluster file sits in cert-manager's namespace: nothing lands in a workload's.
    expect(clusterWide.filter((d) => metadataOf(d).namespace !== undefined).map((d) => metadataOf(d).namespace)).toEqual([CLUSTER_RESOURCE_NAMESPACE]);
    expect(clusterWide.filter((d) => d["kind"] === "Issuer")).toEqual([]);
  });

  it("distributes the CA certificate, not its key, with a trust-manager Bundle into the ConfigMap and key the workload's AWS_CA_BUNDLE reads", () => {
    const bundles = ofKind(clusterWide, "Bundle");
    expect(bundles.map((b) => b["apiVersion"])).toEqual(["trust.cert-manager.io/v1alpha1"]);
    const caSecret = spec<{ ca?: { secretName: string } }>(ofKind(clusterWide, "ClusterIssuer").find((d) => spec<{ ca?: unknown }>(d).ca !== undefined)).ca?.secretName;
    const bundle = spec<{
      sources: { secret?: { name: string; key: string } }[];
      target: { configMap: { key: string }; namespaceSelector: { matchLabels: Record<string, string> } };
    }>(bundles[0]);
    expect(bundle.sources).toEqual([{ secret: { name: caSecret, key: "ca.crt" } }]);

    const workload = containerNamed(pod, "workload");
    const caFile = envValue(workload, "AWS_CA_BUNDLE") ?? "";
    const mount = mountAt(pod, workload, dirname(caFile));
    // trust-manager names the target ConfigMap after the Bundle.
    expect(mount?.volume.configMap?.name).toBe(metadataOf(bundles[0] ?? {}).name);
    expect(mount?.volume.configMap?.items).toEqual([{ key: bundle.target.configMap.key, path: basename(caFile) }]);

    const namespace = findOne(sidecar.resources, "Namespace");
    expect(selectorMatches(bundle.target.namespaceSelector.matchLabels, metadataOf(namespace).labels)).toBe(true);
  });

  it("gives Envoy the leaf's Secret, whose tls.crt and tls.key it mounts, and nothing of it to the workload", () => {
    const leaf = spec<CertificateSpec>(perNamespace[0]);
    const volumes = (pod.volumes ?? []).filter((v) => v.secret?.secretName === leaf.secretName);
    expect(volumes.flatMap((v) => v.secret?.items?.map((i) => i.key) ?? ["<every key>"]).sort()).toEqual(["tls.crt", "tls.key"]);
    const users = [...(pod.initContainers ?? []), ...pod.containers].filter((c) => (c.volumeMounts ?? []).some((m) => volumes.some((v) => v.name === m.name)));
    expect(users.map((c) => c.name)).toEqual(["envoy"]);
  });
});
