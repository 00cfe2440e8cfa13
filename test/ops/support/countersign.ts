/**
 * Starts `countersign serve` (the compiled CLI in dist/) on ports chosen before it starts, so it
 * also works where test/support/startServe.ts cannot: with `--log-level warn` (no "countersign
 * serving" line to read the ports from) and with `--workers N` (the primary, which owns the admin
 * port, logs no ports at all). Ready when /healthz answers and the gRPC port accepts connections.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";
import { eventually } from "../../support/eventually.js";
import { freePort } from "../../support/freePort.js";
import { CLI } from "../../support/startServe.js";

export interface Countersign {
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly grpcAddress: string;
  readonly adminUrl: string;
  /** Every stdout/stderr line so far, workers' included. */
  readonly lines: string[];
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

export type LogRecord = Record<string, unknown>;

export interface StartOptions {
  readonly policyFile: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Extra CLI arguments, e.g. ["--workers", "2"]. Defaults add --drain-seconds 0 --shutdown-grace-seconds 2 unless given. */
  readonly args?: readonly string[];
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function healthy(adminUrl: string): Promise<boolean> {
  try {
    return (await fetch(`${adminUrl}/healthz`)).status === 200;
  } catch {
    return false;
  }
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

export async function startCountersign(opts: StartOptions): Promise<Countersign> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first`);
  const grpcPort = await freePort();
  const adminPort = await freePort();
  const args = [...(opts.args ?? [])];
  if (!args.includes("--drain-seconds")) args.push("--drain-seconds", "0");
  if (!args.includes("--shutdown-grace-seconds")) args.push("--shutdown-grace-seconds", "2");
  const proc = spawn(
    process.execPath,
    [CLI, "serve", "--policy", opts.policyFile, "--listen", `127.0.0.1:${grpcPort}`, "--admin-listen", `127.0.0.1:${adminPort}`, ...args],
    { env: { PATH: process.env.PATH, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const lines: string[] = [];
  const waiters = new Set<{ pred: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }>();
  let partial = "";
  const onData = (buf: Buffer): void => {
    const text = partial + buf.toString("utf8");
    const parts = text.split("\n");
    partial = parts.pop() ?? "";
    for (const line of parts) {
      if (line.trim() === "") continue;
      lines.push(line);
      const rec = parseLogLine(line);
      if (!rec) continue;
      for (const w of [...waiters]) {
        if (w.pred(rec)) {
          waiters.delete(w);
          w.resolve(rec);
        }
      }
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

  const logRecords = (): LogRecord[] => lines.map(parseLogLine).filter((r): r is LogRecord => r !== undefined);
  const waitForRecord = (pred: (r: LogRecord) => boolean, timeoutMs = 10_000): Promise<LogRecord> => {
    const found = logRecords().find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const waiter = {
        pred,
        resolve: (r: LogRecord) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`timed out waiting for a log record; saw:\n${lines.join("\n")}`));
      }, timeoutMs);
      waiters.add(waiter);
    });
  };

  const adminUrl = `http://127.0.0.1:${adminPort}`;
  try {
    await eventually(
      async () => {
        if (hasExited) throw new Error(`countersign exited before it was serving; output:\n${lines.join("\n")}`);
        return (await healthy(adminUrl)) && (await canConnect(grpcPort)) ? true : undefined;
      },
      "countersign to serve",
      { timeoutMs: 15_000 },
    );
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
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
    grpcAddress: `127.0.0.1:${grpcPort}`,
    adminUrl,
    lines,
    logRecords,
    waitForRecord,
    exited,
    signal: (sig) => void proc.kill(sig),
    stop,
  };
}
