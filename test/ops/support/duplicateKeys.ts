/**
 * JSON.parse silently keeps the last of two equal keys; log pipelines do not all agree
 * (Elasticsearch refuses the document, others keep the first). This walks one JSON text and lists
 * every object key that occurs twice in the same object, as `path.key`.
 */

export function duplicateKeys(text: string): string[] {
  let i = 0;
  const found: string[] = [];
  const ws = (): void => {
    while (i < text.length && " \t\r\n".includes(text[i] as string)) i++;
  };
  const fail = (what: string): never => {
    throw new Error(`invalid JSON at ${i}: ${what}`);
  };
  const str = (): string => {
    if (text[i] !== '"') fail("expected a string");
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    if (i >= text.length) fail("unterminated string");
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const value = (path: string): void => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const seen = new Set<string>();
      ws();
      if (text[i] === "}") {
        i++;
        return;
      }
      for (;;) {
        ws();
        const key = str();
        if (seen.has(key)) found.push(path === "" ? key : `${path}.${key}`);
        seen.add(key);
        ws();
        if (text[i++] !== ":") fail("expected ':'");
        value(path === "" ? key : `${path}.${key}`);
        ws();
        const sep = text[i++];
        if (sep === "}") return;
        if (sep !== ",") fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      ws();
      if (text[i] === "]") {
        i++;
        return;
      }
      for (let n = 0; ; n++) {
        value(`${path}[${n}]`);
        ws();
        const sep = text[i++];
        if (sep === "]") return;
        if (sep !== ",") fail("expected ',' or ']'");
      }
    }
    if (c === '"') {
      str();
      return;
    }
    const m = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i));
    if (!m) fail("expected a value");
    i += (m as RegExpExecArray)[0].length;
  };
  value("");
  ws();
  if (i !== text.length) fail("trailing characters");
  return found;
}
