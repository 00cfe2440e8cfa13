/**
 * An ordered, multi-valued header map in the manner of Envoy's `Http::HeaderMap`: keys are
 * lower-case, pseudo-headers (`:method`, `:path`, …) live in the same map and are kept in front,
 * values are bytes. Values are held as latin1 ("binary") strings so every byte survives the trip
 * through node's HTTP parser and writer unchanged.
 */

export interface HeaderEntry {
  readonly key: string;
  value: string;
}

export class HeaderMap {
  private entries: HeaderEntry[] = [];

  static from(pairs: Iterable<readonly [string, string]>): HeaderMap {
    const map = new HeaderMap();
    for (const [k, v] of pairs) map.add(k, v);
    return map;
  }

  clone(): HeaderMap {
    return HeaderMap.from(this.pairs());
  }

  /** Every value of `key`, in order. */
  get(key: string): string[] {
    const k = key.toLowerCase();
    return this.entries.filter((e) => e.key === k).map((e) => e.value);
  }

  first(key: string): string | undefined {
    return this.get(key)[0];
  }

  has(key: string): boolean {
    return this.get(key).length > 0;
  }

  /** `addCopy`: a new entry; pseudo-headers go after the existing pseudo-headers. */
  add(key: string, value: string): void {
    const entry = { key: key.toLowerCase(), value };
    if (entry.key.startsWith(":")) {
      const firstRegular = this.entries.findIndex((e) => !e.key.startsWith(":"));
      this.entries.splice(firstRegular === -1 ? this.entries.length : firstRegular, 0, entry);
    } else {
      this.entries.push(entry);
    }
  }

  /** `setCopy`: replaces every value of `key` with one (in place of the first), or adds it. */
  set(key: string, value: string): void {
    const k = key.toLowerCase();
    const index = this.entries.findIndex((e) => e.key === k);
    if (index === -1) {
      this.add(k, value);
      return;
    }
    this.entries = this.entries.filter((e, i) => e.key !== k || i === index);
    const entry = this.entries.find((e) => e.key === k);
    if (entry) entry.value = value;
  }

  setIfAbsent(key: string, value: string): void {
    if (!this.has(key)) this.add(key, value);
  }

  remove(key: string): void {
    const k = key.toLowerCase();
    this.entries = this.entries.filter((e) => e.key !== k);
  }

  get size(): number {
    return this.entries.length;
  }

  /** Bytes as Envoy's `byteSize()` counts them: key and value lengths. */
  byteSize(): number {
    return this.entries.reduce((n, e) => n + e.key.length + e.value.length, 0);
  }

  pairs(): [string, string][] {
    return this.entries.map((e) => [e.key, e.value]);
  }

  /** Non-pseudo headers only. */
  regularPairs(): [string, string][] {
    return this.pairs().filter(([k]) => !k.startsWith(":"));
  }
}

/** A latin1 string holds one byte per char; this is how node exposes raw header bytes. */
export function bytesToHeaderValue(bytes: Buffer | Uint8Array | string | undefined): string {
  if (bytes === undefined) return "";
  if (typeof bytes === "string") return bytes;
  return Buffer.from(bytes).toString("latin1");
}

export function headerValueToBytes(value: string): Buffer {
  return Buffer.from(value, "latin1");
}

// --- validity, as Envoy's HeaderUtility checks it ----------------------------------------------
// Names: HTTP/1 token characters (RFC 9110 §5.6.2; upper case allowed, lowered afterwards);
// pseudo-header names: ':' then lower-case HTTP/2 name characters (quiche
// `kHttp2HeaderNameAllowedChars`). Values: HTAB, SP, VCHAR and obs-text (quiche
// `kHttp2HeaderValueAllowedChars` with obs-text allowed) — so NUL, CR, LF and other controls fail.

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const PSEUDO_NAME = /^:[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

export function headerNameIsValid(name: string): boolean {
  return name.startsWith(":") ? PSEUDO_NAME.test(name) : TOKEN.test(name);
}

export function headerValueIsValid(value: string): boolean {
  return VALUE.test(value);
}

/** `isModifiableHeader`: neither `host` nor any pseudo-header may ever be removed. */
export function isModifiableHeader(name: string): boolean {
  return !name.startsWith(":") && name.toLowerCase() !== "host";
}

/** nghttp2's authority character set (used when `host`/`:authority` is set). */
export function authorityIsValid(value: string): boolean {
  return /^[A-Za-z0-9\-._~%!$&'()[\]*+,;=:@]*$/.test(value);
}
