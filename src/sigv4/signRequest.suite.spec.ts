/**
 * AWS's official SigV4 test suite (awslabs/aws-c-auth, v4, header signing), run through
 * signRequest exactly as countersign calls it. The suite is kept, with AWS's
 * LICENSE and NOTICE, in test/fixtures/aws-sigv4-test-suite.
 */
import { createHash } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EMPTY_SHA256 } from "./constants.js";
import { signRequest } from "./signRequest.js";
import { splitPath } from "./splitPath.js";

const SUITE = join(import.meta.dirname, "..", "..", "test", "fixtures", "aws-sigv4-test-suite", "v4");

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

const cases = readdirSync(SUITE).sort();

describe("AWS SigV4 test suite (header signing)", () => {
  it("has the 38 cases of aws-c-auth v4", () => {
    expect(cases).toHaveLength(38);
  });

  it.each(cases)("%s", async (name) => {
    const dir = join(SUITE, name);
    const ctx = JSON.parse(readFileSync(join(dir, "context.json"), "utf8")) as Context;
    const req = parseRequestTxt(readFileSync(join(dir, "request.txt"), "utf8"));
    const expectedSignature = readFileSync(join(dir, "header-signature.txt"), "utf8").trim();
    const expectedCanonical = readFileSync(join(dir, "header-canonical-request.txt"), "utf8");
    const expectedSignedHeaders = expectedCanonical.split("\n").at(-2);
    const expectedAuthorization = /^Authorization:(.*)$/m.exec(readFileSync(join(dir, "header-signed-request.txt"), "utf8"))?.[1];

    const rawPath = ctx.normalize ? req.path : encodeOnce(req.path.split("?")[0] as string) + (req.path.includes("?") ? req.path.slice(req.path.indexOf("?")) : "");
    const split = splitPath(rawPath.replace(/ /g, "%20"));
    expect(split.ok).toBe(true);
    if (!split.ok) return;
    // Keep the suite's own (decoded) path for normalised cases; see the reference on raw paths.
    const path = ctx.normalize ? req.path.split("?")[0] as string : split.path;

    const host = req.headers.get("host") as string;
    const out = await signRequest({
      method: req.method,
      host,
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
    });
    expect(out.signedHeaderNames).toBe(expectedSignedHeaders);
    expect(out.signature).toBe(expectedSignature);
    expect(out.scope).toBe(`${ctx.timestamp.slice(0, 10).replace(/-/g, "")}/${ctx.region}/${ctx.service}/aws4_request`);
    expect(out.setHeaders).toContainEqual(["authorization", expectedAuthorization]);
  });
});
