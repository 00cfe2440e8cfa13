/**
 * Strict structural check of a YAML/JSON value against a protobuf message type, following the
 * proto3 JSON mapping Envoy uses to read its YAML:
 *
 * - every key is a field (proto name or json_name), each field set once, at most one member of a
 *   oneof (and of a group promoted to a oneof by `udpa.annotations.field_migrate`);
 * - repeated fields are lists, maps are mappings, messages are mappings;
 * - scalars have the right type and range (64-bit integers may be decimal strings);
 * - enums are written by name, and the name exists;
 * - `google.protobuf.Any` is resolved through its `@type` and checked recursively;
 * - well-known types use their JSON forms (Duration "2s", wrappers as plain scalars, Struct and
 *   Value free-form, Empty `{}`);
 * - the common protoc-gen-validate rules Envoy enforces at load time: required messages and
 *   oneofs, string length, list length, numeric and duration bounds.
 *
 * Deprecated fields and enum values are reported as warnings.
 */
import protobuf from "protobufjs";
import { type ConfigProblem, isPlainObject, problem, type YamlPath } from "./configProblem.js";
import { type EnvoyProtos, TYPE_URL_PREFIX } from "./envoyProtos.js";

const WRAPPER_SCALARS: ReadonlyMap<string, string> = new Map([
  ["google.protobuf.DoubleValue", "double"],
  ["google.protobuf.FloatValue", "float"],
  ["google.protobuf.Int64Value", "int64"],
  ["google.protobuf.UInt64Value", "uint64"],
  ["google.protobuf.Int32Value", "int32"],
  ["google.protobuf.UInt32Value", "uint32"],
  ["google.protobuf.BoolValue", "bool"],
  ["google.protobuf.StringValue", "string"],
  ["google.protobuf.BytesValue", "bytes"],
]);

const INTEGER_RANGES: ReadonlyMap<string, readonly [bigint, bigint]> = new Map([
  ["int32", [-(2n ** 31n), 2n ** 31n - 1n]],
  ["sint32", [-(2n ** 31n), 2n ** 31n - 1n]],
  ["sfixed32", [-(2n ** 31n), 2n ** 31n - 1n]],
  ["uint32", [0n, 2n ** 32n - 1n]],
  ["fixed32", [0n, 2n ** 32n - 1n]],
  ["int64", [-(2n ** 63n), 2n ** 63n - 1n]],
  ["sint64", [-(2n ** 63n), 2n ** 63n - 1n]],
  ["sfixed64", [-(2n ** 63n), 2n ** 63n - 1n]],
  ["uint64", [0n, 2n ** 64n - 1n]],
  ["fixed64", [0n, 2n ** 64n - 1n]],
]);

/** Largest Duration the proto3 JSON mapping allows: ±10000 years. */
const MAX_DURATION_SECONDS = 315_576_000_000;
const DURATION = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;
const BASE64 = /^[A-Za-z0-9+/_-]*={0,2}$/;

export function checkAgainstProto(
  value: unknown,
  type: protobuf.Type,
  protos: EnvoyProtos,
  path: YamlPath = [],
): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  new ProtoWalker(protos, problems).message(value, type, path);
  return problems;
}

function fullNameOf(type: protobuf.ReflectionObject): string {
  return type.fullName.startsWith(".") ? type.fullName.slice(1) : type.fullName;
}

class ProtoWalker {
  private readonly fieldIndexes = new WeakMap<protobuf.Type, Map<string, protobuf.Field>>();

  constructor(
    private readonly protos: EnvoyProtos,
    private readonly problems: ConfigProblem[],
  ) {}

  private report(path: YamlPath, message: string, severity: "error" | "warning" = "error"): void {
    this.problems.push(problem(path, message, severity));
  }

  message(value: unknown, type: protobuf.Type, path: YamlPath): void {
    const name = fullNameOf(type);
    if (name === "google.protobuf.Any") return this.any(value, path);
    if (name.startsWith("google.protobuf.") && this.wellKnown(value, name, path)) return;
    if (!isPlainObject(value)) {
      this.report(path, `expected a mapping (message ${name}), got ${describe(value)}`);
      return;
    }
    const set = new Map<protobuf.Field, string>();
    for (const [key, fieldValue] of Object.entries(value)) {
      const field = this.fieldNamed(type, key);
      if (field === undefined) {
        this.report([...path, key], `unknown field "${key}" in ${name}${suggestion(key, type)}`);
        continue;
      }
      const earlier = set.get(field);
      if (earlier !== undefined) {
        this.report([...path, key], `field "${field.name}" is set twice (as "${earlier}" and "${key}")`);
        continue;
      }
      set.set(field, key);
      this.field(fieldValue, field, [...path, key]);
    }
    this.checkOneofs(type, set, path);
    this.checkRequired(type, set, path);
  }

  private fieldNamed(type: protobuf.Type, key: string): protobuf.Field | undefined {
    let index = this.fieldIndexes.get(type);
    if (index === undefined) {
      index = new Map();
      for (const field of type.fieldsArray) {
        index.set(field.name, field);
        index.set(jsonNameOf(field), field);
      }
      this.fieldIndexes.set(type, index);
    }
    return index.get(key);
  }

  private checkOneofs(type: protobuf.Type, set: ReadonlyMap<protobuf.Field, string>, path: YamlPath): void {
    const groups = new Map<string, string[]>();
    for (const [field, key] of set) {
      const group = oneofGroupOf(field);
      if (group !== undefined) groups.set(group, [...(groups.get(group) ?? []), key]);
    }
    for (const [group, keys] of groups) {
      if (keys.length > 1) {
        this.report(path, `only one of ${keys.map((k) => `"${k}"`).join(", ")} may be set (oneof ${group})`);
      }
    }
    for (const oneof of type.oneofsArray) {
      const required = oneof.options?.["(validate.required)"] === true;
      if (required && !oneof.fieldsArray.some((f) => set.has(f))) {
        this.report(path, `one of ${oneof.fieldsArray.map((f) => `"${f.name}"`).join(", ")} must be set`);
      }
    }
  }

  /** protoc-gen-validate rules that an absent field violates. */
  private checkRequired(type: protobuf.Type, set: ReadonlyMap<protobuf.Field, string>, path: YamlPath): void {
    for (const field of type.fieldsArray) {
      // Rules on a oneof member apply only when that member is the one set.
      if (set.has(field) || realOneofOf(field) !== undefined) continue;
      const rules = validationRules(field);
      const absent = `missing required field "${field.name}"`;
      if (rules.get("message.required") === true) this.report(path, absent);
      else if (field.repeated && numberRule(rules, "repeated.min_items") > 0) this.report(path, absent);
      else if (field.map && numberRule(rules, "map.min_pairs") > 0) this.report(path, absent);
      else if (!field.repeated && !field.map && field.type === "string") {
        if (numberRule(rules, "string.min_len") > 0 || numberRule(rules, "string.min_bytes") > 0) {
          if (rules.get("string.ignore_empty") !== true) this.report(path, `${absent} (must not be empty)`);
        }
      }
    }
  }

  private field(value: unknown, field: protobuf.Field, path: YamlPath): void {
    if (deprecated(field.options)) this.report(path, `field "${field.name}" is deprecated`, "warning");
    const rules = validationRules(field);
    if (field.map) {
      if (!isPlainObject(value)) {
        this.report(path, `expected a mapping (map field "${field.name}"), got ${describe(value)}`);
        return;
      }
      for (const [key, entry] of Object.entries(value)) this.single(entry, field, [...path, key]);
      return;
    }
    if (field.repeated) {
      if (!Array.isArray(value)) {
        this.report(path, `expected a list (repeated field "${field.name}"), got ${describe(value)}`);
        return;
      }
      const min = numberRule(rules, "repeated.min_items");
      if (value.length < min) this.report(path, `needs at least ${min} item(s), has ${value.length}`);
      value.forEach((item, i) => this.single(item, field, [...path, i]));
      return;
    }
    this.single(value, field, path);
    this.checkBounds(value, field, rules, path);
  }

  private single(value: unknown, field: protobuf.Field, path: YamlPath): void {
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) {
      if (value === null && fullNameOf(resolved) !== "google.protobuf.Value") {
        this.report(path, `null for message field "${field.name}"; write {} for an empty message or drop the key`);
        return;
      }
      this.message(value, resolved, path);
    } else if (resolved instanceof protobuf.Enum) {
      this.enumValue(value, resolved, path);
    } else {
      const issue = scalarProblem(value, field.type);
      if (issue !== undefined) this.report(path, `field "${field.name}" (${field.type}): ${issue}`);
    }
  }

  private enumValue(value: unknown, type: protobuf.Enum, path: YamlPath): void {
    const name = fullNameOf(type);
    if (name === "google.protobuf.NullValue" && value === null) return;
    const names = Object.keys(type.values);
    if (typeof value !== "string") {
      this.report(path, `expected an enum name of ${name} (one of ${names.join(", ")}), got ${describe(value)}`);
      return;
    }
    if (!(value in type.values)) {
      this.report(path, `"${value}" is not a value of ${name}; expected one of ${names.join(", ")}`);
      return;
    }
    if (deprecated(type.valuesOptions?.[value])) this.report(path, `enum value "${value}" is deprecated`, "warning");
  }

  private any(value: unknown, path: YamlPath): void {
    if (!isPlainObject(value)) {
      this.report(path, `expected a mapping with "@type" (google.protobuf.Any), got ${describe(value)}`);
      return;
    }
    const url = value["@type"];
    if (typeof url !== "string") {
      this.report(path, `missing "@type" (google.protobuf.Any needs a type URL)`);
      return;
    }
    if (!url.startsWith(TYPE_URL_PREFIX)) {
      this.report([...path, "@type"], `type URL "${url}" must start with "${TYPE_URL_PREFIX}"`);
      return;
    }
    const typeName = url.slice(TYPE_URL_PREFIX.length);
    const type = this.protos.findType(typeName);
    if (type === undefined) {
      this.report([...path, "@type"], `unknown @type "${url}": no message ${typeName} in Envoy's API`);
      return;
    }
    const { "@type": _url, ...rest } = value;
    if (typeName.startsWith("google.protobuf.") && hasSpecialJson(typeName)) {
      // Well-known types keep their JSON form under "value": {"@type": ".../Duration", value: "2s"}.
      for (const key of Object.keys(rest)) {
        if (key !== "value") this.report([...path, key], `unknown key "${key}" beside "@type" for ${typeName}`);
      }
      this.message(rest["value"], type, [...path, "value"]);
      return;
    }
    this.message(rest, type, path);
  }

  /** Returns true when `name` is a well-known type with its own JSON form (and checks it). */
  private wellKnown(value: unknown, name: string, path: YamlPath): boolean {
    const wrapped = WRAPPER_SCALARS.get(name);
    if (wrapped !== undefined) {
      const issue = scalarProblem(value, wrapped);
      if (issue !== undefined) this.report(path, `${name}: ${issue}`);
      return true;
    }
    switch (name) {
      case "google.protobuf.Duration":
        if (durationSeconds(value) === undefined) {
          this.report(path, `expected a duration such as "2s" or "0.250s", got ${describe(value)}`);
        }
        return true;
      case "google.protobuf.Timestamp":
        if (typeof value !== "string" || !TIMESTAMP.test(value)) {
          this.report(path, `expected an RFC 3339 timestamp, got ${describe(value)}`);
        }
        return true;
      case "google.protobuf.FieldMask":
        if (typeof value !== "string") this.report(path, `expected a field mask string, got ${describe(value)}`);
        return true;
      case "google.protobuf.Struct":
        if (!isPlainObject(value)) this.report(path, `expected a mapping (Struct), got ${describe(value)}`);
        return true;
      case "google.protobuf.ListValue":
        if (!Array.isArray(value)) this.report(path, `expected a list (ListValue), got ${describe(value)}`);
        return true;
      case "google.protobuf.Value":
        return true;
      case "google.protobuf.Empty":
        if (!isPlainObject(value) || Object.keys(value).length > 0) {
          this.report(path, `expected {} (google.protobuf.Empty), got ${describe(value)}`);
        }
        return true;
      default:
        return false;
    }
  }

  private checkBounds(value: unknown, field: protobuf.Field, rules: ReadonlyMap<string, unknown>, path: YamlPath): void {
    const inner = field.resolvedType instanceof protobuf.Type ? fullNameOf(field.resolvedType) : field.type;
    const kind = inner === "google.protobuf.Duration" ? "duration" : (WRAPPER_SCALARS.get(inner) ?? inner);
    if (kind === "string" && typeof value === "string") {
      const min = numberRule(rules, "string.min_len");
      const max = numberRule(rules, "string.max_len", Infinity);
      if (value.length < min && !(value === "" && rules.get("string.ignore_empty") === true)) {
        this.report(path, `must be at least ${min} character(s) long`);
      }
      if (value.length > max) this.report(path, `must be at most ${max} characters long`);
      return;
    }
    const actual = kind === "duration" ? durationSeconds(value) : numericValue(value);
    if (actual === undefined) return;
    for (const [op, symbol, test] of BOUND_TESTS) {
      const limit = kind === "duration" ? durationRule(rules, op) : rules.get(`${kind}.${op}`);
      if (typeof limit === "number" && !test(actual, limit)) {
        this.report(path, `must be ${symbol} ${limit}${kind === "duration" ? "s" : ""}`);
      }
    }
  }
}

const BOUND_TESTS: readonly (readonly [string, string, (a: number, b: number) => boolean])[] = [
  ["lt", "<", (a, b) => a < b],
  ["lte", "<=", (a, b) => a <= b],
  ["gt", ">", (a, b) => a > b],
  ["gte", ">=", (a, b) => a >= b],
];

function hasSpecialJson(name: string): boolean {
  return (
    WRAPPER_SCALARS.has(name) ||
    [
      "google.protobuf.Duration",
      "google.protobuf.Timestamp",
      "google.protobuf.FieldMask",
      "google.protobuf.Struct",
      "google.protobuf.ListValue",
      "google.protobuf.Value",
    ].includes(name)
  );
}

/** The proto3 JSON name: an explicit json_name, else lowerCamelCase of the proto name. */
function jsonNameOf(field: protobuf.Field): string {
  const explicit = field.options?.["json_name"];
  if (typeof explicit === "string") return explicit;
  return field.name.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** The oneof a field belongs to, not counting the synthetic oneof of a proto3 `optional` field. */
function realOneofOf(field: protobuf.Field): string | undefined {
  const oneof = field.partOf;
  if (oneof === null || (oneof.name === `_${field.name}` && oneof.fieldsArray.length === 1)) return undefined;
  return oneof.name;
}

/** A real oneof, or a group of fields a `field_migrate.oneof_promotion` annotation says are exclusive. */
function oneofGroupOf(field: protobuf.Field): string | undefined {
  const oneof = realOneofOf(field);
  if (oneof !== undefined) return oneof;
  const promoted = field.options?.["(udpa.annotations.field_migrate).oneof_promotion"];
  return typeof promoted === "string" ? promoted : undefined;
}

/** `(validate.rules).x.y` options of a field, keyed `x.y`. */
function validationRules(field: protobuf.Field): ReadonlyMap<string, unknown> {
  const rules = new Map<string, unknown>();
  const prefix = "(validate.rules).";
  for (const [key, value] of Object.entries(field.options ?? {})) {
    if (key.startsWith(prefix)) rules.set(key.slice(prefix.length), value as unknown);
  }
  return rules;
}

function numberRule(rules: ReadonlyMap<string, unknown>, key: string, fallback = 0): number {
  const value = rules.get(key);
  return typeof value === "number" ? value : fallback;
}

function durationRule(rules: ReadonlyMap<string, unknown>, op: string): number | undefined {
  const seconds = rules.get(`duration.${op}.seconds`);
  const nanos = rules.get(`duration.${op}.nanos`);
  if (typeof seconds !== "number" && typeof nanos !== "number") return undefined;
  return (typeof seconds === "number" ? seconds : 0) + (typeof nanos === "number" ? nanos / 1e9 : 0);
}

function deprecated(options: Record<string, unknown> | undefined): boolean {
  return options?.["deprecated"] === true;
}

/** Seconds of a proto3 JSON Duration ("1.5s"), or undefined when it is not one. */
export function durationSeconds(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const m = DURATION.exec(value);
  if (m === null) return undefined;
  const seconds = Number(m[2]) + Number(`0.${m[3] ?? "0"}`);
  if (seconds > MAX_DURATION_SECONDS) return undefined;
  return m[1] === "-" ? -seconds : seconds;
}

function numericValue(value: unknown): number | undefined {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  return undefined;
}

/** Why `value` is not a valid proto3 JSON value of a scalar type; undefined when it is. */
export function scalarProblem(value: unknown, scalar: string): string | undefined {
  switch (scalar) {
    case "string":
      return typeof value === "string" ? undefined : `expected a string, got ${describe(value)}`;
    case "bool":
      return typeof value === "boolean" ? undefined : `expected true or false, got ${describe(value)}`;
    case "bytes":
      return typeof value === "string" && BASE64.test(value) ? undefined : `expected base64 text, got ${describe(value)}`;
    case "double":
    case "float":
      if (typeof value === "number") return undefined;
      if (typeof value === "string" && /^(NaN|-?Infinity|-?\d+(\.\d+)?([eE][+-]?\d+)?)$/.test(value)) return undefined;
      return `expected a number, got ${describe(value)}`;
    default:
      return integerProblem(value, scalar);
  }
}

function integerProblem(value: unknown, scalar: string): string | undefined {
  const range = INTEGER_RANGES.get(scalar);
  if (range === undefined) return `unsupported scalar type ${scalar}`;
  let n: bigint;
  if (typeof value === "number" && Number.isInteger(value)) n = BigInt(value);
  else if (typeof value === "string" && /^-?\d+$/.test(value)) n = BigInt(value);
  else return `expected an integer, got ${describe(value)}`;
  const [min, max] = range;
  return n < min || n > max ? `${n} is outside the ${scalar} range ${min}..${max}` : undefined;
}

export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}

function suggestion(key: string, type: protobuf.Type): string {
  let best: string | undefined;
  let bestDistance = 3;
  for (const field of type.fieldsArray) {
    const d = editDistance(key, field.name);
    if (d < bestDistance) {
      best = field.name;
      bestDistance = d;
    }
  }
  return best === undefined ? "" : ` (did you mean "${best}"?)`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_v, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
