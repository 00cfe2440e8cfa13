import { isAlias, isMap, isNode, isScalar, isSeq, type Document, type LineCounter, type Node } from "yaml";

/** A path into the policy data, as in a JSON pointer: map keys and list indexes. */
export type DataPath = readonly (string | number)[];

export interface Position {
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly col: number;
}

const DOCUMENT_START: Position = { line: 1, col: 1 };

/**
 * Finds where a piece of the policy data was written in the YAML source: the key of a map entry,
 * or its value. When the path does not exist (a missing key, or data that came from an alias), it
 * falls back to the deepest node that does.
 */
export class YamlLocator {
  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
  ) {}

  /** Where the value at `path` starts; the key instead when the value is empty (`key:`). */
  value(path: DataPath): Position {
    const found = this.walk(path);
    const value = found.value;
    if (value !== undefined && !isEmptyNode(value)) return this.position(value);
    return this.position(found.key ?? found.deepest);
  }

  /** Where the key of the map entry at `path` starts (list items: the item itself). */
  key(path: DataPath): Position {
    const found = this.walk(path);
    return this.position(found.key ?? found.value ?? found.deepest);
  }

  /** Position of a byte offset into the source text. */
  offset(offset: number): Position {
    const { line, col } = this.lineCounter.linePos(offset);
    return { line, col };
  }

  private position(node: Node | undefined): Position {
    const start = node?.range?.[0];
    return start === undefined ? DOCUMENT_START : this.offset(start);
  }

  /**
   * Follows `path` through maps, lists and aliases. Data reached through an alias is reported at
   * the alias (where the person wrote it), not inside its anchor, which another entry owns.
   */
  private walk(path: DataPath): { key?: Node; value?: Node; deepest?: Node } {
    let alias: Node | undefined;
    const follow = (node: Node | undefined): Node | undefined => {
      if (node === undefined || !isAlias(node)) return node;
      alias ??= node;
      return node.resolve(this.doc) ?? node;
    };
    const through = (found: { key?: Node; value?: Node; deepest?: Node }) =>
      alias === undefined ? found : { value: alias, deepest: alias };
    let current = follow(this.doc.contents ?? undefined);
    let key: Node | undefined;
    let deepest: Node | undefined = current;
    for (const segment of path) {
      if (current === undefined) return through({ deepest });
      deepest = current;
      key = undefined;
      let next: Node | undefined;
      if (isMap(current)) {
        const pair = current.items.find((item) => keyText(item.key) === String(segment));
        if (pair === undefined) return through({ deepest });
        key = isNode(pair.key) ? pair.key : undefined;
        next = isNode(pair.value) ? pair.value : undefined;
        if (next === undefined) return through({ key, deepest: key ?? deepest });
      } else if (isSeq(current) && typeof segment === "number") {
        const item = current.items[segment];
        next = isNode(item) ? item : undefined;
        if (next === undefined) return through({ deepest });
      } else {
        return through({ deepest });
      }
      current = follow(next);
    }
    return through({ key, value: current, deepest });
  }
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  if (typeof key === "string" || typeof key === "number") return String(key);
  return undefined;
}

/** `key:` with nothing after it parses to a zero-width null scalar. */
function isEmptyNode(node: Node): boolean {
  const range = node.range;
  return isScalar(node) && node.value === null && (range === undefined || range === null || range[0] === range[1]);
}
