/**
 * Starts `countersign serve` (the compiled CLI in dist/) as a separate process, the way a user
 * does, on free loopback ports, and waits until its admin port answers /healthz (so it works at
 * every --log-level). Pass your own --listen / --admin-listen to override the ports.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./freePort.js";

export const REPO = join(import.meta.dirname, "..", "..");
export const CLI = join(REPO, "dist", "src", "cli.js");

export interface ServeProcess {
  readonly proc: ChildProcess;
  readonly grpcAddress: string;
  readonly adminUrl: string;
  /** Every stdout/stderr line so far (JSON log lines and anything else). */
  readonly lines: string[];
  /** Resolves with the first log line that satisfies `pred`. */
  waitForLine(pred: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startServe(args: string[], env: NodeJS.ProcessEnv = {}): Promise<ServeProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" (make test does) first`);
  const grpcPort = await freePort();
  const adminPort = await freePort();
  const defaults = [
    ...(args.includes("--listen") ? [] : ["--listen", `127.0.0.1:${grpcPort}`]),
    ...(args.includes("--admin-listen") ? [] : ["--admin-listen", `127.0.0.1:${adminPort}`]),
    ...(args.includes("--drain-seconds") ? [] : ["--drain-seconds", "0"]),
  ];
  const proc = spawn(process.execPath, [CLI, "serve", ...defaults, ...args], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const waiters: Array<{ pred: (l: string) => boolean; resolve: (l: string) => void }> = [];
  const onData = (buf: Buffer): void => {
    for (const line of buf.toString("utf8").split("\n")) {
      if (line.trim() === "") continue;
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pred(line)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(line);
        }
      }
    }
  };
  proc.stdout?.on("data", onData);
  proc.stderr?.on("data", onData);
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));

  const waitForLine = (pred: (line: string) => boolean, timeoutMs = 15_000): Promise<string> => {
    const found = lines.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a log line; saw:\n${lines.join("\n")}`)), timeoutMs);
      waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`countersign exited (${code}) before the expected line; output:\n${lines.join("\n")}`));
      });
    });
  };

  const listen = args[args.indexOf("--listen") + 1] ?? "";
  const admin = args[args.indexOf("--admin-listen") + 1] ?? "";
  const grpcAddress = args.includes("--listen") ? listen : `127.0.0.1:${grpcPort}`;
  const adminUrl = `http://${args.includes("--admin-listen") ? admin : `127.0.0.1:${adminPort}`}`;
  // Generous: on a busy 2-core CI box a cold Node start can take many seconds.
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`countersign exited (${proc.exitCode}) at start; output:\n${lines.join("\n")}`);
    const up = await fetch(`${adminUrl}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) throw new Error(`countersign did not answer /healthz within 60 s; output:\n${lines.join("\n")}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    grpcAddress,
    adminUrl,
    lines,
    waitForLine,
    stop: async (signal: NodeJS.Signals = "SIGTERM") => {
      if (proc.exitCode === null) proc.kill(signal);
      const timer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}
