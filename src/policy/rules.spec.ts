import { describe, expect, it } from "vitest";
import { policyFrom } from "../../test/support/policyFrom.js";
import { checkRules, compileGlob, s3Address, s3Decode, type RuleRequest } from "./rules.js";
import type { Endpoint } from "./types.js";

describe("compileGlob", () => {
  const matches = (glob: string, text: string): boolean => compileGlob(glob).regex.test(text);

  it("** spans /, * does not", () => {
    expect([matches("public/**", "public/a/b/c"), matches("public/*", "public/a"), matches("public/*", "public/a/b")]).toEqual([true, true, false]);
  });

  it("anchors both ends and takes every other character literally, regular-expression ones included", () => {
    expect([matches("a.b", "axb"), matches("a.b", "a.b"), matches("(x)+[y]?", "(x)+[y]?"), matches("public", "public/x"), matches("x", "ax")]).toEqual([false, true, true, false, false]);
  });

  it("is case-sensitive and matches unicode, spaces and newlines as characters", () => {
    expect([matches("Public/**", "public/a"), matches("ü/*", "ü/🦄 x"), matches("a/**", "a/line\nbreak"), matches("a/*", "a/line\nbreak")]).toEqual([false, true, true, true]);
  });

  it("* matches the empty run, and ** the empty run too", () => {
    expect([matches("a*", "a"), matches("a/**", "a/"), matches("a/**", "a")]).toEqual([true, true, false]);
  });
});

describe("s3Decode: S3's reading of a path", () => {
  it.each([
    ["a%2Fb", "a/b"],
    ["a%252Fb", "a%2Fb"],
    ["a+b", "a b"],
    ["a%2Bb", "a+b"],
    ["a%20b", "a b"],
    ["%C3%BC%F0%9F%A6%84", "ü🦄"],
    ["a/../b", "a/../b"],
    ["a//b", "a//b"],
  ])("%s → %j", (raw, decoded) => {
    expect(s3Decode(raw)).toBe(decoded);
  });

  it("is undefined for a malformed escape or bytes that are not UTF-8", () => {
    expect([s3Decode("a%2"), s3Decode("a%zz"), s3Decode("%C3")]).toEqual([undefined, undefined, undefined]);
  });
});

describe("s3Address: the bucket in the host or in the path", () => {
  it.each([
    ["datasets.s3.eu-west-1.amazonaws.com", "/public/a.txt", { bucket: "datasets", key: "public/a.txt" }],
    ["s3.eu-west-1.amazonaws.com", "/datasets/public/a.txt", { bucket: "datasets", key: "public/a.txt" }],
    ["a.b.s3.eu-west-1.amazonaws.com", "/k", { bucket: "a.b", key: "k" }],
    ["s3-logs.s3.eu-west-1.amazonaws.com", "/k", { bucket: "s3-logs", key: "k" }],
    ["datasets.s3.dualstack.eu-west-1.amazonaws.com", "/k", { bucket: "datasets", key: "k" }],
    ["datasets.s3-fips.us-east-1.amazonaws.com", "/k", { bucket: "datasets", key: "k" }],
    ["datasets.s3-us-west-2.amazonaws.com", "/k", { bucket: "datasets", key: "k" }],
    ["datasets.s3.amazonaws.com", "/", { bucket: "datasets" }],
    ["s3.amazonaws.com", "/datasets", { bucket: "datasets" }],
    ["s3.amazonaws.com", "/datasets/", { bucket: "datasets" }],
    ["s3.amazonaws.com", "/", {}],
    ["s3.eu-west-1.amazonaws.com", "/data%73ets/public%2Fa+b", { bucket: "datasets", key: "public/a b" }],
    ["datasets.s3.eu-west-1.amazonaws.com", "//x/../y", { bucket: "datasets", key: "/x/../y" }],
    ["storage.example.com", "/datasets/k", { bucket: "datasets", key: "k" }],
  ])("%s %s", (host, path, want) => {
    expect(s3Address(host, path)).toEqual(want);
  });

  it("is undefined when the path cannot be decoded", () => {
    expect(s3Address("s3.amazonaws.com", "/b/%E0%A4%A")).toBeUndefined();
  });
});

const POLICY = policyFrom(`version: 1
credentials:
  c: { default_chain: {} }
endpoints:
  - host: "**.s3.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: c
    rules:
      - effect: deny
        methods: [delete]
      - effect: allow
        methods: [GET, HEAD]
        s3: { bucket: datasets, key: "public/**" }
      - effect: allow
        methods: [GET]
        s3: { bucket: [datasets, "logs-*"] }
      - effect: allow
        methods: [PUT]
        s3: { bucket: uploads, key: ["in/*.csv", "in/*.json"] }
  - host: "s3.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: c
    rules:
      - effect: allow
        s3: { bucket: datasets, key: "public/**" }
  - host: "bedrock-runtime.*.amazonaws.com"
    credential_signing: sigv4
    signing_service: bedrock
    credentials: c
    rules:
      - effect: allow
        methods: [POST]
        paths: ["/model/anthropic.*/invoke", "/model/anthropic.*/converse"]
  - host: "plain.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: c
`);
const [VIRTUAL, PATH_STYLE, BEDROCK, PLAIN] = POLICY.endpoints as [Endpoint, Endpoint, Endpoint, Endpoint];

function verdict(endpoint: Endpoint, method: string, host: string, path: string, service = "s3"): string {
  const request: RuleRequest = { method, service, host, path };
  const v = checkRules(endpoint, request);
  return v.allowed ? `allow ${v.rule}` : `refuse ${v.rule ?? "-"}`;
}

describe("checkRules: first match wins, no match refuses", () => {
  const host = "datasets.s3.eu-west-1.amazonaws.com";
  it.each([
    ["GET", host, "/public/a.txt", "allow 1"],
    ["HEAD", host, "/public/deep/er/a.txt", "allow 1"],
    ["DELETE", host, "/public/a.txt", "refuse 0"],
    ["GET", host, "/private/a.txt", "allow 2"], // rule 2: any key of the bucket, GET only
    ["HEAD", host, "/private/a.txt", "refuse -"],
    ["PUT", host, "/public/a.txt", "refuse -"],
    ["GET", "logs-2024.s3.eu-west-1.amazonaws.com", "/x", "allow 2"],
    ["GET", "logs-2024.eu.s3.eu-west-1.amazonaws.com", "/x", "allow 2"], // "logs-*" has no "/", dots are fine
    ["GET", "other.s3.eu-west-1.amazonaws.com", "/public/a.txt", "refuse -"],
    ["PUT", "uploads.s3.eu-west-1.amazonaws.com", "/in/a.csv", "allow 3"],
    ["PUT", "uploads.s3.eu-west-1.amazonaws.com", "/in/a.json", "allow 3"],
    ["PUT", "uploads.s3.eu-west-1.amazonaws.com", "/in/sub/a.csv", "refuse -"],
    ["PUT", "uploads.s3.eu-west-1.amazonaws.com", "/in/a.csv.exe", "refuse -"],
  ])("%s %s%s → %s", (method, h, path, want) => {
    expect(verdict(VIRTUAL, method, h, path)).toBe(want);
  });

  it("matches methods case-insensitively (the policy's and the request's)", () => {
    expect([verdict(VIRTUAL, "delete", host, "/public/a.txt"), verdict(VIRTUAL, "get", host, "/public/a.txt")]).toEqual(["refuse 0", "allow 1"]);
  });

  it("an endpoint without rules allows everything", () => {
    expect(verdict(PLAIN, "DELETE", "plain.s3.eu-west-1.amazonaws.com", "/x")).toBe("allow -1");
  });

  it("names the endpoint and the deciding rule in the refusal, never the path", () => {
    const deny = checkRules(VIRTUAL, { method: "DELETE", service: "s3", host, path: "/public/secret-name" });
    const none = checkRules(VIRTUAL, { method: "PUT", service: "s3", host, path: "/public/secret-name" });
    expect([deny, none]).toEqual([
      { allowed: false, kind: "rule", rule: 0, message: "endpoints[0] (**.s3.*.amazonaws.com): rules[0] (deny) refuses this request" },
      { allowed: false, kind: "rule", message: "endpoints[0] (**.s3.*.amazonaws.com): no rule allows this request (PUT); rules are tried in order and the first match decides" },
    ]);
  });
});

describe("checkRules: S3 keys as S3 decodes them", () => {
  const host = "datasets.s3.eu-west-1.amazonaws.com";
  it.each([
    ["/public%2Fa.txt", "allow 1"], // %2F is a "/" to S3: the key is public/a.txt
    ["/public%252Fa.txt", "allow 2"], // decoded once: the key is "public%2Fa.txt", not under public/
    ["/public/a+b.txt", "allow 1"],
    ["/public/%C3%BC%F0%9F%A6%84", "allow 1"],
    ["/public/../private/a", "allow 1"], // S3 keys are literal: this key starts with public/
    ["/public//a", "allow 1"],
    ["/Public/a.txt", "allow 2"], // keys are case-sensitive: not under public/
    ["/%70ublic/a.txt", "allow 1"],
  ])("GET %s → %s", (path, want) => {
    expect(verdict(VIRTUAL, "GET", host, path)).toBe(want);
    expect(verdict(VIRTUAL, "HEAD", host, path)).toBe(want === "allow 1" ? "allow 1" : "refuse -");
  });

  it("reads the bucket from the path on a path-style host, with the same decoding", () => {
    const h = "s3.eu-west-1.amazonaws.com";
    expect([
      verdict(PATH_STYLE, "GET", h, "/datasets/public/a.txt"),
      verdict(PATH_STYLE, "GET", h, "/datasets/public%2Fa.txt"),
      verdict(PATH_STYLE, "GET", h, "/datasets/private/a.txt"),
      verdict(PATH_STYLE, "GET", h, "/Datasets/public/a.txt"),
      verdict(PATH_STYLE, "GET", h, "/datasets"),
      verdict(PATH_STYLE, "GET", h, "/"),
    ]).toEqual(["allow 0", "allow 0", "refuse -", "refuse -", "refuse -", "refuse -"]);
  });

  it("a virtual-hosted host is case-insensitive (matchEndpoint hands it over lower-cased)", () => {
    expect(verdict(VIRTUAL, "GET", "datasets.s3.eu-west-1.amazonaws.com", "/public/a")).toBe("allow 1");
  });

  it("refuses a key with a malformed escape when a rule reads keys, naming the rule", () => {
    expect(verdict(VIRTUAL, "GET", host, "/public/%zz")).toBe("refuse 1");
  });

  it("an s3 rule never matches a request signed for another service", () => {
    expect(verdict(VIRTUAL, "GET", host, "/public/a.txt", "sqs")).toBe("refuse -");
  });
});

describe("checkRules: paths", () => {
  const h = "bedrock-runtime.us-east-1.amazonaws.com";
  it.each([
    ["/model/anthropic.claude-3/invoke", "allow 0"],
    ["/model/anthropic.claude-3/converse", "allow 0"],
    ["/model/anthropic.claude%2D3/invoke", "allow 0"], // decoded once
    ["/model/meta.llama/invoke", "refuse -"],
    ["/model/anthropic.x%2Fy/invoke", "refuse -"], // %2F decodes to "/", which * does not span
    ["/model/anthropic.x+y/invoke", "allow 0"], // "+" is itself outside S3
  ])("POST %s → %s", (path, want) => {
    expect(verdict(BEDROCK, "POST", h, path, "bedrock")).toBe(want);
  });

  it.each(["/model/anthropic.x/../meta.llama/invoke", "/model/anthropic.x/./invoke", "/model//anthropic.x/invoke", "/model/anthropic.x/%2E%2E/meta/invoke"])(
    "refuses %s: a service that normalises paths could read it differently",
    (path) => {
      expect(verdict(BEDROCK, "POST", h, path, "bedrock")).toBe("refuse 0");
    },
  );

  it("refuses a path with a malformed escape", () => {
    expect(verdict(BEDROCK, "POST", h, "/model/%E0%A4%A/invoke", "bedrock")).toBe("refuse 0");
  });
});

describe("checkRules: actions", () => {
  const policy = policyFrom(`version: 1
credentials:
  c: { default_chain: {} }
endpoints:
  - host: "sts.amazonaws.com"
    credential_signing: sigv4
    signing_service: sts
    credentials: c
    rules:
      - { effect: deny, actions: ["sts:AssumeRole*"] }
      - { effect: allow, actions: ["sts:GetCallerIdentity"] }
      - { effect: allow, methods: [GET] }
`);
  const endpoint = policy.endpoints[0] as Endpoint;
  const check = (method: string, action: ReturnType<NonNullable<RuleRequest["action"]>>) =>
    checkRules(endpoint, { method, service: "sts", host: "sts.amazonaws.com", path: "/", action: () => action });

  it("matches the request's action names against the patterns, first match deciding", () => {
    expect([check("POST", { names: ["sts:GetCallerIdentity"] }).allowed, check("POST", { names: ["sts:AssumeRoleWithWebIdentity"] }).allowed, check("POST", { names: ["sts:GetSessionToken"] }).allowed]).toEqual([true, false, false]);
  });

  it("an undetermined action matches no allow rule, and a deny rule with actions refuses it (it could be the denied action)", () => {
    expect(check("GET", { undetermined: "why" })).toEqual({
      allowed: false,
      kind: "rule",
      rule: 0,
      message: "endpoints[0] (sts.amazonaws.com): rules[0] (deny) refuses this request: its action cannot be determined, and could be one the rule denies",
    });
  });

  it("asks for the action only when a rule has actions and its other fields match", () => {
    let asked = 0;
    const plain = policyFrom(`version: 1
credentials:
  c: { default_chain: {} }
endpoints:
  - host: "sts.amazonaws.com"
    credential_signing: sigv4
    signing_service: sts
    credentials: c
    rules:
      - { effect: allow, methods: [GET], actions: ["sts:GetCallerIdentity"] }
      - { effect: allow, methods: [POST] }
`).endpoints[0] as Endpoint;
    const verdict = checkRules(plain, { method: "POST", service: "sts", host: "sts.amazonaws.com", path: "/", action: () => (asked++, { names: [] }) });
    expect([verdict.allowed, asked]).toEqual([true, 0]);
  });
});
