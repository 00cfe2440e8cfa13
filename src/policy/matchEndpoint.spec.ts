import { describe, expect, it } from "vitest";
import { compiledEndpoints, matchEndpoint } from "./matchEndpoint.js";
import type { Endpoint, Policy } from "./types.js";

function endpointOf(index: number, host: string, extra: Partial<Endpoint> = {}): Endpoint {
  return { index, host, credentialSigning: "sigv4", signingService: "s3", credentials: "c", access: "full", enforcement: "enforce", ...extra };
}

/** Built by hand, as other modules' tests do: matchEndpoint must not need parsePolicy. */
function policyOf(...endpoints: Endpoint[]): Policy {
  return {
    version: 1,
    credentials: new Map([["c", { kind: "default_chain" }]]),
    endpoints,
    limits: { maxBufferedBodyBytes: 1024 },
    sha256: "0".repeat(64),
  };
}

const policy = policyOf(
  endpointOf(0, "s3.amazonaws.com", { region: "us-east-1" }),
  endpointOf(1, "*.s3.*.amazonaws.com"),
  endpointOf(2, "internal.example.com", { port: 8443 }),
  endpointOf(3, "**.amazonaws.com", { signingService: "auto" }),
  endpointOf(4, "internal.example.com", { port: 443 }),
  endpointOf(5, "10.0.0.1"),
);

describe("matchEndpoint", () => {
  it.each([
    ["s3.amazonaws.com", "https", 0, "s3.amazonaws.com", 443],
    ["S3.AMAZONAWS.COM.", "https", 0, "s3.amazonaws.com", 443],
    ["bucket.s3.eu-west-1.amazonaws.com", "https", 1, "bucket.s3.eu-west-1.amazonaws.com", 443],
    ["bucket.s3.eu-west-1.amazonaws.com:8080", "http", 1, "bucket.s3.eu-west-1.amazonaws.com", 8080],
    ["sts.amazonaws.com", "https", 3, "sts.amazonaws.com", 443],
    ["a.b.s3.eu-west-1.amazonaws.com", "https", 3, "a.b.s3.eu-west-1.amazonaws.com", 443],
    ["internal.example.com:8443", "https", 2, "internal.example.com", 8443],
    ["internal.example.com", "https", 4, "internal.example.com", 443],
    ["10.0.0.1:9000", "http", 5, "10.0.0.1", 9000],
  ])("%s (%s) → endpoints[%i]", (authority, scheme, index, host, port) => {
    const match = matchEndpoint(policy, authority, scheme);
    expect(match).toStrictEqual({ endpoint: policy.endpoints[index], host, port });
  });

  it("lets the first matching endpoint win over a later, broader one", () => {
    expect(matchEndpoint(policy, "s3.amazonaws.com", "https")?.endpoint.index).toBe(0);
    const reversed = policyOf(endpointOf(0, "**.amazonaws.com"), endpointOf(1, "sts.amazonaws.com"));
    expect(matchEndpoint(reversed, "sts.amazonaws.com", "https")?.endpoint.index).toBe(0);
  });

  it.each([
    ["amazonaws.com", "https"],
    ["sts.amazonaws.com.evil.example", "https"],
    ["internal.example.com", "http"],
    ["internal.example.com:9000", "https"],
    ["[::1]:443", "https"],
    ["[::ffff:10.0.0.1]:443", "https"],
    ["sts.amazonaws.com:notaport", "https"],
    ["", "https"],
  ])("matches nothing for %j (%s)", (authority, scheme) => {
    expect(matchEndpoint(policy, authority, scheme)).toBeUndefined();
  });

  it("compiles a policy's matchers once and reuses them", () => {
    const fresh = policyOf(endpointOf(0, "*.example.com"));
    const first = compiledEndpoints(fresh);
    matchEndpoint(fresh, "a.example.com", "https");
    expect(compiledEndpoints(fresh)).toBe(first);
  });

  it("compiles a replacement policy on its own, without the old policy's matchers", () => {
    const before = policyOf(endpointOf(0, "a.example.com"));
    const after = policyOf(endpointOf(0, "b.example.com"));
    expect(matchEndpoint(before, "a.example.com", "https")?.endpoint.host).toBe("a.example.com");
    expect(matchEndpoint(after, "a.example.com", "https")).toBeUndefined();
    expect(matchEndpoint(after, "b.example.com", "https")?.endpoint.host).toBe("b.example.com");
  });
});
