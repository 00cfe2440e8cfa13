import type { DataPath } from "./yamlLocator.js";

/**
 * A policy problem found in the data, before it has a line and column: the path of the offending
 * entry and whether to point at its key or its value.
 */
export interface Problem {
  readonly path: DataPath;
  readonly at: "key" | "value";
  readonly message: string;
}

export function problemAtValue(path: DataPath, message: string): Problem {
  return { path, at: "value", message };
}

export function problemAtKey(path: DataPath, message: string): Problem {
  return { path, at: "key", message };
}
