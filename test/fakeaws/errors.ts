/**
 * AWS-style error values and their rendering per protocol:
 *   S3:    <Error><Code/><Message/>…<RequestId/><HostId/></Error>
 *   query: <ErrorResponse xmlns=…><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>
 *   JSON:  {"__type": code, "message": …} plus the x-amzn-ErrorType header
 */
import type { Protocol } from "./hosts.js";

export const STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/";
export const S3_NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/";

/** Why a request was refused, independent of the protocol's error code. */
export type FailureKind =
  | "unknown-host"
  | "missing-auth"
  | "malformed-auth"
  | "unsupported-algorithm"
  | "unknown-key"
  | "invalid-token"
  | "expired-token"
  | "skew"
  | "expired-presign"
  | "scope"
  | "host-not-signed"
  | "headers-not-signed"
  | "signature"
  | "missing-content-sha256"
  | "invalid-content-sha256"
  | "payload-hash"
  | "chunk-signature"
  | "trailer-signature"
  | "aws-chunked"
  | "checksum"
  | "body-too-large"
  | "sts-injected"
  | "operation";

export interface AwsError {
  status: number;
  code: string;
  message: string;
  failure?: FailureKind;
  /** Extra elements (XML) or fields (JSON), e.g. CanonicalRequest, StringToSign, HeadersNotSigned. */
  extra?: Record<string, string>;
}

export function awsError(status: number, code: string, message: string, failure?: FailureKind, extra?: Record<string, string>): AwsError {
  return { status, code, message, ...(failure ? { failure } : {}), ...(extra ? { extra } : {}) };
}

const XML_ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;", "\r": "&#13;" };

export function xmlEscape(value: string): string {
  return value.replace(/[&<>"'\r]/g, (c) => XML_ESCAPES[c] ?? c);
}

export function xmlElement(name: string, value: string): string {
  return `<${name}>${xmlEscape(value)}</${name}>`;
}

export interface RenderedResponse {
  status: number;
  headers: Record<string, string>;
  body: string | Buffer;
}

export function renderError(protocol: Protocol, error: AwsError, requestId: string, jsonContentType = "application/json"): RenderedResponse {
  const extras = Object.entries(error.extra ?? {});
  const common = { "x-amz-request-id": requestId, "x-amzn-requestid": requestId };
  if (protocol === "json") {
    const body: Record<string, string> = { __type: error.code, message: error.message };
    for (const [k, v] of extras) body[k] = v;
    return {
      status: error.status,
      headers: { ...common, "content-type": jsonContentType, "x-amzn-errortype": `${error.code}:` },
      body: JSON.stringify(body),
    };
  }
  const inner = [xmlElement("Code", error.code), xmlElement("Message", error.message), ...extras.map(([k, v]) => xmlElement(k, v))].join("");
  if (protocol === "query") {
    const type = error.status >= 500 ? "Receiver" : "Sender";
    return {
      status: error.status,
      headers: { ...common, "content-type": "text/xml" },
      body: `<ErrorResponse xmlns="${STS_NAMESPACE}"><Error>${xmlElement("Type", type)}${inner}</Error>${xmlElement("RequestId", requestId)}</ErrorResponse>`,
    };
  }
  return {
    status: error.status,
    headers: { ...common, "content-type": "application/xml", "x-amz-id-2": Buffer.from(requestId).toString("base64") },
    body: `<?xml version="1.0" encoding="UTF-8"?>\n<Error>${inner}${xmlElement("RequestId", requestId)}${xmlElement("HostId", Buffer.from(requestId).toString("base64"))}</Error>`,
  };
}
