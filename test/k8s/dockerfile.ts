/**
 * Reads a Dockerfile into its instructions, grouped by build stage: enough to check facts about
 * it on a machine that cannot run `docker build`. Handles comments, parser directives, line
 * continuations and the JSON (exec) form of arguments.
 */

export interface Instruction {
  /** Upper-case keyword: FROM, RUN, COPY, USER, ... */
  readonly keyword: string;
  /** The arguments as written, continuations joined with a space. */
  readonly args: string;
  /** 1-based line of the keyword. */
  readonly line: number;
}

export interface Stage {
  readonly image: string;
  readonly name?: string;
  readonly instructions: readonly Instruction[];
}

export function parseInstructions(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let pending: { keyword: string; parts: string[]; line: number } | undefined;
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    // Comments and empty lines are skipped, also inside a continuation (as Docker does).
    if (trimmed.startsWith("#") || trimmed === "") return;
    const continues = trimmed.endsWith("\\");
    const body = continues ? trimmed.slice(0, -1).trim() : trimmed;
    if (pending === undefined) {
      const match = /^(\S+)\s*(.*)$/.exec(body);
      if (match === null) return;
      pending = { keyword: (match[1] ?? "").toUpperCase(), parts: [match[2] ?? ""], line: index + 1 };
    } else {
      pending.parts.push(body);
    }
    if (!continues) {
      instructions.push({ keyword: pending.keyword, args: pending.parts.filter((p) => p !== "").join(" "), line: pending.line });
      pending = undefined;
    }
  });
  // A continuation on the last line ends with the file.
  if (pending !== undefined) instructions.push({ keyword: pending.keyword, args: pending.parts.filter((p) => p !== "").join(" "), line: pending.line });
  return instructions;
}

export function parseStages(text: string): Stage[] {
  const stages: { image: string; name?: string; instructions: Instruction[] }[] = [];
  for (const instruction of parseInstructions(text)) {
    if (instruction.keyword === "FROM") {
      const words = instruction.args.split(/\s+/).filter((w) => !w.startsWith("--"));
      const asIndex = words.findIndex((w) => w.toUpperCase() === "AS");
      stages.push({ image: words[0] ?? "", ...(asIndex > 0 ? { name: words[asIndex + 1] } : {}), instructions: [] });
      continue;
    }
    const current = stages.at(-1);
    if (current === undefined) {
      if (instruction.keyword === "ARG") continue;
      throw new Error(`line ${instruction.line}: ${instruction.keyword} before the first FROM`);
    }
    current.instructions.push(instruction);
  }
  return stages;
}

/** The arguments of an exec-form instruction (a JSON array), or undefined for the shell form. */
export function execForm(args: string): string[] | undefined {
  if (!args.trimStart().startsWith("[")) return undefined;
  const parsed: unknown = JSON.parse(args);
  if (!Array.isArray(parsed) || !parsed.every((a) => typeof a === "string")) throw new Error(`not a JSON string array: ${args}`);
  return parsed;
}

export interface CopySpec {
  readonly from?: string;
  readonly sources: readonly string[];
  readonly destination: string;
}

/** A COPY instruction's --from stage, sources and destination (flags other than --from ignored). */
export function parseCopy(args: string): CopySpec {
  const words = args.split(/\s+/).filter((w) => w !== "");
  const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
  const paths = words.filter((w) => !w.startsWith("--"));
  const destination = paths.at(-1);
  if (destination === undefined || paths.length < 2) throw new Error(`COPY needs a source and a destination: ${args}`);
  return { ...(from !== undefined ? { from } : {}), sources: paths.slice(0, -1), destination };
}
