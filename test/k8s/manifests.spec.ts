/**
 * The Kubernetes manifests under k8s/ agree with each other and with the rest of the repository:
 * the Envoy ConfigMap is generated from envoy/envoy.yaml itself; container ports, the ext_proc
 * address, the TLS mount and the admin port match what envoy.yaml and the countersign CLI expect;
 * the Secrets, ConfigMaps, selectors and probes refer to things that exist; the pinned Envoy
 * (`envoy --mode validate`) accepts the sidecar's Envoy config with the container's own arguments.
 * Both overlays are also built for real, by the pinned kubectl's kustomize (make test installs it).
 */
import { readdirSync, readFileSync } from "node:fs";
import { basename, dirname, join, relative } from "node:path";
import { load } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SERVE_DEFAULTS } from "../../src/cli/serveArgs.js";
import { loadPolicyFile, matchEndpoint } from "../../src/policy/index.js";
import { checkSemantics } from "../envoy-config/checkSemantics.js";
import { createEnvoyTestFiles, type EnvoyTestFiles, envoyValidate } from "../envoy-config/envoyValidate.js";
import { envoyProblems, formatProblems } from "../envoy-config/validateBootstrap.js";
import {
  adminAddress,
  clusterAddresses,
  extProcClusters,
  findAll,
  isLoopback,
  listeners,
  mergeBootstrap,
  signingBufferLimits,
  sdsSecretFiles,
  tlsCertificateFiles,
} from "./envoyFacts.js";
import { assemble, type Assembled, type Doc, isDoc, kustomizeBuild, loadYamlDocs, repoPath } from "./kustomize.js";
import { kubectlBinary } from "./tools.js";
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
const built: Record<(typeof OVERLAYS)[number], Assembled> = {
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

function yamlFilesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return yamlFilesUnder(path);
    return /\.ya?ml$/.test(entry.name) ? [path] : [];
  });
}

/** The generator that makes ConfigMap `name`, wherever it is declared. */
function generator(assembled: Assembled, name: string) {
  const found = assembled.generators.find((g) => g.name === name);
  if (found === undefined) throw new Error(`no configMapGenerator ${name}`);
  return found;
}

/** The ConfigMap volume mounted at the directory of `file`, and the generator behind it. */
function configMapFileSource(assembled: Assembled, pod: PodSpec, container: Container, file: string) {
  const mount = mountAt(pod, container, dirname(file));
  const configMap = mount?.volume.configMap?.name;
  if (configMap === undefined) throw new Error(`${container.name}: nothing mounts a ConfigMap at ${dirname(file)}`);
  const gen = generator(assembled, configMap);
  return { gen, entry: gen.files.find((f) => f.key === basename(file)) };
}

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

/** The readiness listener and cluster that the Envoy container merges in with --config-yaml. */
const readinessFragment: unknown = load(flagValue(envoy, "--config-yaml") ?? "");

describe("k8s/ files", () => {
  it("every YAML file parses, and every object names its apiVersion, kind and metadata.name", () => {
    // Generator sources (the policy) are data, not objects; the generator tests check them.
    const generated = new Set(OVERLAYS.flatMap((o) => built[o].generators.flatMap((g) => g.files.map((f) => f.path))));
    const files = yamlFilesUnder(repoPath("k8s")).filter((f) => !generated.has(f));
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

  it("k8s/README.md gives the exact build command of both overlays", () => {
    const readme = readFileSync(repoPath("k8s", "README.md"), "utf8");
    for (const overlay of OVERLAYS) expect(readme).toContain(`kubectl kustomize --load-restrictor LoadRestrictionsNone k8s/${overlay}`);
    expect(readme).toContain("kustomize build --load-restrictor LoadRestrictionsNone");
  });
});

describe("kustomize generators", () => {
  it("generates the Envoy ConfigMap from envoy/envoy.yaml and its SDS secret file themselves, under their own names", () => {
    const envoyConfig = generator(built.sidecar, "countersign-envoy");
    expect(envoyConfig.files).toEqual([
      { key: "envoy.yaml", path: ENVOY_YAML },
      { key: "tls-certificate.sds.yaml", path: repoPath("envoy", "tls-certificate.sds.yaml") },
    ]);
    expect(envoyConfig.declaredIn).toBe(repoPath("k8s", "base", "kustomization.yaml"));
  });

  it("generates the policy ConfigMap from a valid policy whose body limit equals Envoy's buffer limit", async () => {
    const [policyFile] = generator(built.sidecar, "countersign-policy").files;
    const result = await loadPolicyFile(policyFile?.path ?? "");
    if (!result.ok) throw new Error(result.error.map((e) => `${e.file}:${e.line}:${e.col}: ${e.message}`).join("\n"));
    const limits = signingBufferLimits(bootstrap);
    expect(limits.length).toBeGreaterThan(0);
    for (const limit of limits) expect(limit).toBe(result.policy.limits.maxBufferedBodyBytes);
  });

  it("generates the dashboard ConfigMap from k8s/grafana, labelled for Grafana's sidecar, with a stable name", () => {
    const dashboard = generator(built.sidecar, "countersign-grafana-dashboard");
    expect(dashboard.files.map((f) => f.path)).toEqual([repoPath("k8s", "grafana", "countersign-dashboard.json")]);
    expect(dashboard.labels).toEqual({ grafana_dashboard: "1" });
    expect(dashboard.hashSuffix).toBe(false);
  });

  it("the shared-service overlay drops the Envoy ConfigMap, whose countersign is on loopback", () => {
    expect(built["shared-service"].generators.map((g) => g.name).sort()).toEqual(["countersign-grafana-dashboard", "countersign-policy"]);
  });

  it.each(OVERLAYS)("%s: sets the countersign image to package.json's version", (overlay) => {
    const { version } = JSON.parse(readFileSync(repoPath("package.json"), "utf8")) as { version: string };
    const image = built[overlay].images.find((i) => i.name === "countersign");
    expect(image?.newTag).toBe(version);
    expect(countersignIn[overlay].container.image).toBe("countersign");
  });
});

describe("kubectl kustomize (the pinned kubectl)", () => {
  it.each(OVERLAYS)("%s: builds the objects the manifests declare, with envoy.yaml and the policy byte for byte", (overlay) => {
    const docs = kustomizeBuild(kubectlBinary(), repoPath("k8s", overlay));
    const expected = built[overlay];
    const hashed = new Set(expected.generators.filter((g) => g.hashSuffix).map((g) => g.name));
    const key = (d: Doc): string => {
      const name = metadataOf(d).name;
      const generated = d["kind"] === "ConfigMap" ? [...hashed].find((g) => new RegExp(`^${g}-[a-z0-9]{10}$`).test(name)) : undefined;
      return `${String(d["kind"])}/${generated ?? name}`;
    };
    const declared = [...expected.resources.map(key), ...expected.generators.map((g) => `ConfigMap/${g.name}`)];
    expect(docs.map(key).sort()).toEqual(declared.sort());
    for (const doc of docs.filter((d) => d["kind"] !== "Namespace")) expect(metadataOf(doc).namespace).toBe(expected.namespace);
    for (const gen of expected.generators) {
      const configMap = docs.find((d) => key(d) === `ConfigMap/${gen.name}`);
      const data = isDoc(configMap?.["data"]) ? configMap["data"] : {};
      for (const file of gen.files) expect(data[file.key], `${gen.name}/${file.key}`).toBe(readFileSync(file.path, "utf8"));
    }
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

  it("declares as Envoy's ports exactly its listeners bound beyond loopback, plus the readiness port", () => {
    const exposed = listeners(bootstrap).filter((l) => l.socket !== undefined && !isLoopback(l.socket.address));
    const readiness = listeners(readinessFragment).map((l) => l.socket?.port);
    expect(exposed.map((l) => l.name)).toEqual(["connect_in"]);
    expect((envoy.ports ?? []).map((p) => p.containerPort).sort()).toEqual([...exposed.map((l) => l.socket?.port), ...readiness].sort());
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
      const { gen, entry } = configMapFileSource(built.sidecar, sidecarPod, envoy, path);
      expect(gen.name).toBe("countersign-envoy");
      expect(entry?.path, path).toBe(repoPath("envoy", basename(path)));
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
    const { gen, entry } = configMapFileSource(built.sidecar, sidecarPod, envoy, configPath);
    expect(gen.name).toBe("countersign-envoy");
    expect(entry?.path).toBe(ENVOY_YAML);
  });

  describe("the pinned Envoy", () => {
    let files: EnvoyTestFiles;
    beforeAll(async () => {
      files = await createEnvoyTestFiles();
    });
    afterAll(() => files.remove());

    it("accepts the generated ConfigMap's envoy.yaml with the container's own arguments (the readiness listener merged by --config-yaml), and the merge keeps countersign's rules", () => {
      const { entry } = configMapFileSource(built.sidecar, sidecarPod, envoy, flagValue(envoy, "--config-path") ?? "");
      const args = argsWithout(envoy, "--config-path");
      expect(args).toContain("--config-yaml");
      const problems = [
        ...envoyProblems(envoyValidate(readFileSync(entry?.path ?? "", "utf8"), files, args)),
        ...checkSemantics(mergeBootstrap(bootstrap, readinessFragment)),
      ];
      expect(problems, formatProblems(problems)).toEqual([]);
    });
  });

  it("merges a readiness listener that forwards only GET /ready to Envoy's admin address", () => {
    const added = listeners(readinessFragment);
    expect(added).toHaveLength(1);
    expect(listeners(bootstrap).map((l) => l.name)).not.toContain(added[0]?.name);
    const routes = findAll(readinessFragment, (d) => isDoc(d["match"]) && isDoc(d["route"]));
    expect(routes.map((r) => r["match"])).toEqual([{ path: "/ready", headers: [{ name: ":method", string_match: { exact: "GET" } }] }]);
    const cluster = String(isDoc(routes[0]?.["route"]) ? routes[0]["route"]["cluster"] : "");
    expect(clusterAddresses(readinessFragment, cluster)).toEqual([adminAddress(bootstrap)]);
    expect(isLoopback(adminAddress(bootstrap)?.address ?? "")).toBe(true);
    for (const probe of [envoy.startupProbe, envoy.readinessProbe]) {
      expect(probe?.httpGet?.path).toBe("/ready");
      expect(resolvePort(envoy, probe?.httpGet?.port)).toBe(added[0]?.socket?.port);
    }
  });

  it("gives the workload the CA certificate of the same Secret and nothing else from it", () => {
    const bundle = envValue(workload, "AWS_CA_BUNDLE") ?? "";
    const mount = mountAt(sidecarPod, workload, dirname(bundle));
    expect(mount?.volume.secret?.secretName).toBe("countersign-tls");
    expect(projectedKeys(mount?.volume ?? { name: "" })).toEqual([basename(bundle)]);
    // Across all its mounts, the only Secret key the workload sees is ca.crt.
    const secretVolumes = (workload.volumeMounts ?? []).map((m) => volumeNamed(sidecarPod, m.name)).filter((v) => v.secret !== undefined);
    expect(secretVolumes.flatMap((v) => projectedKeys(v) ?? ["<every key>"])).toEqual(["ca.crt"]);
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
    expect(spec.podMetricsEndpoints.map((e) => [resolvePort(countersignIn.sidecar.container, e.port), e.path])).toEqual([[admin.port, "/metrics"]]);
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
    const { gen, entry } = configMapFileSource(built[overlay], pod, container, flagValue(container, "--policy") ?? "");
    expect(gen.name).toBe("countersign-policy");
    expect(entry).toBeDefined();
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

  it("is selected by the base NetworkPolicy, which admits only Prometheus on the admin port and lets out only DNS and HTTPS", () => {
    const policy = findOne(built[overlay].resources, "NetworkPolicy", "countersign")["spec"] as {
      podSelector: { matchLabels: Record<string, string> };
      ingress: { ports: { port: number; protocol: string }[] }[];
      egress: { ports: { port: number; protocol: string }[] }[];
    };
    expect(selectorMatches(policy.podSelector.matchLabels, template.metadata.labels)).toBe(true);
    const admin = splitHostPort(flagValue(container, "--admin-listen") ?? "");
    expect(policy.ingress.flatMap((r) => r.ports.map((p) => `${p.protocol}/${p.port}`))).toEqual([`TCP/${admin.port}`]);
    expect(policy.egress.flatMap((r) => r.ports.map((p) => `${p.protocol}/${p.port}`)).sort()).toEqual(["TCP/443", "TCP/53", "UDP/53"]);
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
    const [example] = loadYamlDocs(repoPath("k8s", "sidecar", "tls-secret.example.yaml"));
    const mountedKeys = (sidecarPod.volumes ?? []).filter((v) => v.secret?.secretName === "countersign-tls").flatMap((v) => projectedKeys(v) ?? []);
    expect(metadataOf(example ?? {}).name).toBe("countersign-tls");
    expect(Object.keys(isDoc(example?.["stringData"]) ? example["stringData"] : {}).sort()).toEqual([...mountedKeys].sort());
    expect(leaf.secretName).toBe("countersign-tls");
    expect(built.sidecar.resources.some((d) => d["kind"] === "Secret")).toBe(false);
  });

  it("is issued by cert-manager for host names the policy signs for, by a CA issuer (so the Secret carries ca.crt)", async () => {
    const result = await loadPolicyFile(repoPath("k8s", "base", "policy.yaml"));
    if (!result.ok) throw new Error("k8s/base/policy.yaml is invalid");
    const policy = result.policy;
    const unsigned = leaf.dnsNames.filter((name) => matchEndpoint(policy, name.replace(/^\*\./, "bucket."), "https") === undefined);
    expect(unsigned).toEqual([]);
    const issuer = certManager.find((d) => d["kind"] === "Issuer" && metadataOf(d).name === leaf.issuerRef.name);
    expect(isDoc(issuer?.["spec"]) && isDoc(issuer["spec"]["ca"])).toBe(true);
  });
});
