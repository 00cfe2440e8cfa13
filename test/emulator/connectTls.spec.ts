/**
 * CONNECT → TLS termination → inner HTTP/1.1 requests through ext_proc, the way an SDK behind
 * HTTPS_PROXY talks to Envoy's connect_in/tls_decap listeners.
 */
import * as http from "node:http";
import type { Duplex } from "node:stream";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Emulator } from "./emulator.js";
import { collect, type ClientResponse } from "./support/client.js";
import { FakeExtProc } from "./support/fakeExtProc.js";
import { sentHeader, setRaw, startWith } from "./support/harness.js";
import { createTestPki, type TestPki } from "./support/testCa.js";
import { STUB_RESPONSE_BODY, startUpstreamStub, type UpstreamStub } from "./support/upstreamStub.js";

const AWS_HOST = "s3.us-east-1.amazonaws.com";

let fake: FakeExtProc;
let upstream: UpstreamStub;
let pki: TestPki;
let emu: Emulator;

beforeAll(async () => {
  [fake, upstream, pki] = await Promise.all([
    FakeExtProc.start(),
    startUpstreamStub(),
    createTestPki([AWS_HOST, "*.amazonaws.com", "*.s3.amazonaws.com"]),
  ]);
  emu = await startWith(fake, upstream, {}, { cert: pki.certPem, key: pki.keyPem });
});

afterAll(async () => {
  await emu.close();
  await fake.close();
  await upstream.close();
});

function connectTunnel(port: number, authority: string): Promise<{ status: number; socket: Duplex }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "CONNECT", path: authority, agent: false });
    req.on("connect", (res: http.IncomingMessage, socket: Duplex) => resolve({ status: res.statusCode ?? 0, socket }));
    req.on("error", reject);
    req.end();
  });
}

function startTls(socket: Duplex, servername: string, ca: string): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({ socket, servername, ca, ALPNProtocols: ["http/1.1"] }, () => resolve(secure));
    secure.on("error", reject);
  });
}

function request(agent: http.Agent, method: string, path: string, body?: string): Promise<ClientResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: AWS_HOST, authorization: "AWS4-HMAC-SHA256 placeholder" };
    if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
    const req = http.request({ host: AWS_HOST, method, path, headers, agent }, (res) => collect(res).then(resolve, reject));
    req.on("error", reject);
    req.end(body);
  });
}

describe("CONNECT + TLS round trip", () => {
  it("answers 200 to CONNECT, presents the configured certificate (verified against the test CA), notes the SNI, and runs each inner request through its own ext_proc stream", async () => {
    fake.setScript(async (s) => {
      await s.next();
      s.send({ request_headers: { response: { header_mutation: { set_headers: [setRaw("authorization", "AWS4-HMAC-SHA256 real")] } } } });
    });
    const tunnel = await connectTunnel(emu.connectPort, `${AWS_HOST}:443`);
    expect(tunnel.status).toBe(200);
    const secure = await startTls(tunnel.socket, AWS_HOST, pki.caPem);
    expect(secure.authorized).toBe(true);

    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    (agent as unknown as { createConnection: () => Duplex }).createConnection = () => secure;
    const first = await request(agent, "PUT", "/bucket/key", "hi");
    const second = await request(agent, "GET", "/bucket/key");
    agent.destroy();

    expect([first.status, second.status]).toEqual([200, 200]);
    expect(first.body.toString()).toBe(STUB_RESPONSE_BODY);
    expect(emu.stats.tunnels).toEqual([{ connectAuthority: `${AWS_HOST}:443`, sni: AWS_HOST }]);
    expect(fake.streams).toHaveLength(2);
    const headers = fake.streams[0]?.received[0];
    expect(sentHeader(headers, ":scheme")).toBe("https");
    expect(sentHeader(headers, ":authority")).toBe(AWS_HOST);
    expect(sentHeader(headers, "x-forwarded-proto")).toBe("https");
    expect(upstream.requests.map((r) => [r.method, r.url, r.headers.host, r.headers.authorization])).toEqual([
      ["PUT", "/bucket/key", AWS_HOST, "AWS4-HMAC-SHA256 real"],
      ["GET", "/bucket/key", AWS_HOST, "AWS4-HMAC-SHA256 real"],
    ]);
    expect(upstream.requests[0]?.body.toString()).toBe("hi");
    expect(fake.scriptErrors).toEqual([]);
  });
});
