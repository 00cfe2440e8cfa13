/**
 * Starting `countersign serve` (dist/) with a policy text in a fresh temp directory, and the
 * request heads the security tests send again and again.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServe, type ServeProcess } from "../../support/startServe.js";
import { requestHead, type HeaderSpec } from "../../fuzz/support/messages.js";
import { PLACEHOLDER_KEY_ID, REAL_ENV, placeholderAuthorization } from "./fixtures.js";

export interface ServedPolicy {
  readonly serve: ServeProcess;
  readonly dir: string;
  readonly policyFile: string;
}

export async function serveWithPolicy(policyText: string, env: NodeJS.ProcessEnv = REAL_ENV, extraArgs: string[] = []): Promise<ServedPolicy> {
  const dir = mkdtempSync(join(tmpdir(), "countersign-sec-"));
  const policyFile = join(dir, "policy.yaml");
  writeFileSync(policyFile, policyText);
  const serve = await startServe({ policyFile, args: ["--log-level", "info", ...extraArgs], env });
  return { serve, dir, policyFile };
}

/** GET with UNSIGNED-PAYLOAD and no body to an allowed S3 host: signed in the headers answer. */
export function unsignedPayloadGet(authority = "photos.s3.us-west-2.amazonaws.com"): HeaderSpec[] {
  return requestHead("GET", authority, "/key", [
    ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"],
    ["authorization", placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-west-2", "s3")],
  ]);
}

/** PUT without x-amz-content-sha256: countersign must buffer and hash the body. */
export function bufferedPut(contentLength: number | undefined, authority = "photos.s3.us-west-2.amazonaws.com"): HeaderSpec[] {
  return requestHead("PUT", authority, "/key", [
    ...(contentLength === undefined ? [] : [["content-length", String(contentLength)] as const]),
    ["content-type", "application/octet-stream"],
    ["authorization", placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-west-2", "s3")],
  ]);
}

/** PUT of a chunk-signed upload (aws-chunked) of `decodedLength` bytes. */
export function chunkSignedPut(decodedLength: number, authority = "photos.s3.us-west-2.amazonaws.com"): HeaderSpec[] {
  return requestHead("PUT", authority, "/key", [
    ["x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"],
    ["x-amz-decoded-content-length", String(decodedLength)],
    ["content-encoding", "aws-chunked"],
    ["authorization", placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-west-2", "s3")],
  ]);
}

/** One aws-chunked data chunk with a placeholder signature. */
export function framedChunk(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length.toString(16)};chunk-signature=${"f".repeat(64)}\r\n`, "latin1"), data, Buffer.from("\r\n", "latin1")]);
}
