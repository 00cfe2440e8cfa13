import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadEmulatorConfig, parseEmulatorConfig, withOverrides } from "./config.js";
import { startEnvoyEmulator } from "./emulator.js";
import { send } from "./support/client.js";
import { FakeExtProc } from "./support/fakeExtProc.js";
import { FIXTURE_PATH, sentHeader, setRaw } from "./support/harness.js";
import { startUpstreamStub } from "./support/upstreamStub.js";

const SHIPPED = fileURLToPath(new URL("../../envoy/envoy.yaml", import.meta.url));

const MINIMAL = `
static_resources:
  listeners:
  - name: only
    filter_chains:
    - filters:
      - typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          http_filters:
          - typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor
`;

/** A listener with nothing but an ext_proc filter, plus the given typed_config lines. */
function minimal(...typedConfigLines: string[]): string {
  return MINIMAL + typedConfigLines.map((l) => `              ${l}\n`).join("");
}

describe("loadEmulatorConfig", () => {
  it("finds the ext_proc settings, both signing listeners, and the CONNECT and endpoint listeners in the agreed shape", () => {
    const c = loadEmulatorConfig(FIXTURE_PATH);
    expect(c.extProc).toMatchObject({
      processingMode: {
        request_header_mode: "SEND",
        request_body_mode: "NONE",
        response_header_mode: "SKIP",
        response_body_mode: "NONE",
      },
      allowModeOverride: true,
      failureModeAllow: false,
      messageTimeoutMs: 2000,
      grpcService: "countersign",
    });
    expect(c.tunnel).toMatchObject({ name: "tls_decap", bufferLimitBytes: 1048576, routeTimeoutMs: 30000, stripAnyHostPort: false });
    expect(c.plain).toMatchObject({ name: "plain_sign", bufferLimitBytes: 1048576, stripAnyHostPort: true });
    expect(c.connectListener).toEqual({
      address: "127.0.0.1",
      port: 15001,
      absoluteForm: { routeTimeoutMs: 0, suppressEnvoyHeaders: false },
    });
    expect(c.endpointListener).toMatchObject({ port: 15002, hostRewriteLiteral: "s3.us-east-1.amazonaws.com" });
    expect(c.warnings).toEqual([]);
  });

  it("takes Envoy's defaults for everything absent", () => {
    const c = parseEmulatorConfig(minimal());
    expect(c.extProc).toMatchObject({
      processingMode: { request_header_mode: "DEFAULT", request_body_mode: "NONE", response_header_mode: "DEFAULT" },
      allowModeOverride: false,
      failureModeAllow: false,
      messageTimeoutMs: 200,
      maxMessageTimeoutMs: 0,
      statusOnError: 500,
      mutationRules: { allowAllRouting: false, allowEnvoy: false, disallowIsError: false },
    });
    expect(c.tunnel).toMatchObject({ bufferLimitBytes: 1048576, maxRequestHeadersKb: 60, maxHeadersCount: 100, routeTimeoutMs: 15000 });
    expect(c.endpointListener).toBeNull();
  });

  it("reads mutation_rules, status_on_error by enum name and fractional durations", () => {
    const c = parseEmulatorConfig(
      minimal(
        `mutation_rules: {allow_envoy: true, disallow_is_error: true, disallow_expression: {regex: "x-amz-.*"}}`,
        "status_on_error: {code: ServiceUnavailable}",
        "message_timeout: 0.250s",
      ),
    );
    expect(c.extProc.mutationRules).toMatchObject({ allowEnvoy: true, disallowIsError: true, disallowExpression: "x-amz-.*" });
    expect(c.extProc.statusOnError).toBe(503);
    expect(c.extProc.messageTimeoutMs).toBe(250);
  });

  it("refuses a message_timeout Envoy would refuse", () => {
    expect(() => parseEmulatorConfig(minimal("message_timeout: 200ms"))).toThrow(/message_timeout "200ms" is not a protobuf Duration/);
  });

  it("applies test overrides on top without touching the loaded config", () => {
    const base = loadEmulatorConfig(FIXTURE_PATH);
    const c = withOverrides(base, { extProc: { failureModeAllow: true, processingMode: { request_body_mode: "BUFFERED" } }, bufferLimitBytes: 10 });
    expect(c.extProc.failureModeAllow).toBe(true);
    expect(c.extProc.processingMode).toMatchObject({ request_header_mode: "SEND", request_body_mode: "BUFFERED" });
    expect([c.tunnel.bufferLimitBytes, c.plain.bufferLimitBytes]).toEqual([10, 10]);
    expect(base.extProc.failureModeAllow).toBe(false);
  });

  it("makes the emulator refuse settings it does not reproduce, naming them", async () => {
    const config = parseEmulatorConfig(minimal(), "x.yaml");
    await expect(
      startEnvoyEmulator({
        config,
        extProcAddress: "127.0.0.1:1",
        tls: { cert: "", key: "" },
        upstream: { resolve: () => ({ host: "127.0.0.1", port: 1, tls: false }) },
      }),
    ).rejects.toThrow("x.yaml: the Envoy emulator does not reproduce: response processing");
  });
});

describe.skipIf(!existsSync(SHIPPED))("the shipped envoy/envoy.yaml", () => {
  it("has the agreed ext_proc settings and listeners, and the emulator accepts it", async () => {
    const c = loadEmulatorConfig(SHIPPED);
    expect(c.warnings).toEqual([]);
    expect(c.extProc).toMatchObject({
      processingMode: { request_header_mode: "SEND", request_body_mode: "NONE", response_header_mode: "SKIP", response_body_mode: "NONE" },
      allowModeOverride: true,
      failureModeAllow: false,
    });
    expect(c.extProc.messageTimeoutMs).toBeGreaterThan(0);
    expect(c.tunnel.name).toBe("tls_decap");
    expect(c.plain.name).toBe("plain_sign");
    expect([c.tunnel.bufferLimitBytes, c.plain.bufferLimitBytes]).toEqual([1048576, 1048576]);
    expect(c.connectListener?.port).toBe(15001);
    expect(c.endpointListener).toMatchObject({ address: "127.0.0.1", port: 15002, hostRewriteLiteral: "s3.us-east-1.amazonaws.com" });
  });

  it("runs an endpoint-mode request: ext_proc sees the rewritten host, and no x-envoy-* header reaches ext_proc or the upstream", async () => {
    const [fake, upstream] = await Promise.all([FakeExtProc.start(), startUpstreamStub()]);
    const emu = await startEnvoyEmulator({
      config: loadEmulatorConfig(SHIPPED),
      extProcAddress: fake.address,
      tls: { cert: "", key: "" },
      upstream: { resolve: () => ({ host: "127.0.0.1", port: upstream.port, tls: false }) },
    });
    try {
      fake.setScript(async (s) => {
        await s.next();
        s.send({ request_headers: { response: { header_mutation: { set_headers: [setRaw("authorization", "signed")] } } } });
      });
      const res = await send({ port: emu.endpointPort, path: "/bucket/key" });
      expect(res.status).toBe(200);
      const seen = fake.streams[0]?.received[0];
      expect(sentHeader(seen, ":authority")).toBe("s3.us-east-1.amazonaws.com");
      const names = (seen?.request_headers?.headers?.headers ?? []).map((h) => h.key);
      expect(names.filter((n) => n.startsWith("x-envoy"))).toEqual([]);
      expect(Object.keys(upstream.requests[0]?.headers ?? {}).filter((n) => n.startsWith("x-envoy"))).toEqual([]);
      expect(upstream.requests[0]?.headers.authorization).toBe("signed");
    } finally {
      await emu.close();
      await fake.close();
      await upstream.close();
    }
  });
});
