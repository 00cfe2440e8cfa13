/**
 * An https agent whose connections are CONNECT tunnels through an HTTP proxy (Envoy's connect_in),
 * pooled and reused with keep-alive by Node's own Agent, as a workload's proxy agent would reuse
 * them. (https-proxy-agent 9 opened a new tunnel, CONNECT and TLS handshake, for every request
 * here, so a load test through it would mostly measure handshakes.)
 *
 *   new TunnelAgent({ host: "127.0.0.1", port }, { keepAlive: true, ca })  // then https.request({ agent, host, … })
 */
import https from "node:https";
import net from "node:net";
import type { Duplex } from "node:stream";
import tls from "node:tls";

export class TunnelAgent extends https.Agent {
  constructor(
    private readonly proxy: { host: string; port: number },
    opts: https.AgentOptions,
  ) {
    super(opts);
  }

  override createConnection(options: https.RequestOptions, callback?: (err: Error | null, stream: Duplex) => void): undefined {
    const done = callback ?? (() => undefined);
    const target = `${options.host ?? ""}:${options.port ?? 443}`;
    const raw = net.connect(this.proxy.port, this.proxy.host);
    raw.setNoDelay(true);
    let head = Buffer.alloc(0);
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      raw.destroy();
      done(err, raw);
    };
    const onClose = (): void => fail(new Error(`CONNECT ${target}: the proxy closed the connection before answering`));
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      raw.off("data", onData);
      raw.off("error", fail);
      raw.off("close", onClose);
      const status = head.subarray(0, head.indexOf("\r\n")).toString("latin1");
      if (!/^HTTP\/1\.[01] 200/.test(status)) return fail(new Error(`CONNECT ${target}: ${status}`));
      settled = true;
      if (end + 4 < head.length) raw.unshift(head.subarray(end + 4));
      done(null, tls.connect({ ...(options as tls.ConnectionOptions), socket: raw }));
    };
    raw.on("data", onData);
    raw.on("error", fail);
    raw.on("close", onClose);
    raw.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    return undefined;
  }
}
