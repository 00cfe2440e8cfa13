/**
 * In-memory S3: buckets, objects, multipart uploads, answered with S3's XML. Authentication is
 * done before this module is reached; it sees a decoded body and a decoded key.
 */
import { createHash, randomBytes } from "node:crypto";
import type { CollectedBody } from "./body.js";
import { checksumAlgorithmOfHeader } from "./checksums.js";
import { S3_NAMESPACE, awsError, xmlElement, xmlEscape, type AwsError } from "./errors.js";
import { headerValue, percentDecode, uriEncode, type HeaderList } from "./verifier.js";

export interface StoredObject {
  bucket: string;
  key: string;
  size: number;
  /** Quoted, as S3 returns it. */
  etag: string;
  md5Hex: string;
  sha256Hex: string;
  /** Absent when the fake runs with `discardBodies`. */
  body?: Buffer;
  contentType: string;
  /** `x-amz-meta-*` headers, lowercase names without the prefix. */
  metadata: Record<string, string>;
  /** content-encoding (aws-chunked removed), cache-control, content-disposition, content-language, expires. */
  otherHeaders: Record<string, string>;
  lastModified: Date;
}

interface StoredPart {
  partNumber: number;
  size: number;
  etag: string;
  md5Hex: string;
  body?: Buffer;
}

interface MultipartUpload {
  uploadId: string;
  key: string;
  contentType: string;
  metadata: Record<string, string>;
  otherHeaders: Record<string, string>;
  parts: Map<number, StoredPart>;
}

interface Bucket {
  name: string;
  region: string;
  created: Date;
  objects: Map<string, StoredObject>;
  uploads: Map<string, MultipartUpload>;
}

export interface S3Request {
  method: string;
  /** Bucket from the virtual host, or from the first path segment. */
  bucket?: string;
  /** Decoded once from the wire path; `undefined` for bucket-level requests. */
  key?: string;
  query: Map<string, string>;
  headers: HeaderList;
  body: CollectedBody;
  region: string;
  now: Date;
}

export interface S3Response {
  status: number;
  headers: Record<string, string>;
  body?: Buffer | string;
  /** Operation name, for the request record. */
  operation: string;
}

const MIN_PART_SIZE = 5 * 1024 * 1024;
const STORED_HEADERS = ["cache-control", "content-disposition", "content-language", "expires"];

/** Splits a path-style or virtual-hosted S3 wire path into bucket and (decoded) key. */
export function s3Address(rawPath: string, virtualBucket: string | undefined): { bucket?: string; key?: string } {
  const path = rawPath.startsWith("/") ? rawPath.slice(1) : rawPath;
  if (virtualBucket !== undefined) return { bucket: virtualBucket, ...(path === "" ? {} : { key: percentDecode(path) }) };
  if (path === "") return {};
  const slash = path.indexOf("/");
  if (slash < 0) return { bucket: percentDecode(path) };
  const key = path.slice(slash + 1);
  return { bucket: percentDecode(path.slice(0, slash)), ...(key === "" ? {} : { key: percentDecode(key) }) };
}

function xmlDoc(root: string, inner: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<${root} xmlns="${S3_NAMESPACE}">${inner}</${root}>`;
}

function xmlUnescape(value: string): string {
  return value.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_m, e: string) => {
    if (e.startsWith("#x")) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith("#")) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return ({ amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" } as Record<string, string>)[e] ?? "";
  });
}

function xmlChildren(xml: string, tag: string): string[] {
  const re = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, "g");
  return [...xml.matchAll(re)].map((m) => m[1] as string);
}

function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function quoteEtag(md5Hex: string): string {
  return `"${md5Hex}"`;
}

function metadataOf(headers: HeaderList): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (lower.startsWith("x-amz-meta-")) meta[lower.slice("x-amz-meta-".length)] = value.trim();
  }
  return meta;
}

function otherHeadersOf(headers: HeaderList): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of STORED_HEADERS) {
    const v = headerValue(headers, name);
    if (v !== undefined) out[name] = v;
  }
  const encoding = headerValue(headers, "content-encoding");
  if (encoding !== undefined) {
    const kept = encoding
      .split(",")
      .map((t) => t.trim())
      .filter((t) => t !== "" && t.toLowerCase() !== "aws-chunked");
    if (kept.length > 0) out["content-encoding"] = kept.join(",");
  }
  return out;
}

function objectHeaders(obj: StoredObject): Record<string, string> {
  const headers: Record<string, string> = {
    etag: obj.etag,
    "last-modified": obj.lastModified.toUTCString(),
    "content-type": obj.contentType,
    "accept-ranges": "bytes",
    ...obj.otherHeaders,
  };
  for (const [k, v] of Object.entries(obj.metadata)) headers[`x-amz-meta-${k}`] = v;
  return headers;
}

function encodeKeyForListing(value: string, encodingType: string | undefined): string {
  return encodingType === "url" ? value.split("/").map(uriEncode).join("/") : value;
}

/** Verifies Content-MD5 and any `x-amz-checksum-*` header against the body. */
function checkBodyDigests(headers: HeaderList, body: CollectedBody): AwsError | undefined {
  const md5 = headerValue(headers, "content-md5");
  if (md5 !== undefined && Buffer.from(md5, "base64").toString("hex") !== body.md5Hex) {
    return awsError(400, "BadDigest", "The Content-MD5 you specified did not match what we received.", "checksum");
  }
  for (const [name, value] of headers) {
    const algorithm = checksumAlgorithmOfHeader(name);
    if (!algorithm) continue;
    const actual = body.checksums[algorithm];
    if (actual !== undefined && actual !== value.trim()) {
      return awsError(400, "BadDigest", `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`, "checksum");
    }
  }
  return undefined;
}

export class S3Store {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly keepBodies: boolean) {}

  /** A stored object, for tests to inspect (body absent with discardBodies). */
  getObject(bucket: string, key: string): StoredObject | undefined {
    return this.buckets.get(bucket)?.objects.get(key);
  }

  listKeys(bucket: string): string[] {
    return [...(this.buckets.get(bucket)?.objects.keys() ?? [])].sort(compareKeys);
  }

  bucketNames(): string[] {
    return [...this.buckets.keys()].sort();
  }

  createBucket(name: string, region = "us-east-1", now = new Date()): void {
    if (!this.buckets.has(name)) this.buckets.set(name, { name, region, created: now, objects: new Map(), uploads: new Map() });
  }

  handle(req: S3Request): S3Response | AwsError {
    if (req.bucket === undefined) {
      if (req.method === "GET") return this.listBuckets();
      return awsError(405, "MethodNotAllowed", "The specified method is not allowed against this resource.", "operation");
    }
    if (req.key === undefined) return this.handleBucket(req, req.bucket);
    return this.handleObject(req, req.bucket, req.key);
  }

  // -- bucket level --------------------------------------------------------------------------

  private handleBucket(req: S3Request, name: string): S3Response | AwsError {
    const q = req.query;
    if (req.method === "PUT" && q.size === 0) {
      this.createBucket(name, req.region, req.now);
      return { status: 200, headers: { location: `/${name}` }, operation: "CreateBucket" };
    }
    const bucket = this.buckets.get(name);
    if (!bucket) return noSuchBucket(name);
    if (req.method === "HEAD") return { status: 200, headers: { "x-amz-bucket-region": bucket.region }, operation: "HeadBucket" };
    if (req.method === "GET" && q.has("location")) {
      const inner = bucket.region === "us-east-1" ? "" : xmlEscape(bucket.region);
      return { status: 200, headers: { "content-type": "application/xml" }, body: xmlDoc("LocationConstraint", inner), operation: "GetBucketLocation" };
    }
    if (req.method === "GET") return this.listObjects(bucket, q);
    if (req.method === "POST" && q.has("delete")) return this.deleteObjects(bucket, req.body);
    if (req.method === "DELETE" && q.size === 0) {
      if (bucket.objects.size > 0) return awsError(409, "BucketNotEmpty", "The bucket you tried to delete is not empty", "operation");
      this.buckets.delete(name);
      return { status: 204, headers: {}, operation: "DeleteBucket" };
    }
    return notImplemented();
  }

  private listBuckets(): S3Response {
    const items = [...this.buckets.values()]
      .sort((a, b) => compareKeys(a.name, b.name))
      .map((b) => `<Bucket>${xmlElement("Name", b.name)}${xmlElement("CreationDate", b.created.toISOString())}</Bucket>`)
      .join("");
    const body = xmlDoc("ListAllMyBucketsResult", `<Owner><ID>fakeaws</ID><DisplayName>fakeaws</DisplayName></Owner><Buckets>${items}</Buckets>`);
    return { status: 200, headers: { "content-type": "application/xml" }, body, operation: "ListBuckets" };
  }

  private listObjects(bucket: Bucket, q: Map<string, string>): S3Response | AwsError {
    const v2 = q.get("list-type") === "2";
    const prefix = q.get("prefix") ?? "";
    const delimiter = q.get("delimiter") ?? "";
    const encodingType = q.get("encoding-type");
    const maxKeysText = q.get("max-keys") ?? "1000";
    if (!/^\d+$/.test(maxKeysText)) return awsError(400, "InvalidArgument", "Provided max-keys not an integer or within integer range", "operation");
    const maxKeys = Math.min(Number(maxKeysText), 1000);
    const token = q.get("continuation-token");
    const startAfter = v2 ? (token !== undefined ? Buffer.from(token, "base64url").toString("utf8") : (q.get("start-after") ?? "")) : (q.get("marker") ?? "");

    const contents: StoredObject[] = [];
    const prefixes: string[] = [];
    let truncated = false;
    let lastReturned = "";
    for (const key of [...bucket.objects.keys()].sort(compareKeys)) {
      if (!key.startsWith(prefix) || (startAfter !== "" && compareKeys(key, startAfter) <= 0)) continue;
      let commonPrefix: string | undefined;
      if (delimiter !== "") {
        const at = key.indexOf(delimiter, prefix.length);
        if (at >= 0) commonPrefix = key.slice(0, at + delimiter.length);
      }
      if (commonPrefix !== undefined && prefixes[prefixes.length - 1] === commonPrefix) continue;
      if (contents.length + prefixes.length >= maxKeys) {
        truncated = true;
        break;
      }
      if (commonPrefix !== undefined) {
        prefixes.push(commonPrefix);
        lastReturned = `${commonPrefix}\u{10ffff}`;
      } else {
        contents.push(bucket.objects.get(key) as StoredObject);
        lastReturned = key;
      }
    }
    const enc = (s: string): string => encodeKeyForListing(s, encodingType);
    const parts: string[] = [xmlElement("Name", bucket.name), xmlElement("Prefix", enc(prefix))];
    if (delimiter !== "") parts.push(xmlElement("Delimiter", enc(delimiter)));
    parts.push(xmlElement("MaxKeys", String(maxKeys)));
    if (encodingType !== undefined) parts.push(xmlElement("EncodingType", encodingType));
    parts.push(xmlElement("IsTruncated", String(truncated)));
    if (v2) {
      parts.push(xmlElement("KeyCount", String(contents.length + prefixes.length)));
      if (token !== undefined) parts.push(xmlElement("ContinuationToken", token));
      if (q.has("start-after")) parts.push(xmlElement("StartAfter", enc(q.get("start-after") ?? "")));
      if (truncated) parts.push(xmlElement("NextContinuationToken", Buffer.from(lastReturned, "utf8").toString("base64url")));
    } else {
      parts.push(xmlElement("Marker", enc(q.get("marker") ?? "")));
      if (truncated && delimiter !== "") parts.push(xmlElement("NextMarker", enc(lastReturned.replace(/\u{10ffff}$/u, ""))));
    }
    for (const o of contents) {
      parts.push(
        `<Contents>${xmlElement("Key", enc(o.key))}${xmlElement("LastModified", o.lastModified.toISOString())}${xmlElement("ETag", o.etag)}` +
          `${xmlElement("Size", String(o.size))}<StorageClass>STANDARD</StorageClass></Contents>`,
      );
    }
    for (const p of prefixes) parts.push(`<CommonPrefixes>${xmlElement("Prefix", enc(p))}</CommonPrefixes>`);
    return {
      status: 200,
      headers: { "content-type": "application/xml" },
      body: xmlDoc("ListBucketResult", parts.join("")),
      operation: v2 ? "ListObjectsV2" : "ListObjects",
    };
  }

  private deleteObjects(bucket: Bucket, body: CollectedBody): S3Response {
    const xml = body.buffer?.toString("utf8") ?? "";
    const quiet = /<Quiet>\s*true\s*<\/Quiet>/i.test(xml);
    const deleted = xmlChildren(xml, "Object").map((o) => xmlUnescape(xmlChildren(o, "Key")[0] ?? ""));
    for (const key of deleted) bucket.objects.delete(key);
    const inner = quiet ? "" : deleted.map((k) => `<Deleted>${xmlElement("Key", k)}</Deleted>`).join("");
    return { status: 200, headers: { "content-type": "application/xml" }, body: xmlDoc("DeleteResult", inner), operation: "DeleteObjects" };
  }

  // -- object level --------------------------------------------------------------------------

  private handleObject(req: S3Request, bucketName: string, key: string): S3Response | AwsError {
    const q = req.query;
    if (req.method === "PUT" && q.has("uploadId")) return this.uploadPart(req, bucketName, key);
    if (req.method === "PUT" && headerValue(req.headers, "x-amz-copy-source") !== undefined) return this.copyObject(req, bucketName, key);
    if (req.method === "PUT") return this.putObject(req, bucketName, key);
    if (req.method === "POST" && q.has("uploads")) return this.createMultipartUpload(req, bucketName, key);
    if (req.method === "POST" && q.has("uploadId")) return this.completeMultipartUpload(req, bucketName, key);
    if (req.method === "DELETE" && q.has("uploadId")) return this.abortMultipartUpload(req, bucketName);
    const bucket = this.buckets.get(bucketName);
    if (!bucket) return noSuchBucket(bucketName);
    if (req.method === "DELETE") {
      bucket.objects.delete(key);
      return { status: 204, headers: {}, operation: "DeleteObject" };
    }
    if (req.method === "GET" || req.method === "HEAD") return this.getObjectResponse(req, bucket, key);
    return notImplemented();
  }

  private bucketForWrite(req: S3Request, name: string): Bucket {
    this.createBucket(name, req.region, req.now);
    return this.buckets.get(name) as Bucket;
  }

  private putObject(req: S3Request, bucketName: string, key: string): S3Response | AwsError {
    const digestError = checkBodyDigests(req.headers, req.body);
    if (digestError) return digestError;
    const bucket = this.bucketForWrite(req, bucketName);
    const obj: StoredObject = {
      bucket: bucketName,
      key,
      size: req.body.size,
      etag: quoteEtag(req.body.md5Hex),
      md5Hex: req.body.md5Hex,
      sha256Hex: req.body.sha256Hex,
      ...(this.keepBodies && req.body.buffer ? { body: req.body.buffer } : {}),
      contentType: headerValue(req.headers, "content-type") ?? "binary/octet-stream",
      metadata: metadataOf(req.headers),
      otherHeaders: otherHeadersOf(req.headers),
      lastModified: req.now,
    };
    bucket.objects.set(key, obj);
    return { status: 200, headers: { etag: obj.etag }, operation: "PutObject" };
  }

  private copyObject(req: S3Request, bucketName: string, key: string): S3Response | AwsError {
    const source = percentDecode((headerValue(req.headers, "x-amz-copy-source") ?? "").replace(/^\//, "").split("?")[0] ?? "");
    const slash = source.indexOf("/");
    const src = slash > 0 ? this.getObject(source.slice(0, slash), source.slice(slash + 1)) : undefined;
    if (!src) return awsError(404, "NoSuchKey", "The specified key does not exist.", "operation");
    const replace = headerValue(req.headers, "x-amz-metadata-directive") === "REPLACE";
    const obj: StoredObject = {
      ...src,
      bucket: bucketName,
      key,
      lastModified: req.now,
      ...(replace
        ? {
            metadata: metadataOf(req.headers),
            contentType: headerValue(req.headers, "content-type") ?? "binary/octet-stream",
            otherHeaders: otherHeadersOf(req.headers),
          }
        : {}),
    };
    this.bucketForWrite(req, bucketName).objects.set(key, obj);
    const body = xmlDoc("CopyObjectResult", `${xmlElement("LastModified", req.now.toISOString())}${xmlElement("ETag", obj.etag)}`);
    return { status: 200, headers: { "content-type": "application/xml" }, body, operation: "CopyObject" };
  }

  private getObjectResponse(req: S3Request, bucket: Bucket, key: string): S3Response | AwsError {
    const operation = req.method === "HEAD" ? "HeadObject" : "GetObject";
    const obj = bucket.objects.get(key);
    if (!obj) return awsError(404, "NoSuchKey", "The specified key does not exist.", "operation", { Key: key });
    const headers = objectHeaders(obj);
    const range = headerValue(req.headers, "range");
    let start = 0;
    let end = obj.size - 1;
    let status = 200;
    if (range !== undefined) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
      const parsed = m ? parseRange(m[1] as string, m[2] as string, obj.size) : undefined;
      if (!parsed) return awsError(416, "InvalidRange", "The requested range is not satisfiable", "operation", { RangeRequested: range, ActualObjectSize: String(obj.size) });
      [start, end] = parsed;
      status = 206;
      headers["content-range"] = `bytes ${start}-${end}/${obj.size}`;
    }
    headers["content-length"] = String(Math.max(0, end - start + 1));
    if (req.method === "HEAD") return { status, headers, operation };
    if (!obj.body) {
      return awsError(500, "InternalError", "fakeaws: this object's bytes were discarded (discardBodies); inspect fake.s3.getObject() instead", "operation");
    }
    return { status, headers, body: obj.body.subarray(start, end + 1), operation };
  }

  // -- multipart -----------------------------------------------------------------------------

  private createMultipartUpload(req: S3Request, bucketName: string, key: string): S3Response {
    const bucket = this.bucketForWrite(req, bucketName);
    const uploadId = randomBytes(16).toString("base64url");
    bucket.uploads.set(uploadId, {
      uploadId,
      key,
      contentType: headerValue(req.headers, "content-type") ?? "binary/octet-stream",
      metadata: metadataOf(req.headers),
      otherHeaders: otherHeadersOf(req.headers),
      parts: new Map(),
    });
    const body = xmlDoc("InitiateMultipartUploadResult", `${xmlElement("Bucket", bucketName)}${xmlElement("Key", key)}${xmlElement("UploadId", uploadId)}`);
    return { status: 200, headers: { "content-type": "application/xml" }, body, operation: "CreateMultipartUpload" };
  }

  private findUpload(req: S3Request, bucketName: string): MultipartUpload | AwsError {
    const upload = this.buckets.get(bucketName)?.uploads.get(req.query.get("uploadId") ?? "");
    return (
      upload ??
      awsError(404, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.", "operation")
    );
  }

  private uploadPart(req: S3Request, bucketName: string, key: string): S3Response | AwsError {
    const upload = this.findUpload(req, bucketName);
    if ("status" in upload) return upload;
    if (upload.key !== key) return awsError(400, "InvalidRequest", "The upload ID does not belong to this key", "operation");
    const partNumber = Number(req.query.get("partNumber"));
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10000) {
      return awsError(400, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive", "operation");
    }
    const digestError = checkBodyDigests(req.headers, req.body);
    if (digestError) return digestError;
    const etag = quoteEtag(req.body.md5Hex);
    upload.parts.set(partNumber, {
      partNumber,
      size: req.body.size,
      etag,
      md5Hex: req.body.md5Hex,
      ...(this.keepBodies && req.body.buffer ? { body: req.body.buffer } : {}),
    });
    return { status: 200, headers: { etag }, operation: "UploadPart" };
  }

  private completeMultipartUpload(req: S3Request, bucketName: string, key: string): S3Response | AwsError {
    const upload = this.findUpload(req, bucketName);
    if ("status" in upload) return upload;
    const xml = req.body.buffer?.toString("utf8") ?? "";
    const listed = xmlChildren(xml, "Part").map((p) => ({
      partNumber: Number(xmlChildren(p, "PartNumber")[0]),
      etag: xmlUnescape(xmlChildren(p, "ETag")[0] ?? "").trim(),
    }));
    if (listed.length === 0) return awsError(400, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema", "operation");
    const parts: StoredPart[] = [];
    for (const [i, l] of listed.entries()) {
      if (i > 0 && l.partNumber <= (listed[i - 1] as { partNumber: number }).partNumber) {
        return awsError(400, "InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.", "operation");
      }
      const part = upload.parts.get(l.partNumber);
      if (!part || part.etag.replace(/"/g, "") !== l.etag.replace(/"/g, "")) {
        return awsError(400, "InvalidPart", "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not have matched the part's entity tag.", "operation");
      }
      if (i < listed.length - 1 && part.size < MIN_PART_SIZE) {
        return awsError(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.", "operation");
      }
      parts.push(part);
    }
    const md5s = Buffer.concat(parts.map((p) => Buffer.from(p.md5Hex, "hex")));
    const etag = `"${createHash("md5").update(md5s).digest("hex")}-${parts.length}"`;
    const keep = this.keepBodies && parts.every((p) => p.body);
    const body = keep ? Buffer.concat(parts.map((p) => p.body as Buffer)) : undefined;
    const bucket = this.bucketForWrite(req, bucketName);
    bucket.objects.set(key, {
      bucket: bucketName,
      key,
      size: parts.reduce((n, p) => n + p.size, 0),
      etag,
      md5Hex: body ? createHash("md5").update(body).digest("hex") : "",
      sha256Hex: body ? createHash("sha256").update(body).digest("hex") : "",
      ...(body ? { body } : {}),
      contentType: upload.contentType,
      metadata: upload.metadata,
      otherHeaders: upload.otherHeaders,
      lastModified: req.now,
    });
    bucket.uploads.delete(upload.uploadId);
    const xmlBody = xmlDoc(
      "CompleteMultipartUploadResult",
      `${xmlElement("Location", `/${bucketName}/${key}`)}${xmlElement("Bucket", bucketName)}${xmlElement("Key", key)}${xmlElement("ETag", etag)}`,
    );
    return { status: 200, headers: { "content-type": "application/xml" }, body: xmlBody, operation: "CompleteMultipartUpload" };
  }

  private abortMultipartUpload(req: S3Request, bucketName: string): S3Response | AwsError {
    const upload = this.findUpload(req, bucketName);
    if ("status" in upload) return upload;
    this.buckets.get(bucketName)?.uploads.delete(upload.uploadId);
    return { status: 204, headers: {}, operation: "AbortMultipartUpload" };
  }
}

function parseRange(from: string, to: string, size: number): [number, number] | undefined {
  if (from === "" && to === "") return undefined;
  if (from === "") {
    const n = Number(to);
    return n === 0 || size === 0 ? undefined : [Math.max(0, size - n), size - 1];
  }
  const start = Number(from);
  const end = to === "" ? size - 1 : Math.min(Number(to), size - 1);
  return start >= size || end < start ? undefined : [start, end];
}

function noSuchBucket(name: string): AwsError {
  return awsError(404, "NoSuchBucket", "The specified bucket does not exist", "operation", { BucketName: name });
}

function notImplemented(): AwsError {
  return awsError(501, "NotImplemented", "A header or query you provided implies functionality that is not implemented (fakeaws)", "operation");
}
