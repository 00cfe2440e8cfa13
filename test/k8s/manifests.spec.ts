/**
 * The Kubernetes manifests under k8s/ agree with each other and with the rest of the repository:
 * the Envoy ConfigMap is generated from envoy/envoy.yaml itself; container ports, the ext_proc
 * address, the TLS mount and the admin port match what envoy.yaml and the countersign CLI expect;
 * the Secrets, ConfigMaps, selectors and probes refer to things that exist; the pinned Envoy
 * (`envoy --mode validate`) accepts the sidecar's Envoy config with the container's own arguments.
 * Every object is read from the real build of its overlay by the pinned kubectl's kustomize
 * (make test installs it); generated ConfigMaps are checked by their data against the source files.
 */
import { readFileSync } from "node:fs";
import { basename, dirname, relative } from "node:path";
import { load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVE_DEFAULTS } from "../../src/cli/serveArgs.js";
import { loadPolicyFile, matchEndpoint } from "../../src/policy/index.js";
import { checkSemantics } from "../envoy-config/checkSemantics.js";
import { createEnvoyTestFiles, type EnvoyTestFiles, envoyValidate } from "../envoy-config/envoyValidate.js";
import { envoyProblems, formatProblems } from "../envoy-config/validateBootstrap.js";
import {
  clusterAddresses,
  extProcClusters,
  isLoopback,
  listeners,
  signingBufferLimits,
  sdsSecretFiles,
  tlsCertificateFiles,
} from "./envoyFacts.js";
import { assemble, type Built, configMapNamed, findGeneratedConfigMap, generatedConfigMap, isDoc, loadYamlDocs, repoPath, yamlFilesUnder } from "./kustomize.js";
import {
  allContainers,
  type Container,
  containerNamed,
  envValue,
  findOne,
  flagValue,
  metadataOf,
  mountAt,
  type PodSpec,
  type PodTemplate,
  podTemplateOf,
  projectedKeys,
  resolvePort,
  selectorMatches,
  splitHostPort,
  volumeNamed,
} from "./workloads.js";

const ENVOY_YAML = repoPath("envoy", "envoy.yaml");
const bootstrap: unknown = load(readFileSync(ENVOY_YAML, "utf8"), { filename: ENVOY_YAML });
const OVERLAYS = ["sidecar", "shared-service"] as const;
const built: Record<(typeof OVERLAYS)[number], Built> = {
  sidecar: assemble(repoPath("k8s", "sidecar")),
  "shared-service": assemble(repoPath("k8s", "shared-service")),
};
const sidecarTemplate = podTemplateOf(findOne(built.sidecar.resources, "Deployment", "aws-workload"));
const sidecarPod = sidecarTemplate.spec;
const sharedTemplate = podTemplateOf(findOne(built["shared-service"].resources, "Deployment", "countersign"));
const sharedPod = sharedTemplate.spec;
const countersignIn: Record<(typeof OVERLAYS)[number], { template: PodTemplate; container: Container }> = {
  sidecar: { template: sidecarTemplate, container: containerNamed(sidecarPod, "countersign") },
  "shared-service": { template: sharedTemplate, container: containerNamed(sharedPod, "countersign") },
};
const envoy = containerNamed(sidecarPod, "envoy");
const workload = containerNamed(sidecarPod, "workload");

/**
 * The ConfigMap mounted at the directory of `file` in the build, and what the container reads at
 * `file`: the ConfigMap's key of that name (undefined when it has none).
 */
function configMapFileSource(overlay: Built, pod: PodSpec, container: Container, file: string) {
  const mount = mountAt(pod, container, dirname(file));
  const configMap = mount?.volume.configMap?.name;
  if (configMap === undefined) throw new Error(`${container.name}: nothing mounts a ConfigMap at ${dirname(file)}`);
  const gen = configMapNamed(overlay, configMap);
  return { gen, content: gen.data[basename(file)] };
}

const readRepoFile = (...parts: string[]): string => readFileSync(repoPath(...parts), "utf8");

/** Seconds countersign may take to stop: drain + shutdown grace, from env or the CLI's defaults. */
function shutdownSeconds(container: Container): number {
  const seconds = (name: string, dflt: number): number => Number(envValue(container, name) ?? dflt);
  return seconds("COUNTERSIGN_DRAIN_SECONDS", SERVE_DEFAULTS.drainSeconds) + seconds("COUNTERSIGN_SHUTDOWN_GRACE_SECONDS", SERVE_DEFAULTS.shutdownGraceSeconds);
}

/** The container's arguments without `flag` and its value. */
function argsWithout(container: Container, flag: string): string[] {
  const args = container.args ?? [];
  return args.filter((arg, i) => arg !== flag && args[i - 1] !== flag && !arg.startsWith(`${flag}=`));
}

describe("k8s/ files", () => {
  it("every YAML file parses, and every object names its apiVersion, kind and metadata.name", () => {
    // Generator sources (the policy) are data, not objects: files whose text a built ConfigMap holds.
    const generated = new Set(OVERLAYS.flatMap((o) => built[o].resources.filter((d) => d["kind"] === "ConfigMap").flatMap((d) => Object.values(isDoc(d["data"]) ? d["data"] : {}))));
    const files = yamlFilesUnder(repoPath("k8s")).filter((f) => !generated.has(readFileSync(f, "utf8")));
    expect(files.length).toBeGreaterThan(15);
    for (const file of files) {
      const docs = loadYamlDocs(file);
      expect(docs.length, relative(repoPath(), file)).toBeGreaterThan(0);
      for (const doc of docs) {
        expect(typeof doc["apiVersion"], file).toBe("string");
        if (basename(file) === "kustomization.yaml") expect(doc["kind"]).toBe("Kustomization");
        else expect(metadataOf(doc).name, file).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
      }
    }
  });

  it("k8s/README.md gives the exact apply command of both overlays", () => {
    const readme = readFileSync(repoPath("k8s", "README.md"), "utf8");
    for (const overlay of OVERLAYS) expect(readme).toContain(`kubectl apply -k k8s/${overlay}`);
  });
});

describe("kustomize generators (the real build)", () => {
  it("generates the Envoy ConfigMap in envoy/'s own kustomization from envoy/'s bootstraps and SDS secret files byte for byte, under their own names", () => {
    const envoyConfig = generatedConfigMap(assemble(repoPath("envoy")), "countersign-envoy");
    const files = ["envoy.yaml", "tls-certificate.sds.yaml", "envoy-shared-service.yaml", "grpc-client-certificate.sds.yaml", "grpc-server-ca.sds.yaml"];
    expect(envoyConfig.data).toEqual(Object.fromEntries(files.map((f) => [f, readRepoFile("envoy", f)])));
    expect(generatedConfigMap(built.sidecar, "countersign-envoy").data).toEqual(envoyConfig.data);
  });

  it.each(OVERLAYS)("%s: generates the policy ConfigMap, with a content hash, from k8s/base/policy.yaml byte for byte", (overlay) => {
    const policy = generatedConfigMap(built[overlay], "countersign-policy");
    expect(policy.data).toEqual({ "policy.yaml": readRepoFile("k8s", "base", "policy.yaml") });
    expect(policy.hashSuffix).toBe(true);
  });

  it("generates the policy ConfigMap from a valid policy whose body limit equals Envoy's buffer limit", async () => {
    expect(generatedConfigMap(built.sidecar, "countersign-policy").data["policy.yaml"]).toBe(readRepoFile("k8s", "base", "policy.yaml"));
    const result = await loadPolicyFile(repoPath("k8s", "base", "policy.yaml"));
    if (!result.ok) throw new Error(result.error.map((e) => `${e.file}:${e.line}:${e.col}: ${e.message}`).join("\n"));
    const limits = signingBufferLimits(bootstrap);
    expect(limits.length).toBeGreaterThan(0);
    for (const limit of limits) expect(limit).toBe(result.policy.limits.maxBufferedBodyBytes);
  });

  it.each(OVERLAYS)("%s: generates the dashboard ConfigMap from k8s/grafana, labelled for Grafana's sidecar, with a stable name", (overlay) => {
    const dashboard = generatedConfigMap(built[overlay], "countersign-grafana-dashboard");
    expect(dashboard.data).toEqual({ "countersign.json": readRepoFile("k8s", "grafana", "countersign-dashboard.json") });
    expect(dashboard.labels["grafana_dashboard"]).toBe("1");
    expect(dashboard.hashSuffix).toBe(false);
  });

  it("only the sidecar overlay, whose PodMonitor scrapes Envoy as job countersign-envoy, ships Envoy's alerts", () => {
    const rules = (b: Built) => b.resources.filter((d) => d["kind"] === "PrometheusRule").map((d) => metadataOf(d).name).sort();
    expect(rules(built.sidecar)).toEqual(["countersign", "countersign-envoy"]);
    expect(rules(built["shared-service"])).toEqual(["countersign"]);
    const scrapedJobs = (b: Built) => JSON.stringify(b.resources.filter((d) => d["kind"] === "PodMonitor" || d["kind"] === "ServiceMonitor"));
    expect(scrapedJobs(built.sidecar)).toContain('"replacement":"countersign-envoy"');
    expect(scrapedJobs(built["shared-service"])).not.toContain("countersign-envoy");
  });

  it("the shared-service overlay drops the Envoy ConfigMap, whose countersign is on loopback", () => {
    const configMaps = built["shared-service"].resources.filter((d) => d["kind"] === "ConfigMap").map((d) => metadataOf(d).name);
    expect(findGeneratedConfigMap(built["shared-service"], "countersign-envoy")).toBeUndefined();
    expect(configMaps.map((n) => configMapNamed(built["shared-service"], n).name).sort()).toEqual(["countersign-envoy-grafana-dashboard", "countersign-grafana-dashboard", "countersign-policy"]);
  });

  it.each(OVERLAYS)("%s: puts every object into the overlay's one namespace, which the overlay creates", (overlay) => {
    const namespaced = built[overlay].resources.filter((d) => d["kind"] !== "Namespace");
    const namespaces = new Set(namespaced.map((d) => metadataOf(d).namespace));
    expect(namespaces.size).toBe(1);
    expect(built[overlay].resources.filter((d) => d["kind"] === "Namespace").map((d) => metadataOf(d).name)).toEqual([...namespaces]);
  });

  it.each(OVERLAYS)("%s: sets the countersign image to package.json's version", (overlay) => {
    const { version } = JSON.parse(readRepoFile("package.json")) as { version: string };
    expect(countersignIn[overlay].container.image).toMatch(new RegExp(`^([a-z0-9.-]+/)*countersign:${version.replace(/\./g, "\\.")}$`));
  });
});

describe("the sidecar pod and envoy/envoy.yaml", () => {
  it("runs countersign, then Envoy, as native sidecars before the workload", () => {
    expect((sidecarPod.initContainers ?? []).map((c) => [c.name, c.restartPolicy])).toEqual([
      ["countersign", "Always"],
      ["envoy", "Always"],
    ]);
    expect(sidecarPod.containers.map((c) => c.name)).toEqual(["workload"]);
  });

  it("declares as Envoy's ports exactly its listeners bound beyond loopback", () => {
    const exposed = listeners(bootstrap).filter((l) => l.socket !== undefined && !isLoopback(l.socket.address));
    expect((envoy.ports ?? []).map((p) => p.containerPort).sort()).toEqual(exposed.map((l) => l.socket?.port).sort());
  });

  it("points the workload's HTTPS_PROXY and HTTP_PROXY at Envoy's connect_in listener", () => {
    const connectIn = listeners(bootstrap).find((l) => l.name === "connect_in")?.socket;
    for (const variable of ["HTTPS_PROXY", "HTTP_PROXY"]) {
      const url = new URL(envValue(workload, variable) ?? "");
      expect([url.protocol, url.hostname, Number(url.port)], variable).toEqual(["http:", "127.0.0.1", connectIn?.port]);
    }
    expect(["0.0.0.0", "127.0.0.1"]).toContain(connectIn?.address);
  });

  it("has countersign --listen on the address of the cluster ext_proc streams to", () => {
    const clusters = extProcClusters(bootstrap);
    expect(clusters).toHaveLength(1);
    const [address] = clusterAddresses(bootstrap, clusters[0] ?? "");
    const listen = splitHostPort(flagValue(countersignIn.sidecar.container, "--listen") ?? "");
    expect({ host: listen.host, port: listen.port }).toEqual({ host: address?.address, port: address?.port });
  });

  it("gives Envoy the SDS secret file from the countersign-envoy ConfigMap, mounted whole (no subPath) so that its watch sees updates", () => {
    const sds = sdsSecretFiles(bootstrap);
    expect(sds.length).toBeGreaterThan(0);
    for (const { path, watchedDirectory } of sds) {
      const { gen, content } = configMapFileSource(built.sidecar, sidecarPod, envoy, path);
      expect(gen.name).toBe("countersign-envoy");
      expect(content, path).toBe(readRepoFile("envoy", basename(path)));
      expect(watchedDirectory).toBe(dirname(path));
      expect(mountAt(sidecarPod, envoy, dirname(path))?.mount.subPath).toBeUndefined();
    }
  });

  it("mounts the TLS Secret into Envoy where the SDS secret names the certificate and key, and Envoy watches that folder (renewals load without a restart)", () => {
    const files = tlsCertificateFiles(bootstrap, (path) => load(readFileSync(repoPath("envoy", basename(path)), "utf8")));
    expect(files.length).toBeGreaterThan(0);
    for (const { certificate, key, watchedDirectory } of files) {
      expect(dirname(certificate)).toBe(dirname(key));
      expect(watchedDirectory).toBe(dirname(certificate));
      const mount = mountAt(sidecarPod, envoy, dirname(certificate));
      expect(mount?.volume.secret?.secretName, dirname(certificate)).toBe("countersign-tls");
      expect(mount?.mount.subPath).toBeUndefined();
      expect(projectedKeys(mount?.volume ?? { name: "" })?.sort()).toEqual([basename(certificate), basename(key)].sort());
    }
  });

  it("starts Envoy with envoy.yaml from the generated ConfigMap", () => {
    const configPath = flagValue(envoy, "--config-path") ?? "";
    const { gen, content } = configMapFileSource(built.sidecar, sidecarPod, envoy, configPath);
    expect(gen.name).toBe("countersign-envoy");
    expect(content).toBe(readFileSync(ENVOY_YAML, "utf8"));
  });

  describe("the pinned Envoy", () => {
    let files: EnvoyTestFiles;
    beforeAll(async () => {
      files = await createEnvoyTestFiles();
    });
    afterAll(() => files.remove());

    it("accepts the generated ConfigMap's envoy.yaml with the container's own arguments, which merge nothing into it", () => {
      const { content } = configMapFileSource(built.sidecar, sidecarPod, envoy, flagValue(envoy, "--config-path") ?? "");
      const args = argsWithout(envoy, "--config-path");
      expect(args.filter((a) => a.startsWith("--config-yaml"))).toEqual([]);
      const problems = [...envoyProblems(envoyValidate(content ?? "", files, args)), ...checkSemantics(bootstrap)];
      expect(problems, formatProblems(problems)).toEqual([]);
    });
  });

  it("gives the workload the CA certificate from the ConfigMap countersign-ca, and no Secret at all", () => {
    const bundle = envValue(workload, "AWS_CA_BUNDLE") ?? "";
    const mount = mountAt(sidecarPod, workload, dirname(bundle));
    expect(mount?.volume.configMap?.name).toBe("countersign-ca");
    expect(projectedKeys(mount?.volume ?? { name: "" })).toEqual([basename(bundle)]);
    const secretVolumes = (workload.volumeMounts ?? []).map((m) => volumeNamed(sidecarPod, m.name)).filter((v) => v.secret !== undefined);
    expect(secretVolumes).toEqual([]);
  });

  it("gives the workload placeholder credentials only, and keeps the IRSA identity out of Envoy and the workload", () => {
    expect(envValue(workload, "AWS_ACCESS_KEY_ID")).toMatch(/PLACEHOLDER/);
    expect(envValue(workload, "AWS_SECRET_ACCESS_KEY")).toMatch(/placeholder/);
    expect((workload.env ?? []).filter((e) => e.name.startsWith("COUNTERSIGN_"))).toEqual([]);
    expect([workload.envFrom, envoy.envFrom, envoy.env]).toEqual([undefined, undefined, undefined]);
    const skipped = (sidecarTemplate.metadata.annotations?.["eks.amazonaws.com/skip-containers"] ?? "").split(",");
    expect(skipped.sort()).toEqual(allContainers(sidecarPod).map((c) => c.name).filter((n) => n !== "countersign").sort());
    expect(sidecarPod.automountServiceAccountToken).toBe(false);
  });

  it("announces countersign's admin port for scraping, by annotations and by a PodMonitor", () => {
    const admin = splitHostPort(flagValue(countersignIn.sidecar.container, "--admin-listen") ?? "");
    expect(sidecarTemplate.metadata.annotations?.["prometheus.io/port"]).toBe(String(admin.port));
    const podMonitor = findOne(built.sidecar.resources, "PodMonitor");
    const spec = podMonitor["spec"] as { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; path: string }[] };
    expect(selectorMatches(spec.selector.matchLabels, sidecarTemplate.metadata.labels)).toBe(true);
    const countersignEndpoints = spec.podMetricsEndpoints.filter((e) => resolvePort(countersignIn.sidecar.container, e.port) !== undefined);
    expect(countersignEndpoints.map((e) => [resolvePort(countersignIn.sidecar.container, e.port), e.path])).toEqual([[admin.port, "/metrics"]]);
  });
});

describe.each(OVERLAYS)("countersign in the %s overlay", (overlay) => {
  const { template, container } = countersignIn[overlay];
  const pod = template.spec;

  it("probes /healthz (liveness) and /readyz (readiness, startup) on the --admin-listen port", () => {
    const admin = splitHostPort(flagValue(container, "--admin-listen") ?? "");
    expect(admin.host).toBe("0.0.0.0");
    const probes = [container.livenessProbe, container.readinessProbe, container.startupProbe];
    expect(probes.map((p) => p?.httpGet?.path)).toEqual(["/healthz", "/readyz", "/readyz"]);
    expect(probes.map((p) => resolvePort(container, p?.httpGet?.port))).toEqual([admin.port, admin.port, admin.port]);
  });

  it("reads its policy from the generated policy ConfigMap", () => {
    const { gen, content } = configMapFileSource(built[overlay], pod, container, flagValue(container, "--policy") ?? "");
    expect(gen.name).toBe("countersign-policy");
    expect(content).toBe(readRepoFile("k8s", "base", "policy.yaml"));
    expect(container.args?.[0]).toBe("serve");
  });

  it("has a termination grace period longer than its drain plus shutdown grace", () => {
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(shutdownSeconds(container));
  });

  it("runs every container non-root, read-only, without capabilities, under RuntimeDefault seccomp, with requests and limits", () => {
    expect(pod.securityContext?.seccompProfile?.type).toBe("RuntimeDefault");
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.securityContext?.runAsUser).toBe(65532);
    for (const c of allContainers(pod)) {
      expect(c.securityContext, c.name).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true });
      expect(c.securityContext?.capabilities?.drop, c.name).toEqual(["ALL"]);
      for (const kind of ["requests", "limits"] as const) expect(Object.keys(c.resources?.[kind] ?? {}).sort(), `${c.name} ${kind}`).toEqual(["cpu", "memory"]);
    }
  });

  it("takes optional static keys from the countersign-aws-credentials Secret", () => {
    expect(container.envFrom).toEqual([{ secretRef: { name: "countersign-aws-credentials", optional: true } }]);
  });
});

describe("the shared-service overlay", () => {
  const container = countersignIn["shared-service"].container;
  const resources = built["shared-service"].resources;
  const podLabels = sharedTemplate.metadata.labels;

  it("listens on every interface with mTLS: each TLS flag names a file in the mounted Secret countersign-grpc-tls, which the cert-manager example issues", () => {
    const listen = splitHostPort(flagValue(container, "--listen") ?? "");
    expect(listen).toEqual({ host: "0.0.0.0", port: 50051 });
    expect(resolvePort(container, "grpc")).toBe(listen.port);
    const files = ["--tls-cert", "--tls-key", "--tls-client-ca"].map((flag) => flagValue(container, flag));
    expect(files.map((f) => f && basename(f))).toEqual(["tls.crt", "tls.key", "ca.crt"]);
    for (const f of files) expect(mountAt(sharedPod, container, dirname(f ?? ""))?.volume.secret?.secretName).toBe("countersign-grpc-tls");
    const issued = loadYamlDocs(repoPath("k8s", "shared-service", "grpc-tls.cert-manager.yaml")).filter((d) => d["kind"] === "Certificate").map((d) => (d["spec"] as { secretName: string }).secretName);
    expect(issued).toContain("countersign-grpc-tls");
  });

  it("has a Service, PodDisruptionBudget, CPU HorizontalPodAutoscaler and ServiceMonitor that all reach the Deployment", () => {
    const service = findOne(resources, "Service", "countersign");
    const serviceSpec = service["spec"] as { selector: Record<string, string>; ports: { name: string; port: number; targetPort: string }[] };
    expect(selectorMatches(serviceSpec.selector, podLabels)).toBe(true);
    expect(serviceSpec.ports.map((p) => [p.name, p.port, resolvePort(container, p.targetPort)])).toEqual([
      ["grpc", 50051, 50051],
      ["metrics", 9464, 9464],
    ]);
    const pdb = findOne(resources, "PodDisruptionBudget")["spec"] as { selector: { matchLabels: Record<string, string> } };
    expect(selectorMatches(pdb.selector.matchLabels, podLabels)).toBe(true);
    const hpa = findOne(resources, "HorizontalPodAutoscaler")["spec"] as {
      scaleTargetRef: { kind: string; name: string };
      minReplicas: number;
      metrics: { resource: { name: string } }[];
    };
    expect([hpa.scaleTargetRef.kind, hpa.scaleTargetRef.name]).toEqual(["Deployment", "countersign"]);
    expect(hpa.metrics.map((m) => m.resource.name)).toEqual(["cpu"]);
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(2);
    const monitor = findOne(resources, "ServiceMonitor")["spec"] as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
    expect(selectorMatches(monitor.selector.matchLabels, metadataOf(service).labels)).toBe(true);
    expect(monitor.endpoints.map((e) => e.port)).toEqual(["metrics"]);
  });

  it("admits gRPC clients on the --listen port through a second NetworkPolicy", () => {
    const grpc = findOne(resources, "NetworkPolicy", "countersign-grpc")["spec"] as {
      podSelector: { matchLabels: Record<string, string> };
      ingress: { ports: { port: number }[] }[];
    };
    expect(selectorMatches(grpc.podSelector.matchLabels, podLabels)).toBe(true);
    expect(grpc.ingress.flatMap((r) => r.ports.map((p) => p.port))).toEqual([splitHostPort(flagValue(container, "--listen") ?? "").port]);
  });
});

describe("the TLS Secret", () => {
  const certManager = loadYamlDocs(repoPath("k8s", "cert-manager", "certificates.yaml"));
  const leaf = certManager.find((d) => d["kind"] === "Certificate" && metadataOf(d).name === "countersign-tls")?.["spec"] as {
    secretName: string;
    dnsNames: string[];
    issuerRef: { name: string };
  };

  it("is what the example Secret and the cert-manager Certificate produce, with the keys the pod projects", () => {
    const example = loadYamlDocs(repoPath("k8s", "sidecar", "tls-secret.example.yaml")).find((d) => d["kind"] === "Secret");
    const mountedKeys = (sidecarPod.volumes ?? []).filter((v) => v.secret?.secretName === "countersign-tls").flatMap((v) => projectedKeys(v) ?? []);
    expect(metadataOf(example ?? {}).name).toBe("countersign-tls");
    expect(Object.keys(isDoc(example?.["stringData"]) ? example["stringData"] : {}).sort()).toEqual([...mountedKeys].sort());
    expect(leaf.secretName).toBe("countersign-tls");
    expect(built.sidecar.resources.some((d) => d["kind"] === "Secret")).toBe(false);
  });

  it("is issued by cert-manager for host names the policy signs for, by a CA ClusterIssuer", async () => {
    const result = await loadPolicyFile(repoPath("k8s", "base", "policy.yaml"));
    if (!result.ok) throw new Error("k8s/base/policy.yaml is invalid");
    const policy = result.policy;
    const unsigned = leaf.dnsNames.filter((name) => matchEndpoint(policy, name.replace(/^\*\./, "bucket."), "https") === undefined);
    expect(unsigned).toEqual([]);
    const issuer = loadYamlDocs(repoPath("k8s", "cert-manager", "cluster-ca.yaml")).find((d) => d["kind"] === "ClusterIssuer" && metadataOf(d).name === leaf.issuerRef.name);
    expect(isDoc(issuer?.["spec"]) && isDoc(issuer["spec"]["ca"])).toBe(true);
  });
});
