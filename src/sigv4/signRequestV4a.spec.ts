import { describe, expect, it } from "vitest";
import { sigV4aPublicKey, sigV4aStringToSign, verifySigV4aSignature } from "../../test/fakeaws/sigv4a.js";
import { buildCanonicalRequest } from "../../test/fakeaws/verifier.js";
import { signHead } from "./signHead.js";
import type { SignInput } from "./signRequest.js";
import { signRequestV4a } from "./signRequestV4a.js";

const CREDS = { accessKeyId: "AKIASIGNV4ASPEC00001", secretAccessKey: "c2lnblY0YSBzcGVjIHNlY3JldCBrZXkgMDAwMDAx" };
const HOST = "mfzwi23gnjvgw.mrap.accesspoint.s3-global.amazonaws.com";

function input(over: Partial<SignInput> = {}): SignInput {
  return {
    method: "PUT",
    host: HOST,
    path: "/a%20key",
    query: {},
    headers: new Map([
      ["x-amz-meta-owner", "me"],
      ["x-amz-region-set", "us-west-2"],
      ["content-length", "5"],
    ]),
    clientSignedHeaders: ["host"],
    signContentLength: true,
    payloadHash: "UNSIGNED-PAYLOAD",
    service: "s3",
    region: "*",
    algorithm: "AWS4-ECDSA-P256-SHA256",
    credentials: CREDS,
    now: new Date("2024-05-01T12:00:00Z"),
    ...over,
  };
}

/** The request as AWS would receive it: the client's headers with countersign's changes applied. */
function verifies(inp: SignInput, out: { setHeaders: ReadonlyArray<readonly [string, string]>; removeHeaders: readonly string[]; signature: string; scope: string; amzDate: string; signedHeaderNames: string }): boolean {
  const headers = new Map(inp.headers);
  for (const name of out.removeHeaders) headers.delete(name);
  for (const [name, value] of out.setHeaders) headers.set(name, value);
  headers.set("host", inp.host);
  const canonicalRequest = buildCanonicalRequest({
    request: { method: inp.method, rawPath: inp.path, rawQuery: "", headers: [...headers] },
    service: inp.service,
    signedHeaders: out.signedHeaderNames.split(";"),
    payloadHash: inp.payloadHash,
  });
  return verifySigV4aSignature(sigV4aPublicKey(CREDS.accessKeyId, CREDS.secretAccessKey), sigV4aStringToSign(out.amzDate, out.scope, canonicalRequest), out.signature);
}

describe("signRequestV4a", () => {
  it("signs for the given region set, replacing the client's, with a scope that has no region; the fake's verifier accepts it", async () => {
    const inp = input();
    const out = await signRequestV4a(inp);
    expect(out.scope).toBe("20240501/s3/aws4_request");
    expect(out.amzDate).toBe("20240501T120000Z");
    expect(out.signedHeaderNames).toBe("content-length;host;x-amz-content-sha256;x-amz-date;x-amz-meta-owner;x-amz-region-set");
    expect(out.setHeaders).toEqual([
      ["authorization", `AWS4-ECDSA-P256-SHA256 Credential=${CREDS.accessKeyId}/20240501/s3/aws4_request, SignedHeaders=${out.signedHeaderNames}, Signature=${out.signature}`],
      ["x-amz-date", "20240501T120000Z"],
      ["x-amz-region-set", "*"],
      ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"],
    ]);
    expect(out.signature).toMatch(/^30[0-9a-f]{130,150}$/);
    expect(verifies(inp, out)).toBe(true);
  });

  it("fails verification once anything signed changes (the region set, here)", async () => {
    const inp = input();
    const out = await signRequestV4a(inp);
    const tampered = { ...out, setHeaders: out.setHeaders.map(([n, v]) => (n === "x-amz-region-set" ? ([n, "us-east-1"] as const) : ([n, v] as const))) };
    expect(verifies(inp, tampered)).toBe(false);
  });

  it("sends and signs the real session token; without one, removes the client's", async () => {
    const withToken = await signRequestV4a(input({ credentials: { ...CREDS, sessionToken: "real-session-token" } }));
    expect(withToken.setHeaders).toContainEqual(["x-amz-security-token", "real-session-token"]);
    expect(withToken.signedHeaderNames).toContain("x-amz-security-token");
    const inp = input({ headers: new Map([["x-amz-security-token", "placeholder-token"]]) });
    const without = await signRequestV4a(inp);
    expect(without.removeHeaders).toEqual(["x-amz-security-token"]);
    expect(without.signedHeaderNames).not.toContain("x-amz-security-token");
    expect(verifies(inp, without)).toBe(true);
  });

  it("signHead picks the algorithm the input names", async () => {
    const v4a = await signHead(input());
    expect(v4a.setHeaders[0]?.[1]).toMatch(/^AWS4-ECDSA-P256-SHA256 Credential=AKIASIGNV4ASPEC00001\/20240501\/s3\/aws4_request, /);
    const v4 = await signHead(input({ algorithm: "AWS4-HMAC-SHA256", region: "us-east-1" }));
    expect(v4.setHeaders[0]?.[1]).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIASIGNV4ASPEC00001\/20240501\/us-east-1\/s3\/aws4_request, /);
    expect(v4.setHeaders.map(([n]) => n)).not.toContain("x-amz-region-set");
  });
});
