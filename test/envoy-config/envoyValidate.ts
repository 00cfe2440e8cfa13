/**
 * `envoy --mode validate` by the pinned Envoy (test/support/envoy.ts) on the shipped configs.
 * Envoy opens the files a config names while it validates it (the listener certificate and key,
 * the CA bundle), so it is given the config under test with those paths pointed at test copies
 * made here; nothing else in the config changes.
 *
 *   const files = await createEnvoyTestFiles();
 *   const verdict = envoyValidate(readFileSync("envoy/envoy.yaml", "utf8"), files);
 *   // { accepted: true, status: 0, warnings: [], output: "configuration '…' OK" }
 *   files.remove();
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createCa, createLeaf } from "../../src/certs/certificates.js";
import { validateEnvoyConfig, type EnvoyVerdict } from "../support/envoy.js";
import { REPO } from "../support/startServe.js";

/**
 * Files and folders the shipped configs read, each with the name of its test copy (files first:
 * the folders are replaced as prefixes afterwards). The SDS secret file is the repository's
 * envoy/tls-certificate.sds.yaml, written with the same replacements.
 */
const SHIPPED_FILES: readonly (readonly [shipped: string, copy: string])[] = [
  ["/etc/countersign/tls/tls.crt", "tls.crt"],
  ["/etc/countersign/tls/tls.key", "tls.key"],
  ["/etc/countersign/tls/ca.crt", "ca.crt"],
  ["/etc/ssl/certs/ca-certificates.crt", "ca.crt"],
  ["/etc/envoy/tls-certificate.sds.yaml", "tls-certificate.sds.yaml"],
  ["/etc/countersign/tls", "."],
  ["/etc/envoy", "."],
];

export interface EnvoyTestFiles {
  /** Temporary folder with a test CA (ca.crt), a leaf it issued (tls.crt, tls.key) and the configs written for Envoy. */
  readonly dir: string;
  /** [path a shipped config names, the test copy Envoy reads instead]. */
  readonly replacements: readonly (readonly [string, string])[];
  remove(): void;
}

/** A test CA and a certificate it issued, written where `envoyValidate` points the shipped paths. */
export async function createEnvoyTestFiles(): Promise<EnvoyTestFiles> {
  const dir = mkdtempSync(join(tmpdir(), "countersign-envoy-validate-"));
  const ca = await createCa({ commonName: "countersign envoy-config test CA" });
  const leaf = await createLeaf({ ca, hosts: ["*.amazonaws.com"] });
  writeFileSync(join(dir, "ca.crt"), ca.certPem);
  writeFileSync(join(dir, "tls.crt"), leaf.certPem);
  writeFileSync(join(dir, "tls.key"), leaf.keyPem, { mode: 0o600 });
  const files: EnvoyTestFiles = {
    dir,
    replacements: SHIPPED_FILES.map(([shipped, copy]) => [shipped, join(dir, copy)] as const),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  writeFileSync(join(dir, "tls-certificate.sds.yaml"), withTestFiles(readFileSync(join(REPO, "envoy", "tls-certificate.sds.yaml"), "utf8"), files));
  return files;
}

/** `text` with every shipped file path replaced by its test copy. */
export function withTestFiles(text: string, files: EnvoyTestFiles): string {
  return files.replacements.reduce((out, [shipped, copy]) => out.replaceAll(shipped, copy), text);
}

let written = 0;

/**
 * `envoy --mode validate` (test/support/envoy.ts) on `config` (YAML or JSON text; a
 * JSON.stringify'd document is fine) with Envoy's other command-line arguments `args` (e.g. a
 * container's `--config-yaml`), after `withTestFiles` on both. Throws only when Envoy cannot be
 * run; a rejected config is a verdict.
 */
export function envoyValidate(config: string, files: EnvoyTestFiles, args: readonly string[] = []): EnvoyVerdict {
  const file = join(files.dir, `config-${process.pid}-${++written}.yaml`);
  writeFileSync(file, withTestFiles(config, files));
  return validateEnvoyConfig(file, args.map((a) => withTestFiles(a, files)));
}
