/**
 * Typed views of the Kubernetes objects the tests look into (Deployments and their pod templates),
 * and small lookups over them: a container's flags, env, ports and mounts.
 */
import { isDoc, type Doc } from "./kustomize.js";

export interface Probe {
  readonly httpGet?: { readonly path?: string; readonly port?: number | string };
  readonly tcpSocket?: { readonly port?: number | string };
}

export interface Container {
  readonly name: string;
  readonly image?: string;
  readonly restartPolicy?: string;
  readonly command?: readonly string[];
  readonly args?: readonly string[];
  readonly env?: readonly { readonly name: string; readonly value?: string }[];
  readonly envFrom?: readonly Doc[];
  readonly ports?: readonly { readonly name?: string; readonly containerPort: number; readonly protocol?: string }[];
  readonly startupProbe?: Probe;
  readonly readinessProbe?: Probe;
  readonly livenessProbe?: Probe;
  readonly resources?: { readonly requests?: Record<string, string>; readonly limits?: Record<string, string> };
  readonly securityContext?: {
    readonly allowPrivilegeEscalation?: boolean;
    readonly readOnlyRootFilesystem?: boolean;
    readonly runAsNonRoot?: boolean;
    readonly capabilities?: { readonly drop?: readonly string[] };
  };
  readonly volumeMounts?: readonly VolumeMount[];
}

export interface VolumeMount {
  readonly name: string;
  readonly mountPath: string;
  readonly readOnly?: boolean;
  readonly subPath?: string;
}

export interface Volume {
  readonly name: string;
  readonly configMap?: { readonly name: string; readonly items?: readonly { key: string; path: string }[] };
  readonly secret?: { readonly secretName: string; readonly items?: readonly { key: string; path: string }[] };
  readonly emptyDir?: Doc;
}

export interface PodSpec {
  readonly serviceAccountName?: string;
  readonly automountServiceAccountToken?: boolean;
  readonly terminationGracePeriodSeconds?: number;
  readonly securityContext?: { readonly runAsNonRoot?: boolean; readonly runAsUser?: number; readonly seccompProfile?: { readonly type?: string } };
  readonly initContainers?: readonly Container[];
  readonly containers: readonly Container[];
  readonly volumes?: readonly Volume[];
}

export interface PodTemplate {
  readonly metadata: { readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly spec: PodSpec;
}

export interface Metadata {
  readonly name: string;
  readonly namespace?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

export function metadataOf(doc: Doc): Metadata {
  const metadata = doc["metadata"];
  if (!isDoc(metadata) || typeof metadata["name"] !== "string") throw new Error(`a ${String(doc["kind"])} has no metadata.name`);
  return metadata as unknown as Metadata;
}

/** The one document of this kind (and name, when given). */
export function findOne(docs: readonly Doc[], kind: string, name?: string): Doc {
  const found = docs.filter((d) => d["kind"] === kind && (name === undefined || metadataOf(d).name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? `/${name}` : ""}, found ${found.length}`);
  return found[0] as Doc;
}

export function podTemplateOf(workload: Doc): PodTemplate {
  const template = isDoc(workload["spec"]) ? workload["spec"]["template"] : undefined;
  if (!isDoc(template) || !isDoc(template["spec"])) throw new Error(`${metadataOf(workload).name} has no pod template`);
  return template as unknown as PodTemplate;
}

export function allContainers(pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}

export function containerNamed(pod: PodSpec, name: string): Container {
  const container = allContainers(pod).find((c) => c.name === name);
  if (container === undefined) throw new Error(`no container named ${name}`);
  return container;
}

/** The value of `--flag=value` or `--flag value` in a container's args; undefined when absent. */
export function flagValue(container: Container, flag: string): string | undefined {
  const args = container.args ?? [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? "";
    if (arg === flag) return args[i + 1];
    if (arg.startsWith(`${flag}=`)) return arg.slice(flag.length + 1);
  }
  return undefined;
}

export function envValue(container: Container, name: string): string | undefined {
  return container.env?.find((e) => e.name === name)?.value;
}

/** A probe's or service's port as a number: numbers as they are, names through the container's ports. */
export function resolvePort(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === "number") return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

export function volumeNamed(pod: PodSpec, name: string): Volume {
  const volume = pod.volumes?.find((v) => v.name === name);
  if (volume === undefined) throw new Error(`no volume named ${name}`);
  return volume;
}

/** The mount whose mountPath is exactly `dir`, with its volume. */
export function mountAt(pod: PodSpec, container: Container, dir: string): { mountPath: string; mount: VolumeMount; volume: Volume } | undefined {
  const mount = container.volumeMounts?.find((m) => m.mountPath === dir);
  return mount === undefined ? undefined : { mountPath: mount.mountPath, mount, volume: volumeNamed(pod, mount.name) };
}

/** Keys a Secret or ConfigMap volume projects (its items), or undefined when it projects every key. */
export function projectedKeys(volume: Volume): string[] | undefined {
  const items = volume.secret?.items ?? volume.configMap?.items;
  return items?.map((i) => i.path);
}

export function selectorMatches(matchLabels: Record<string, string> | undefined, labels: Record<string, string> | undefined): boolean {
  if (matchLabels === undefined || Object.keys(matchLabels).length === 0) return false;
  return Object.entries(matchLabels).every(([k, v]) => labels?.[k] === v);
}

/** host and port of "host:port" (IPv6 in brackets). */
export function splitHostPort(address: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(address);
  if (match === null) throw new Error(`not host:port: ${address}`);
  return { host: match[1] ?? match[2] ?? "", port: Number(match[3]) };
}
