/**
 * Envoy's v3 API as protobufjs reflection, read from the proto snapshot in @grpc/grpc-js-xds.
 *
 * The bootstrap proto is loaded up front; the extension protos that `typed_config` fields name by
 * type URL are loaded on first use. To find the file of a message, every .proto file under the
 * include directories is scanned once for its `package` and (nested) `message` names.
 */
import protobuf from "protobufjs";
import { createRequire } from "node:module";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { envoyProtoIncludeDirs } from "../../src/extproc/protos.js";

const require = createRequire(import.meta.url);

export const BOOTSTRAP_TYPE = "envoy.config.bootstrap.v3.Bootstrap";
export const TYPE_URL_PREFIX = "type.googleapis.com/";

export interface EnvoyProtos {
  /** `envoy.config.bootstrap.v3.Bootstrap`. */
  readonly bootstrap: protobuf.Type;
  /** The message a full name (no leading dot) denotes, loading its file if needed. */
  findType(fullName: string): protobuf.Type | undefined;
}

let cached: EnvoyProtos | undefined;

export function loadEnvoyProtos(): EnvoyProtos {
  cached ??= createEnvoyProtos();
  return cached;
}

function createEnvoyProtos(): EnvoyProtos {
  // protobufjs ships google/protobuf/descriptor.proto, which the annotation protos import.
  const includeDirs = [dirname(require.resolve("protobufjs/package.json")), ...envoyProtoIncludeDirs()];
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => resolveInclude(includeDirs, target);
  const load = (file: string): void => {
    root.loadSync(file, { keepCase: true });
    root.resolveAll();
  };
  load("envoy/config/bootstrap/v3/bootstrap.proto");
  let fileOfMessage: Map<string, string> | undefined;

  const lookup = (fullName: string): protobuf.Type | undefined => {
    const found = root.lookup(fullName);
    return found instanceof protobuf.Type ? found : undefined;
  };

  return {
    bootstrap: root.lookupType(BOOTSTRAP_TYPE),
    findType(fullName: string): protobuf.Type | undefined {
      const known = lookup(fullName);
      if (known) return known;
      fileOfMessage ??= indexMessages(includeDirs.slice(1));
      const file = fileOfMessage.get(fullName);
      if (file === undefined) return undefined;
      load(file);
      return lookup(fullName);
    },
  };
}

function resolveInclude(includeDirs: readonly string[], target: string): string {
  for (const dir of includeDirs) {
    const candidate = join(dir, target);
    if (existsSync(candidate)) return candidate;
  }
  return target;
}

/** Full message name → proto file (relative to its include directory). */
function indexMessages(includeDirs: readonly string[]): Map<string, string> {
  const index = new Map<string, string>();
  for (const dir of includeDirs) {
    for (const file of protoFilesUnder(dir)) {
      for (const name of messageNamesIn(readFileSync(file, "utf8"))) {
        if (!index.has(name)) index.set(name, relative(dir, file));
      }
    }
  }
  return index;
}

function protoFilesUnder(dir: string): string[] {
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...protoFilesUnder(path));
    else if (entry.name.endsWith(".proto")) files.push(path);
  }
  return files;
}

/**
 * Names of the messages a .proto source declares, nested ones included ("pkg.Outer.Inner").
 * A light tokenizer: comments and string literals are dropped, then `message X {` opens a named
 * scope and every other `{` an anonymous one.
 */
export function messageNamesIn(source: string): string[] {
  const text = source
    .replace(/\/\*[\s\S]*?\*\//g, " ")
    .replace(/\/\/[^\n]*/g, " ")
    .replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const pkg = /\bpackage\s+([\w.]+)\s*;/.exec(text)?.[1];
  const prefix = pkg === undefined ? "" : `${pkg}.`;
  const names: string[] = [];
  const scopes: (string | undefined)[] = [];
  const tokens = /\bmessage\s+(\w+)\s*\{|\{|\}/g;
  for (let m = tokens.exec(text); m !== null; m = tokens.exec(text)) {
    if (m[0] === "}") {
      scopes.pop();
      continue;
    }
    const name = m[1];
    scopes.push(name);
    if (name !== undefined) {
      const path = scopes.filter((s): s is string => s !== undefined);
      names.push(prefix + path.join("."));
    }
  }
  return names;
}
