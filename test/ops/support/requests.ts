/**
 * Requests as a workload's SDK would send them through Envoy (signed with a placeholder key whose
 * signature countersign discards), and the way to hand countersign's result to the fake AWS as
 * Envoy's router would.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import * as grpc from "@grpc/grpc-js";
import type { ExternalProcessorClient } from "../../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { loadExtProcProtos } from "../../../src/extproc/protos.js";
import type { ExchangeResult, TestRequest } from "../../support/extProcClient.js";

export const PLACEHOLDER_KEY_ID = "AKIDPLACEHOLDER000";
export const PLACEHOLDER_SIGNATURE = "0".repeat(64);

export function sha256Hex(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A placeholder SigV4 Authorization: countersign reads the key id and scope, never the signature. */
export function placeholderAuthorization(region: string, service: string, signedHeaders: readonly string[], keyId = PLACEHOLDER_KEY_ID): string {
  return `AWS4-HMAC-SHA256 Credential=${keyId}/20240101/${region}/${service}/aws4_request, SignedHeaders=${[...signedHeaders].sort().join(";")}, Signature=${PLACEHOLDER_SIGNATURE}`;
}

export interface RequestOptions {
  readonly requestId?: string;
  readonly keyId?: string;
}

function withRequestId(headers: Array<[string, string]>, opts: RequestOptions): Array<[string, string]> {
  return opts.requestId === undefined ? headers : [...headers, ["x-request-id", opts.requestId]];
}

/** S3 PutObject with the body's hash in x-amz-content-sha256: signed from the headers alone. */
export function s3Put(host: string, key: string, body: Buffer, opts: RequestOptions = {}): TestRequest {
  return {
    method: "PUT",
    authority: host,
    path: `/${key}`,
    headers: withRequestId(
      [
        ["authorization", placeholderAuthorization("eu-west-1", "s3", ["host", "x-amz-content-sha256", "x-amz-date"], opts.keyId)],
        ["x-amz-date", "20240101T000000Z"],
        ["x-amz-content-sha256", sha256Hex(body)],
        ["content-length", String(body.length)],
      ],
      opts,
    ),
    body,
  };
}

/** S3 PutObject without x-amz-content-sha256 (a client that leaves the hash to the signer): countersign buffers the body. */
export function s3PutBuffered(host: string, key: string, body: Buffer, opts: RequestOptions = {}): TestRequest {
  return {
    method: "PUT",
    authority: host,
    path: `/${key}`,
    headers: withRequestId(
      [
        ["authorization", placeholderAuthorization("eu-west-1", "s3", ["host", "x-amz-date"], opts.keyId)],
        ["x-amz-date", "20240101T000000Z"],
        ["content-length", String(body.length)],
      ],
      opts,
    ),
    body,
  };
}

/** S3 GetObject / ListObjects-style GET signed with UNSIGNED-PAYLOAD. */
export function s3GetUnsigned(host: string, path: string, opts: RequestOptions = {}): TestRequest {
  return {
    method: "GET",
    authority: host,
    path,
    headers: withRequestId(
      [
        ["authorization", placeholderAuthorization("eu-west-1", "s3", ["host", "x-amz-content-sha256", "x-amz-date"], opts.keyId)],
        ["x-amz-date", "20240101T000000Z"],
        ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"],
      ],
      opts,
    ),
  };
}

/** A form POST to STS without x-amz-content-sha256 (as botocore sends): countersign buffers and hashes the body. */
export function stsFormPost(body: Buffer, opts: RequestOptions & { declaredLength?: number } = {}): TestRequest {
  return {
    method: "POST",
    authority: "sts.amazonaws.com",
    path: "/",
    headers: withRequestId(
      [
        ["content-type", "application/x-www-form-urlencoded; charset=utf-8"],
        ["content-length", String(opts.declaredLength ?? body.length)],
        ["authorization", placeholderAuthorization("us-east-1", "sts", ["content-type", "host", "x-amz-date"], opts.keyId)],
        ["x-amz-date", "20240101T000000Z"],
      ],
      opts,
    ),
    body,
  };
}

/** `Action=GetCallerIdentity&Version=2011-06-15`, padded with an ignored parameter to exactly `length` bytes. */
export function getCallerIdentityBody(length: number): Buffer {
  const base = "Action=GetCallerIdentity&Version=2011-06-15";
  if (length < base.length + 3) throw new Error(`a GetCallerIdentity body is at least ${base.length + 3} bytes`);
  return Buffer.from(`${base}&X=${"p".repeat(length - base.length - 3)}`);
}

/** A GET with no body and no x-amz-content-sha256, signed by the client for `service` (empty-payload mode). */
export function emptyGet(host: string, region: string, service: string, opts: RequestOptions = {}): TestRequest {
  return {
    method: "GET",
    authority: host,
    path: "/",
    headers: withRequestId(
      [
        ["authorization", placeholderAuthorization(region, service, ["host", "x-amz-date"], opts.keyId)],
        ["x-amz-date", "20240101T000000Z"],
      ],
      opts,
    ),
  };
}

export function headerOf(headers: ReadonlyArray<readonly [string, string]>, name: string): string | undefined {
  return headers.find(([k]) => k === name)?.[1];
}

/** The key id in a forwarded request's Authorization (what countersign signed with). */
export function signedKeyId(result: ExchangeResult): string | undefined {
  if (result.kind !== "forwarded") return undefined;
  const auth = headerOf(result.request.headers, "authorization") ?? "";
  return /Credential=([^/]+)\//.exec(auth)?.[1];
}

export function signatureOf(result: ExchangeResult): string | undefined {
  if (result.kind !== "forwarded") return undefined;
  return /Signature=([0-9a-f]{64})/.exec(headerOf(result.request.headers, "authorization") ?? "")?.[1];
}

/** A request as Envoy's router sends it upstream after countersign's mutations. */
export interface UpstreamRequest {
  readonly method: string;
  readonly authority: string;
  readonly path: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
}

/** Sends a forwarded request to the fake AWS as Envoy's router would; resolves with the HTTP status. */
export function forwardToFake(fakePort: number, req: UpstreamRequest): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { host: req.authority };
    for (const [k, v] of req.headers) headers[k] = v;
    const c = http.request({ host: "127.0.0.1", port: fakePort, method: req.method, path: req.path, headers, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    c.on("error", reject);
    c.end(req.body);
  });
}

/**
 * An ext_proc client on a connection of its own. grpc-js shares one connection among clients with
 * the same target and options; a local subchannel pool gives each client its own, the way several
 * Envoy instances (or one Envoy's several connections) would reach countersign.
 */
export function connectOwnChannel(address: string): ExternalProcessorClient {
  const protos = loadExtProcProtos();
  return new protos.envoy.service.ext_proc.v3.ExternalProcessor(address, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
  });
}
