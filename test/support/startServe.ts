/**
 * The one launcher of `countersign serve` (the compiled CLI in dist/) as a separate process, the
 * way a user runs it, for tests and bench/run.ts. The ports are chosen before it starts (free
 * loopback ports unless you pass --listen / --admin-listen), so it works at every --log-level and
 * with --workers N (the primary, which owns the admin port, logs no ports at all). Ready when the
 * admin port answers `readyPath` (/healthz unless told) with 200 and the gRPC port accepts
 * connections.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { eventually } from "./eventually.js";
import { freePort } from "./freePort.js";

export const REPO = join(import.meta.dirname, "..", "..");
export const CLI = join(REPO, "dist", "src", "cli.js");

export type LogRecord = Record<string, unknown>;

export interface ServeOptions {
  /** CLI arguments after `serve`. Defaults add --listen, --admin-listen and --drain-seconds 0 unless given. */
  readonly args?: readonly string[];
  /** The child's environment, on top of PATH (nothing else is inherited). */
  readonly env?: NodeJS.ProcessEnv;
  /** Adds --policy <file>. */
  readonly policyFile?: string;
  /** Adds --shutdown-grace-seconds N (unless args give it). */
  readonly shutdownGraceSeconds?: number;
  /** Node flags before the CLI, e.g. ["--cpu-prof"]. */
  readonly nodeArgs?: readonly string[];
  /** A file descriptor that gets the child's stdout instead of `lines` (which then hold stderr only). */
  readonly stdoutFd?: number;
  /** The admin path that must answer 200 before the process counts as started; default /healthz. */
  readonly readyPath?: string;
  /** Called with the child as soon as it is spawned (before it is ready). */
  readonly onSpawn?: (proc: ChildProcess) => void;
}

export interface ServeProcess {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly grpcAddress: string;
  readonly adminUrl: string;
  /** Every stdout/stderr line so far (JSON log lines and anything else), workers' included. */
  readonly lines: string[];
  /** Resolves with the first log line (now or later) that satisfies `pred`; rejects if the process exits first. */
  waitForLine(pred: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Lines that parse as JSON objects (the log). */
  logRecords(): LogRecord[];
  /** Resolves with the first log record (now or later) that satisfies `pred`. */
  waitForRecord(pred: (r: LogRecord) => boolean, timeoutMs?: number): Promise<LogRecord>;
  /** Resolves with the exit code (null when killed by a signal) and the signal. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  signal(sig: NodeJS.Signals): void;
  /** SIGTERM (or `sig`), then the exit code; SIGKILL after `killAfterMs`. */
  stop(sig?: NodeJS.Signals, killAfterMs?: number): Promise<number | null>;
}

export function parseLogLine(line: string): LogRecord | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function canConnect(address: string): Promise<boolean> {
  const m = /^(.*):(\d+)$/.exec(address);
  // Not host:port (a unix socket, say): nothing to probe here.
  if (!m) return Promise.resolve(true);
  return new Promise((resolve) => {
    const socket = net.connect({ host: (m[1] ?? "").replace(/^\[|\]$/g, ""), port: Number(m[2]) });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function answers200(url: string): Promise<boolean> {
  try {
    return (await fetch(url)).status === 200;
  } catch {
    return false;
  }
}

function valueOf(args: readonly string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function startServe(opts: ServeOptions = {}): Promise<ServeProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" (make test does) first`);
  const given = [...(opts.args ?? [])];
  const grpcAddress = valueOf(given, "--listen") ?? `127.0.0.1:${await freePort()}`;
  const adminUrl = `http://${valueOf(given, "--admin-listen") ?? `127.0.0.1:${await freePort()}`}`;
  const args = [
    ...(opts.policyFile !== undefined ? ["--policy", opts.policyFile] : []),
    ...(given.includes("--listen") ? [] : ["--listen", grpcAddress]),
    ...(given.includes("--admin-listen") ? [] : ["--admin-listen", adminUrl.slice("http://".length)]),
    ...given,
    ...(given.includes("--drain-seconds") ? [] : ["--drain-seconds", "0"]),
    ...(opts.shutdownGraceSeconds === undefined || given.includes("--shutdown-grace-seconds") ? [] : ["--shutdown-grace-seconds", String(opts.shutdownGraceSeconds)]),
  ];
  const proc = spawn(process.execPath, [...(opts.nodeArgs ?? []), CLI, "serve", ...args], {
    env: { PATH: process.env.PATH, ...opts.env },
    stdio: ["ignore", opts.stdoutFd ?? "pipe", "pipe"],
  });
  opts.onSpawn?.(proc);
  const lines: string[] = [];
  const waiters = new Set<(line: string) => void>();
  let partial = "";
  const onData = (buf: Buffer): void => {
    const parts = (partial + buf.toString("utf8")).split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      if (line.trim() === "") continue;
      lines.push(line);
      for (const w of [...waiters]) w(line);
    }
  };
  proc.stdout?.on("data", onData);
  proc.stderr?.on("data", onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once("exit", (code, signal) => {
      if (partial.trim() !== "") lines.push(partial);
      partial = "";
      resolve({ code, signal });
    }),
  );
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  /** The first line (now or later) that `match` maps to a value. */
  const waitFor = <T>(match: (line: string) => T | undefined, what: string, timeoutMs: number, rejectOnExit: boolean): Promise<T> => {
    for (const line of lines) {
      const v = match(line);
      if (v !== undefined) return Promise.resolve(v);
    }
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        waiters.delete(waiter);
      };
      const waiter = (line: string): void => {
        const v = match(line);
        if (v === undefined) return;
        done();
        resolve(v);
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`timed out waiting for a ${what}; saw:\n${lines.join("\n")}`));
      }, timeoutMs);
      waiters.add(waiter);
      if (rejectOnExit) {
        void exited.then(({ code }) => {
          if (!waiters.has(waiter)) return;
          done();
          reject(new Error(`countersign exited (${code}) before the expected line; output:\n${lines.join("\n")}`));
        });
      }
    });
  };
  const waitForLine = (pred: (line: string) => boolean, timeoutMs = 15_000): Promise<string> => waitFor((l) => (pred(l) ? l : undefined), "log line", timeoutMs, true);
  const waitForRecord = (pred: (r: LogRecord) => boolean, timeoutMs = 10_000): Promise<LogRecord> =>
    waitFor(
      (l) => {
        const rec = parseLogLine(l);
        return rec && pred(rec) ? rec : undefined;
      },
      "log record",
      timeoutMs,
      false,
    );
  const logRecords = (): LogRecord[] => lines.map(parseLogLine).filter((r): r is LogRecord => r !== undefined);

  // Generous: on a busy 2-core CI box a cold Node start can take many seconds.
  try {
    await eventually(
      async () => {
        if (hasExited) throw new Error(`countersign exited (${proc.exitCode ?? proc.signalCode}) before it was serving; output:\n${lines.join("\n")}`);
        return (await answers200(`${adminUrl}${opts.readyPath ?? "/healthz"}`)) && (await canConnect(grpcAddress)) ? true : undefined;
      },
      "countersign to serve",
      { timeoutMs: 60_000 },
    );
  } catch (err) {
    proc.kill("SIGKILL");
    throw err instanceof Error && !hasExited ? new Error(`${err.message}; output:\n${lines.join("\n")}`) : err;
  }

  const stop = async (sig: NodeJS.Signals = "SIGTERM", killAfterMs = 15_000): Promise<number | null> => {
    if (!hasExited) proc.kill(sig);
    const timer = setTimeout(() => proc.kill("SIGKILL"), killAfterMs);
    const { code } = await exited;
    clearTimeout(timer);
    return code;
  };
  return {
    proc,
    pid: proc.pid ?? -1,
    grpcAddress,
    adminUrl,
    lines,
    waitForLine,
    logRecords,
    waitForRecord,
    exited,
    signal: (sig) => void proc.kill(sig),
    stop,
  };
}
