/**
 * Runs `countersign serve` (dist/) when it is expected NOT to start: collects its output and
 * resolves with the exit code, or rejects when it is still running after `timeoutMs` (then it is
 * killed). Also: holding a loopback port the way another process would, and checking a port is free.
 */
import { spawn } from "node:child_process";
import net from "node:net";
import { listenOnLoopback } from "../../support/freePort.js";
import { CLI } from "../../support/startServe.js";

export interface FailedStart {
  readonly code: number | null;
  readonly output: string;
}

export function runServeToExit(args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs = 10_000): Promise<FailedStart> {
  const proc = spawn(process.execPath, [CLI, "serve", ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  proc.stdout.on("data", (b: Buffer) => (output += b.toString("utf8")));
  proc.stderr.on("data", (b: Buffer) => (output += b.toString("utf8")));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(new Error(`countersign serve still running after ${timeoutMs} ms; output:\n${output}`));
    }, timeoutMs);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** A listening TCP server on 127.0.0.1 (an ephemeral port): the "someone else has this port". */
export async function holdPort(): Promise<{ port: number; release(): Promise<void> }> {
  const server = net.createServer((s) => s.destroy());
  const port = await listenOnLoopback(server);
  return { port, release: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** True when this process can bind 127.0.0.1:port now (nobody else holds it). */
export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once("error", () => resolve(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolve(true)));
  });
}
