/**
 * A hand-signed request through the proxy, for the payload modes and refusals no SDK produces on
 * demand: signed with the PLACEHOLDER key by @smithy/signature-v4 (or, with `regionSet`,
 * @smithy/signature-v4a; not src/), sent over CONNECT
 * with https.request, the body with a content-length or, with `chunked`, transfer-encoding:
 * chunked (no content-length). One agent per request: a refusal may close the connection.
 */
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import { SignatureV4a } from "@smithy/signature-v4a";
import { httpsExchange, proxiedAgent, type HttpsAnswer } from "./clients.js";
import { PLACEHOLDER, type Stack } from "./harness.js";

export interface HandSigned {
  method: string;
  host: string;
  /** The path as sent (encoded once), without the query. */
  path: string;
  query?: Record<string, string>;
  service: string;
  region: string;
  /** Sign with SigV4A for this region set (sent as x-amz-region-set) instead of SigV4 for `region`. */
  regionSet?: string;
  headers?: Record<string, string>;
  body?: Buffer;
  /** Sent as x-amz-content-sha256 and signed; omitted: no such header (the signature covers the body's hash). */
  contentSha256?: string;
  /** Send the body with transfer-encoding: chunked and no content-length. */
  chunked?: boolean;
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** false: send the request without any signature (no authorization, no x-amz-date). */
  sign?: boolean;
  /** Headers set after signing (e.g. a broken authorization), as raw latin1 strings. */
  after?: Record<string, string>;
}

export type HandSignedResponse = HttpsAnswer;

export async function sendHandSigned(stack: Stack, r: HandSigned): Promise<HandSignedResponse> {
  const body = r.body;
  const headers: Record<string, string> = { host: r.host, ...r.headers };
  if (r.contentSha256 !== undefined) headers["x-amz-content-sha256"] = r.contentSha256;
  if (body !== undefined && !r.chunked) headers["content-length"] = String(body.length);
  const s3 = r.service === "s3";
  const init = { service: r.service, region: r.regionSet ?? r.region, credentials: r.credentials ?? PLACEHOLDER, sha256: Hash.bind(null, "sha256"), uriEscapePath: !s3, applyChecksum: false };
  const signer = r.regionSet === undefined ? new SignatureV4(init) : new SignatureV4a(init);
  const request = { method: r.method, protocol: "https:", hostname: r.host, path: r.path, query: r.query ?? {}, headers, body: body ?? "" };
  const signed = r.sign === false ? request : await signer.sign(request, {});
  const sent: Record<string, string> = { ...(signed.headers as Record<string, string>), ...r.after };
  const qs = new URLSearchParams(r.query ?? {}).toString();
  const agent = proxiedAgent(stack);
  try {
    return await httpsExchange(
      { host: r.host, port: 443, method: r.method, path: qs === "" ? r.path : `${r.path}?${qs}`, headers: sent, agent, ca: stack.caPem, servername: r.host },
      (req) => {
        if (body === undefined) req.end();
        else if (r.chunked) {
          // Two writes, so the body really goes out as chunks.
          const half = body.length >> 1;
          req.write(body.subarray(0, half));
          req.end(body.subarray(half));
        } else req.end(body);
      },
      (answer): HandSignedResponse => answer,
    );
  } finally {
    agent.destroy();
  }
}
