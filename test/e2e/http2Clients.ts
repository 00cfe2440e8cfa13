/**
 * The AWS SDK for JavaScript v3 speaking HTTP/2 (NodeHttp2Handler, the default handler of its
 * clients with streaming operations: Bedrock Runtime, Transcribe Streaming, …) to Envoy:
 *   - endpoint mode: h2c with prior knowledge to endpoint_in (codec AUTO) — what the handler does
 *     by itself with an http:// endpoint;
 *   - proxy mode: a CONNECT tunnel through connect_in (HTTP/1.1), then TLS with ALPN h2 to
 *     tls_decap. The SDK has no proxy support for HTTP/2, so a workload wires the tunnel in through
 *     `nodeHttp2ConnectOptions.createConnection`, as done here.
 */
import * as net from "node:net";
import { Duplex } from "node:stream";
import * as tls from "node:tls";
import { NodeHttp2Handler } from "@smithy/node-http-handler";
import type { Stack } from "./harness.js";

/**
 * A Duplex that is a CONNECT tunnel through the HTTP proxy at `proxyUrl` to `target` (host:port),
 * usable at once: bytes written before the proxy's 200 wait for it; any other answer destroys the
 * stream with that status line. Synchronous, as `createConnection` must be.
 */
export function connectTunnel(proxyUrl: string, target: string): Duplex {
  const proxy = new URL(proxyUrl);
  const socket = net.connect(Number(proxy.port), proxy.hostname);
  let open = false;
  let head = Buffer.alloc(0);
  const waiting: Array<[Buffer, (err?: Error | null) => void]> = [];
  const tunnel = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      if (open) socket.write(chunk, callback);
      else waiting.push([chunk, callback]);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy();
      for (const [, cb] of waiting.splice(0)) cb(err ?? new Error("tunnel closed"));
      callback(err);
    },
  });
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  socket.on("data", (data: Buffer) => {
    let rest = data;
    if (!open) {
      head = Buffer.concat([head, data]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      const statusLine = head.subarray(0, head.indexOf("\r\n")).toString("latin1");
      if (!/^HTTP\/1\.[01] 200\b/.test(statusLine)) {
        tunnel.destroy(new Error(`CONNECT ${target} through ${proxyUrl} answered "${statusLine}"`));
        return;
      }
      open = true;
      for (const [chunk, cb] of waiting.splice(0)) socket.write(chunk, cb);
      rest = head.subarray(end + 4);
      if (rest.length === 0) return;
    }
    if (!tunnel.push(rest)) socket.pause();
  });
  socket.on("end", () => tunnel.push(null));
  socket.on("error", (err) => tunnel.destroy(err));
  return tunnel;
}

export interface Http2Proxied {
  readonly handler: NodeHttp2Handler;
  /** The TLS sockets the handler opened (one per HTTP/2 session), to read the negotiated ALPN. */
  readonly sockets: tls.TLSSocket[];
}

/** HTTP/2 over TLS inside a CONNECT tunnel through Envoy, trusting countersign's CA. */
export function http2ProxiedHandler(stack: Stack): Http2Proxied {
  const sockets: tls.TLSSocket[] = [];
  const handler = new NodeHttp2Handler({
    requestTimeout: 60_000,
    nodeHttp2ConnectOptions: {
      createConnection: (authority: URL) => {
        const host = authority.hostname;
        const socket = tls.connect({ socket: connectTunnel(stack.proxyUrl, `${host}:${authority.port || "443"}`), servername: host, ALPNProtocols: ["h2"], ca: stack.caPem });
        sockets.push(socket);
        return socket;
      },
    },
  });
  return { handler, sockets };
}

/** HTTP/2 with prior knowledge (h2c) to an http:// endpoint: what NodeHttp2Handler does unaided. */
export function http2EndpointHandler(): NodeHttp2Handler {
  return new NodeHttp2Handler({ requestTimeout: 60_000 });
}
