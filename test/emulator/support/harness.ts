/**
 * Shared set-up for the emulator's tests: the agreed-shape fixture config, a scripted ext_proc
 * server, an upstream stub, and builders for ext_proc responses.
 */
import { fileURLToPath } from "node:url";
import type { HeaderValueOption } from "../../../protos/generated/envoy/config/core/v3/HeaderValueOption.js";
import type { ProcessingRequest__Output } from "../../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import { type EmulatorConfig, type EmulatorConfigOverrides, loadEmulatorConfig, withOverrides } from "../config.js";
import { type Emulator, startEnvoyEmulator } from "../emulator.js";
import type { FakeExtProc } from "./fakeExtProc.js";
import type { UpstreamStub } from "./upstreamStub.js";

export const FIXTURE_PATH = fileURLToPath(new URL("../fixtures/agreed-shape.envoy.yaml", import.meta.url));

export function fixtureConfig(overrides: EmulatorConfigOverrides = {}): EmulatorConfig {
  return withOverrides(loadEmulatorConfig(FIXTURE_PATH), overrides);
}

export function startWith(
  fake: FakeExtProc,
  upstream: UpstreamStub,
  overrides: EmulatorConfigOverrides = {},
  tls: { cert: string | Buffer; key: string | Buffer } = { cert: "", key: "" },
): Promise<Emulator> {
  return startEnvoyEmulator({
    config: fixtureConfig(overrides),
    extProcAddress: fake.address,
    tls,
    upstream: { resolve: () => ({ host: "127.0.0.1", port: upstream.port, tls: false }) },
  });
}

/** A `set_headers` entry carrying the value in raw_value only (what a correct server sends). */
export function setRaw(key: string, value: string, append?: boolean): HeaderValueOption {
  return { header: { key, raw_value: Buffer.from(value, "latin1") }, ...(append === undefined ? {} : { append: { value: append } }) };
}

/** Header value as sent to the processor (raw_value bytes), or undefined. */
export function sentHeader(message: ProcessingRequest__Output | undefined, key: string): string | undefined {
  const h = message?.request_headers?.headers?.headers.find((e) => e.key === key);
  return h ? Buffer.from(h.raw_value).toString("latin1") : undefined;
}

export function bodyOf(message: ProcessingRequest__Output | undefined): { body: string; end: boolean } | undefined {
  const b = message?.request_body;
  return b ? { body: Buffer.from(b.body).toString("latin1"), end: b.end_of_stream } : undefined;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
