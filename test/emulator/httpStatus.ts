/**
 * `envoy.type.v3.StatusCode` names → numbers, read from the enum descriptor that
 * `loadExtProcProtos()` already loaded (proto-loader is configured with `enums: String`, so
 * ImmediateResponse.status.code arrives as a name such as "Forbidden").
 */
import { loadExtProcProtos } from "../../src/extproc/protos.js";

let byName: Map<string, number> | undefined;

function statusCodesByName(): Map<string, number> {
  if (!byName) {
    const pkg = loadExtProcProtos() as unknown as {
      envoy: { type: { v3: { StatusCode: { type: { value: { name: string; number: number }[] } } } } };
    };
    byName = new Map(pkg.envoy.type.v3.StatusCode.type.value.map((v) => [v.name, v.number]));
  }
  return byName;
}

/** A StatusCode enum value (name or number) as an HTTP status number; unknown names → 0. */
export function statusCodeNumber(code: unknown): number {
  if (typeof code === "number") return code;
  if (typeof code === "string") {
    if (/^\d+$/.test(code)) return Number(code);
    return statusCodesByName().get(code) ?? 0;
  }
  return 0;
}
