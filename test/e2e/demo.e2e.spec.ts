/**
 * `make demo` (test/demo.ts) as a new user runs it: through real Envoy, and, only when Envoy
 * cannot start, through the emulator behind a banner that says so and why.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { REPO } from "../support/startServe.js";
import { ENVOY_VERSION } from "../support/envoy.js";

const run = promisify(execFile);

async function demo(env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ["--import", "tsx", "test/demo.ts"], { cwd: REPO, env: { ...process.env, ...env }, timeout: 90_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === "number" ? e.code : -1, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}

describe("make demo", () => {
  it("runs every step through real Envoy, shows Envoy's counters, and prints no fallback banner", async () => {
    const r = await demo();
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Envoy ${ENVOY_VERSION}       HTTPS_PROXY=http://127.0.0.1:`);
    expect(r.stdout).not.toMatch(/FALLBACK|EMULATOR/);
    expect(r.stdout.match(/signature VERIFIED with the real key \(HTTP 200\)/g)).toHaveLength(4);
    expect(r.stdout).toMatch(/http\.tls_decap\.ext_proc\.countersign\.streams_started +4 /);
    expect(r.stdout).toContain(`demo OK: every request went through real Envoy ${ENVOY_VERSION}, was re-signed by countersign and verified by the fake AWS.`);
  });

  it("falls back to the emulator when Envoy cannot start, with a banner that says so and why", async () => {
    const r = await demo({ COUNTERSIGN_ENVOY: "/nonexistent/envoy" });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("!!  FALLBACK: real Envoy could not be started, so this demo runs the Envoy EMULATOR in its place.");
    expect(r.stdout).toContain("!!    no Envoy at /nonexistent/envoy: run `make envoy`");
    expect(r.stdout).toContain("Envoy EMULATOR     HTTPS_PROXY=http://127.0.0.1:");
    expect(r.stdout.match(/signature VERIFIED with the real key \(HTTP 200\)/g)).toHaveLength(4);
    expect(r.stdout).not.toContain("Envoy stats");
    expect(r.stdout).toContain("demo OK: every request went through the Envoy EMULATOR (fallback: real Envoy could not start, see above)");
  });
});
