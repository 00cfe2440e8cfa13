import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { AwsChunkedDecoder } from "./awsChunked.js";
import { checksumBase64, crc32ByTable, crc32Update, crc32cUpdate } from "./checksums.js";
import {
  parseSuiteRequest,
  readChunkedExample,
  readCaseFile,
  readContext,
  suiteCases,
  suiteWireRequest,
  type ChunkedUploadExample,
} from "./suite.js";
import {
  EMPTY_SHA256,
  PRESIGNED_SIGNATURE_PARAM,
  STREAMING_SIGNED_PAYLOAD,
  STREAMING_SIGNED_PAYLOAD_TRAILER,
  STREAMING_UNSIGNED_PAYLOAD_TRAILER,
  buildCanonicalRequest,
  buildStringToSign,
  canonicalHeaderValue,
  canonicalQueryString,
  canonicalTrailerText,
  canonicalUri,
  checkSignature,
  chunkStringToSign,
  credentialScope,
  deriveSigningKey,
  formatAmzDate,
  hmacHex,
  normalizePath,
  parseAmzDate,
  parseAuthorizationHeader,
  parsePresignedQuery,
  percentDecode,
  sha256Hex,
  signaturesEqual,
  trailerStringToSign,
  uriEncode,
  type PathRules,
} from "./verifier.js";


const rulesFor = (normalize: boolean): PathRules => (normalize ? "normalize-and-double-encode" : "s3-single-encoding");

describe("official AWS SigV4 test suite (v4)", () => {
  const cases = suiteCases();

  it("has all 38 cases", () => {
    expect(cases).toHaveLength(38);
  });

  describe.each(cases)("%s", (name) => {
    const ctx = readContext(name);
    const amzDate = formatAmzDate(new Date(ctx.timestamp));
    const scope = credentialScope(amzDate.slice(0, 8), ctx.region, ctx.service);
    const key = deriveSigningKey(ctx.credentials.secret_access_key, amzDate.slice(0, 8), ctx.region, ctx.service);

    it("computes the expected canonical request, string to sign and signature from request.txt", () => {
      const req = parseSuiteRequest(readCaseFile(name, "request.txt"));
      const added: Array<[string, string]> = [["X-Amz-Date", amzDate]];
      if (ctx.credentials.token && !ctx.omit_session_token) added.push(["X-Amz-Security-Token", ctx.credentials.token]);
      if (ctx.sign_body) added.push(["X-Amz-Content-Sha256", sha256Hex(req.body)]);
      const wire = suiteWireRequest(req, ctx.normalize, added);
      const signedHeaders = wire.headers.map(([n]) => n.toLowerCase());
      const canonicalRequest = buildCanonicalRequest({
        request: wire,
        service: ctx.service,
        signedHeaders,
        payloadHash: sha256Hex(req.body),
        pathRules: rulesFor(ctx.normalize),
      });
      expect(canonicalRequest).toBe(readCaseFile(name, "header-canonical-request.txt"));
      const stringToSign = buildStringToSign(amzDate, scope, canonicalRequest);
      expect(stringToSign).toBe(readCaseFile(name, "header-string-to-sign.txt"));
      expect(hmacHex(key, stringToSign)).toBe(readCaseFile(name, "header-signature.txt").trim());
    });

    /** header-signed-request.txt checked from its own Authorization header, with its signature or `replace(signature)`. */
    function checkHeaderSigned(replace: (signature: string) => string = (sig) => sig) {
      const req = parseSuiteRequest(readCaseFile(name, "header-signed-request.txt"));
      const wire = suiteWireRequest(req, ctx.normalize);
      const auth = parseAuthorizationHeader(wire.headers.find(([n]) => n.toLowerCase() === "authorization")?.[1] ?? "");
      if (!auth.ok) throw new Error(auth.error);
      const check = checkSignature({
        request: wire,
        service: auth.value.service,
        signedHeaders: auth.value.signedHeaders,
        payloadHash: sha256Hex(req.body),
        pathRules: rulesFor(ctx.normalize),
        amzDate,
        scope,
        signingKey: key,
        providedSignature: replace(auth.value.signature),
      });
      return { accessKeyId: auth.value.accessKeyId, check };
    }

    it("verifies header-signed-request.txt end to end from its Authorization header", () => {
      const { accessKeyId, check } = checkHeaderSigned();
      expect(accessKeyId).toBe(ctx.credentials.access_key_id);
      expect(check.canonicalRequest).toBe(readCaseFile(name, "header-canonical-request.txt"));
      expect(check.matches).toBe(true);
    });

    it("verifies query-signed-request.txt (presigned) end to end", () => {
      const req = parseSuiteRequest(readCaseFile(name, "query-signed-request.txt"));
      const wire = suiteWireRequest(req, ctx.normalize);
      const auth = parsePresignedQuery(wire.rawQuery);
      if (!auth.ok) throw new Error(auth.error);
      expect(auth.value.expiresSeconds).toBe(ctx.expiration_in_seconds);
      const check = checkSignature({
        request: wire,
        service: auth.value.service,
        signedHeaders: auth.value.signedHeaders,
        payloadHash: sha256Hex(req.body),
        // omit_session_token: the token was appended to the URL after signing.
        omitQueryParams: ctx.omit_session_token ? [PRESIGNED_SIGNATURE_PARAM, "X-Amz-Security-Token"] : [PRESIGNED_SIGNATURE_PARAM],
        pathRules: rulesFor(ctx.normalize),
        amzDate: auth.value.amzDate,
        scope,
        signingKey: key,
        providedSignature: auth.value.signature,
      });
      expect(check.canonicalRequest).toBe(readCaseFile(name, "query-canonical-request.txt"));
      expect(check.stringToSign).toBe(readCaseFile(name, "query-string-to-sign.txt"));
      expect(check.matches).toBe(true);
    });

    it("rejects header-signed-request.txt with one signature character flipped", () => {
      const { check } = checkHeaderSigned((sig) => `${sig.slice(0, -1)}${sig.endsWith("0") ? "1" : "0"}`);
      expect(check.matches).toBe(false);
    });
  });
});


function encodeSignedChunks(sizes: number[], byte: string, signatures: string[]): Buffer {
  const parts: Buffer[] = [];
  sizes.forEach((size, i) => {
    parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${signatures[i]}\r\n`));
    if (size > 0) parts.push(Buffer.alloc(size, byte));
    parts.push(Buffer.from("\r\n"));
  });
  return Buffer.concat(parts);
}

describe("S3 chunked upload example (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)", () => {
  const ex = readChunkedExample();
  const date = ex.x_amz_date.slice(0, 8);

  it("computes the documented seed signature from the request headers", () => {
    if (!ex) return;
    const auth = parseAuthorizationHeader(ex.expected.authorization);
    if (!auth.ok) throw new Error(auth.error);
    expect(auth.value.signedHeaders.join(";")).toBe(ex.expected.signed_headers);
    const check = checkSignature({
      request: { method: ex.method, rawPath: ex.path, rawQuery: "", headers: Object.entries(ex.headers) },
      service: ex.service,
      signedHeaders: auth.value.signedHeaders,
      payloadHash: STREAMING_SIGNED_PAYLOAD,
      amzDate: ex.x_amz_date,
      scope: credentialScope(date, ex.region, ex.service),
      signingKey: deriveSigningKey(ex.credentials.secret_access_key, date, ex.region, ex.service),
      providedSignature: auth.value.signature,
    });
    expect(check.expectedSignature).toBe(ex.expected.seed_signature);
    expect(check.matches).toBe(true);
  });

  it("computes every documented chunk signature", () => {
    if (!ex) return;
    const key = deriveSigningKey(ex.credentials.secret_access_key, date, ex.region, ex.service);
    const scope = credentialScope(date, ex.region, ex.service);
    let previous = ex.expected.seed_signature;
    ex.chunk_sizes.forEach((size, i) => {
      const sig = hmacHex(key, chunkStringToSign(ex.x_amz_date, scope, previous, sha256Hex(Buffer.alloc(size, ex.chunk_data_byte))));
      expect(sig).toBe(ex.expected.chunk_signatures[i]);
      previous = sig;
    });
  });

  function decoderFor(e: ChunkedUploadExample, onData?: (b: Buffer) => void): AwsChunkedDecoder {
    return new AwsChunkedDecoder({
      mode: STREAMING_SIGNED_PAYLOAD,
      signing: {
        signingKey: deriveSigningKey(e.credentials.secret_access_key, date, e.region, e.service),
        amzDate: e.x_amz_date,
        scope: credentialScope(date, e.region, e.service),
        seedSignature: e.expected.seed_signature,
      },
      decodedContentLength: Number(e.headers["x-amz-decoded-content-length"]),
      ...(onData ? { onData } : {}),
    });
  }

  it("decodes and verifies the 66824-byte body fed in one piece", () => {
    if (!ex) return;
    const body = encodeSignedChunks(ex.chunk_sizes, ex.chunk_data_byte, ex.expected.chunk_signatures);
    expect(body.length).toBe(Number(ex.headers["content-length"]));
    const out: Buffer[] = [];
    const dec = decoderFor(ex, (b) => out.push(Buffer.from(b)));
    dec.write(body);
    const result = dec.end();
    expect(result).toEqual({
      ok: true,
      outcome: { decodedBytes: 66560, chunksVerified: 3, trailerVerified: false, trailers: [], checksumsVerified: [] },
    });
    expect(Buffer.concat(out).equals(Buffer.alloc(66560, "a"))).toBe(true);
  });

  it("decodes the same body split at arbitrary points (property)", () => {
    if (!ex) return;
    const body = encodeSignedChunks(ex.chunk_sizes, ex.chunk_data_byte, ex.expected.chunk_signatures);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: body.length }), { maxLength: 12 }), (cuts) => {
        const points = [...new Set([0, ...cuts, body.length])].sort((a, b) => a - b);
        let total = 0;
        const dec = decoderFor(ex, (b) => {
          total += b.length;
        });
        for (let i = 0; i + 1 < points.length; i++) dec.write(body.subarray(points[i], points[i + 1]));
        const result = dec.end();
        return result.ok && result.outcome.chunksVerified === 3 && total === 66560;
      }),
      { numRuns: 200 },
    );
  });

  it("rejects a body whose second chunk signature is corrupted, naming chunk 1", () => {
    if (!ex) return;
    const sigs = [...ex.expected.chunk_signatures];
    sigs[1] = `${"0".repeat(63)}1`;
    const dec = decoderFor(ex);
    dec.write(encodeSignedChunks(ex.chunk_sizes, ex.chunk_data_byte, sigs));
    const result = dec.end();
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.failure.code).toBe("SignatureDoesNotMatch");
    expect(result.failure.chunkIndex).toBe(1);
    expect(result.failure.stringToSign?.split("\n")[0]).toBe("AWS4-HMAC-SHA256-PAYLOAD");
  });

  it("rejects a body with one data byte changed", () => {
    if (!ex) return;
    const body = encodeSignedChunks(ex.chunk_sizes, ex.chunk_data_byte, ex.expected.chunk_signatures);
    body[100] = "b".charCodeAt(0);
    const dec = decoderFor(ex);
    dec.write(body);
    const result = dec.end();
    expect(result.ok ? "ok" : result.failure.code).toBe("SignatureDoesNotMatch");
  });

  it("rejects a body truncated before the final chunk", () => {
    if (!ex) return;
    const body = encodeSignedChunks(ex.chunk_sizes, ex.chunk_data_byte, ex.expected.chunk_signatures);
    const dec = decoderFor(ex);
    dec.write(body.subarray(0, body.length - 90));
    const result = dec.end();
    expect(result.ok ? "ok" : result.failure.code).toBe("IncompleteBody");
  });
});

describe("aws-chunked with trailers", () => {
  const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  const amzDate = "20130524T000000Z";
  const scope = credentialScope("20130524", "us-east-1", "s3");
  const key = deriveSigningKey(secret, "20130524", "us-east-1", "s3");
  const seed = "a".repeat(64);
  const payload = Buffer.alloc(10000, "x");

  function signedTrailerBody(trailerValue: string, tamperTrailerSig = false): Buffer {
    const sizes = [8192, 1808, 0];
    const parts: Buffer[] = [];
    let prev = seed;
    let offset = 0;
    for (const size of sizes) {
      const data = payload.subarray(offset, offset + size);
      offset += size;
      const sig = hmacHex(key, chunkStringToSign(amzDate, scope, prev, sha256Hex(data)));
      prev = sig;
      parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${sig}\r\n`), data);
      if (size > 0) parts.push(Buffer.from("\r\n"));
    }
    const trailerText = `x-amz-checksum-crc32:${trailerValue}\n`;
    let trailerSig = hmacHex(key, trailerStringToSign(amzDate, scope, prev, sha256Hex(trailerText)));
    if (tamperTrailerSig) trailerSig = trailerSig.replace(/^./, (c) => (c === "0" ? "1" : "0"));
    parts.push(Buffer.from(`x-amz-checksum-crc32:${trailerValue}\r\nx-amz-trailer-signature:${trailerSig}\r\n\r\n`));
    return Buffer.concat(parts);
  }

  const signedDecoder = (): AwsChunkedDecoder =>
    new AwsChunkedDecoder({
      mode: STREAMING_SIGNED_PAYLOAD_TRAILER,
      signing: { signingKey: key, amzDate, scope, seedSignature: seed },
      declaredTrailers: ["x-amz-checksum-crc32"],
      decodedContentLength: payload.length,
    });

  it("verifies every chunk, the trailer signature and the CRC32 trailer in signed-trailer mode", () => {
    const dec = signedDecoder();
    dec.write(signedTrailerBody(checksumBase64("crc32", payload)));
    const result = dec.end();
    expect(result).toEqual({
      ok: true,
      outcome: {
        decodedBytes: 10000,
        chunksVerified: 3,
        trailerVerified: true,
        trailers: [["x-amz-checksum-crc32", checksumBase64("crc32", payload)]],
        checksumsVerified: ["x-amz-checksum-crc32"],
      },
    });
  });

  it("rejects a tampered trailer signature", () => {
    const dec = signedDecoder();
    dec.write(signedTrailerBody(checksumBase64("crc32", payload), true));
    const result = dec.end();
    expect(result.ok ? "ok" : [result.failure.code, result.failure.stringToSign?.split("\n")[0]]).toEqual([
      "SignatureDoesNotMatch",
      "AWS4-HMAC-SHA256-TRAILER",
    ]);
  });

  it("rejects a correctly signed trailer whose CRC32 does not match the payload with BadDigest", () => {
    const dec = signedDecoder();
    dec.write(signedTrailerBody("AAAAAA=="));
    const result = dec.end();
    expect(result.ok ? "ok" : result.failure.code).toBe("BadDigest");
  });

  it("rejects a non-final chunk smaller than 8 KiB in signed mode", () => {
    const small = Buffer.alloc(100, "y");
    const sig1 = hmacHex(key, chunkStringToSign(amzDate, scope, seed, sha256Hex(small)));
    const sig2 = hmacHex(key, chunkStringToSign(amzDate, scope, sig1, sha256Hex(small)));
    const dec = new AwsChunkedDecoder({ mode: STREAMING_SIGNED_PAYLOAD, signing: { signingKey: key, amzDate, scope, seedSignature: seed } });
    dec.write(Buffer.from(`64;chunk-signature=${sig1}\r\n${small.toString()}\r\n64;chunk-signature=${sig2}\r\n`));
    expect(dec.failure?.code).toBe("InvalidChunkSizeError");
  });

  for (const algorithm of ["crc32", "crc32c", "sha1", "sha256"] as const) {
    it(`decodes STREAMING-UNSIGNED-PAYLOAD-TRAILER and checks an x-amz-checksum-${algorithm} trailer`, () => {
      const body = Buffer.concat([
        Buffer.from("5\r\nhello\r\n6\r\n world\r\n0\r\n"),
        Buffer.from(`x-amz-checksum-${algorithm}:${checksumBase64(algorithm, Buffer.from("hello world"))}\r\n\r\n`),
      ]);
      const out: Buffer[] = [];
      const dec = new AwsChunkedDecoder({
        mode: STREAMING_UNSIGNED_PAYLOAD_TRAILER,
        declaredTrailers: [`x-amz-checksum-${algorithm}`],
        decodedContentLength: 11,
        onData: (b) => out.push(Buffer.from(b)),
      });
      for (const byte of body) dec.write(Buffer.from([byte]));
      const result = dec.end();
      expect(result.ok && result.outcome.checksumsVerified).toEqual([`x-amz-checksum-${algorithm}`]);
      expect(Buffer.concat(out).toString()).toBe("hello world");
    });
  }

  it("rejects an unsigned-trailer body whose checksum trailer is wrong", () => {
    const dec = new AwsChunkedDecoder({ mode: STREAMING_UNSIGNED_PAYLOAD_TRAILER, declaredTrailers: ["x-amz-checksum-crc32"] });
    dec.write(Buffer.from(`5\r\nhello\r\n0\r\nx-amz-checksum-crc32:${checksumBase64("crc32", Buffer.from("HELLO"))}\r\n\r\n`));
    expect(dec.end()).toMatchObject({ ok: false, failure: { code: "BadDigest" } });
  });

  it("rejects a decoded size different from x-amz-decoded-content-length", () => {
    const dec = new AwsChunkedDecoder({ mode: STREAMING_UNSIGNED_PAYLOAD_TRAILER, decodedContentLength: 6 });
    dec.write(Buffer.from("5\r\nhello\r\n0\r\n\r\n"));
    expect(dec.end()).toMatchObject({ ok: false, failure: { code: "IncompleteBody" } });
  });

  it("accepts an unsigned body that ends right after 0\\r\\n with no trailers declared", () => {
    const dec = new AwsChunkedDecoder({ mode: STREAMING_UNSIGNED_PAYLOAD_TRAILER, decodedContentLength: 5 });
    dec.write(Buffer.from("5\r\nhello\r\n0\r\n"));
    expect(dec.end().ok).toBe(true);
  });

  it("rejects a chunk longer than its declared size", () => {
    const dec = new AwsChunkedDecoder({ mode: STREAMING_UNSIGNED_PAYLOAD_TRAILER });
    dec.write(Buffer.from("5\r\nhello!\r\n0\r\n\r\n"));
    expect(dec.failure?.code).toBe("IncompleteBody");
  });

  it("rejects an undeclared trailer", () => {
    const dec = new AwsChunkedDecoder({ mode: STREAMING_UNSIGNED_PAYLOAD_TRAILER, declaredTrailers: [] });
    dec.write(Buffer.from("0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"));
    expect(dec.failure?.code).toBe("InvalidRequest");
  });
});

describe("canonicalisation details", () => {
  it("encodes S3 paths verbatim and double-encodes other services' paths", () => {
    expect(canonicalUri("/bucket/a%20b/%2B//./..", "s3-single-encoding")).toBe("/bucket/a%20b/%2B//./..");
    expect(canonicalUri("/model/anthropic.claude-v2%3A1/invoke", "normalize-and-double-encode")).toBe("/model/anthropic.claude-v2%253A1/invoke");
    expect(canonicalUri("", "s3-single-encoding")).toBe("/");
  });

  it("normalises dot segments and repeated slashes", () => {
    expect(normalizePath("/a/./b/../c//d/")).toBe("/a/c/d/");
    expect(normalizePath("/..")).toBe("/");
    expect(normalizePath("")).toBe("/");
  });

  it("sorts query parameters by encoded key then value, encodes '+' and gives valueless keys '='", () => {
    expect(canonicalQueryString("b=2&a=z&a=y&c&d=%7e&e=a+b&f=%2F")).toBe("a=y&a=z&b=2&c=&d=~&e=a%2Bb&f=%2F");
  });

  it("uppercases percent-encoding hex and encodes UTF-8 bytes", () => {
    expect(uriEncode("ሴ é/")).toBe("%E1%88%B4%20%C3%A9%2F");
    expect(percentDecode("%e1%88%b4%zz")).toBe("ሴ%zz");
  });

  it("trims header values and collapses inner whitespace", () => {
    expect(canonicalHeaderValue("  a   b\t\n c  ")).toBe("a b c");
  });

  it("builds trailer text sorted with lowercase names", () => {
    expect(canonicalTrailerText([["X-Amz-Checksum-Sha256", " v2 "], ["x-amz-checksum-crc32", "v1"]])).toBe(
      "x-amz-checksum-crc32:v1\nx-amz-checksum-sha256:v2\n",
    );
  });

  it("canonical query round-trips any decoded key and value (property)", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (k, v) => {
        const raw = `${encodeURIComponent(k)}=${encodeURIComponent(v)}`;
        return canonicalQueryString(raw) === `${uriEncode(k)}=${uriEncode(v)}`;
      }),
    );
  });

  it("parses an Authorization header and rejects malformed ones with a reason", () => {
    const good = parseAuthorizationHeader(
      `AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=${"ab".repeat(32)}`,
    );
    expect(good).toEqual({
      ok: true,
      value: {
        algorithm: "AWS4-HMAC-SHA256",
        accessKeyId: "AKID",
        scopeDate: "20150830",
        region: "us-east-1",
        service: "sts",
        signedHeaders: ["host", "x-amz-date"],
        signature: "ab".repeat(32),
      },
    });
    expect(parseAuthorizationHeader("AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/sts, SignedHeaders=host, Signature=00")).toMatchObject({
      ok: false,
    });
    expect(parseAuthorizationHeader("AWS AKID:sig")).toMatchObject({ ok: false });
  });

  it("formats and parses x-amz-date", () => {
    expect(formatAmzDate(new Date("2015-08-30T12:36:00.123Z"))).toBe("20150830T123600Z");
    expect(parseAmzDate("20150830T123600Z")?.toISOString()).toBe("2015-08-30T12:36:00.000Z");
    expect(parseAmzDate("20150230T123600Z")).toBeUndefined();
  });

  it("compares signatures without throwing on different lengths", () => {
    expect(signaturesEqual("abc", "abc")).toBe(true);
    expect(signaturesEqual("abc", "abcd")).toBe(false);
  });

  it("hashes the empty string to EMPTY_SHA256", () => {
    expect(sha256Hex("")).toBe(EMPTY_SHA256);
  });
});

describe("checksums", () => {
  it("CRC32 of '123456789' is 0xCBF43926 (table and node:zlib agree)", () => {
    const data = Buffer.from("123456789");
    expect(crc32ByTable(0, data)).toBe(0xcbf43926);
    expect(crc32Update(0, data)).toBe(0xcbf43926);
  });

  it("CRC32C of '123456789' is 0xE3069283", () => {
    expect(crc32cUpdate(0, Buffer.from("123456789"))).toBe(0xe3069283);
  });

  it("CRC32 is the same computed incrementally", () => {
    const a = Buffer.from("hello ");
    const b = Buffer.from("world");
    expect(crc32cUpdate(crc32cUpdate(0, a), b)).toBe(crc32cUpdate(0, Buffer.concat([a, b])));
    expect(crc32ByTable(crc32ByTable(0, a), b)).toBe(crc32Update(0, Buffer.concat([a, b])));
  });
});
