/**
 * `countersign certs --policy FILE --out DIR [--ca-cert FILE --ca-key FILE] [--days N]`
 * `countersign certs --policy FILE --print-sans` (the names only, e.g. for a cert-manager Certificate)
 *
 * Writes the certificate Envoy presents to the workload (tls.crt, tls.key) with SANs for the
 * policy's hosts, signed by a CA the workload trusts:
 * - --ca-cert/--ca-key: that CA (e.g. the organisation's);
 * - otherwise DIR/ca.crt and DIR/ca.key if they exist (re-running after a policy change keeps the
 *   CA the workloads already trust);
 * - otherwise a new CA, written to DIR/ca.crt and DIR/ca.key.
 * Keys are written with mode 0600.
 */
import { existsSync } from "node:fs";
import { chmod, mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { asksForHelp, EXIT } from "../cli/usageError.js";
import { formatPolicyError, loadPolicyFile } from "../policy/index.js";
import { type CertificateAuthority, createCa, createLeaf, DEFAULT_LEAF_DAYS, type IssuedCertificate, loadCa } from "./certificates.js";
import { planSans } from "./sansForHostPatterns.js";

/** Above this the certificate message nears client limits (Java's default is 32 KiB). */
export const LARGE_CERTIFICATE_BYTES = 24 * 1024;
const MAX_DAYS = 3650;

export const CERTS_USAGE = `usage: countersign certs --policy FILE --out DIR [--ca-cert FILE --ca-key FILE] [--days N]
       countersign certs --policy FILE --print-sans

Issues the certificate Envoy presents to the workload (DIR/tls.crt, DIR/tls.key), with a SAN for
each host of the policy, signed by --ca-cert/--ca-key, else by DIR/ca.crt + DIR/ca.key when they
exist, else by a new CA written there. --print-sans prints the names only (one a line).

  --days N      leaf validity (default ${DEFAULT_LEAF_DAYS}, at most ${MAX_DAYS})
  -h, --help    this text
`;

export interface Output {
  write(text: string): unknown;
}

export interface CertsOptions {
  readonly hosts: readonly string[];
  readonly outDir: string;
  readonly caCertPath?: string;
  readonly caKeyPath?: string;
  readonly days?: number;
  readonly now?: Date;
}

export interface CertsReport {
  /** Where the CA came from. */
  readonly ca: { readonly source: "given" | "reused" | "created"; readonly certPath: string; readonly keyPath?: string };
  readonly leaf: IssuedCertificate & { readonly certPath: string; readonly keyPath: string };
  readonly notes: readonly string[];
}

export async function runCertsCommand(
  argv: string[],
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<number> {
  if (asksForHelp(argv)) {
    out.write(CERTS_USAGE);
    return EXIT.ok;
  }
  const parsed = parseCertsArgs(argv);
  if (typeof parsed === "string") {
    err.write(`countersign certs: ${parsed}\n\n${CERTS_USAGE}`);
    return EXIT.usage;
  }
  const policy = await loadPolicyFile(parsed.policy);
  if (!policy.ok) {
    for (const e of policy.error) err.write(`${formatPolicyError(e)}\n`);
    return EXIT.failure;
  }
  const hosts = policy.policy.endpoints.map((e) => e.host);
  if (parsed.printSans) {
    const plan = planSans(hosts);
    out.write(plan.sans.map((san) => `${san}\n`).join(""));
    for (const note of plan.notes) err.write(`note: ${note}\n`);
    return plan.sans.length > 0 ? EXIT.ok : EXIT.failure;
  }
  try {
    const report = await writeCertificates({ ...parsed.options, hosts });
    out.write(describeReport(report));
    return EXIT.ok;
  } catch (error) {
    err.write(`countersign certs: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT.failure;
  }
}

interface CertsArgs {
  readonly policy: string;
  readonly printSans: boolean;
  readonly options: Omit<CertsOptions, "hosts">;
}

function parseCertsArgs(argv: string[]): CertsArgs | string {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        policy: { type: "string" },
        out: { type: "string" },
        "ca-cert": { type: "string" },
        "ca-key": { type: "string" },
        days: { type: "string" },
        "print-sans": { type: "boolean" },
      },
    }));
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
  if (values.policy === undefined) return "--policy FILE is required";
  const printSans = values["print-sans"] === true;
  if (printSans) {
    const extra = ["out", "ca-cert", "ca-key", "days"].filter((k) => k in values);
    return extra.length === 0 ? { policy: values.policy, printSans, options: { outDir: "" } } : `--print-sans writes no files; drop --${extra.join(", --")}`;
  }
  if (values.out === undefined) return "--out DIR is required";
  if ((values["ca-cert"] === undefined) !== (values["ca-key"] === undefined)) return "--ca-cert and --ca-key go together";
  let days = DEFAULT_LEAF_DAYS;
  if (values.days !== undefined) {
    days = Number(values.days);
    if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) return `--days must be a whole number from 1 to ${MAX_DAYS}`;
  }
  return {
    policy: values.policy,
    printSans,
    options: { outDir: values.out, caCertPath: values["ca-cert"], caKeyPath: values["ca-key"], days },
  };
}

/** Issues the server certificate for `hosts` (policy patterns) and writes the files. */
export async function writeCertificates(opts: CertsOptions): Promise<CertsReport> {
  const plan = planSans(opts.hosts);
  if (plan.sans.length === 0) throw new Error(`no certificate names could be made from the policy's hosts\n${plan.notes.join("\n")}`);
  await mkdir(opts.outDir, { recursive: true });
  const { ca, report: caReport } = await obtainCa(opts);
  const leaf = await createLeaf({ ca, hosts: plan.sans, days: opts.days, now: opts.now });
  const certPath = join(opts.outDir, "tls.crt");
  const keyPath = join(opts.outDir, "tls.key");
  await writeAtomically(keyPath, leaf.keyPem, 0o600);
  await writeAtomically(certPath, leaf.certPem, 0o644);
  const notes = [...plan.notes];
  if (leaf.derBytes > LARGE_CERTIFICATE_BYTES) {
    notes.push(`the certificate is ${leaf.derBytes} bytes; some TLS clients refuse certificate messages above 32 KiB — narrow the policy's "**" patterns`);
  }
  return { ca: caReport, leaf: { ...leaf, certPath, keyPath }, notes };
}

async function obtainCa(opts: CertsOptions): Promise<{ ca: CertificateAuthority; report: CertsReport["ca"] }> {
  if (opts.caCertPath !== undefined && opts.caKeyPath !== undefined) {
    const ca = await readCa(opts.caCertPath, opts.caKeyPath);
    return { ca, report: { source: "given", certPath: opts.caCertPath, keyPath: opts.caKeyPath } };
  }
  const certPath = join(opts.outDir, "ca.crt");
  const keyPath = join(opts.outDir, "ca.key");
  if (existsSync(certPath) && existsSync(keyPath)) {
    return { ca: await readCa(certPath, keyPath), report: { source: "reused", certPath, keyPath } };
  }
  const ca = await createCa({ now: opts.now });
  await writeAtomically(keyPath, ca.keyPem, 0o600);
  await writeAtomically(certPath, ca.certPem, 0o644);
  return { ca, report: { source: "created", certPath, keyPath } };
}

async function readCa(certPath: string, keyPath: string): Promise<CertificateAuthority> {
  const [certPem, keyPem] = await Promise.all([readFile(certPath, "utf8"), readFile(keyPath, "utf8")]);
  try {
    return await loadCa(certPem, keyPem);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`cannot use the CA ${certPath} / ${keyPath}: ${reason}`, { cause: error });
  }
}

/** Writes through a temporary file and a rename, so a reader never sees half a file. */
async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const temporary = `${path}.tmp-${process.pid}`;
  await writeFile(temporary, text, { mode });
  await chmod(temporary, mode);
  await rename(temporary, path);
}

export function describeReport(report: CertsReport): string {
  const lines: string[] = [];
  const { ca, leaf } = report;
  if (ca.source === "created") {
    lines.push(`wrote ${ca.certPath} (new CA; give it to the workload, e.g. AWS_CA_BUNDLE / NODE_EXTRA_CA_CERTS)`);
    lines.push(`wrote ${ca.keyPath ?? ""} (mode 0600; keep it away from the workload)`);
  } else {
    lines.push(`using the ${ca.source === "reused" ? "existing" : "given"} CA ${ca.certPath}`);
  }
  lines.push(`wrote ${leaf.certPath} (${leaf.sans.length} SANs, ${leaf.derBytes} bytes, valid until ${leaf.notAfter.toISOString()})`);
  lines.push(`wrote ${leaf.keyPath} (mode 0600)`);
  for (const note of report.notes) lines.push(`note: ${note}`);
  return `${lines.join("\n")}\n`;
}
