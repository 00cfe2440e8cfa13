/** One finding about an Envoy config, located by its path in the YAML document. */
export interface ConfigProblem {
  /** e.g. `static_resources.listeners[2].filter_chains[0].filters[0].typed_config.stat_prefix` */
  readonly path: string;
  readonly message: string;
  /** Errors make Envoy refuse the file (or break countersign's guarantees); warnings do not. */
  readonly severity: "error" | "warning";
}

export type YamlPath = readonly (string | number)[];

export function formatPath(path: YamlPath): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_]\w*$/.test(segment)) out += out === "" ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out === "" ? "(document)" : out;
}

export function problem(path: YamlPath, message: string, severity: "error" | "warning" = "error"): ConfigProblem {
  return { path: formatPath(path), message, severity };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
