/**
 * The NetworkPolicies select countersign's own pods and never a workload's: in the sidecar overlay no
 * policy selects the workload pod (countersign runs inside it, so a policy there would govern the
 * workload's traffic); the opt-in example selects only a label nothing sets by default; the shared
 * service's policy selects the Deployment's own pods. Their egress is evaluated address by address:
 * DNS to NodeLocal DNSCache (169.254.20.10) passes, the instance metadata service does not.
 */
import { BlockList, isIPv6 } from "node:net";
import { describe, expect, it } from "vitest";
import { assemble, type Doc, loadYamlDocs, repoPath } from "./kustomize.js";
import { findOne, metadataOf, podTemplateOf, selectorMatches } from "./workloads.js";

interface Port {
  readonly protocol?: string;
  readonly port?: number;
  readonly endPort?: number;
}
interface Peer {
  readonly ipBlock?: { readonly cidr: string; readonly except?: readonly string[] };
  readonly namespaceSelector?: { readonly matchLabels?: Record<string, string> };
  readonly podSelector?: { readonly matchLabels?: Record<string, string> };
}
interface Rule {
  readonly to?: readonly Peer[];
  readonly from?: readonly Peer[];
  readonly ports?: readonly Port[];
}
interface PolicySpec {
  readonly podSelector: { readonly matchLabels?: Record<string, string>; readonly matchExpressions?: unknown[] };
  readonly policyTypes: readonly string[];
  readonly ingress?: readonly Rule[];
  readonly egress?: readonly Rule[];
}

const sidecar = assemble(repoPath("k8s", "sidecar"));
const shared = assemble(repoPath("k8s", "shared-service"));
const example = loadYamlDocs(repoPath("k8s", "sidecar", "networkpolicy.example.yaml"));
const OPT_IN = { "countersign.io/network-policy": "aws-only" };

const policies = (docs: readonly Doc[]): Doc[] => docs.filter((d) => d["kind"] === "NetworkPolicy");
const specOf = (policy: Doc): PolicySpec => policy["spec"] as PolicySpec;

/** Whether a policy's podSelector selects a pod with these labels (an empty selector selects every pod). */
function selects(policy: Doc, labels: Record<string, string> | undefined): boolean {
  const selector = specOf(policy).podSelector;
  if (Object.keys(selector.matchLabels ?? {}).length === 0 && (selector.matchExpressions ?? []).length === 0) return true;
  if ((selector.matchExpressions ?? []).length > 0) throw new Error(`${metadataOf(policy).name}: matchExpressions are not evaluated here`);
  return selectorMatches(selector.matchLabels, labels);
}

function inCidr(ip: string, cidr: string): boolean {
  const [network = "", prefix = ""] = cidr.split("/");
  const type = isIPv6(network) ? "ipv6" : "ipv4";
  if ((type === "ipv6") !== isIPv6(ip)) return false;
  const list = new BlockList();
  list.addSubnet(network, Number(prefix), type);
  return list.check(ip, type);
}

function portMatches(ports: readonly Port[] | undefined, protocol: string, port: number): boolean {
  if (ports === undefined || ports.length === 0) return true;
  return ports.some((p) => (p.protocol ?? "TCP") === protocol && (p.port === undefined || (p.endPort === undefined ? p.port === port : p.port <= port && port <= p.endPort)));
}

/** Whether the policy lets a selected pod send to ip:port over protocol (IP peers only; selector peers never match an IP here). */
function egressAllowed(spec: PolicySpec, ip: string, protocol: string, port: number): boolean {
  return (spec.egress ?? []).some((rule) => {
    const peerMatches =
      rule.to === undefined || rule.to.length === 0 || rule.to.some((peer) => peer.ipBlock !== undefined && inCidr(ip, peer.ipBlock.cidr) && !(peer.ipBlock.except ?? []).some((e) => inCidr(ip, e)));
    return peerMatches && portMatches(rule.ports, protocol, port);
  });
}

/** Protocol/port pairs allowed to the cluster DNS pods (kube-system, k8s-app: kube-dns). */
function clusterDnsPorts(spec: PolicySpec): string[] {
  return (spec.egress ?? [])
    .filter((r) => (r.to ?? []).some((p) => p.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === "kube-system" && p.podSelector?.matchLabels?.["k8s-app"] === "kube-dns"))
    .flatMap((r) => (r.ports ?? []).map((p) => `${p.protocol ?? "TCP"}/${String(p.port)}`))
    .sort();
}

function ingressPorts(spec: PolicySpec): string[] {
  return (spec.ingress ?? []).flatMap((r) => (r.ports ?? []).map((p) => `${p.protocol ?? "TCP"}/${String(p.port)}`)).sort();
}

describe("which pods the NetworkPolicies select", () => {
  it("sidecar overlay: no NetworkPolicy selects the workload pod, whose traffic is the workload's own", () => {
    const pod = podTemplateOf(findOne(sidecar.resources, "Deployment", "aws-workload")).metadata.labels;
    expect(policies(sidecar.resources).filter((p) => selects(p, pod)).map((p) => metadataOf(p).name)).toEqual([]);
  });

  it("the sidecar's opt-in example selects only pods labelled countersign.io/network-policy: aws-only, a label the example workload does not carry", () => {
    const [policy] = policies(example);
    expect(policies(example)).toHaveLength(1);
    expect(specOf(policy ?? {}).podSelector).toEqual({ matchLabels: OPT_IN });
    expect(sidecar.resources.some((d) => d["kind"] === "NetworkPolicy" && metadataOf(d).name === metadataOf(policy ?? {}).name)).toBe(false);
    const pod = podTemplateOf(findOne(sidecar.resources, "Deployment", "aws-workload")).metadata.labels;
    expect(selects(policy ?? {}, pod)).toBe(false);
    expect(selects(policy ?? {}, { ...pod, ...OPT_IN })).toBe(true);
  });

  it("shared-service overlay: both policies select exactly the countersign Deployment's pods, by the Deployment's own selector", () => {
    const deployment = findOne(shared.resources, "Deployment", "countersign");
    const ownSelector = (deployment["spec"] as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels;
    const pod = podTemplateOf(deployment).metadata.labels;
    const all = policies(shared.resources);
    expect(all.map((p) => metadataOf(p).name).sort()).toEqual(["countersign", "countersign-grpc"]);
    for (const policy of all) {
      expect(specOf(policy).podSelector, metadataOf(policy).name).toEqual({ matchLabels: ownSelector });
      expect(selects(policy, pod)).toBe(true);
    }
    expect(ownSelector).toEqual({ "app.kubernetes.io/name": "countersign" });
    // A label the base stamps on every object (part-of) would also match workloads that copy it.
    expect(Object.keys(ownSelector)).not.toContain("app.kubernetes.io/part-of");
  });
});

describe.each([
  ["shared-service networkpolicy.yaml", () => specOf(findOne(shared.resources, "NetworkPolicy", "countersign")), ["TCP/9464"]],
  ["sidecar networkpolicy.example.yaml", () => specOf(policies(example)[0] ?? {}), ["TCP/9464", "TCP/9902"]],
] as const)("egress and ingress of %s", (_name, spec, ingress) => {
  it("restricts both directions", () => {
    expect([...spec().policyTypes].sort()).toEqual(["Egress", "Ingress"]);
  });

  it.each([
    ["NodeLocal DNSCache, UDP 53", "169.254.20.10", "UDP", 53],
    ["NodeLocal DNSCache, TCP 53", "169.254.20.10", "TCP", 53],
    ["an AWS address, HTTPS", "52.216.8.1", "TCP", 443],
    ["an AWS IPv6 address, HTTPS", "2600:1fa0:8000::1", "TCP", 443],
  ] as const)("lets out %s", (_what, ip, protocol, port) => {
    expect(egressAllowed(spec(), ip, protocol, port)).toBe(true);
  });

  it.each([
    ["the instance metadata service, HTTP", "169.254.169.254", "TCP", 80],
    ["the instance metadata service, HTTPS", "169.254.169.254", "TCP", 443],
    ["the instance metadata service, DNS port", "169.254.169.254", "UDP", 53],
    ["the IPv6 instance metadata service", "fd00:ec2::254", "TCP", 80],
    ["the IPv6 instance metadata service, HTTPS", "fd00:ec2::254", "TCP", 443],
    ["the EKS Pod Identity agent (opt-in, commented)", "169.254.170.23", "TCP", 80],
    ["NodeLocal DNSCache on another port", "169.254.20.10", "TCP", 443],
    ["another link-local address on 443", "169.254.1.1", "TCP", 443],
    ["an IPv6 link-local address on 443", "fe80::1", "TCP", 443],
    ["an AWS address over plain HTTP", "52.216.8.1", "TCP", 80],
    ["any address, UDP 53 (DNS goes to the cluster's resolvers only)", "8.8.8.8", "UDP", 53],
  ] as const)("keeps in %s", (_what, ip, protocol, port) => {
    expect(egressAllowed(spec(), ip, protocol, port)).toBe(false);
  });

  it("lets out DNS to the cluster DNS pods over UDP and TCP", () => {
    expect(clusterDnsPorts(spec())).toEqual(["TCP/53", "UDP/53"]);
  });

  it("admits only scrapes from the monitoring namespace", () => {
    expect(ingressPorts(spec())).toEqual([...ingress]);
    for (const rule of spec().ingress ?? []) expect(rule.from).toEqual([{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }]);
  });
});
