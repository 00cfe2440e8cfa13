/**
 * signRequest computes SigV4 itself (node:crypto, cached signing key). This checks it against
 * @smithy/signature-v4 — the library it replaced on the hot path — for arbitrary requests: both
 * must produce the same Authorization header, byte for byte. The reference below is the previous
 * implementation, which delegated all SigV4 math to that library.
 */
import { Hash } from "@smithy/hash-node";
import { SignatureV4 } from "@smithy/signature-v4";
import type { HttpRequest } from "@smithy/types";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EMPTY_SHA256, H_CONTENT_SHA256, SINGLE_ENCODE_SERVICES, UNSIGNED_PAYLOAD } from "./constants.js";
import { selectSignedHeaders } from "./selectSignedHeaders.js";
import { deriveSigningKey, signingKeyFor } from "./signingKey.js";
import { signRequest, signRequestSync, type SignInput } from "./signRequest.js";
import type { DecodedQuery } from "./splitPath.js";
import type { Credentials } from "./types.js";

const Sha256 = Hash.bind(null, "sha256");

/** The Authorization header @smithy/signature-v4 computes for the same input. */
async function smithyAuthorization(input: SignInput): Promise<string> {
  const s3Style = input.singleEncodePath ?? SINGLE_ENCODE_SERVICES.has(input.service);
  const signer = new SignatureV4({
    service: input.service,
    region: input.region,
    credentials: input.credentials,
    sha256: Sha256,
    uriEscapePath: !s3Style,
    applyChecksum: false,
  });
  const headers = selectSignedHeaders(input.headers, input.host, input.clientSignedHeaders, input.signContentLength);
  if (input.sendContentSha256 ?? true) headers[H_CONTENT_SHA256] = input.payloadHash;
  const request: HttpRequest = { method: input.method, protocol: "https:", hostname: input.host, path: input.path, query: input.query, headers };
  const signed = await signer.sign(request, { signingDate: input.now, signableHeaders: new Set(Object.keys(headers)) });
  return signed.headers.authorization as string;
}

const token = fc.stringMatching(/^[a-z0-9!#$%&'*+.^_`|~-]{1,12}$/);
const headerName = fc.oneof(
  token,
  token.map((t) => `x-amz-${t}`),
  fc.constantFrom("content-type", "content-md5", "content-encoding", "content-length", "date", "x-amz-security-token", "x-amz-date", "authorization", "user-agent", "cache-control", "x-forwarded-for", "range", "if-match", "expect"),
);
/** Values as headers.ts can produce them: any text without CR/LF/NUL, spaces and tabs anywhere. */
const headerValue = fc.oneof(
  fc.string({ maxLength: 30 }).filter((v) => !/[\r\n\0]/.test(v)),
  fc.stringMatching(/^[ \t]{0,3}[a-z0-9 \t/=;,-]{0,20}[ \t]{0,3}$/),
  fc.string({ unit: "grapheme", maxLength: 10 }),
);
const queryText = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: "grapheme", maxLength: 6 }), fc.constantFrom("x-id", "X-Amz-Signature", "a b", "*", "~", "+", "!'()"));
const query: fc.Arbitrary<DecodedQuery> = fc
  .array(fc.tuple(queryText, fc.oneof(queryText, fc.array(queryText, { minLength: 1, maxLength: 3 }))), { maxLength: 5 })
  .map((pairs) => {
    const q = Object.create(null) as DecodedQuery;
    // smithy builds the canonical query in a plain object, where "__proto__" is the prototype
    // setter: it drops that parameter from the signature (AWS signs it). Pinned separately below.
    for (const [k, v] of pairs) if (k !== "__proto__") q[k] = v;
    return q;
  });
const pathSegment = fc.oneof(fc.stringMatching(/^[A-Za-z0-9%._~!$&'()*+,;=:@ -]{0,10}$/), fc.constantFrom(".", "..", "", "a b", "%2F", "ü"));
const path = fc.array(pathSegment, { maxLength: 6 }).map((segs) => `/${segs.join("/")}`);
const credentials: fc.Arbitrary<Credentials> = fc.record(
  {
    accessKeyId: fc.stringMatching(/^[A-Z0-9]{16,20}$/),
    secretAccessKey: fc.string({ minLength: 1, maxLength: 40 }),
    sessionToken: fc.string({ minLength: 1, maxLength: 40 }),
  },
  { requiredKeys: ["accessKeyId", "secretAccessKey"] },
);

const signInput: fc.Arbitrary<SignInput> = fc
  .record({
    method: fc.constantFrom("GET", "PUT", "POST", "DELETE", "HEAD", "PATCH"),
    host: fc.constantFrom("bucket.s3.eu-west-1.amazonaws.com", "dynamodb.us-east-1.amazonaws.com", "example.com:8443"),
    path,
    query,
    headers: fc.array(fc.tuple(headerName, headerValue), { maxLength: 8 }),
    signedExtra: fc.array(headerName, { maxLength: 4 }),
    signContentLength: fc.boolean(),
    payloadHash: fc.oneof(fc.constant(UNSIGNED_PAYLOAD), fc.constant(EMPTY_SHA256), fc.stringMatching(/^[0-9a-f]{64}$/)),
    service: fc.constantFrom("s3", "s3express", "dynamodb", "execute-api", "bedrock"),
    singleEncodePath: fc.option(fc.boolean(), { nil: undefined }),
    region: fc.constantFrom("us-east-1", "eu-west-1", "cn-north-1"),
    credentials,
    now: fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2099-12-31T23:59:59Z"), noInvalidDate: true }),
  })
  .map((r) => {
    const headers = new Map<string, string>();
    for (const [k, v] of r.headers) headers.set(k, headers.has(k) ? `${headers.get(k) as string},${v}` : v);
    return {
      method: r.method,
      host: r.host,
      path: r.path,
      query: r.query,
      headers,
      clientSignedHeaders: [...r.headers.map(([k]) => k).filter((_, i) => i % 2 === 0), ...r.signedExtra],
      signContentLength: r.signContentLength,
      payloadHash: r.payloadHash,
      service: r.service,
      singleEncodePath: r.singleEncodePath,
      region: r.region,
      credentials: r.credentials,
      now: r.now,
    };
  });

describe("signRequest agrees with @smithy/signature-v4", () => {
  it("same Authorization for arbitrary requests (property)", async () => {
    await fc.assert(
      fc.asyncProperty(signInput, async (input) => {
        const ours = signRequestSync(input);
        const theirs = await smithyAuthorization(input);
        expect(ours.setHeaders[0]).toEqual(["authorization", theirs]);
        expect(theirs).toContain(`Signature=${ours.signature}`);
        expect(theirs).toContain(`SignedHeaders=${ours.signedHeaderNames},`);
        expect(theirs).toContain(`/${ours.scope},`);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 400) },
    );
  });

  it("same answer from the promise form, and one x-amz-date per second", async () => {
    const input: SignInput = {
      method: "GET",
      host: "bucket.s3.eu-west-1.amazonaws.com",
      path: "/k",
      query: Object.create(null) as DecodedQuery,
      headers: new Map([["x-amz-meta-a", "  two  spaces\tand tab "]]),
      clientSignedHeaders: [],
      signContentLength: true,
      payloadHash: UNSIGNED_PAYLOAD,
      service: "s3",
      region: "eu-west-1",
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "tok" },
      now: new Date("2026-03-04T05:06:07.890Z"),
    };
    const a = await signRequest(input);
    expect(a).toEqual(signRequestSync(input));
    expect(a.amzDate).toBe("20260304T050607Z");
    expect(signRequestSync({ ...input, now: new Date("2026-03-04T05:06:08.001Z") }).amzDate).toBe("20260304T050608Z");
    expect(a.setHeaders[0]?.[1]).toBe(await smithyAuthorization(input));
    await expect(signRequest({ ...input, now: new Date(Number.NaN) })).rejects.toThrow();
  });
});

describe("signRequest where it knowingly differs from @smithy/signature-v4", () => {
  it("signs a query parameter named __proto__ (smithy silently leaves it out)", () => {
    const base: SignInput = {
      method: "GET",
      host: "bucket.s3.eu-west-1.amazonaws.com",
      path: "/k",
      query: Object.create(null) as DecodedQuery,
      headers: new Map(),
      clientSignedHeaders: [],
      signContentLength: true,
      payloadHash: UNSIGNED_PAYLOAD,
      service: "s3",
      region: "eu-west-1",
      credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret" },
      now: new Date("2026-03-04T05:06:07Z"),
    };
    const withProto = Object.create(null) as DecodedQuery;
    withProto["__proto__"] = "x";
    const renamed = Object.create(null) as DecodedQuery;
    renamed["__proto_x"] = "x";
    const plain = signRequestSync(base).signature;
    const proto = signRequestSync({ ...base, query: withProto }).signature;
    expect(proto).not.toBe(plain);
    expect(proto).not.toBe(signRequestSync({ ...base, query: renamed }).signature);
  });
});

describe("signingKeyFor", () => {
  const creds: Credentials = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY" };

  it("derives the key of the SigV4 documentation example", () => {
    // AWS General Reference, "Examples of how to derive a signing key for Signature Version 4".
    expect(deriveSigningKey(creds.secretAccessKey, "20120215", "us-east-1", "iam").toString("hex")).toBe(
      "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d",
    );
  });

  it("returns the cached key for the same set, a new one for another date, region, service or secret", () => {
    const k1 = signingKeyFor(creds, "20260101", "eu-west-1", "s3");
    expect(signingKeyFor(creds, "20260101", "eu-west-1", "s3")).toBe(k1);
    expect(k1.equals(deriveSigningKey(creds.secretAccessKey, "20260101", "eu-west-1", "s3"))).toBe(true);
    expect(signingKeyFor(creds, "20260102", "eu-west-1", "s3").equals(k1)).toBe(false);
    expect(signingKeyFor(creds, "20260101", "eu-west-2", "s3").equals(k1)).toBe(false);
    expect(signingKeyFor(creds, "20260101", "eu-west-1", "sqs").equals(k1)).toBe(false);
    const other = { ...creds, secretAccessKey: "another" };
    expect(signingKeyFor(other, "20260101", "eu-west-1", "s3").equals(deriveSigningKey("another", "20260101", "eu-west-1", "s3"))).toBe(true);
    // An object changed in place (never done by countersign) is not served a stale key.
    const mutable = { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "first" };
    const before = signingKeyFor(mutable, "20260101", "eu-west-1", "s3");
    mutable.secretAccessKey = "second";
    const after = signingKeyFor(mutable, "20260101", "eu-west-1", "s3");
    expect(after.equals(before)).toBe(false);
    expect(after.equals(deriveSigningKey("second", "20260101", "eu-west-1", "s3"))).toBe(true);
  });
});
