/**
 * An Envoy emulator for end-to-end tests of an ext_proc server, shaped after `envoy/envoy.yaml`:
 *
 * - `connectPort` (listener `connect_in`): HTTP/1.1 CONNECT → "200" → TLS terminated with the
 *   given certificate (the `tls_decap` internal listener) → the inner HTTP/1.1 requests run
 *   through ext_proc and the router. Absolute-form requests (`GET http://host/path`) on the same
 *   port are proxied the same way, in plaintext. Anything else gets 404, as connect_in only
 *   routes CONNECT.
 * - `endpointPort` (listener `endpoint_in`): plain HTTP; the route's `host_rewrite_literal`
 *   replaces `:authority` BEFORE ext_proc (the request is forwarded to the `plain_sign`
 *   internal listener, whose ext_proc sees the real host).
 *
 * The ext_proc behaviour lives in extProcFilter.ts; header handling around it in hcm.ts.
 * Upstream connections go where `upstream.resolve` says, keeping the original `Host`.
 */
import * as http from "node:http";
import * as https from "node:https";
import type { Duplex } from "node:stream";
import * as tls from "node:tls";
import type { EmulatorConfig, ForwardingRoute, SigningListenerSettings } from "./config.js";
import { type DecoderCallbacks, ExtProcFilter, type LocalReply, type OpenProcessStream } from "./extProcFilter.js";
import { createExtProcClient, grpcStreamOpener } from "./grpcStream.js";
import {
  addRouterHeaders,
  type DownstreamScheme,
  downstreamHeaderMap,
  downstreamResponseLines,
  pairsOf,
  parseAuthority,
  rewriteHost,
  splitAbsoluteForm,
  stripAnyHostPort,
  upstreamHeaderLines,
} from "./hcm.js";
import { HeaderMap } from "./headerMap.js";
import { responsePathIsSkipped } from "./processingMode.js";
import { createStats, type EmulatorStats, headerRecord, resetStats, type UpstreamRequestRecord } from "./stats.js";

export interface UpstreamTarget {
  host: string;
  port: number;
  tls: boolean;
}

export interface EmulatorOptions {
  config: EmulatorConfig;
  /** host:port of the ext_proc gRPC server (plaintext). */
  extProcAddress: string;
  /** PEM certificate and key the decap listener presents inside CONNECT tunnels. */
  tls: { cert: string | Buffer; key: string | Buffer };
  upstream: {
    /** Where a request for `host:port` really goes (e.g. the fake AWS on loopback). The
     *  `Host` header keeps the original authority. `port` is the authority's, or 443. */
    resolve(host: string, port: number): UpstreamTarget;
    /** CA for TLS upstreams; without it upstream certificates are not verified. */
    ca?: string | Buffer;
  };
  /** Keep the bytes of every upstream request body in stats (default true). */
  recordUpstreamBodies?: boolean;
}

export interface Emulator {
  connectPort: number;
  endpointPort: number;
  stats: EmulatorStats;
  config: EmulatorConfig;
  resetStats(): void;
  close(): Promise<void>;
}

/** Port an authority without one is forwarded to: the dynamic forward proxy cluster does TLS. */
const DEFAULT_UPSTREAM_PORT = 443;

export async function startEnvoyEmulator(opts: EmulatorOptions): Promise<Emulator> {
  assertEmulated(opts.config);
  const stats = createStats();
  const client = createExtProcClient(opts.extProcAddress);
  const streams = grpcStreamOpener(client);
  const agents = { http: new http.Agent({ keepAlive: true }), https: new https.Agent({ keepAlive: true }) };
  const sockets = new Set<Duplex>();
  const track = (s: Duplex): void => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
  };
  const { config } = opts;
  const serverOptions = (listener: SigningListenerSettings): http.ServerOptions => ({
    maxHeaderSize: listener.maxRequestHeadersKb * 1024,
    requestTimeout: 0,
  });
  const deps: ExchangeDeps = { opts, stats, openStream: streams.open, agents };

  const tunnelServer = http.createServer(serverOptions(config.tunnel), (req, res) => {
    new Exchange(req, res, { scheme: "https", listener: config.tunnel, outer: null }, deps).start();
  });
  const absoluteForm = config.connectListener?.absoluteForm ?? null;
  const connectServer = http.createServer(serverOptions(config.plain), (req, res) => {
    if (absoluteForm === null || splitAbsoluteForm(req.url ?? "") === null) {
      // connect_in routes CONNECT (and, when configured, plain proxy requests) only.
      res.writeHead(404, { server: "envoy", "content-length": "0" }).end();
      return;
    }
    const outer = { route: absoluteForm, hostRewrite: null, appendXForwardedHost: false };
    new Exchange(req, res, { scheme: "http", listener: config.plain, outer }, deps).start();
  });
  connectServer.on("connection", track);
  connectServer.on("connect", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    track(socket);
    socket.write("HTTP/1.1 200 OK\r\n\r\n");
    if (head.length > 0) socket.unshift(head);
    const record = { connectAuthority: req.url ?? "", sni: null as string | null };
    stats.tunnels.push(record);
    const tlsSocket = new tls.TLSSocket(socket, {
      isServer: true,
      secureContext: tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key }),
      ALPNProtocols: ["http/1.1"],
    });
    track(tlsSocket);
    tlsSocket.once("secure", () => {
      const sni: unknown = (tlsSocket as unknown as { servername?: unknown }).servername;
      record.sni = typeof sni === "string" ? sni : null;
    });
    tlsSocket.on("error", () => tlsSocket.destroy());
    tunnelServer.emit("connection", tlsSocket);
  });

  const endpoint = config.endpointListener;
  const endpointServer = http.createServer(serverOptions(config.plain), (req, res) => {
    const outer = endpoint
      ? { route: endpoint, hostRewrite: endpoint.hostRewriteLiteral, appendXForwardedHost: endpoint.appendXForwardedHost }
      : null;
    new Exchange(req, res, { scheme: "http", listener: config.plain, outer }, deps).start();
  });
  endpointServer.on("connection", track);

  const connectPort = await listen(connectServer);
  const endpointPort = await listen(endpointServer);

  return {
    connectPort,
    endpointPort,
    stats,
    config: opts.config,
    resetStats: () => resetStats(stats),
    async close() {
      for (const s of sockets) s.destroy();
      await Promise.all([closeServer(connectServer), closeServer(endpointServer)]);
      agents.http.destroy();
      agents.https.destroy();
      streams.cancelAll();
      client.close();
    },
  };
}

/** Refuses configurations whose behaviour the emulator would not reproduce faithfully. */
function assertEmulated(config: EmulatorConfig): void {
  const x = config.extProc;
  const problems: string[] = [];
  if (x.observabilityMode) problems.push("observability_mode");
  if (x.sendBodyWithoutWaitingForHeaderResponse) problems.push("send_body_without_waiting_for_header_response");
  if (!["NONE", "STREAMED", "BUFFERED", "BUFFERED_PARTIAL"].includes(x.processingMode.request_body_mode)) {
    problems.push(`request_body_mode ${x.processingMode.request_body_mode}`);
  }
  if (!responsePathIsSkipped(x.processingMode)) {
    problems.push("response processing (set response_header_mode: SKIP, response_body_mode: NONE)");
  }
  if (problems.length > 0) {
    throw new Error(`${config.source}: the Envoy emulator does not reproduce: ${problems.join("; ")}`);
  }
}

interface ExchangeDeps {
  opts: EmulatorOptions;
  stats: EmulatorStats;
  openStream: OpenProcessStream;
  agents: { http: http.Agent; https: https.Agent };
}

/** The hop before the signing listener: connect_in's or endpoint_in's HCM and router. */
interface OuterHop {
  route: ForwardingRoute;
  hostRewrite: string | null;
  appendXForwardedHost: boolean;
}

interface Hops {
  /** Transport of the signing listener's downstream connection. */
  scheme: DownstreamScheme;
  listener: SigningListenerSettings;
  outer: OuterHop | null;
}

/** One downstream request through ext_proc and the router: the filter's DecoderCallbacks. */
class Exchange implements DecoderCallbacks {
  private readonly filter: ExtProcFilter;
  private readonly headers: HeaderMap;
  private upstream: http.ClientRequest | null = null;
  private record: UpstreamRequestRecord | null = null;
  private declaredLength: number | null = null;
  private readonly readDisabled = new Set<string>();
  private answered = false;
  private requestComplete = false;
  private upstreamStarted = 0;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly hops: Hops,
    private readonly deps: ExchangeDeps,
  ) {
    const rawHeaders = pairsOf(req.rawHeaders);
    // The first HCM (codec, x-forwarded-proto, x-request-id); for an outer hop, its router
    // (host rewrite, x-envoy-* unless suppressed); then the signing listener's HCM, which keeps
    // what the outer hop set and may strip the port.
    this.headers = downstreamHeaderMap({ method: req.method ?? "GET", target: req.url ?? "/", rawHeaders }, hops.scheme);
    const { outer, listener } = hops;
    if (outer) {
      if (outer.hostRewrite) rewriteHost(this.headers, outer.hostRewrite, outer.appendXForwardedHost);
      addRouterHeaders(this.headers, outer.route.routeTimeoutMs, outer.route.suppressEnvoyHeaders);
    }
    if (listener.stripAnyHostPort) stripAnyHostPort(this.headers);
    this.filter = new ExtProcFilter(this.headers, this, {
      settings: deps.opts.config.extProc,
      bufferLimitBytes: listener.bufferLimitBytes,
      maxHeadersCount: listener.maxHeadersCount,
      maxHeadersKb: listener.maxRequestHeadersKb,
      stats: deps.stats,
      openStream: deps.openStream,
    });
  }

  start(): void {
    const chunked = /\bchunked\b/i.test(String(this.req.headers["transfer-encoding"] ?? ""));
    const length = this.req.headers["content-length"];
    const noBody = !chunked && (length === undefined || length === "0");
    this.res.once("close", () => {
      this.filter.onDestroy();
      if (!this.record?.complete) this.upstream?.destroy();
    });
    this.req.on("data", (chunk: Buffer) => this.filter.decodeData(chunk, false));
    this.req.once("end", () => {
      this.requestComplete = true;
      if (!noBody) this.filter.decodeData(Buffer.alloc(0), true);
    });
    this.req.once("error", () => this.filter.onDestroy());
    this.filter.decodeHeaders(noBody);
  }

  // --- DecoderCallbacks --------------------------------------------------------------------

  forwardHeaders(headers: HeaderMap, endStream: boolean): void {
    if (this.answered) return;
    const { listener } = this.hops;
    const routed = headers.clone();
    addRouterHeaders(routed, listener.routeTimeoutMs, listener.suppressEnvoyHeaders);
    const authority = routed.first(":authority") ?? "";
    const { host, port } = parseAuthority(authority);
    const target = this.deps.opts.upstream.resolve(host, port ?? DEFAULT_UPSTREAM_PORT);
    const lines = upstreamHeaderLines(routed, endStream);
    const cl = lines.find(([k]) => k === "content-length")?.[1];
    this.declaredLength = cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : null;
    const record: UpstreamRequestRecord = {
      method: routed.first(":method") ?? "GET",
      path: routed.first(":path") ?? "/",
      authority,
      headers: headerRecord(HeaderMap.from(lines)),
      rawHeaders: lines,
      target,
      body: Buffer.alloc(0),
      bodyLength: 0,
      complete: endStream,
    };
    this.record = record;
    this.deps.stats.upstreamRequests.push(record);

    this.upstreamStarted = Date.now();
    const request = (target.tls ? https : http).request({
      host: target.host,
      port: target.port,
      method: record.method,
      path: record.path,
      headers: lines.flat(),
      agent: target.tls ? this.deps.agents.https : this.deps.agents.http,
      ...(target.tls
        ? { servername: host, ...(this.deps.opts.upstream.ca ? { ca: this.deps.opts.upstream.ca } : { rejectUnauthorized: false }) }
        : {}),
    });
    this.upstream = request;
    request.on("response", (response) => this.onUpstreamResponse(response));
    request.on("error", (err: NodeJS.ErrnoException) => this.onUpstreamError(err));
    if (endStream) request.end();
    else request.flushHeaders();
  }

  forwardData(data: Buffer, endStream: boolean): void {
    const request = this.upstream;
    const record = this.record;
    if (!request || !record || this.answered) return;
    record.bodyLength += data.length;
    if (this.deps.opts.recordUpstreamBodies !== false) record.body = Buffer.concat([record.body, data]);
    if (this.declaredLength !== null && record.bodyLength > this.declaredLength) return this.contentLengthMismatch();
    if (data.length > 0 && !request.write(data)) {
      this.setReadDisabled("upstream", true);
      request.once("drain", () => this.setReadDisabled("upstream", false));
    }
    if (endStream) {
      if (this.declaredLength !== null && record.bodyLength !== this.declaredLength) return this.contentLengthMismatch();
      record.complete = true;
      request.end();
    }
  }

  localReply(reply: LocalReply): void {
    const { stats } = this.deps;
    stats.localReplies.push({
      status: reply.status,
      details: reply.details,
      authority: this.headers.first(":authority") ?? "",
      path: this.headers.first(":path") ?? "",
    });
    this.sendLocal(reply.status, reply.headers, reply.body);
  }

  setReadDisabled(reason: string, disabled: boolean): void {
    if (disabled) this.readDisabled.add(reason);
    else this.readDisabled.delete(reason);
    if (this.readDisabled.size > 0) this.req.pause();
    else this.req.resume();
  }

  // --- upstream -----------------------------------------------------------------------------

  private onUpstreamResponse(response: http.IncomingMessage): void {
    if (this.answered) {
      response.resume();
      return;
    }
    this.answered = true;
    const lines = downstreamResponseLines(response.rawHeaders, Date.now() - this.upstreamStarted);
    this.res.writeHead(response.statusCode ?? 502, response.statusMessage, lines.flat());
    response.pipe(this.res);
    response.once("error", () => this.res.destroy());
  }

  private onUpstreamError(err: NodeJS.ErrnoException): void {
    if (this.answered) {
      this.res.destroy();
      return;
    }
    const reason = err.code === "ECONNREFUSED" ? "connection_failure" : "remote_reset";
    this.deps.stats.localReplies.push({
      status: 503,
      details: `upstream_reset_before_response_started{${reason}}`,
      authority: this.headers.first(":authority") ?? "",
      path: this.headers.first(":path") ?? "",
    });
    this.sendLocal(
      503,
      [],
      Buffer.from(`upstream connect error or disconnect/reset before headers. reset reason: ${reason.replace("_", " ")}`),
    );
  }

  /** Bytes upstream disagree with a content-length "Envoy" kept: the upstream connection is
   *  broken for good; the emulator resets it and answers 503 instead of hanging. */
  private contentLengthMismatch(): void {
    this.deps.stats.upstream_content_length_mismatch++;
    this.upstream?.destroy();
    this.upstream = null;
    if (this.answered) {
      this.res.destroy();
      return;
    }
    this.deps.stats.localReplies.push({
      status: 503,
      details: "emulator_upstream_content_length_mismatch",
      authority: this.headers.first(":authority") ?? "",
      path: this.headers.first(":path") ?? "",
    });
    this.sendLocal(503, [], Buffer.from("upstream content-length mismatch"));
  }

  /** Envoy's `sendLocalReply`: content-length, text/plain for a body without a type, and a
   *  connection close when the request body was not read to its end. */
  private sendLocal(status: number, headers: [string, string][], body: Buffer): void {
    this.upstream?.destroy();
    this.upstream = null;
    if (this.answered || this.res.headersSent) {
      this.res.destroy();
      return;
    }
    this.answered = true;
    const lines: [string, string][] = headers.filter(([k]) => k !== "content-length");
    if (body.length > 0 && !lines.some(([k]) => k === "content-type")) lines.push(["content-type", "text/plain"]);
    lines.push(["content-length", String(body.length)], ["server", "envoy"]);
    if (!this.requestComplete) lines.push(["connection", "close"]);
    this.res.writeHead(status, lines.flat());
    this.res.end(body);
    this.readDisabled.clear();
    this.req.resume();
  }
}

function listen(server: http.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve(typeof address === "object" && address !== null ? address.port : 0);
    });
  });
}

function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
