/**
 * `countersign serve` flags and their COUNTERSIGN_* environment variables, checked all at once and
 * before anything is read, bound or fetched: a mistake here is a usage error (exit 2) even when the
 * policy file is missing or STS is down.
 */
import { LOG_LEVELS, type LogLevel } from "../admin/logger.js";
import { DEFAULT_ADMISSION_LIMITS, type AdmissionLimits } from "../extproc/admission.js";
import type { Result } from "../result.js";
import { splitHostPort } from "../splitHostPort.js";
import type { TlsFiles } from "../tls/index.js";
import { parseStrict } from "./usageError.js";

export const SERVE_DEFAULTS = {
  listen: "127.0.0.1:50051",
  adminListen: "0.0.0.0:9464",
  logLevel: "info" as LogLevel,
  drainSeconds: 5,
  shutdownGraceSeconds: 20,
  workers: 1,
  maxWorkers: 64,
} as const;

export interface ServeCommand {
  readonly policyPath: string;
  readonly listen: string;
  readonly adminListen: string;
  readonly logLevel: LogLevel;
  readonly drainMs: number;
  readonly shutdownGraceMs: number;
  readonly workers: number;
  readonly tls?: TlsFiles;
  readonly admission: AdmissionLimits;
}

const OPTIONS = {
  policy: { type: "string" },
  listen: { type: "string" },
  "admin-listen": { type: "string" },
  "log-level": { type: "string" },
  "drain-seconds": { type: "string" },
  "shutdown-grace-seconds": { type: "string" },
  workers: { type: "string" },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-client-ca": { type: "string" },
  "max-streams": { type: "string" },
  "max-held-bytes": { type: "string" },
} as const;

type Flag = keyof typeof OPTIONS;

/** The environment variable that stands in for each flag. */
export const SERVE_ENV: Readonly<Record<Flag, string>> = {
  policy: "COUNTERSIGN_POLICY",
  listen: "COUNTERSIGN_LISTEN",
  "admin-listen": "COUNTERSIGN_ADMIN_LISTEN",
  "log-level": "COUNTERSIGN_LOG_LEVEL",
  "drain-seconds": "COUNTERSIGN_DRAIN_SECONDS",
  "shutdown-grace-seconds": "COUNTERSIGN_SHUTDOWN_GRACE_SECONDS",
  workers: "COUNTERSIGN_WORKERS",
  "tls-cert": "COUNTERSIGN_TLS_CERT",
  "tls-key": "COUNTERSIGN_TLS_KEY",
  "tls-client-ca": "COUNTERSIGN_TLS_CLIENT_CA",
  "max-streams": "COUNTERSIGN_MAX_STREAMS",
  "max-held-bytes": "COUNTERSIGN_MAX_HELD_BYTES",
};

/**
 * Reads `serve`'s arguments (without the word `serve`) and environment. Every problem found is
 * returned, one line each, naming the flag (and the variable when the value came from it).
 */
export function parseServeArgs(args: string[], env: NodeJS.ProcessEnv): Result<{ command: ServeCommand }, readonly string[]> {
  const parsed = parseStrict({ args, options: OPTIONS, allowPositionals: false });
  if (!parsed.ok) return { ok: false, error: [parsed.error] };
  const values: Partial<Record<Flag, string>> = parsed.parsed.values;
  const problems: string[] = [];

  /** The flag's value, else its variable's; with where it came from, for messages. */
  const raw = (flag: Flag): { value: string; from: string } | undefined => {
    const given = values[flag];
    if (given !== undefined) return { value: given, from: `--${flag}` };
    const fromEnv = env[SERVE_ENV[flag]];
    return fromEnv === undefined || fromEnv === "" ? undefined : { value: fromEnv, from: `--${flag} (${SERVE_ENV[flag]})` };
  };
  const number = (flag: Flag, dflt: number, accept: (n: number) => boolean, what: string): number => {
    const r = raw(flag);
    if (r === undefined) return dflt;
    const n = r.value.trim() === "" ? NaN : Number(r.value);
    if (accept(n)) return n;
    problems.push(`${r.from}: "${r.value}" is not ${what}`);
    return dflt;
  };
  const address = (flag: Flag, dflt: string): string => {
    const r = raw(flag);
    if (r === undefined) return dflt;
    try {
      splitHostPort(r.value, r.from);
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
    }
    return r.value;
  };

  const policy = raw("policy");
  if (policy === undefined) problems.push(`--policy FILE (or ${SERVE_ENV.policy}) is required`);
  const listen = address("listen", SERVE_DEFAULTS.listen);
  const adminListen = address("admin-listen", SERVE_DEFAULTS.adminListen);

  const level = raw("log-level");
  let logLevel: LogLevel = SERVE_DEFAULTS.logLevel;
  if (level !== undefined) {
    if ((LOG_LEVELS as readonly string[]).includes(level.value)) logLevel = level.value as LogLevel;
    else problems.push(`${level.from}: "${level.value}" is not one of ${LOG_LEVELS.join(", ")}`);
  }

  const seconds = (n: number): boolean => Number.isFinite(n) && n >= 0;
  const drainSeconds = number("drain-seconds", SERVE_DEFAULTS.drainSeconds, seconds, "a number of seconds (0 or more)");
  const graceSeconds = number("shutdown-grace-seconds", SERVE_DEFAULTS.shutdownGraceSeconds, seconds, "a number of seconds (0 or more)");
  const workers = number(
    "workers",
    SERVE_DEFAULTS.workers,
    (n) => Number.isInteger(n) && n >= 1 && n <= SERVE_DEFAULTS.maxWorkers,
    `a whole number from 1 to ${SERVE_DEFAULTS.maxWorkers}`,
  );
  const positive = (n: number): boolean => Number.isSafeInteger(n) && n >= 1;
  const admission: AdmissionLimits = {
    maxConcurrentStreams: number("max-streams", DEFAULT_ADMISSION_LIMITS.maxConcurrentStreams, positive, "a positive whole number"),
    maxHeldBytes: number("max-held-bytes", DEFAULT_ADMISSION_LIMITS.maxHeldBytes, positive, "a positive whole number"),
  };

  const certFile = raw("tls-cert")?.value;
  const keyFile = raw("tls-key")?.value;
  const clientCaFile = raw("tls-client-ca")?.value;
  if ((certFile === undefined) !== (keyFile === undefined)) problems.push("--tls-cert and --tls-key go together");
  else if (clientCaFile !== undefined && certFile === undefined) problems.push("--tls-client-ca needs --tls-cert and --tls-key");

  if (problems.length > 0 || policy === undefined) return { ok: false, error: problems };
  return {
    ok: true,
    command: {
      policyPath: policy.value,
      listen,
      adminListen,
      logLevel,
      drainMs: drainSeconds * 1000,
      shutdownGraceMs: graceSeconds * 1000,
      workers,
      ...(certFile !== undefined && keyFile !== undefined ? { tls: { certFile, keyFile, ...(clientCaFile !== undefined ? { clientCaFile } : {}) } } : {}),
      admission,
    },
  };
}
