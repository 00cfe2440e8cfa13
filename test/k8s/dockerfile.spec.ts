/**
 * The Dockerfile, checked without Docker: hadolint (the pinned linter) finds nothing in it, and the
 * facts, read by a real Dockerfile parser (dockerfile-ast, test/k8s/dockerfile.ts): a multi-stage
 * build that compiles in one stage and runs as a non-root user on production dependencies only,
 * without npm, started the way the Kubernetes manifests expect (`node dist/src/cli.js`, arguments
 * from `serve` on), and that ships only what runs: no spec, no test double, no package only tests use.
 */
import { type Dirent, existsSync, readdirSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { SERVE_DEFAULTS } from "../../src/cli/serveArgs.js";
import { copySpec, execForm, hadolint, instructionsOf, parseStages, type Stage, words } from "./dockerfile.js";
import { repoPath } from "./repoPath.js";
import { NODE24_VERSION } from "./tools.js";

const dockerfile = readFileSync(repoPath("Dockerfile"), "utf8");
const stages = parseStages(dockerfile);
const runtime = stages.at(-1) as Stage;
const packageJson = JSON.parse(readFileSync(repoPath("package.json"), "utf8")) as {
  type?: string;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
};

/** Each `keyword` instruction of the stage as one line of words. */
function argsOf(stage: Stage, keyword: string): string[] {
  return instructionsOf(stage, keyword).map((i) => words(i).join(" "));
}

function copiesOf(stage: Stage) {
  return instructionsOf(stage, "COPY").map(copySpec);
}

function stageNamed(name: string): Stage {
  const stage = stages.find((s) => s.name === name);
  if (stage === undefined) throw new Error(`no stage named ${name}`);
  return stage;
}

/** The stage a COPY --from=<name> in the runtime stage takes `source` from. */
function copiedFrom(source: string): string | undefined {
  return copiesOf(runtime).find((c) => c.sources.includes(source))?.from;
}

/** The tsconfig `npm run build` compiles with (its `-p` argument). */
function buildTsconfig(): string {
  const project = /\btsc -p (\S+)/.exec(packageJson.scripts["build"] ?? "")?.[1];
  if (project === undefined) throw new Error(`the build script does not run tsc -p: ${packageJson.scripts["build"]}`);
  return project;
}

/** The files a tsconfig compiles, and the compiler options, as tsc reads them (extends and exclude applied). */
function parsedTsconfig(file: string): ts.ParsedCommandLine {
  const host: ts.ParseConfigFileHost = {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      throw new Error(`${file}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
    },
  };
  const parsed = ts.getParsedCommandLineOfConfigFile(repoPath(file), {}, host);
  if (parsed === undefined || parsed.errors.length > 0) throw new Error(`${file} does not parse`);
  return parsed;
}

/** `roots` and every .ts file they reach through relative imports (`./x.js` is x.ts), as tsc follows them. */
function importClosure(roots: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const queue = [...roots];
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    if (seen.has(file)) continue;
    seen.add(file);
    for (const { fileName } of ts.preProcessFile(readFileSync(file, "utf8"), true, true).importedFiles) {
      if (!fileName.startsWith(".")) continue;
      const target = resolve(dirname(file), fileName).replace(/\.js$/, ".ts");
      if (target.endsWith(".ts") && existsSync(target)) queue.push(target);
    }
  }
  return seen;
}

/** Packages a source text imports at run time (not `import type`), including require.resolve of a package's files and createRequire(...)("pkg"). */
function runtimeImports(text: string): string[] {
  const pattern = /^\s*(?:import|export)\s+(?!type\b)[^;]*?from\s+"([^".][^"]*)"|import\(\s*"([^".][^"]*)"\s*\)|^\s*import\s+"([^".][^"]*)"|require\.resolve\(\s*"([^".][^"]*)"\s*\)|createRequire\([^)]*\)\(\s*"([^".][^"]*)"\s*\)/gm;
  return [...text.matchAll(pattern)].map((m) => {
    const specifier = m[1] ?? m[2] ?? m[3] ?? m[4] ?? m[5] ?? "";
    return specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : (specifier.split("/")[0] ?? "");
  });
}

/** .dockerignore patterns (simple globs: *, **, leading directory names). */
function ignored(path: string): boolean {
  const patterns = readFileSync(repoPath(".dockerignore"), "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  return patterns.some((pattern) => {
    const regex = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*\*\//g, "(?:.*/)?").replace(/\*/g, "[^/]*")}(?:/.*)?$`);
    return regex.test(path);
  });
}

describe("hadolint (the pinned Dockerfile linter)", () => {
  it("finds nothing in the Dockerfile, at any level (info included)", () => {
    expect(hadolint(dockerfile)).toEqual([]);
  });

  it("finds a root user, an untagged image, ADD for a file and a shell-form CMD", () => {
    const bad = "FROM node\nADD a.txt /a\nUSER root\nCMD node a.js\n";
    expect(hadolint(bad).map((f) => [f.line, f.code, f.level])).toEqual([
      [1, "DL3006", "warning"],
      [2, "DL3020", "error"],
      [3, "DL3002", "warning"],
      [3, "DL3066", "info"],
      [4, "DL3025", "warning"],
    ]);
  });
});

describe("the Dockerfile parser (dockerfile-ast)", () => {
  it("groups instructions by stage, joining continuations and skipping comments and directives", () => {
    const parsed = parseStages("# syntax=docker/dockerfile:1\nARG V=1\nFROM a:1 AS one\nRUN x \\\n  # inside\n  && y\nFROM --platform=$P b AS two\nUSER 1\nCMD [\"node\", \"a.js\"]\nCOPY --chown=0:0 --from=one /src/dist ./dist\n");
    expect(parsed.map((st) => ({ image: st.image, name: st.name, instructions: st.instructions.map((i) => [i.getKeyword(), words(i).join(" ")]) }))).toEqual([
      { image: "a:1", name: "one", instructions: [["RUN", "x && y"]] },
      { image: "b", name: "two", instructions: [["USER", "1"], ["CMD", '["node", "a.js"]'], ["COPY", "/src/dist ./dist"]] },
    ]);
    const two = parsed[1] as Stage;
    expect(execForm(instructionsOf(two, "CMD")[0])).toEqual(["node", "a.js"]);
    expect(execForm(parseStages("FROM a\nCMD node a.js\n")[0]?.instructions[0])).toBeUndefined();
    expect(copiesOf(two)).toEqual([{ from: "one", sources: ["/src/dist"], destination: "./dist" }]);
  });
});

describe("Dockerfile", () => {
  it("builds and runs on the exact Node 24 release CI's second test run uses (NODE24_VERSION in scripts/tool-versions.env)", () => {
    for (const stage of stages) expect(stage.image).toBe(`node:${NODE24_VERSION}-bookworm-slim`);
  });

  it("is a multi-stage build on one Node major, with a slim or distroless runtime", () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(stages.every((s) => s.name !== undefined)).toBe(true);
    const majors = stages.map((stage) => /^(?:node:(\d+)(?:\.\d+\.\d+)?-[a-z]+-slim|gcr\.io\/distroless\/nodejs(\d+)-debian\d+(?::nonroot)?)$/.exec(stage.image)).map((m) => m?.[1] ?? m?.[2]);
    expect(majors.every((m) => m !== undefined), stages.map((s) => s.image).join(", ")).toBe(true);
    expect(new Set(majors).size).toBe(1);
  });

  it("leaves npm, npx, corepack and yarn out of the runtime image", () => {
    // A distroless Node image ships none of them; a node:<major>-slim one must delete them.
    if (runtime.image.startsWith("gcr.io/distroless/")) return;
    const removed = instructionsOf(runtime, "RUN").flatMap((run) => {
      const w = words(run);
      return w[0] === "rm" ? w.slice(1).filter((p) => !p.startsWith("-")) : [];
    });
    expect(removed).toEqual(expect.arrayContaining(["/usr/local/lib/node_modules", "/usr/local/bin/npm", "/usr/local/bin/npx", "/usr/local/bin/corepack", "/usr/local/bin/yarn"]));
  });

  it("compiles with npm ci and npm run build in a build stage, and installs runtime deps with npm ci --omit=dev", () => {
    const build = stageNamed("build");
    const buildRuns = argsOf(build, "RUN");
    expect(buildRuns.some((r) => r.startsWith("npm ci"))).toBe(true);
    expect(buildRuns).toContain("npm run build");
    const depsStage = copiedFrom("/app/node_modules");
    expect(depsStage).toBeDefined();
    expect(argsOf(stageNamed(depsStage ?? ""), "RUN").some((r) => /^npm ci --omit=dev\b/.test(r))).toBe(true);
    expect(copiedFrom("/src/dist")).toBe("build");
  });

  it("copies into the build stage every source the build script and its tsconfig need", () => {
    const copied = copiesOf(stageNamed("build")).flatMap((c) => c.sources);
    const tsconfig = JSON.parse(readFileSync(repoPath("tsconfig.json"), "utf8")) as { include: string[] };
    // protos/generated is written during the build by gen:types, from node_modules.
    const generatedDuringBuild = "protos";
    const roots = [...new Set(tsconfig.include.map((glob) => glob.split("/")[0] ?? glob))].filter((root) => root !== generatedDuringBuild);
    expect(packageJson.scripts["build"]).toBe("npm run gen:types && tsc -p tsconfig.build.json");
    expect(packageJson.scripts["gen:types"]).toMatch(/^node scripts\//);
    // tsconfig.build.json extends tsconfig.json; scripts/ for gen:types; policies/ because src/policy imports the policy JSON Schema.
    const needed = [...roots, buildTsconfig(), "tsconfig.json", "scripts", "policies", "package.json", "package-lock.json"];
    expect(needed.filter((p) => !copied.includes(p))).toEqual([]);
  });

  it("builds only what runs: the build's tsconfig compiles src/ without its specs and test doubles, and nothing it compiles imports one", () => {
    const parsed = parsedTsconfig(buildTsconfig());
    const roots = parsed.fileNames.map((f) => relative(repoPath(), f)).filter((f) => f.startsWith("src/"));
    const shipped = listSourceFiles(repoPath("src")).map((f) => relative(repoPath(), f));
    expect(roots.sort()).toEqual(shipped.sort());
    // An excluded file that a compiled one imports is compiled anyway: follow the imports too.
    const compiled = [...importClosure(parsed.fileNames)].map((f) => relative(repoPath(), f));
    expect(compiled.filter((f) => f.endsWith(".spec.ts") || f.split("/").includes("testing"))).toEqual([]);
  });

  it("leaves src/'s specs and test doubles out of the build context", () => {
    for (const path of ["src/policy/parsePolicy.spec.ts", "src/credentials/testing/audit.ts", "src/credentials/testing/stsStub.ts"]) expect(ignored(path), path).toBe(true);
    for (const path of listSourceFiles(repoPath("src")).map((f) => relative(repoPath(), f))) expect(ignored(path), path).toBe(false);
  });

  it("never copies a path the .dockerignore leaves out of the context, and keeps secrets and build output out", () => {
    const sources = stages.flatMap(copiesOf).filter((c) => c.from === undefined).flatMap((c) => c.sources);
    expect(sources.filter((s) => ignored(s.replace(/^\.\//, "")))).toEqual([]);
    for (const path of ["node_modules", "dist", ".git", "certs/tls.key", "ca.key", "k8s/base/policy.yaml", ".env"]) expect(ignored(path), path).toBe(true);
  });

  it("runs as uid 65532, exposes the gRPC and admin ports, and starts node dist/src/cli.js serve", () => {
    const users = argsOf(runtime, "USER");
    expect(users.at(-1)).toMatch(/^65532(:65532)?$/);
    expect(execForm(instructionsOf(runtime, "ENTRYPOINT").at(-1))).toEqual(["node", "dist/src/cli.js"]);
    expect(execForm(instructionsOf(runtime, "CMD").at(-1))).toEqual(["serve"]);
    const exposed = argsOf(runtime, "EXPOSE").flatMap((a) => a.split(/\s+/));
    const ports = [SERVE_DEFAULTS.listen, SERVE_DEFAULTS.adminListen].map((a) => a.split(":").at(-1));
    expect(exposed.sort()).toEqual(ports.sort());
    expect(stages.flatMap((s) => argsOf(s, "HEALTHCHECK"))).toEqual([]);
  });

  it("ships package.json (ESM) and the compiled entry point where ENTRYPOINT looks for it", () => {
    expect(packageJson.type).toBe("module");
    expect(copiesOf(runtime).some((c) => c.from === undefined && c.sources.includes("package.json"))).toBe(true);
    // tsconfig.json compiles with rootDir "." into dist/, so src/cli.ts becomes dist/src/cli.js.
    const tsconfig = JSON.parse(readFileSync(repoPath("tsconfig.json"), "utf8")) as { compilerOptions: { outDir: string; rootDir: string } };
    expect(tsconfig.compilerOptions).toMatchObject({ outDir: "dist", rootDir: "." });
    expect(existsSync(repoPath("src", "cli.ts"))).toBe(true);
  });

  it("needs at run time only packages the runtime stage installs (dependencies, not devDependencies)", () => {
    const imported = new Set(listSourceFiles(repoPath("src")).flatMap((file) => runtimeImports(readFileSync(file, "utf8"))));
    const builtins = new Set(builtinModules.flatMap((b) => [b, `node:${b}`]));
    expect([...imported].filter((p) => !builtins.has(p) && !(p in packageJson.dependencies)).sort()).toEqual([]);
  });

  it("installs at run time only packages the shipped code imports (a package only tests use is a devDependency)", () => {
    const imported = new Set(listSourceFiles(repoPath("src")).flatMap((file) => runtimeImports(readFileSync(file, "utf8"))));
    expect(Object.keys(packageJson.dependencies).filter((p) => !imported.has(p))).toEqual([]);
  });
});

/** Every .ts file under `dir` that ships (not specs, not test doubles under testing/). */
function listSourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry: Dirent) => {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return entry.name === "testing" ? [] : listSourceFiles(path);
    return entry.name.endsWith(".ts") && !entry.name.endsWith(".spec.ts") ? [path] : [];
  });
}
