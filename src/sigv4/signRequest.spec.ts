import { Hash } from "@smithy/hash-node";
import { getSigningKey } from "@smithy/signature-v4";
import { describe, expect, it } from "vitest";
import { signRequest, type SignInput } from "./signRequest.js";

const Sha256 = Hash.bind(null, "sha256");
const CREDS = { accessKeyId: "AKIASIGNREQUESTSPEC1", secretAccessKey: "c2lnblJlcXVlc3Qgc3BlYyBzZWNyZXQga2V5" };

function input(over: Partial<SignInput> = {}): SignInput {
  return {
    method: "PUT",
    host: "photos.s3.eu-west-1.amazonaws.com",
    path: "/key",
    query: {},
    headers: new Map([["x-amz-meta-owner", "me"]]),
    clientSignedHeaders: ["host"],
    signContentLength: true,
    payloadHash: "UNSIGNED-PAYLOAD",
    service: "s3",
    region: "eu-west-1",
    credentials: CREDS,
    now: new Date("2024-05-01T12:00:00Z"),
    ...over,
  };
}

function authorizationOf(out: { setHeaders: ReadonlyArray<readonly [string, string]> }): string | undefined {
  return out.setHeaders.find(([name]) => name === "authorization")?.[1];
}

describe("signRequest", () => {
  it("returns the signature, scope, date and signed headers the Authorization header was built from", async () => {
    const out = await signRequest(input());
    expect(out.amzDate).toBe("20240501T120000Z");
    expect(out.scope).toBe("20240501/eu-west-1/s3/aws4_request");
    expect(out.signedHeaderNames).toBe("host;x-amz-content-sha256;x-amz-date;x-amz-meta-owner");
    expect(out.signature).toMatch(/^[0-9a-f]{64}$/);
    expect(authorizationOf(out)).toBe(`AWS4-HMAC-SHA256 Credential=${CREDS.accessKeyId}/${out.scope}, SignedHeaders=${out.signedHeaderNames}, Signature=${out.signature}`);
    expect(out.setHeaders).toContainEqual(["x-amz-date", out.amzDate]);
  });

  it("returns the signing key @smithy/signature-v4 derives for the request's date, region and service", async () => {
    const out = await signRequest(input({ service: "dynamodb", region: "ap-south-1", host: "dynamodb.ap-south-1.amazonaws.com" }));
    expect(out.scope).toBe("20240501/ap-south-1/dynamodb/aws4_request");
    expect(Buffer.from(out.signingKey)).toEqual(Buffer.from(await getSigningKey(Sha256, CREDS, "20240501", "ap-south-1", "dynamodb")));
  });

  it("derives a new signing key for new credentials with the same scope (the key cache follows the credentials object), and for a new date", async () => {
    const first = await signRequest(input());
    const rotated = { accessKeyId: CREDS.accessKeyId, secretAccessKey: "cm90YXRlZCBzZWNyZXQga2V5IGZvciB0aGUgc3BlYw" };
    const second = await signRequest(input({ credentials: rotated }));
    expect(Buffer.from(second.signingKey)).toEqual(Buffer.from(await getSigningKey(Sha256, rotated, "20240501", "eu-west-1", "s3")));
    expect(Buffer.from(second.signingKey)).not.toEqual(Buffer.from(first.signingKey));
    expect(second.signature).not.toBe(first.signature);
    const nextDay = await signRequest(input({ now: new Date("2024-05-02T00:00:01Z") }));
    expect(Buffer.from(nextDay.signingKey)).toEqual(Buffer.from(await getSigningKey(Sha256, CREDS, "20240502", "eu-west-1", "s3")));
  });

  it("keeps each request's own signature and scope when requests are signed concurrently", async () => {
    const regions = ["us-east-1", "eu-west-1", "ap-south-1", "sa-east-1"];
    const outs = await Promise.all(regions.map((region) => signRequest(input({ region, host: `b.s3.${region}.amazonaws.com` }))));
    outs.forEach((out, i) => {
      expect(out.scope).toBe(`20240501/${regions[i]}/s3/aws4_request`);
      expect(authorizationOf(out)).toBe(`AWS4-HMAC-SHA256 Credential=${CREDS.accessKeyId}/${out.scope}, SignedHeaders=${out.signedHeaderNames}, Signature=${out.signature}`);
    });
    expect(new Set(outs.map((o) => o.signature)).size).toBe(regions.length);
  });

  it("sends the session token and signs it; without one, removes the client's", async () => {
    const withToken = await signRequest(input({ credentials: { ...CREDS, sessionToken: "session-token" } }));
    expect(withToken.setHeaders).toContainEqual(["x-amz-security-token", "session-token"]);
    expect(withToken.signedHeaderNames).toContain("x-amz-security-token");
    expect(withToken.removeHeaders).toEqual([]);
    const without = await signRequest(input({ headers: new Map([["x-amz-security-token", "client-placeholder"]]) }));
    expect(without.removeHeaders).toEqual(["x-amz-security-token"]);
    expect(without.signedHeaderNames).not.toContain("x-amz-security-token");
  });
});
