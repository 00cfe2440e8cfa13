/**
 * A workload that does not use an SDK: CONNECT through Envoy's proxy port to any target, TLS with
 * any SNI, then raw HTTP/1.1 bytes inside the tunnel (so Host, framing and header bytes are
 * exactly what the test writes). The connection is closed after one response.
 */
import * as http from "node:http";
import type { Duplex } from "node:stream";
import * as tls from "node:tls";

export interface RawResponse {
  readonly status: number;
  readonly text: string;
}

function connectTunnel(proxyPort: number, target: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: proxyPort, method: "CONNECT", path: target, agent: false });
    req.on("connect", (res: http.IncomingMessage, socket: Duplex) => {
      if (res.statusCode !== 200) reject(new Error(`CONNECT ${target} answered ${res.statusCode}`));
      else resolve(socket);
    });
    req.on("error", reject);
    req.end();
  });
}

/** CONNECT `target`, TLS with `sni` (trusting `ca`), write `request` bytes, read until the server closes or 5 s pass. */
export async function rawRequestInTunnel(opts: { proxyPort: number; target: string; sni: string; ca: string; request: string | Buffer }): Promise<RawResponse> {
  const socket = await connectTunnel(opts.proxyPort, opts.target);
  const secure = await new Promise<tls.TLSSocket>((resolve, reject) => {
    const s = tls.connect({ socket, servername: opts.sni, ca: opts.ca, ALPNProtocols: ["http/1.1"] }, () => resolve(s));
    s.once("error", reject);
  });
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const finish = (): void => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      if (!m) reject(new Error(`no HTTP response in the tunnel; got ${JSON.stringify(text.slice(0, 200))}`));
      else resolve({ status: Number(m[1]), text });
    };
    const timer = setTimeout(() => {
      secure.destroy();
      finish();
    }, 5_000);
    secure.on("data", (c: Buffer) => chunks.push(c));
    secure.once("end", finish);
    secure.once("close", finish);
    secure.on("error", () => undefined);
    secure.write(opts.request);
  });
}
