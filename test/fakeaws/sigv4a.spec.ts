import { createHmac } from "node:crypto";
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
  verifySigV4aSignature,
} from "./sigv4a.js";
import { V4A_DIR, parseSuiteRequest, readCaseFile, readContext, suiteCases, suiteWireRequest } from "./suite.js";
import { buildCanonicalRequest, formatAmzDate, parseAuthorizationHeader, parsePresignedQuery, sha256Hex, type PathRules } from "./verifier.js";

const rulesFor = (normalize: boolean): PathRules => (normalize ? "normalize-and-double-encode" : "s3-single-encoding");
const read = (name: string, file: string): string => readCaseFile(name, file, V4A_DIR);
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
