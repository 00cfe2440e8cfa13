/**
 * AWS's official SigV4 and SigV4A test suites (awslabs/aws-c-auth, v4 and v4a, header signing),
 * run through signRequest and signRequestV4a exactly as countersign calls them. The suites are
 * kept, with AWS's LICENSE and NOTICE, in test/fixtures/aws-sigv4-test-suite and
 * test/fixtures/aws-sigv4a-test-suite.
 */
import { createHash, createPublicKey, verify } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EMPTY_SHA256 } from "./constants.js";
import { signRequest, type SignInput } from "./signRequest.js";
import { signRequestV4a } from "./signRequestV4a.js";
import { splitPath } from "./splitPath.js";

const FIXTURES = join(import.meta.dirname, "..", "..", "test", "fixtures");
const SUITE = join(FIXTURES, "aws-sigv4-test-suite", "v4");
const SUITE_V4A = join(FIXTURES, "aws-sigv4a-test-suite", "v4a");

interface Context {
  credentials: { access_key_id: string; secret_access_key: string; token?: string };
  region: string;
  service: string;
  timestamp: string;
  normalize: boolean;
  sign_body: boolean;
  omit_session_token?: boolean;
}

interface ParsedRequest {
  method: string;
  path: string;
  headers: Map<string, string>;
  body: string;
}

/** request.txt: request line, `Name:value` lines (indented lines continue a value), blank line, body. */
function parseRequestTxt(text: string): ParsedRequest {
  const [head, ...bodyParts] = text.split("\n\n");
  const lines = (head as string).split("\n");
  const requestLine = lines.shift() as string;
  const method = requestLine.slice(0, requestLine.indexOf(" "));
  const path = requestLine.slice(method.length + 1, requestLine.lastIndexOf(" HTTP/"));
  const entries: Array<[string, string]> = [];
  for (const line of lines) {
    if (line === "") continue;
    if (/^\s/.test(line) && entries.length > 0) {
      const last = entries[entries.length - 1] as [string, string];
      last[1] += `\n${line}`;
      continue;
    }
    const colon = line.indexOf(":");
    entries.push([line.slice(0, colon).toLowerCase(), line.slice(colon + 1)]);
  }
  const headers = new Map<string, string>();
  for (const [name, value] of entries) {
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev},${value}`);
  }
  return { method, path, headers, body: bodyParts.join("\n\n") };
}

/** The S3-style cases sign the path as sent: give them the path encoded once, as a client would. */
function encodeOnce(path: string): string {
  return path
    .split("/")
    .map((seg) => encodeURIComponent(seg).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join("/");
}

/** The signer's input for one suite case, as countersign builds it. */
function suiteInput(dir: string): { ctx: Context; input: SignInput } {
  const ctx = JSON.parse(readFileSync(join(dir, "context.json"), "utf8")) as Context;
  const req = parseRequestTxt(readFileSync(join(dir, "request.txt"), "utf8"));
  const rawPath = ctx.normalize ? req.path : encodeOnce(req.path.split("?")[0] as string) + (req.path.includes("?") ? req.path.slice(req.path.indexOf("?")) : "");
  const split = splitPath(rawPath.replace(/ /g, "%20"));
  if (!split.ok) throw new Error(split.error);
  // Keep the suite's own (decoded) path for normalised cases; see the reference on raw paths.
  const path = ctx.normalize ? (req.path.split("?")[0] as string) : split.path;
  const input: SignInput = {
    method: req.method,
    host: req.headers.get("host") as string,
    path,
    query: split.query,
    headers: req.headers,
    clientSignedHeaders: [...req.headers.keys()],
    signContentLength: true,
    payloadHash: ctx.sign_body ? createHash("sha256").update(req.body).digest("hex") : EMPTY_SHA256,
    sendContentSha256: ctx.sign_body,
    service: ctx.service,
    // Unnormalised cases are the S3 rules: path as sent, not normalised.
    singleEncodePath: !ctx.normalize,
    region: ctx.region,
    credentials: {
      accessKeyId: ctx.credentials.access_key_id,
      secretAccessKey: ctx.credentials.secret_access_key,
      sessionToken: ctx.omit_session_token ? undefined : ctx.credentials.token,
    },
    now: new Date(ctx.timestamp),
  };
  return { ctx, input };
}

const cases = readdirSync(SUITE).sort();

describe("AWS SigV4 test suite (header signing)", () => {
  it("has the 38 cases of aws-c-auth v4", () => {
    expect(cases).toHaveLength(38);
  });

  it.each(cases)("%s", async (name) => {
    const dir = join(SUITE, name);
    const { ctx, input } = suiteInput(dir);
    const expectedSignature = readFileSync(join(dir, "header-signature.txt"), "utf8").trim();
    const expectedCanonical = readFileSync(join(dir, "header-canonical-request.txt"), "utf8");
    const expectedSignedHeaders = expectedCanonical.split("\n").at(-2);
    const expectedAuthorization = /^Authorization:(.*)$/m.exec(readFileSync(join(dir, "header-signed-request.txt"), "utf8"))?.[1];

    const out = await signRequest(input);
    expect(out.signedHeaderNames).toBe(expectedSignedHeaders);
    expect(out.signature).toBe(expectedSignature);
    expect(out.scope).toBe(`${ctx.timestamp.slice(0, 10).replace(/-/g, "")}/${ctx.region}/${ctx.service}/aws4_request`);
    expect(out.setHeaders).toContainEqual(["authorization", expectedAuthorization]);
  });
});

const casesV4a = readdirSync(SUITE_V4A).sort();

describe("AWS SigV4A test suite (header signing): signRequestV4a's signature verifies under the suite's public key", () => {
  it("has the 38 cases of aws-c-auth v4a", () => {
    expect(casesV4a).toHaveLength(38);
  });

  it.each(casesV4a)("%s", async (name) => {
    const dir = join(SUITE_V4A, name);
    const { ctx, input } = suiteInput(dir);
    const expectedCanonical = readFileSync(join(dir, "header-canonical-request.txt"), "utf8");
    const expectedStringToSign = readFileSync(join(dir, "header-string-to-sign.txt"), "utf8");
    const point = JSON.parse(readFileSync(join(dir, "public-key.json"), "utf8")) as { X: string; Y: string };
    const b64url = (hex: string): string => Buffer.from(hex, "hex").toString("base64url");
    const publicKey = createPublicKey({ key: { kty: "EC", crv: "P-256", x: b64url(point.X), y: b64url(point.Y) }, format: "jwk" });

    const out = await signRequestV4a(input);
    const date = ctx.timestamp.slice(0, 10).replace(/-/g, "");
    expect(out.signedHeaderNames).toBe(expectedCanonical.split("\n").at(-2));
    expect(out.scope).toBe(`${date}/${ctx.service}/aws4_request`);
    expect(out.setHeaders).toContainEqual(["x-amz-region-set", ctx.region]);
    expect(out.setHeaders).toContainEqual(["authorization", `AWS4-ECDSA-P256-SHA256 Credential=${ctx.credentials.access_key_id}/${out.scope}, SignedHeaders=${out.signedHeaderNames}, Signature=${out.signature}`]);
    // An ECDSA signature differs every time; it verifies only over AWS's string to sign, under
    // the key AWS derived from the same secret.
    expect(verify("sha256", Buffer.from(expectedStringToSign), { key: publicKey, dsaEncoding: "der" }, Buffer.from(out.signature, "hex"))).toBe(true);
    expect(verify("sha256", Buffer.from(`${expectedStringToSign}\n`), { key: publicKey, dsaEncoding: "der" }, Buffer.from(out.signature, "hex"))).toBe(false);
  });
});
