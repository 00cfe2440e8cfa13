/**
 * Reader for AWS's official SigV4 test suite (aws-c-auth layout), kept in the repository with its
 * LICENSE and NOTICE under test/fixtures/aws-sigv4-test-suite. Test-only helper: parses `request.txt`-style files into a WireRequest.
 */
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { uriEncode, type WireRequest } from "./verifier.js";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const SUITE_DIR = resolve(REPO_ROOT, "test", "fixtures", "aws-sigv4-test-suite");
export const V4_DIR = join(SUITE_DIR, "v4");
export const CHUNKED_EXAMPLE = join(SUITE_DIR, "s3-chunked-upload-example.json");
/** AWS's SigV4A vectors (aws-c-auth's v4a suite), kept with their LICENSE and NOTICE. */
export const V4A_DIR = resolve(REPO_ROOT, "test", "fixtures", "aws-sigv4a-test-suite", "v4a");

/** aws-c-auth's SigV4A chunk and trailer signing vectors, kept with their LICENSE and NOTICE. */
export const V4A_CHUNKED_VECTOR = resolve(REPO_ROOT, "test", "fixtures", "aws-c-auth-sigv4a-chunked", "vector.json");

/** vector.json: the S3 chunked-upload example signed with SigV4A in aws-c-auth's tests. */
export interface SigV4aChunkedVector {
  credentials: { access_key_id: string; secret_access_key: string };
  public_key: { x: string; y: string };
  x_amz_date: string;
  region_set: string;
  service: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  chunk_sizes: number[];
  chunk_data_byte: string;
  trailer_headers: Array<[string, string]>;
  expected: {
    canonical_request: string;
    trailer_canonical_request: string;
    chunk_string_to_sign_before_previous: string;
    chunk_string_to_sign_after_previous: string[];
    trailer_string_to_sign_before_previous: string;
    trailer_string_to_sign_after_previous: string;
    signature_padding: string;
    padded_signature_length: number;
  };
}

export function readSigV4aChunkedVector(): SigV4aChunkedVector {
  return JSON.parse(readFileSync(V4A_CHUNKED_VECTOR, "utf8")) as SigV4aChunkedVector;
}

/** s3-chunked-upload-example.json: the S3 chunked-upload example of the AWS documentation. */
export interface ChunkedUploadExample {
  credentials: { access_key_id: string; secret_access_key: string };
  region: string;
  service: string;
  x_amz_date: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  chunk_data_byte: string;
  chunk_sizes: number[];
  expected: { signed_headers: string; authorization: string; seed_signature: string; chunk_signatures: string[] };
}

export function readChunkedExample(): ChunkedUploadExample {
  return JSON.parse(readFileSync(CHUNKED_EXAMPLE, "utf8")) as ChunkedUploadExample;
}

export function suiteCases(dir = V4_DIR): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

export interface SuiteContext {
  credentials: { access_key_id: string; secret_access_key: string; token?: string };
  expiration_in_seconds: number;
  normalize: boolean;
  region: string;
  service: string;
  sign_body: boolean;
  timestamp: string;
  omit_session_token?: boolean;
}

export function readCaseFile(name: string, file: string, dir = V4_DIR): string {
  return readFileSync(join(dir, name, file), "utf8");
}

export function readContext(name: string, dir = V4_DIR): SuiteContext {
  return JSON.parse(readCaseFile(name, "context.json", dir)) as SuiteContext;
}

export interface SuiteRequest {
  method: string;
  /** Path as written in the file (raw, not encoded). */
  path: string;
  query: string;
  headers: Array<[string, string]>;
  body: string;
}

/**
 * Parses `METHOD <target> HTTP/1.1`, header lines (a line starting with whitespace continues the
 * previous header; the line break is kept so canonicalisation has to collapse it), a blank line,
 * then the body.
 */
export function parseSuiteRequest(text: string): SuiteRequest {
  const lines = text.split("\n");
  const requestLine = lines[0] ?? "";
  const firstSpace = requestLine.indexOf(" ");
  const versionAt = requestLine.lastIndexOf(" HTTP/");
  const method = requestLine.slice(0, firstSpace);
  const target = requestLine.slice(firstSpace + 1, versionAt);
  const q = target.indexOf("?");
  const headers: Array<[string, string]> = [];
  let i = 1;
  for (; i < lines.length; i++) {
    const line = lines[i] as string;
    if (line === "") break;
    if (/^[ \t]/.test(line) && headers.length > 0) {
      const last = headers[headers.length - 1] as [string, string];
      last[1] = `${last[1]}\n${line}`;
      continue;
    }
    const colon = line.indexOf(":");
    headers.push([line.slice(0, colon), line.slice(colon + 1)]);
  }
  return {
    method,
    path: q < 0 ? target : target.slice(0, q),
    query: q < 0 ? "" : target.slice(q + 1),
    headers,
    body: lines.slice(i + 1).join("\n"),
  };
}

/**
 * The suite writes paths decoded (`/example space/`). Its normalize=true cases expect the
 * signer to encode that path once more (the double-encoding services, where the given path is
 * what the signer sees), so it is fed as the wire path. Its normalize=false cases are S3-style:
 * what goes on the wire is the path encoded once, and that is signed verbatim.
 */
export function suiteWireRequest(req: SuiteRequest, normalize: boolean, extraHeaders: Array<[string, string]> = []): WireRequest {
  const rawPath = normalize ? req.path : req.path.split("/").map(uriEncode).join("/");
  return { method: req.method, rawPath, rawQuery: req.query, headers: [...req.headers, ...extraHeaders] };
}
