import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, type CliDeps } from "./main.js";
import type { ServeCommand } from "./serveArgs.js";

const PACKAGE = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "package.json"), "utf8")) as { version: string };

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** What serve would have been started with, when it got that far. */
  readonly served: ServeCommand[];
}

async function run(argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const served: ServeCommand[] = [];
  const deps: CliDeps = {
    runServe: (command) => {
      served.push(command);
      return Promise.resolve(0);
    },
  };
  const code = await runCli(argv, { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env }, deps);
  return { code, stdout, stderr, served };
}

const MISSING_POLICY = join(tmpdir(), "countersign-cli-spec-no-such-dir", "policy.yaml");

describe("countersign --help and each subcommand's --help", () => {
  it.each([
    [["--help"], "usage: countersign COMMAND"],
    [["-h"], "usage: countersign COMMAND"],
    [["help"], "usage: countersign COMMAND"],
    [["serve", "--help"], "usage: countersign serve --policy FILE"],
    [["serve", "-h"], "usage: countersign serve --policy FILE"],
    [["help", "serve"], "usage: countersign serve --policy FILE"],
    [["validate", "--help"], "usage: countersign validate FILE"],
    [["help", "validate"], "usage: countersign validate FILE"],
    [["certs", "--help"], "usage: countersign certs --policy FILE --out DIR"],
    [["help", "certs"], "usage: countersign certs --policy FILE --out DIR"],
  ])("%j exits 0 with the usage on stdout and nothing on stderr", async (argv, first) => {
    const r = await run(argv);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout.startsWith(first)).toBe(true);
  });

  it("help wins over other mistakes on the same line, and starts nothing", async () => {
    const r = await run(["serve", "--no-such-flag", "--workers", "0", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("usage: countersign serve");
    expect(r.served).toEqual([]);
  });

  it("the main usage names every subcommand and the exit-code rule", async () => {
    const { stdout } = await run(["--help"]);
    for (const word of ["serve", "validate", "certs", "version", "help"]) expect(stdout).toMatch(new RegExp(`^  ${word} `, "m"));
    expect(stdout).toContain("exit codes: 0 success, 1 failure, 2 usage error");
  });
});

describe("countersign --version", () => {
  it.each([[["--version"]], [["version"]]])("%j prints the package.json version and exits 0", async (argv) => {
    expect(await run(argv)).toMatchObject({ code: 0, stdout: `countersign ${PACKAGE.version}\n`, stderr: "" });
  });

  it("version with an argument is a usage error", async () => {
    expect(await run(["version", "extra"])).toMatchObject({ code: 2, stdout: "" });
  });
});

describe("usage errors exit 2 with the problem and the usage on stderr", () => {
  it.each([
    [[], "countersign: no command given"],
    [["sevre"], 'countersign: unknown command "sevre"'],
    [["help", "nope"], 'countersign help: unknown help topic "nope"'],
    [["serve", "--polcy", "p.yaml"], "countersign serve: Unknown option '--polcy'"],
    [["serve", "--policy"], "countersign serve: Option '--policy <value>' argument missing"],
    [["serve", "--policy", "p.yaml", "extra"], "countersign serve: Unexpected argument 'extra'"],
    [["serve"], "countersign serve: --policy FILE (or COUNTERSIGN_POLICY) is required"],
    [["serve", "--policy", "p.yaml", "--workers", "0"], 'countersign serve: --workers: "0" is not a whole number from 1 to 64'],
    [["serve", "--policy", "p.yaml", "--log-level", "loud"], 'countersign serve: --log-level: "loud" is not one of fatal, error'],
    [["serve", "--policy", "p.yaml", "--drain-seconds", "soon"], 'countersign serve: --drain-seconds: "soon" is not a number of seconds'],
    [["serve", "--policy", "p.yaml", "--shutdown-grace-seconds=-1"], 'countersign serve: --shutdown-grace-seconds: "-1" is not a number'],
    [["serve", "--policy", "p.yaml", "--max-streams", "1.5"], 'countersign serve: --max-streams: "1.5" is not a positive whole number'],
    [["serve", "--policy", "p.yaml", "--max-held-bytes", ""], 'countersign serve: --max-held-bytes: "" is not a positive whole number'],
    [["serve", "--policy", "p.yaml", "--listen", "50051"], 'countersign serve: --listen "50051" is not host:port'],
    [["serve", "--policy", "p.yaml", "--admin-listen", "localhost:99999"], 'countersign serve: --admin-listen "localhost:99999" is not host:port'],
    [["serve", "--policy", "p.yaml", "--tls-cert", "c.pem"], "countersign serve: --tls-cert and --tls-key go together"],
    [["serve", "--policy", "p.yaml", "--tls-client-ca", "ca.pem"], "countersign serve: --tls-client-ca needs --tls-cert and --tls-key"],
    [["validate"], "countersign validate: expected exactly one policy file, got 0"],
    [["validate", "a.yaml", "b.yaml"], "countersign validate: expected exactly one policy file, got 2"],
    [["validate", "--strict", "a.yaml"], "countersign validate: Unknown option '--strict'"],
    [["certs", "--out", "dir"], "countersign certs: --policy FILE is required"],
    [["certs", "--policy", "p.yaml", "--out", "d", "--days", "0"], "countersign certs: --days must be a whole number from 1 to 3650"],
    [["certs", "--policy", "p.yaml", "--bogus"], "countersign certs: Unknown option '--bogus'"],
  ])("%j", async (argv, message) => {
    const r = await run(argv);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.startsWith(message)).toBe(true);
    expect(r.stderr).toContain("usage: countersign");
    expect(r.served).toEqual([]);
  });

  it("a bad value from the environment is a usage error naming the flag and the variable", async () => {
    const r = await run(["serve", "--policy", "p.yaml"], { COUNTERSIGN_WORKERS: "many" });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('countersign serve: --workers (COUNTERSIGN_WORKERS): "many" is not a whole number from 1 to 64');
  });

  it("serve reports every flag problem at once", async () => {
    const r = await run(["serve", "--workers", "0", "--listen", "nowhere", "--log-level", "loud"]);
    expect(r.code).toBe(2);
    const problems = r.stderr.split("\n\n")[0]?.split("\n");
    expect(problems).toEqual([
      "countersign serve: --policy FILE (or COUNTERSIGN_POLICY) is required",
      'countersign serve: --listen "nowhere" is not host:port (e.g. 127.0.0.1:9464 or [::1]:9464)',
      'countersign serve: --log-level: "loud" is not one of fatal, error, warn, info, debug, trace, silent',
      'countersign serve: --workers: "0" is not a whole number from 1 to 64',
    ]);
  });

  it("serve with a bad flag and a policy file that does not exist: exit 2 with the flag error, the policy never read", async () => {
    const r = await run(["serve", "--policy", MISSING_POLICY, "--listen", "127.0.0.1:notaport"]);
    expect(r.code).toBe(2);
    expect(r.stderr.startsWith('countersign serve: --listen "127.0.0.1:notaport" is not host:port')).toBe(true);
    expect(r.stderr).not.toContain(MISSING_POLICY);
    expect(r.served).toEqual([]);
  });
});

describe("failures exit 1", () => {
  it("validate on a policy file that does not exist", async () => {
    const r = await run(["validate", MISSING_POLICY]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${MISSING_POLICY}:1:1: cannot read the policy file`);
  });

  it("validate on an invalid policy prints FILE:LINE:COL and exits 1; a valid one exits 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "countersign-cli-"));
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, "version: 2\n");
    const r = await run(["validate", bad]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`^${bad.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:1:`));
    const good = await run(["validate", join(import.meta.dirname, "..", "..", "policies", "aws.yaml")]);
    expect(good.code).toBe(0);
  });
});

describe("serve's checked command line", () => {
  it("takes defaults, then the environment, then the flags", async () => {
    const env = { COUNTERSIGN_POLICY: "/env/policy.yaml", COUNTERSIGN_WORKERS: "2", COUNTERSIGN_LOG_LEVEL: "warn", COUNTERSIGN_LISTEN: "" };
    const r = await run(["serve", "--log-level", "debug", "--tls-cert", "c.pem", "--tls-key", "k.pem"], env);
    expect(r.code).toBe(0);
    expect(r.served).toEqual([
      {
        policyPath: "/env/policy.yaml",
        listen: "127.0.0.1:50051",
        adminListen: "0.0.0.0:9464",
        logLevel: "debug",
        drainMs: 5_000,
        shutdownGraceMs: 20_000,
        workers: 2,
        tls: { certFile: "c.pem", keyFile: "k.pem" },
        admission: { maxConcurrentStreams: 4096, maxHeldBytes: 134_217_728 },
      },
    ]);
  });
});
