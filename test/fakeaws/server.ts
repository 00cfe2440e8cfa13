/**
 * A strict fake AWS on loopback (plain HTTP on 127.0.0.1, port 0, unless told to serve HTTPS or
 * to listen elsewhere on loopback). It routes by the Host header,
 * verifies every request's SigV4 signature with the independent verifier in this folder, and
 * answers like S3, STS, Bedrock Runtime and DynamoDB would — including their refusals.
 *
 * Every request is recorded in `fake.requests` with what the fake decided and why, including
 * the canonical request and string-to-sign it computed (never a secret or a session token).
 */
import { constants as cryptoConstants, randomBytes } from "node:crypto";
import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo, Server as NetServer } from "node:net";
import * as tls from "node:tls";
import { authenticate, missingAuthError, type AuthKind, type AuthOutcome, type FakeAwsAccount } from "./auth.js";
import { isSigV4aStreamingMode, isStreamingPayloadMode, AwsChunkedDecoder, type ChunkedFailure } from "./awsChunked.js";
import { sigV4aPublicKey } from "./sigv4a.js";
import { BodyCollector } from "./body.js";
import { checksumAlgorithmOfHeader, type ChecksumAlgorithm } from "./checksums.js";
import { awsError, renderError, type AwsError, type FailureKind, type RenderedResponse } from "./errors.js";
import { EventStreamChainVerifier, STREAMING_EVENTS_PAYLOAD } from "./eventStream.js";
import { EVENT_STREAM_OPERATIONS, eventStreamOperationOf, newEventStreamRecord, serveEventStream, type EventStreamOperation, type EventStreamRecord } from "./eventStreamServices.js";
import { resolveEndpoint, type Api, type Endpoint } from "./hosts.js";
import { DYNAMODB_CONTENT_TYPE, handleBedrock, handleDynamoDb, type JsonResponse } from "./jsonServices.js";
import { S3Store, s3Address, type S3Response } from "./s3.js";
import { StsService, type StsControls } from "./sts.js";
import {
  UNSIGNED_PAYLOAD,
  deriveSigningKey,
  hasPresignedAuth,
  headerValue,
  headerValues,
  parseQueryPairs,
  sha256Hex,
  uriEncode,
  type HeaderList,
  type WireRequest,
} from "./verifier.js";

export type { FakeAwsAccount } from "./auth.js";
export type { StsControls, StsFailureKind } from "./sts.js";
export type { StoredObject } from "./s3.js";
export type { EventStreamRecord } from "./eventStreamServices.js";

/**
 * The hosts whose TLS connections may negotiate HTTP/2 (ALPN h2) by default: the services whose
 * operations are HTTP/2 only (Transcribe Streaming). Every other host speaks HTTP/1.1.
 */
export function defaultHttp2Host(hostname: string): boolean {
  return resolveEndpoint(hostname)?.api === "transcribe-streaming";
}

export interface FakeAwsOptions {
  /** The real keys the fake accepts. STS adds the temporary credentials it issues. */
  accounts: FakeAwsAccount[];
  /** Clock used for skew, expiry and the Date header. Default: the real clock. */
  now?: () => Date;
  /** Overrides the allowed clock skew for every service (default 15 min for S3, 5 min otherwise). */
  maxSkewMs?: number;
  /** Keep only size, MD5 and SHA-256 of S3 objects (for very large uploads). */
  discardBodies?: boolean;
  /** Tokens AssumeRoleWithWebIdentity accepts. */
  webIdentityTokens?: string[];
  /** Account id in ARNs. Default 123456789012. */
  accountId?: string;
  /** Largest body buffered for STS/JSON services (S3 streams). Default 16 MiB. */
  maxBufferedBodyBytes?: number;
  /**
   * Serve HTTPS with this certificate instead of plain HTTP, as AWS does: HTTP/1.1, or HTTP/2
   * when the client offers h2 (ALPN) for a host `http2Hosts` accepts (by its SNI name).
   */
  tls?: { certPem: string; keyPem: string };
  /** With `tls`: the host names that negotiate HTTP/2. Default `defaultHttp2Host` (Transcribe Streaming). */
  http2Hosts?: (hostname: string) => boolean;
  /** Transcribe Streaming: a partial TranscriptEvent after this many verified AudioEvents. Default 5. */
  transcriptEvery?: number;
  /** Listen address, a loopback address only. Default 127.0.0.1. */
  host?: string;
  /** Listen port. Default 0 (the OS picks). */
  port?: number;
}

/** What the fake saw and decided for one request. */
export interface RecordedRequest {
  requestId: string;
  /** SigV4 service the Host implies (`s3`, `sts`, `bedrock`, `dynamodb`), or `""` for an unknown host. */
  service: string;
  region: string;
  api?: Api;
  method: string;
  /** Raw path as received (still percent-encoded), without the query. */
  path: string;
  /** Raw query as received, without `?`. */
  query: string;
  host: string;
  /** e.g. PutObject, AssumeRole, InvokeModel, PutItem. */
  operation?: string;
  accessKeyId?: string;
  /** The verified signature's algorithm: AWS4-HMAC-SHA256 or AWS4-ECDSA-P256-SHA256. */
  algorithm?: string;
  authKind: AuthKind | "none";
  /** True only when the signature, and the payload hash / every chunk / the trailer, all verified. */
  verified: boolean;
  /** HTTP status sent; 0 while pending or when the client went away first. */
  status: number;
  errorCode?: string;
  errorMessage?: string;
  failure?: FailureKind;
  /** `SHA256` (hex x-amz-content-sha256), `UNSIGNED-PAYLOAD`, a `STREAMING-…` literal, `BODY-SHA256` (non-S3), or `NONE`. */
  payloadMode: string;
  chunksVerified: number;
  trailerVerified: boolean;
  checksumsVerified: string[];
  trailers: Record<string, string>;
  /** Decoded payload bytes (aws-chunked framing removed). */
  bodyBytes: number;
  /** Bytes of body as received on the wire. */
  wireBodyBytes: number;
  /** The content-length header as received (absent: the proxy did not forward one). */
  contentLength?: string;
  /** The transfer-encoding header as received, e.g. `chunked` (absent: none). */
  transferEncoding?: string;
  /** The HTTP version the request came in on: `1.1` or `2.0`. */
  httpVersion: string;
  /** A bidirectional event-stream operation: what its request events and answers did. */
  eventStream?: EventStreamRecord;
  /** SHA-256 (hex) of the decoded payload, once the body was read whole. */
  bodySha256?: string;
  signedHeaders: string[];
  /** Headers as received; x-amz-security-token redacted. */
  headers: Array<[string, string]>;
  canonicalRequest?: string;
  stringToSign?: string;
}

/** Switches for the event-stream operations, changeable between requests. */
export interface EventStreamControls {
  /**
   * Hold the whole answer (its head included) until the request body has ended or was cut off,
   * instead of answering as events arrive: a proxy's own refusal mid-stream is then the first
   * answer the client gets. Default false.
   */
  holdAnswerUntilInputEnds: boolean;
}

export interface FakeAws {
  port: number;
  /** The address it listens on. */
  host: string;
  /** `http://127.0.0.1:<port>`, or `https://…` with `tls`. */
  url: string;
  readonly requests: RecordedRequest[];
  readonly sts: StsControls;
  readonly s3: S3Store;
  readonly eventStreams: EventStreamControls;
  addAccount(account: FakeAwsAccount): void;
  removeAccount(accessKeyId: string): void;
  close(): Promise<void>;
}

const S3_MAX_SKEW_MS = 15 * 60 * 1000;
const DEFAULT_MAX_SKEW_MS = 5 * 60 * 1000;
const HEX_SHA256_RE = /^[0-9a-f]{64}$/;
const TOKEN_HEADER = "x-amz-security-token";

function headerPairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([raw[i] as string, raw[i + 1] as string]);
  return out;
}

function redactHeaders(headers: HeaderList): Array<[string, string]> {
  return headers.map(([n, v]) => [n, n.toLowerCase() === TOKEN_HEADER ? "<redacted>" : v]);
}

/** Session tokens the request carries (header or presigned query), to keep out of records and error bodies. */
function sessionTokensOf(wire: WireRequest): string[] {
  const tokens = headerValues(wire.headers, TOKEN_HEADER);
  for (const [k, v] of parseQueryPairs(wire.rawQuery)) if (k === "X-Amz-Security-Token") tokens.push(v);
  return tokens.filter((t) => t !== "");
}

function redactTokens(text: string, tokens: readonly string[]): string {
  let out = text;
  for (const token of tokens) {
    for (const form of new Set([token, uriEncode(token), encodeURIComponent(token)])) out = out.split(form).join("<redacted>");
  }
  return out;
}

function splitTarget(url: string): { rawPath: string; rawQuery: string } {
  const q = url.indexOf("?");
  return q < 0 ? { rawPath: url, rawQuery: "" } : { rawPath: url.slice(0, q), rawQuery: url.slice(q + 1) };
}

/** Query parameters as a map (last value wins), without presigned-auth parameters. */
function operationParams(rawQuery: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const [k, v] of parseQueryPairs(rawQuery)) if (!k.startsWith("X-Amz-")) map.set(k, v);
  return map;
}

function chunkFailureError(failure: ChunkedFailure): AwsError {
  if (failure.code === "SignatureDoesNotMatch") {
    const trailer = failure.stringToSign?.startsWith("AWS4-HMAC-SHA256-TRAILER") ?? false;
    return awsError(403, failure.code, failure.message, trailer ? "trailer-signature" : "chunk-signature", failure.stringToSign ? { StringToSign: failure.stringToSign } : undefined);
  }
  return awsError(400, failure.code, failure.message, failure.code === "BadDigest" ? "checksum" : "aws-chunked");
}

class FakeAwsServer implements FakeAws {
  port = 0;
  host = "127.0.0.1";
  url = "";
  readonly requests: RecordedRequest[] = [];
  readonly s3: S3Store;
  readonly sts: StsService;
  readonly eventStreams: EventStreamControls = { holdAnswerUntilInputEnds: false };
  private readonly accounts = new Map<string, FakeAwsAccount>();
  /** What listens: the HTTP server, or with `tls` a TLS server handing each connection to `http` or `h2` by ALPN. */
  private readonly server: NetServer;
  private readonly http: http.Server;
  private readonly sockets = new Set<tls.TLSSocket>();
  private readonly now: () => Date;
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(private readonly opts: FakeAwsOptions) {
    for (const a of opts.accounts) this.addAccount(a);
    this.now = opts.now ?? (() => new Date());
    this.s3 = new S3Store(!opts.discardBodies);
    this.sts = new StsService({
      accountId: opts.accountId ?? "123456789012",
      webIdentityTokens: new Set(opts.webIdentityTokens ?? []),
      register: (a) => this.addAccount(a),
    });
    this.http = http.createServer({ keepAlive: true });
    // Keep idle connections open (Node would close them after 5 s): a close racing Envoy's reuse
    // of the connection would fail a request for a reason that has nothing to do with signing.
    // No request timeout either: a 1 GiB upload through Envoy may take minutes on a busy box.
    this.http.keepAliveTimeout = 0;
    this.http.requestTimeout = 0;
    this.http.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res, false));
    this.http.on("checkContinue", (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res, true));
    if (!opts.tls) {
      this.server = this.http;
      return;
    }
    const h2 = http2.createServer();
    h2.on("request", (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void this.handle(req as unknown as http.IncomingMessage, res as unknown as http.ServerResponse, false));
    const wantsH2 = opts.http2Hosts ?? defaultHttp2Host;
    this.server = tls.createServer({
      cert: opts.tls.certPem,
      key: opts.tls.keyPem,
      // No session tickets: a resumed handshake hands ALPNCallback no server name, and the
      // protocol must follow the name on every connection.
      secureOptions: cryptoConstants.SSL_OP_NO_TICKET,
      ALPNCallback: ({ servername, protocols }) => {
        if (protocols.includes("h2") && typeof servername === "string" && wantsH2(servername)) return "h2";
        return protocols.includes("http/1.1") ? "http/1.1" : undefined;
      },
    });
    this.server.on("secureConnection", (socket: tls.TLSSocket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
      (socket.alpnProtocol === "h2" ? h2 : this.http).emit("connection", socket);
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port ?? 0, this.opts.host ?? "127.0.0.1", () => resolve());
    });
    const address = this.server.address() as AddressInfo;
    this.port = address.port;
    this.host = address.address;
    this.url = `${this.opts.tls ? "https" : "http"}://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${this.port}`;
  }

  addAccount(account: FakeAwsAccount): void {
    this.accounts.set(account.accessKeyId, { ...account });
  }

  removeAccount(accessKeyId: string): void {
    this.accounts.delete(accessKeyId);
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.http.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }

  private maxSkewFor(endpoint: Endpoint): number {
    return this.opts.maxSkewMs ?? (endpoint.protocol === "s3" ? S3_MAX_SKEW_MS : DEFAULT_MAX_SKEW_MS);
  }

  // -- one request ---------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean): Promise<void> {
    const requestId = randomBytes(8).toString("hex").toUpperCase();
    const { rawPath, rawQuery } = splitTarget(req.url ?? "/");
    // Over HTTP/2 the host is :authority: AWS reads it as the host header, and a client may sign
    // either name (the SDK signs :authority). The other pseudo-headers are no headers.
    const authority = req.headers[":authority"];
    const http2Authority = req.httpVersion === "2.0" && typeof authority === "string" ? authority : undefined;
    const headers: Array<[string, string]> = [
      ...(http2Authority !== undefined ? [["host", http2Authority] as [string, string], [":authority", http2Authority] as [string, string]] : []),
      ...headerPairs(req.rawHeaders).filter(([n]) => !n.startsWith(":")),
    ];
    const host = http2Authority ?? req.headers.host ?? "";
    const endpoint = resolveEndpoint(host);
    const wire: WireRequest = { method: req.method ?? "GET", rawPath, rawQuery, headers };
    const tokens = sessionTokensOf(wire);
    const rec: RecordedRequest = {
      requestId,
      service: endpoint?.service ?? "",
      region: endpoint?.region ?? "",
      ...(endpoint ? { api: endpoint.api } : {}),
      method: req.method ?? "GET",
      path: rawPath,
      query: redactTokens(rawQuery, tokens),
      host,
      authKind: "none",
      verified: false,
      status: 0,
      payloadMode: "NONE",
      chunksVerified: 0,
      trailerVerified: false,
      checksumsVerified: [],
      trailers: {},
      bodyBytes: 0,
      wireBodyBytes: 0,
      contentLength: req.headers["content-length"],
      transferEncoding: req.headers["transfer-encoding"],
      httpVersion: req.httpVersion,
      signedHeaders: [],
      headers: redactHeaders(headers),
    };
    this.requests.push(rec);
    const exchange: Exchange = { req, res, rec, wire, expectContinue, requestId, tokens };
    const eventOperation = endpoint ? eventStreamOperationOf(endpoint.api, rec.method, rawPath) : undefined;
    try {
      if (!endpoint) {
        const error = awsError(400, "UnknownEndpoint", `fakeaws does not serve host '${host}'`, "unknown-host");
        await this.refuse(exchange, renderError("json", error, requestId), error);
      } else if (endpoint.protocol === "s3") {
        await this.handleS3(exchange, endpoint);
      } else if (eventOperation) {
        await this.handleEventStream(exchange, endpoint, eventOperation);
      } else {
        await this.handleBuffered(exchange, endpoint);
      }
    } catch (err) {
      // The client went away mid-body (or the server is closing): nothing to answer.
      if (!res.headersSent && !res.destroyed) {
        const error = awsError(500, "InternalError", `fakeaws: ${err instanceof Error ? err.message : String(err)}`);
        try {
          this.send(exchange, renderError(endpoint?.protocol ?? "json", error, requestId), error);
        } catch {
          // An HTTP/2 stream already reset by the client: nothing can be answered.
        }
      }
    }
  }

  /** Sends the final answer and records it. */
  private send(ex: Exchange, out: RenderedResponse, error?: AwsError, closeConnection = false): void {
    const { res, rec } = ex;
    if (res.headersSent || res.destroyed) return;
    rec.status = out.status;
    if (error) {
      rec.errorCode = error.code;
      rec.errorMessage = redactTokens(error.message, ex.tokens);
      if (error.failure) rec.failure = error.failure;
    }
    const body = rec.method === "HEAD" ? undefined : typeof out.body === "string" && ex.tokens.length > 0 ? redactTokens(out.body, ex.tokens) : out.body;
    const headers: Record<string, string> = {
      "x-amz-request-id": ex.requestId,
      date: this.now().toUTCString(),
      ...out.headers,
    };
    if (!("content-length" in headers)) headers["content-length"] = String(body === undefined ? 0 : Buffer.byteLength(body));
    if (closeConnection) headers.connection = "close";
    res.writeHead(out.status, headers);
    res.end(body);
  }

  /**
   * Refuses before the body is read. With `Expect: 100-continue` the body never comes, so the
   * answer goes at once and the connection closes; otherwise the body is drained first, so the
   * client is not cut off while still writing.
   */
  private async refuse(ex: Exchange, out: RenderedResponse, error: AwsError): Promise<void> {
    if (ex.expectContinue) {
      this.send(ex, out, error, true);
      return;
    }
    for await (const chunk of ex.req) ex.rec.wireBodyBytes += (chunk as Buffer).length;
    this.send(ex, out, error);
  }

  private recordAuth(ex: Exchange, outcome: AuthOutcome): void {
    const { rec } = ex;
    if (outcome.kind === "anonymous") return;
    if (outcome.kind === "denied") {
      if (outcome.authKind) rec.authKind = outcome.authKind;
      if (outcome.accessKeyId !== undefined) rec.accessKeyId = outcome.accessKeyId;
      if (outcome.signedHeaders) rec.signedHeaders = outcome.signedHeaders;
      if (outcome.check) {
        rec.canonicalRequest = redactTokens(outcome.check.canonicalRequest, ex.tokens);
        rec.stringToSign = outcome.check.stringToSign;
      }
      return;
    }
    rec.authKind = outcome.authKind;
    rec.algorithm = outcome.auth.algorithm;
    rec.accessKeyId = outcome.account.accessKeyId;
    rec.signedHeaders = outcome.auth.signedHeaders;
    rec.canonicalRequest = redactTokens(outcome.check.canonicalRequest, ex.tokens);
    rec.stringToSign = outcome.check.stringToSign;
  }

  // -- S3: verify headers first, then stream the body through the verifier --------------------

  private async handleS3(ex: Exchange, endpoint: Endpoint): Promise<void> {
    const { rec, wire, requestId } = ex;
    const reject = (error: AwsError): Promise<void> => this.refuse(ex, renderError("s3", error, requestId), error);
    const hasAuthHeader = headerValue(wire.headers, "authorization") !== undefined;
    if (!hasAuthHeader && !hasPresignedAuth(wire.rawQuery)) return reject(missingAuthError("s3"));

    const contentSha = headerValue(wire.headers, "x-amz-content-sha256")?.trim();
    if (contentSha === undefined && hasAuthHeader) {
      return reject(awsError(400, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256", "missing-content-sha256"));
    }
    const payloadHash = contentSha ?? UNSIGNED_PAYLOAD;
    const isHex = HEX_SHA256_RE.test(payloadHash);
    rec.payloadMode = isHex ? "SHA256" : payloadHash;
    if (!isHex && payloadHash !== UNSIGNED_PAYLOAD && !isStreamingPayloadMode(payloadHash)) {
      return reject(
        awsError(400, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.", "invalid-content-sha256"),
      );
    }

    const now = this.now();
    const outcome = authenticate({
      request: wire,
      endpoint,
      payloadHash,
      now,
      maxSkewMs: this.maxSkewFor(endpoint),
      findAccount: (id) => this.accounts.get(id),
    });
    this.recordAuth(ex, outcome);
    if (outcome.kind === "denied") return reject(outcome.error);
    if (outcome.kind === "anonymous") return reject(missingAuthError("s3"));

    const algorithms = wire.headers.map(([n]) => checksumAlgorithmOfHeader(n)).filter((a): a is ChecksumAlgorithm => a !== undefined);
    const collector = new BodyCollector(!this.opts.discardBodies, algorithms);
    let decoder: AwsChunkedDecoder | undefined;
    if (isStreamingPayloadMode(payloadHash)) {
      const decodedLength = headerValue(wire.headers, "x-amz-decoded-content-length");
      if (decodedLength === undefined || !/^\d+$/.test(decodedLength.trim())) {
        return reject(awsError(411, "MissingContentLength", "You must provide the x-amz-decoded-content-length header with an aws-chunked body.", "aws-chunked"));
      }
      const signed = payloadHash !== "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
      const sigV4aChunks = isSigV4aStreamingMode(payloadHash);
      const signingKey = outcome.signingKey;
      if (signed && sigV4aChunks !== (signingKey === undefined)) {
        return reject(awsError(400, "InvalidRequest", `${payloadHash} chunk signatures are ${sigV4aChunks ? "SigV4A (ECDSA)" : "SigV4 (HMAC)"}, and the request was signed with ${outcome.auth.algorithm}.`, "aws-chunked"));
      }
      const chain = { amzDate: outcome.amzDate, scope: outcome.scope, seedSignature: outcome.auth.signature };
      decoder = new AwsChunkedDecoder({
        mode: payloadHash,
        ...(!signed
          ? {}
          : signingKey
            ? { signing: { ...chain, signingKey } }
            : { signing: { ...chain, sigV4aPublicKey: sigV4aPublicKey(outcome.account.accessKeyId, outcome.account.secretAccessKey) } }),
        declaredTrailers: (headerValue(wire.headers, "x-amz-trailer") ?? "").split(","),
        decodedContentLength: Number(decodedLength.trim()),
        onData: (d) => collector.update(d),
      });
    }
    if (ex.expectContinue) ex.res.writeContinue();

    for await (const chunk of ex.req) {
      const buf = chunk as Buffer;
      rec.wireBodyBytes += buf.length;
      if (decoder) decoder.write(buf);
      else collector.update(buf);
    }
    const body = collector.finish();
    rec.bodyBytes = body.size;
    rec.bodySha256 = body.sha256Hex;
    if (decoder) {
      const result = decoder.end();
      rec.chunksVerified = decoder.progress.chunksVerified;
      if (!result.ok) {
        const error = chunkFailureError(result.failure);
        if (result.failure.stringToSign) rec.stringToSign = result.failure.stringToSign;
        return this.send(ex, renderError("s3", error, requestId), error);
      }
      rec.trailerVerified = result.outcome.trailerVerified;
      rec.checksumsVerified = result.outcome.checksumsVerified;
      rec.trailers = Object.fromEntries(result.outcome.trailers);
    } else if (isHex && body.sha256Hex !== payloadHash) {
      const error = awsError(400, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.", "payload-hash", {
        ClientComputedContentSHA256: payloadHash,
        S3ComputedContentSHA256: body.sha256Hex,
      });
      return this.send(ex, renderError("s3", error, requestId), error);
    }
    rec.verified = true;

    const address = s3Address(wire.rawPath, endpoint.bucket);
    const result = this.s3.handle({
      method: rec.method,
      ...address,
      query: operationParams(wire.rawQuery),
      headers: wire.headers,
      body,
      region: endpoint.region,
      now,
    });
    if ("code" in result) {
      this.send(ex, renderError("s3", result, requestId), result);
      return;
    }
    rec.operation = result.operation;
    this.send(ex, s3Rendered(result));
  }

  // -- STS and JSON services: the payload hash is the body's, so read it first --------------

  private async handleBuffered(ex: Exchange, endpoint: Endpoint): Promise<void> {
    const { rec, wire, requestId } = ex;
    const jsonType = endpoint.api === "dynamodb" ? DYNAMODB_CONTENT_TYPE : "application/json";
    const render = (error: AwsError): RenderedResponse => renderError(endpoint.protocol, error, requestId, jsonType);
    if (ex.expectContinue) ex.res.writeContinue();
    const limit = this.opts.maxBufferedBodyBytes ?? 16 * 1024 * 1024;
    const parts: Buffer[] = [];
    for await (const chunk of ex.req) {
      const buf = chunk as Buffer;
      rec.wireBodyBytes += buf.length;
      if (rec.wireBodyBytes <= limit) parts.push(buf);
    }
    if (rec.wireBodyBytes > limit) {
      const error = awsError(413, "RequestEntityTooLargeException", `Request body over the fake's ${limit}-byte limit`, "body-too-large");
      return this.send(ex, render(error), error);
    }
    const body = Buffer.concat(parts);
    rec.bodyBytes = body.length;
    rec.bodySha256 = sha256Hex(body);
    rec.payloadMode = "BODY-SHA256";

    const stsParams = endpoint.api === "sts" ? stsParameters(wire, body) : undefined;
    const action = stsParams?.get("Action") ?? "";
    if (stsParams) {
      rec.operation = action;
      this.sts.countCall(action);
    }
    const now = this.now();
    const outcome = authenticate({
      request: wire,
      endpoint,
      payloadHash: sha256Hex(body),
      now,
      maxSkewMs: this.maxSkewFor(endpoint),
      findAccount: (id) => this.accounts.get(id),
    });
    this.recordAuth(ex, outcome);
    if (outcome.kind === "denied") return this.send(ex, render(outcome.error), outcome.error);
    if (outcome.kind === "anonymous" && !(stsParams && StsService.allowsAnonymous(action))) {
      const error = missingAuthError(endpoint.protocol);
      return this.send(ex, render(error), error);
    }
    if (outcome.kind === "verified") rec.verified = true;
    else rec.payloadMode = "NONE";

    if (stsParams) {
      return this.answerSts(ex, stsParams, outcome.kind === "verified" ? outcome.account : undefined, now, render);
    }
    const result: JsonResponse | AwsError =
      endpoint.api === "bedrock-runtime"
        ? handleBedrock(rec.method, wire.rawPath, body)
        : endpoint.api === "dynamodb"
          ? handleDynamoDb(rec.method, wire.headers, body)
          : awsError(404, "UnknownOperationException", `fakeaws ${endpoint.api} has no route ${rec.method} ${wire.rawPath}`, "operation");
    if ("code" in result) return this.send(ex, render(result), result);
    rec.operation = result.operation;
    this.send(ex, { status: result.status, headers: { ...result.headers, "x-amzn-requestid": requestId }, body: result.body });
  }

  // -- bidirectional event streams: the head first, then each event as it arrives ------------

  private async handleEventStream(ex: Exchange, endpoint: Endpoint, operation: EventStreamOperation): Promise<void> {
    const { rec, wire, requestId, req, res } = ex;
    rec.operation = EVENT_STREAM_OPERATIONS[operation].operation;
    // Refused at once, the body unread: an event-stream client may wait for answers before it
    // sends more (or ends), so draining first could wait forever.
    const reject = async (error: AwsError): Promise<void> => {
      this.send(ex, renderError("json", error, requestId), error);
      req.resume();
    };
    const payloadHash = headerValue(wire.headers, "x-amz-content-sha256")?.trim();
    rec.payloadMode = payloadHash ?? "NONE";
    if (payloadHash !== STREAMING_EVENTS_PAYLOAD) {
      return reject(awsError(400, "BadRequestException", `${rec.operation} needs x-amz-content-sha256: ${STREAMING_EVENTS_PAYLOAD}`, "invalid-content-sha256"));
    }
    const outcome = authenticate({
      request: wire,
      endpoint,
      payloadHash,
      now: this.now(),
      maxSkewMs: this.maxSkewFor(endpoint),
      findAccount: (id) => this.accounts.get(id),
    });
    this.recordAuth(ex, outcome);
    if (outcome.kind === "denied") return reject(outcome.error);
    if (outcome.kind === "anonymous") return reject(missingAuthError("json"));
    if (outcome.signingKey === undefined) {
      return reject(awsError(400, "BadRequestException", `event signatures are SigV4 (HMAC); the request was signed with ${outcome.auth.algorithm}`, "unsupported-algorithm"));
    }
    const { account, auth } = outcome;
    const chain = new EventStreamChainVerifier({
      seedSignature: auth.signature,
      region: auth.region,
      service: auth.service,
      signingKeyFor: (day) => deriveSigningKey(account.secretAccessKey, day, auth.region, auth.service),
    });
    const events = newEventStreamRecord();
    rec.eventStream = events;
    const closed = (): boolean => res.destroyed || (res as unknown as http2.Http2ServerResponse).stream?.destroyed === true;
    const hold = this.eventStreams.holdAnswerUntilInputEnds;
    const held: Array<() => void> = [];
    const emit = (action: () => void): void => {
      if (hold) held.push(action); // flushed by end(), after the input has ended
      else if (!closed()) action();
    };
    async function* body(): AsyncIterable<Buffer> {
      for await (const chunk of req) {
        rec.wireBodyBytes += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
    }
    await serveEventStream({
      operation,
      chain,
      body: body(),
      record: events,
      requestId,
      header: (name) => headerValue(wire.headers, name),
      ...(this.opts.transcriptEvery !== undefined ? { transcriptEvery: this.opts.transcriptEvery } : {}),
      sink: {
        head: (headers) => {
          const date = this.now().toUTCString();
          emit(() => {
            rec.status = 200;
            res.writeHead(200, { "x-amz-request-id": requestId, date, ...headers });
            res.flushHeaders();
          });
        },
        write: (bytes) => emit(() => res.write(bytes)),
        end: () => {
          rec.verified = events.finalVerified && events.failure === undefined;
          if (events.failure) {
            rec.errorCode = events.exception ?? "BadRequestException";
            rec.errorMessage = events.failure.message;
            rec.failure = events.failure.code === "signature" ? "chunk-signature" : "aws-chunked";
            if (events.failure.stringToSign) rec.stringToSign = events.failure.stringToSign;
          }
          if (closed()) return;
          for (const action of held.splice(0)) action();
          res.end();
        },
      },
    });
  }

  private async answerSts(
    ex: Exchange,
    params: Map<string, string>,
    caller: FakeAwsAccount | undefined,
    now: Date,
    render: (e: AwsError) => RenderedResponse,
  ): Promise<void> {
    const result = this.sts.handle(params, caller, now);
    if (result.kind === "hang") return; // never answered; the client gives up, close() cleans up
    if (this.sts.delayMs > 0) await this.sleep(this.sts.delayMs);
    if (result.kind === "error") return this.send(ex, render(result.error), result.error);
    this.send(ex, { status: 200, headers: { "content-type": "text/xml", "x-amzn-requestid": ex.requestId }, body: result.body });
  }
}

interface Exchange {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  rec: RecordedRequest;
  wire: WireRequest;
  expectContinue: boolean;
  requestId: string;
  /** Session tokens this request carries; redacted from records and error bodies. */
  tokens: string[];
}

function s3Rendered(r: S3Response): RenderedResponse {
  return { status: r.status, headers: r.headers, body: r.body ?? "" };
}

/** STS parameters from the query string and, for form POSTs, the body (form decoding: `+` is a space). */
function stsParameters(wire: WireRequest, body: Buffer): Map<string, string> {
  const params = new Map<string, string>();
  for (const [k, v] of new URLSearchParams(wire.rawQuery)) if (!k.startsWith("X-Amz-")) params.set(k, v);
  const contentType = headerValue(wire.headers, "content-type") ?? "";
  if (contentType.startsWith("application/x-www-form-urlencoded")) {
    for (const [k, v] of new URLSearchParams(body.toString("utf8"))) params.set(k, v);
  }
  return params;
}

/** Starts the fake (by default on 127.0.0.1 with an OS-chosen port). */
export async function startFakeAws(opts: FakeAwsOptions): Promise<FakeAws> {
  const fake = new FakeAwsServer(opts);
  await fake.listen();
  return fake;
}

