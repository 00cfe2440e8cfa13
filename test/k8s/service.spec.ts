/**
 * The shared service's Service describes its ports truthfully: the gRPC port carries TLS (the
 * Deployment runs with --tls-cert), so no appProtocol may claim cleartext HTTP/2 for it.
 */
import { describe, expect, it } from "vitest";
import { assemble, repoPath } from "./kustomize.js";
import { containerNamed, findOne, flagValue, podTemplateOf, resolvePort } from "./workloads.js";

const built = assemble(repoPath("k8s", "shared-service"));
const countersign = containerNamed(podTemplateOf(findOne(built.resources, "Deployment", "countersign")).spec, "countersign");
const ports = (findOne(built.resources, "Service", "countersign")["spec"] as {
  ports: { name: string; port: number; targetPort: string | number; appProtocol?: string }[];
}).ports;

describe("the shared-service Service", () => {
  it("serves the --listen port over TLS (the premise of the next test)", () => {
    expect(flagValue(countersign, "--tls-cert")).toBeDefined();
    const listen = Number((flagValue(countersign, "--listen") ?? "").split(":").at(-1));
    expect(ports.filter((p) => resolvePort(countersign, p.targetPort) === listen).map((p) => p.name)).toEqual(["grpc"]);
  });

  it("sets no cleartext appProtocol (kubernetes.io/h2c, http, grpc without TLS) on the TLS gRPC port, and none at all, since Kubernetes has no value for HTTP/2 over TLS", () => {
    const grpc = ports.find((p) => p.name === "grpc");
    expect(grpc).toBeDefined();
    expect(grpc?.appProtocol).toBeUndefined();
    const cleartext = ports.filter((p) => ["kubernetes.io/h2c", "http", "h2c", "grpc"].includes(p.appProtocol ?? ""));
    expect(cleartext.map((p) => p.name)).toEqual([]);
  });
});
