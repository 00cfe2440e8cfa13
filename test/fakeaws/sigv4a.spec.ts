import { createHmac, createPrivateKey, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  P256_ORDER,
  deriveSigV4aPrivateKey,
  kdfFixedInput,
  publicKeyFromPoint,
  publicPoint,
  regionSetCovers,
  sigV4aPublicKey,
  sigV4aScope,
  sigV4aStringToSign,
  unpadSigV4aSignature,
  verifySigV4aSignature,
} from "./sigv4a.js";
import { AwsChunkedDecoder } from "./awsChunked.js";
import { V4A_DIR, parseSuiteRequest, readCaseFile, readContext, readSigV4aChunkedVector, suiteCases, suiteWireRequest } from "./suite.js";
import { buildCanonicalRequest, canonicalTrailerText, formatAmzDate, parseAuthorizationHeader, parsePresignedQuery, sha256Hex, type PathRules } from "./verifier.js";

const rulesFor = (normalize: boolean): PathRules => (normalize ? "normalize-and-double-encode" : "s3-single-encoding");
const read = (name: string, file: string): string => readCaseFile(name, file, V4A_DIR);
const jwkPoint = (p: { x: string; y: string }): { x: string; y: string } => ({ x: Buffer.from(p.x, "hex").toString("base64url"), y: Buffer.from(p.y, "hex").toString("base64url") });
const flip = (hex: string): string => `${hex.slice(0, -1)}${hex.endsWith("0") ? "1" : "0"}`;

describe("SigV4A key derivation, from the spec (NIST SP 800-108 counter-mode KDF, HMAC-SHA256)", () => {
  it("lays out the fixed input as be32(1) || algorithm || 0x00 || key id || counter || be32(256)", () => {
    expect(kdfFixedInput("AKID", 1).toString("hex")).toBe(
      `00000001${Buffer.from("AWS4-ECDSA-P256-SHA256").toString("hex")}00${Buffer.from("AKID").toString("hex")}0100000100`,
    );
    expect(kdfFixedInput("AKID", 2).subarray(-5, -4)).toEqual(Buffer.from([2]));
  });

  it("derives the public key AWS's vectors give for AKIDEXAMPLE (the suite's public-key.json)", () => {
    const ctx = readContext("get-vanilla", V4A_DIR);
    const expected = JSON.parse(read("get-vanilla", "public-key.json")) as { X: string; Y: string };
    const { d, counter } = deriveSigV4aPrivateKey(ctx.credentials.access_key_id, ctx.credentials.secret_access_key);
    expect(counter).toBe(1);
    expect(publicPoint(d)).toEqual({ x: expected.X, y: expected.Y });
  });

  it("takes the first candidate k0 <= n - 2 and adds one, so the key lies in [1, n - 1]", () => {
    const { d } = deriveSigV4aPrivateKey("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
    const k0 = BigInt(`0x${createHmac("sha256", "AWS4AwJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY").update(kdfFixedInput("AKIDEXAMPLE", 1)).digest("hex")}`);
    expect(d).toBe(k0 + 1n);
    expect(d >= 1n && d <= P256_ORDER - 1n).toBe(true);
  });

  it("gives another key for another key id or secret", () => {
    const base = publicPoint(deriveSigV4aPrivateKey("AKIDEXAMPLE", "secret").d);
    expect(publicPoint(deriveSigV4aPrivateKey("AKIDEXAMPLF", "secret").d)).not.toEqual(base);
    expect(publicPoint(deriveSigV4aPrivateKey("AKIDEXAMPLE", "secreu").d)).not.toEqual(base);
  });
});

describe("official AWS SigV4A test suite (aws-c-auth v4a vectors)", () => {
  const cases = suiteCases(V4A_DIR);

  it("has all 38 cases, one key pair", () => {
    expect(cases).toHaveLength(38);
    expect(new Set(cases.map((c) => read(c, "public-key.json").replace(/\s/g, ""))).size).toBe(1);
  });

  describe.each(cases)("%s", (name) => {
    const ctx = readContext(name, V4A_DIR);
    const amzDate = formatAmzDate(new Date(ctx.timestamp));
    const scope = sigV4aScope(amzDate.slice(0, 8), ctx.service);
    const point = JSON.parse(read(name, "public-key.json")) as { X: string; Y: string };
    const suiteKey = publicKeyFromPoint({ x: point.X, y: point.Y });
    const derivedKey = sigV4aPublicKey(ctx.credentials.access_key_id, ctx.credentials.secret_access_key);

    it("builds the expected canonical request and string to sign from request.txt; AWS's signature verifies under the derived key", () => {
      const req = parseSuiteRequest(read(name, "request.txt"));
      const added: Array<[string, string]> = [
        ["X-Amz-Date", amzDate],
        ["X-Amz-Region-Set", ctx.region],
      ];
      if (ctx.credentials.token && !ctx.omit_session_token) added.push(["X-Amz-Security-Token", ctx.credentials.token]);
      if (ctx.sign_body) added.push(["X-Amz-Content-Sha256", sha256Hex(req.body)]);
      const wire = suiteWireRequest(req, ctx.normalize, added);
      const canonicalRequest = buildCanonicalRequest({
        request: wire,
        service: ctx.service,
        signedHeaders: wire.headers.map(([n]) => n.toLowerCase()),
        payloadHash: sha256Hex(req.body),
        pathRules: rulesFor(ctx.normalize),
      });
      expect(canonicalRequest).toBe(read(name, "header-canonical-request.txt"));
      const stringToSign = sigV4aStringToSign(amzDate, scope, canonicalRequest);
      expect(stringToSign).toBe(read(name, "header-string-to-sign.txt"));
      const signature = read(name, "header-signature.txt").trim();
      expect(verifySigV4aSignature(derivedKey, stringToSign, signature)).toBe(true);
      expect(verifySigV4aSignature(suiteKey, stringToSign, signature)).toBe(true);
    });

    it("verifies the second signature, in header-signed-request.txt's Authorization header", () => {
      const req = parseSuiteRequest(read(name, "header-signed-request.txt"));
      const wire = suiteWireRequest(req, ctx.normalize);
      const auth = parseAuthorizationHeader(wire.headers.find(([n]) => n.toLowerCase() === "authorization")?.[1] ?? "");
      if (!auth.ok) throw new Error(auth.error);
      expect({ algorithm: auth.value.algorithm, accessKeyId: auth.value.accessKeyId, region: auth.value.region, service: auth.value.service }).toEqual({
        algorithm: "AWS4-ECDSA-P256-SHA256",
        accessKeyId: ctx.credentials.access_key_id,
        region: "",
        service: ctx.service,
      });
      const canonicalRequest = buildCanonicalRequest({
        request: wire,
        service: auth.value.service,
        signedHeaders: auth.value.signedHeaders,
        payloadHash: sha256Hex(req.body),
        pathRules: rulesFor(ctx.normalize),
      });
      expect(canonicalRequest).toBe(read(name, "header-canonical-request.txt"));
      expect(verifySigV4aSignature(derivedKey, sigV4aStringToSign(amzDate, scope, canonicalRequest), auth.value.signature)).toBe(true);
    });

    it("verifies the query (presigned) string to sign and its signature", () => {
      const stringToSign = read(name, "query-string-to-sign.txt");
      expect(stringToSign.split("\n").slice(0, 3)).toEqual(["AWS4-ECDSA-P256-SHA256", amzDate, scope]);
      expect(verifySigV4aSignature(derivedKey, stringToSign, read(name, "query-signature.txt").trim())).toBe(true);
    });

    it("refuses a flipped signature, and AWS's signature over another string to sign", () => {
      const stringToSign = read(name, "header-string-to-sign.txt");
      const signature = read(name, "header-signature.txt").trim();
      expect(verifySigV4aSignature(derivedKey, stringToSign, flip(signature))).toBe(false);
      expect(verifySigV4aSignature(derivedKey, `${stringToSign}0`, signature)).toBe(false);
      expect(verifySigV4aSignature(sigV4aPublicKey(ctx.credentials.access_key_id, "another secret"), stringToSign, signature)).toBe(false);
    });
  });

  it("the presigned query's algorithm is SigV4A, which the fake's SigV4 presign parser does not accept", () => {
    const req = parseSuiteRequest(read("get-vanilla", "query-signed-request.txt"));
    expect(parsePresignedQuery(req.query)).toEqual({ ok: false, error: "Unsupported X-Amz-Algorithm 'AWS4-ECDSA-P256-SHA256'" });
  });
});

describe("verifySigV4aSignature never throws", () => {
  const key = sigV4aPublicKey("AKID", "secret");
  it.each(["", "zz", "00", "3006020101020101", "30".repeat(90)])("refuses %j", (sig) => {
    expect(verifySigV4aSignature(key, "x", sig)).toBe(false);
  });
});

describe("regionSetCovers", () => {
  it.each([
    ["*", "us-east-1", true],
    ["us-east-1", "us-east-1", true],
    ["us-west-2,us-east-1", "us-east-1", true],
    ["US-EAST-1", "us-east-1", true],
    ["us-*", "us-east-1", true],
    ["eu-*", "us-east-1", false],
    ["us-west-2", "us-east-1", false],
    ["us-east-10", "us-east-1", false],
  ] as const)("%s covers %s: %s", (set, region, want) => {
    expect(regionSetCovers(set, region)).toBe(want);
  });
});

describe("SigV4A aws-chunked verification (aws-c-auth's SigV4A chunked-signing vectors)", () => {
  const vector = readSigV4aChunkedVector();
  const scope = sigV4aScope(vector.x_amz_date.slice(0, 8), vector.service);
  const { d } = deriveSigV4aPrivateKey(vector.credentials.access_key_id, vector.credentials.secret_access_key);
  const privateKey = createPrivateKey({ key: { kty: "EC", crv: "P-256", d: Buffer.from(d.toString(16).padStart(64, "0"), "hex").toString("base64url"), ...jwkPoint(publicPoint(d)) }, format: "jwk" });
  const ecdsa = (stringToSign: string): string => sign("sha256", Buffer.from(stringToSign, "utf8"), { key: privateKey, dsaEncoding: "der" }).toString("hex");
  const pad = (sig: string): string => sig.padEnd(vector.expected.padded_signature_length, vector.expected.signature_padding);

  /** The vector's body signed by the fake's own key (node:crypto), each link chained from the previous signature unpadded. */
  function signedBody(trailer: boolean, chainPadded = false): { body: Buffer; seed: string } {
    const seed = ecdsa(sigV4aStringToSign(vector.x_amz_date, scope, trailer ? vector.expected.trailer_canonical_request : vector.expected.canonical_request));
    let previous = seed;
    const parts: Buffer[] = [];
    vector.chunk_sizes.forEach((size, i) => {
      const stringToSign = `${vector.expected.chunk_string_to_sign_before_previous}${previous}${vector.expected.chunk_string_to_sign_after_previous[i] as string}`;
      let sig = ecdsa(stringToSign);
      // A 72-byte DER signature fills all 144 characters and has no padding; sign again for one that does.
      while (chainPadded && sig.length === vector.expected.padded_signature_length) sig = ecdsa(stringToSign);
      parts.push(Buffer.from(`${size.toString(16)};chunk-signature=${pad(sig)}\r\n`));
      if (size > 0) parts.push(Buffer.alloc(size, vector.chunk_data_byte), Buffer.from("\r\n"));
      previous = chainPadded ? pad(sig) : sig;
    });
    if (trailer) {
      const sig = ecdsa(`${vector.expected.trailer_string_to_sign_before_previous}${previous}${vector.expected.trailer_string_to_sign_after_previous}`);
      parts.push(Buffer.from(`${vector.trailer_headers.map(([n, v]) => `${n}:${v}\r\n`).join("")}x-amz-trailer-signature:${pad(sig)}\r\n`));
    }
    parts.push(Buffer.from("\r\n"));
    return { body: Buffer.concat(parts), seed };
  }

  function decode(trailer: boolean, body: Buffer, seed: string): ReturnType<AwsChunkedDecoder["end"]> {
    const decoder = new AwsChunkedDecoder({
      mode: trailer ? "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER" : "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD",
      signing: { amzDate: vector.x_amz_date, scope, seedSignature: seed, sigV4aPublicKey: publicKeyFromPoint(vector.public_key) },
      declaredTrailers: trailer ? vector.trailer_headers.map(([n]) => n) : [],
      decodedContentLength: 66560,
    });
    decoder.write(body);
    return decoder.end();
  }

  it("derives the vector's public key from its credentials", () => {
    expect(publicPoint(d)).toEqual(vector.public_key);
  });

  it("computes the vector's trailer hash from its trailing headers", () => {
    expect(`\n${sha256Hex(canonicalTrailerText(vector.trailer_headers))}`).toBe(vector.expected.trailer_string_to_sign_after_previous);
  });

  it.each([false, true])("verifies every chunk (and the trailer: %s) signed over the vector's strings to sign, padded to 144", (trailer) => {
    const { body, seed } = signedBody(trailer);
    const result = decode(trailer, body, seed);
    expect(result.ok && { chunks: result.outcome.chunksVerified, trailer: result.outcome.trailerVerified }).toEqual({ chunks: 3, trailer });
  });

  it("refuses a chain that was built from the padded signatures", () => {
    const { body, seed } = signedBody(false, true);
    const result = decode(false, body, seed);
    expect(!result.ok && { code: result.failure.code, chunk: result.failure.chunkIndex }).toEqual({ code: "SignatureDoesNotMatch", chunk: 1 });
  });

  it("unpads only hex DER followed by * and no longer than 144", () => {
    expect(unpadSigV4aSignature("3045ab**")).toBe("3045ab");
    expect(unpadSigV4aSignature("3045ab")).toBe("3045ab");
    expect(unpadSigV4aSignature("30*45")).toBeUndefined();
    expect(unpadSigV4aSignature("3045a**")).toBeUndefined();
    expect(unpadSigV4aSignature(`30${"*".repeat(143)}`)).toBeUndefined();
  });
});
