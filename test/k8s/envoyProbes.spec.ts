/**
 * The sidecar's Envoy container is probed and scraped through envoy/envoy.yaml's `envoy_stats`
 * listener (GET /ready and GET /stats/prometheus, nothing else), the only Envoy listener bound beyond
 * loopback: no probe touches a signing listener (they bind 127.0.0.1, which the kubelet cannot reach),
 * there is no TCP probe, and no listener is merged in from the container's arguments.
 */
import { readFileSync } from "node:fs";
import { load } from "js-yaml";
import { describe, expect, it } from "vitest";
import { findAll, isLoopback, listeners } from "./envoyFacts.js";
import { assemble, type Doc, isDoc, repoPath } from "./kustomize.js";
import { containerNamed, findOne, podTemplateOf, resolvePort } from "./workloads.js";

const bootstrap: unknown = load(readFileSync(repoPath("envoy", "envoy.yaml"), "utf8"));
const sidecar = assemble(repoPath("k8s", "sidecar"));
const pod = podTemplateOf(findOne(sidecar.resources, "Deployment", "aws-workload")).spec;
const envoy = containerNamed(pod, "envoy");
const STATS_LISTENER = "envoy_stats";

/** The listener document named `name` in envoy.yaml. */
function listenerDoc(name: string): Doc {
  const all = isDoc(bootstrap) && isDoc(bootstrap["static_resources"]) && Array.isArray(bootstrap["static_resources"]["listeners"]) ? bootstrap["static_resources"]["listeners"] : [];
  const found = all.filter(isDoc).find((l) => l["name"] === name);
  if (found === undefined) throw new Error(`envoy/envoy.yaml has no listener ${name}`);
  return found;
}

describe("the sidecar's Envoy probes", () => {
  const stats = listeners(bootstrap).find((l) => l.name === STATS_LISTENER);

  it("envoy.yaml's envoy_stats listener is the only one bound beyond loopback, and forwards GET /ready and GET /stats/prometheus", () => {
    const exposed = listeners(bootstrap).filter((l) => l.socket !== undefined && !isLoopback(l.socket.address));
    expect(exposed.map((l) => l.name)).toEqual([STATS_LISTENER]);
    const routed = findAll(listenerDoc(STATS_LISTENER), (d) => isDoc(d["match"]) && isDoc(d["route"])).map((r) => r["match"]);
    expect(routed).toEqual([
      { path: "/ready", headers: [{ name: ":method", string_match: { exact: "GET" } }] },
      { path: "/stats/prometheus", headers: [{ name: ":method", string_match: { exact: "GET" } }] },
    ]);
  });

  it("startup, readiness and liveness all GET /ready on the port named envoy-stats, which is envoy_stats' port", () => {
    expect(resolvePort(envoy, "envoy-stats")).toBe(stats?.socket?.port);
    for (const [kind, probe] of [["startup", envoy.startupProbe], ["readiness", envoy.readinessProbe], ["liveness", envoy.livenessProbe]] as const) {
      expect(probe?.httpGet, kind).toEqual({ path: "/ready", port: "envoy-stats" });
      expect(probe?.tcpSocket, kind).toBeUndefined();
    }
  });

  it("declares no container port, and probes nothing, on a signing listener", () => {
    const signing = listeners(bootstrap).filter((l) => l.name !== STATS_LISTENER && l.socket !== undefined).map((l) => l.socket?.port);
    expect(signing.length).toBeGreaterThan(0);
    expect((envoy.ports ?? []).filter((p) => signing.includes(p.containerPort))).toEqual([]);
  });

  it("runs envoy.yaml as shipped: the container's arguments merge no listener in (no --config-yaml)", () => {
    expect((envoy.args ?? []).filter((a) => a.startsWith("--config-yaml"))).toEqual([]);
  });
});
