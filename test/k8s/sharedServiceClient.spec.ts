/**
 * k8s/shared-service/client: the example workload of the shared countersign service, built by the
 * pinned kubectl's kustomize with its default load restrictor. Its Envoy runs the shipped
 * envoy/envoy-shared-service.yaml from the ConfigMap envoy/ generates, every file that bootstrap
 * and its SDS files name is mounted where they name it, and the client certificate it presents
 * comes from the CA the shared service trusts, for the name the bootstrap checks.
 */
import { readFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { loadAll } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEnvoyTestFiles, type EnvoyTestFiles, envoyValidate } from "../envoy-config/envoyValidate.js";
import { envoyProblems, formatProblems } from "../envoy-config/validateBootstrap.js";
import { findAll } from "./envoyFacts.js";
import { type Doc, isDoc, loadYamlDocs, repoPath } from "./kustomize.js";
import { kubectlBinary, runTool } from "./tools.js";
import { containerNamed, findOne, flagValue, metadataOf, mountAt, podTemplateOf, projectedKeys, selectorMatches } from "./workloads.js";

const ENVOY_FILES = ["envoy.yaml", "tls-certificate.sds.yaml", "envoy-shared-service.yaml", "grpc-client-certificate.sds.yaml", "grpc-server-ca.sds.yaml"];

function build(dir: string): Doc[] {
  const r = runTool(kubectlBinary(), ["kustomize", dir]);
  if (r.status !== 0) throw new Error(r.transcript);
  const docs: Doc[] = [];
  loadAll(r.stdout, (d) => {
    if (isDoc(d)) docs.push(d);
  });
  return docs;
}

const docs = build(repoPath("k8s", "shared-service", "client"));
const configMap = docs.find((d) => d["kind"] === "ConfigMap" && metadataOf(d).name.startsWith("countersign-envoy-"));
const template = podTemplateOf(findOne(docs, "Deployment", "aws-workload"));
const pod = template.spec;
const envoy = containerNamed(pod, "envoy");
const grpcTls = loadYamlDocs(repoPath("k8s", "shared-service", "grpc-tls.cert-manager.yaml"));

/** Every /etc/ file or folder a YAML text names (filename: and path: values), the system CA bundle aside. */
function filesNamed(text: string): string[] {
  const values = [...text.matchAll(/(?:filename|path):\s*([^\s,}]+)/g)].map((m) => m[1] ?? "");
  return [...new Set(values.filter((v) => v.startsWith("/etc/") && !v.startsWith("/etc/ssl/")))];
}

describe("k8s/shared-service/client", () => {
  it("builds with kustomize's default load restrictor, every object in the workload's namespace", () => {
    expect(docs.map((d) => `${String(d["kind"])}/${metadataOf(d).name.replace(/-[a-z0-9]{10}$/, "-<hash>")}`).sort()).toEqual([
      "Certificate/countersign-grpc-client",
      "ConfigMap/countersign-envoy-<hash>",
      "Deployment/aws-workload",
      "Namespace/countersign-client-demo",
    ]);
    for (const d of docs.filter((d) => d["kind"] !== "Namespace")) expect(metadataOf(d).namespace).toBe("countersign-client-demo");
  });

  it("ships the repository's Envoy files themselves in the ConfigMap, and Envoy runs envoy-shared-service.yaml from it", () => {
    const data = (configMap?.["data"] ?? {}) as Record<string, string>;
    expect(Object.keys(data).sort()).toEqual([...ENVOY_FILES].sort());
    for (const name of ENVOY_FILES) expect(data[name], name).toBe(readFileSync(repoPath("envoy", name), "utf8"));
    const config = flagValue(envoy, "--config-path") ?? "";
    expect(config).toBe("/etc/envoy/envoy-shared-service.yaml");
    expect(mountAt(pod, envoy, dirname(config))?.volume.configMap?.name).toBe(metadataOf(configMap as Doc).name);
  });

  describe("the pinned Envoy", () => {
    let files: EnvoyTestFiles;
    beforeAll(async () => {
      files = await createEnvoyTestFiles();
    });
    afterAll(() => files.remove());

    it("accepts the ConfigMap's envoy-shared-service.yaml with the container's own arguments, without a warning", () => {
      const data = (configMap?.["data"] ?? {}) as Record<string, string>;
      const args = [...(envoy.args ?? [])];
      const at = args.indexOf("--config-path");
      expect(at).toBeGreaterThanOrEqual(0);
      args.splice(at, 2);
      const problems = envoyProblems(envoyValidate(data["envoy-shared-service.yaml"] ?? "", files, args));
      expect(problems, formatProblems(problems)).toEqual([]);
    });
  });

  it("mounts every file the bootstrap and its SDS files name, read-only, from the volume that holds it", () => {
    const data = (configMap?.["data"] ?? {}) as Record<string, string>;
    const named = new Set<string>();
    const pending = ["/etc/envoy/envoy-shared-service.yaml"];
    while (pending.length > 0) {
      const file = pending.pop() ?? "";
      if (named.has(file)) continue;
      named.add(file);
      if (file.startsWith("/etc/envoy/") && data[basename(file)] !== undefined) pending.push(...filesNamed(data[basename(file)] ?? ""));
    }
    expect([...named].sort()).toEqual([
      "/etc/countersign/grpc-client",
      "/etc/countersign/grpc-client/ca.crt",
      "/etc/countersign/grpc-client/tls.crt",
      "/etc/countersign/grpc-client/tls.key",
      "/etc/countersign/tls",
      "/etc/countersign/tls/tls.crt",
      "/etc/countersign/tls/tls.key",
      "/etc/envoy",
      "/etc/envoy/envoy-shared-service.yaml",
      "/etc/envoy/grpc-client-certificate.sds.yaml",
      "/etc/envoy/grpc-server-ca.sds.yaml",
      "/etc/envoy/tls-certificate.sds.yaml",
    ]);
    for (const file of [...named].filter((f) => /\.(crt|key|yaml)$/.test(f))) {
      const mounted = mountAt(pod, envoy, dirname(file));
      expect(mounted?.mount.readOnly, file).toBe(true);
      const keys = projectedKeys(mounted?.volume ?? { name: "" }) ?? Object.keys(data);
      expect(keys, file).toContain(basename(file));
    }
    expect(mountAt(pod, envoy, "/etc/countersign/grpc-client")?.volume.secret?.secretName).toBe("countersign-grpc-client");
  });

  it("gets its client certificate from the ClusterIssuer whose CA signs countersign's server certificate, for the name Envoy checks", () => {
    const certificate = findOne(docs, "Certificate", "countersign-grpc-client")["spec"] as { secretName: string; usages: string[]; issuerRef: { kind: string; name: string } };
    expect(certificate.secretName).toBe("countersign-grpc-client");
    expect(certificate.usages).toContain("client auth");
    expect(certificate.issuerRef).toMatchObject({ kind: "ClusterIssuer", name: "countersign-grpc-ca" });
    const issuer = grpcTls.find((d) => d["kind"] === "ClusterIssuer" && metadataOf(d).name === "countersign-grpc-ca");
    const caSecret = (issuer?.["spec"] as { ca?: { secretName?: string } } | undefined)?.ca?.secretName;
    const ca = grpcTls.find((d) => d["kind"] === "Certificate" && (d["spec"] as { secretName?: string }).secretName === caSecret);
    expect(metadataOf(ca as Doc).namespace).toBe("cert-manager");
    expect((ca?.["spec"] as { isCA?: boolean }).isCA).toBe(true);

    const server = grpcTls.find((d) => d["kind"] === "Certificate" && metadataOf(d).name === "countersign-grpc-tls")?.["spec"] as { issuerRef: unknown; dnsNames: string[] };
    expect(server.issuerRef).toEqual(certificate.issuerRef);
    const bootstrap = loadYamlDocs(repoPath("envoy", "envoy-shared-service.yaml"))[0];
    const tls = findAll(bootstrap, (d) => d["@type"] === "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext" && "sni" in d);
    expect(tls).toHaveLength(1);
    const sanNames = findAll(tls[0], (d) => d["san_type"] === "DNS").map((d) => (d["matcher"] as { exact?: string }).exact);
    expect(server.dnsNames).toEqual(expect.arrayContaining([tls[0]?.["sni"], ...sanNames]));
  });

  it("carries the label the NetworkPolicy countersign-grpc admits to countersign's gRPC port", () => {
    const policy = loadYamlDocs(repoPath("k8s", "shared-service", "networkpolicy-grpc.yaml"))[0]?.["spec"] as { ingress: { from: { podSelector?: { matchLabels?: Record<string, string> } }[] }[] };
    const selectors = policy.ingress.flatMap((rule) => rule.from.map((peer) => peer.podSelector?.matchLabels));
    expect(selectors.some((s) => selectorMatches(s, template.metadata.labels))).toBe(true);
  });
});
