import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { formatPolicyError, parsePolicy } from "./parsePolicy.js";
import type { Policy } from "./types.js";

/** Joins lines so that a test can read line numbers off the argument positions (first = line 1). */
function lines(...text: string[]): string {
  return `${text.join("\n")}\n`;
}

/** Every error as "LINE:COL: message"; [] when the policy is valid. */
function errorsOf(text: string): string[] {
  const result = parsePolicy(text, "policy.yaml");
  return result.ok ? [] : result.error.map((e) => `${e.line}:${e.col}: ${e.message}`);
}

function parsed(text: string): Policy {
  const result = parsePolicy(text, "policy.yaml");
  if (!result.ok) throw new Error(result.error.map(formatPolicyError).join("\n"));
  return result.policy;
}

/** Lines 1-4: version and one static credentials entry named "work". */
const HEAD = [
  "version: 1",
  "credentials:",
  "  work:",
  "    static: { access_key_id_env: AK, secret_access_key_env: SK }",
] as const;

/** A policy of HEAD plus `endpoints:` on line 5 and the given endpoint lines from line 6. */
function withEndpoints(...endpointLines: string[]): string {
  return lines(...HEAD, "endpoints:", ...endpointLines);
}

/** One block-style endpoint on lines 6-9 with one line replaced or added. */
function endpoint(overrides: Record<string, string | undefined> = {}): string[] {
  const fields: Record<string, string | undefined> = {
    host: '"*.s3.*.amazonaws.com"',
    credential_signing: "sigv4",
    signing_service: "s3",
    credentials: "work",
    ...overrides,
  };
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value], i) => `${i === 0 ? "  - " : "    "}${key}:${value === "" ? "" : ` ${value}`}`);
}

/** HEAD plus one assume_role entry "role" (line 5 onwards), sourced from "work", and one endpoint. */
function withRole(...roleLines: string[]): string {
  return lines(
    ...HEAD,
    "  role:",
    "    assume_role:",
    ...roleLines.map((line) => `      ${line}`),
    "endpoints:",
    '  - { host: "*.s3.*.amazonaws.com", credential_signing: sigv4, signing_service: s3, credentials: role }',
  );
}

const ROLE_ARN = "role_arn: arn:aws:iam::123456789012:role/sandbox-s3";

describe("parsePolicy: the documented example", () => {
  const example = lines(
    "version: 1",
    "credentials:",
    "  workload:",
    "    static:",
    "      access_key_id_env: COUNTERSIGN_AWS_ACCESS_KEY_ID",
    "      secret_access_key_env: COUNTERSIGN_AWS_SECRET_ACCESS_KEY",
    "      session_token_env: COUNTERSIGN_AWS_SESSION_TOKEN   # optional",
    "  from-file:",
    "    file: { path: /var/run/secrets/aws/credentials, profile: default }   # re-read when it changes",
    "  ambient:",
    "    default_chain: {}            # the AWS SDK default provider chain",
    "  sandbox-role:",
    "    assume_role:",
    "      role_arn: arn:aws:iam::123456789012:role/sandbox-s3",
    "      session_name: countersign          # optional",
    "      external_id: optional",
    "      duration_seconds: 3600",
    "      refresh_before_seconds: 300        # default 300; must be < duration_seconds",
    "      expiry_margin_seconds: 45          # default 30; must be < refresh_before_seconds",
    "      source: ambient                    # another credentials entry",
    "      sts_region: us-east-1              # default us-east-1",
    "      sts_endpoint: https://sts.us-east-1.amazonaws.com   # optional override",
    `      policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'`,
    "      tags: { team: ml }                 # optional session tags, string values",
    "limits:                                  # optional",
    "  max_buffered_body_bytes: 1048576       # default 1 MiB",
    "endpoints:",
    `  - host: "*.s3.*.amazonaws.com"  # '*' is exactly one DNS label`,
    "    credential_signing: sigv4     # sigv4 | sigv4:body | sigv4:no_body",
    "    signing_service: s3           # required; 'auto' takes it from the client's own credential scope",
    "    credentials: workload",
    "    client_access_key_ids: [AKIDPLACEHOLDER000]   # optional",
    `  - host: "**.amazonaws.com"      # '**' only as the whole first label: one or more labels`,
    "    port: 443                     # optional; omitted matches any port",
    "    credential_signing: sigv4",
    "    signing_service: auto",
    "    region: us-east-1             # optional override; otherwise derived from the host",
    "    credentials: ambient",
  );

  it("compiles to the exact credentials, endpoints and limits", () => {
    const policy = parsed(example);
    expect(policy.version).toBe(1);
    expect([...policy.credentials.entries()]).toStrictEqual([
      [
        "workload",
        {
          kind: "static",
          accessKeyIdEnv: "COUNTERSIGN_AWS_ACCESS_KEY_ID",
          secretAccessKeyEnv: "COUNTERSIGN_AWS_SECRET_ACCESS_KEY",
          sessionTokenEnv: "COUNTERSIGN_AWS_SESSION_TOKEN",
        },
      ],
      ["from-file", { kind: "file", path: "/var/run/secrets/aws/credentials", profile: "default" }],
      ["ambient", { kind: "default_chain" }],
      [
        "sandbox-role",
        {
          kind: "assume_role",
          roleArn: "arn:aws:iam::123456789012:role/sandbox-s3",
          sessionName: "countersign",
          externalId: "optional",
          durationSeconds: 3600,
          refreshBeforeSeconds: 300,
          expiryMarginSeconds: 45,
          source: "ambient",
          stsRegion: "us-east-1",
          stsEndpoint: "https://sts.us-east-1.amazonaws.com",
          policy: '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}',
          tags: { team: "ml" },
        },
      ],
    ]);
    expect(policy.endpoints).toStrictEqual([
      {
        index: 0,
        host: "*.s3.*.amazonaws.com",
        credentialSigning: "sigv4",
        signingService: "s3",
        credentials: "workload",
        clientAccessKeyIds: new Set(["AKIDPLACEHOLDER000"]),
        access: "full",
        enforcement: "enforce",
      },
      {
        index: 1,
        host: "**.amazonaws.com",
        port: 443,
        credentialSigning: "sigv4",
        signingService: "auto",
        region: "us-east-1",
        credentials: "ambient",
        access: "full",
        enforcement: "enforce",
      },
    ]);
    expect(policy.limits).toStrictEqual({ maxBufferedBodyBytes: 1048576 });
  });

  it("records the hex SHA-256 of the source text", () => {
    expect(parsed(example).sha256).toBe(createHash("sha256").update(example).digest("hex"));
  });

  it("returns a frozen policy whose endpoints cannot be changed", () => {
    const policy = parsed(example);
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(policy.endpoints)).toBe(true);
    expect(Object.isFrozen(policy.endpoints[0])).toBe(true);
    expect(Object.isFrozen(policy.credentials.get("sandbox-role"))).toBe(true);
  });
});

describe("parsePolicy: defaults", () => {
  it("fills limits with 1 MiB when limits is omitted", () => {
    expect(parsed(withEndpoints(...endpoint())).limits).toStrictEqual({ maxBufferedBodyBytes: 1048576 });
  });

  it("fills assume_role duration 3600, refresh 300 and STS region us-east-1 and leaves the optional settings out", () => {
    const spec = parsed(withRole(ROLE_ARN, "source: work")).credentials.get("role");
    expect(spec).toStrictEqual({
      kind: "assume_role",
      roleArn: "arn:aws:iam::123456789012:role/sandbox-s3",
      durationSeconds: 3600,
      refreshBeforeSeconds: 300,
      expiryMarginSeconds: 30,
      source: "work",
      stsRegion: "us-east-1",
    });
  });

  it('reads the "default" profile of a credentials file when profile is omitted', () => {
    const text = lines("version: 1", "credentials:", "  f: { file: { path: /creds } }", "endpoints:", "  - { host: a.com, credential_signing: sigv4, signing_service: s3, credentials: f }");
    expect(parsed(text).credentials.get("f")).toStrictEqual({ kind: "file", path: "/creds", profile: "default" });
  });

  it("accepts default_chain written with no value", () => {
    const text = lines("version: 1", "credentials:", "  a:", "    default_chain:", "endpoints:", "  - { host: a.com, credential_signing: sigv4, signing_service: s3, credentials: a }");
    expect(parsed(text).credentials.get("a")).toStrictEqual({ kind: "default_chain" });
  });

  it("accepts credentials entries that no endpoint uses", () => {
    const text = lines(...HEAD, "  spare: { default_chain: {} }", "endpoints:", ...endpoint());
    expect(errorsOf(text)).toEqual([]);
  });

  it("accepts sts_endpoint over http on a loopback address (test servers)", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "sts_endpoint: http://127.0.0.1:4566"))).toEqual([]);
  });

  it.each(["us-east-1", "cn-north-1", "us-gov-west-1", "eu-central-2", "il-central-1", "ap-southeast-4"])(
    "accepts region %s",
    (region) => {
      expect(errorsOf(withEndpoints(...endpoint({ region })))).toEqual([]);
    },
  );
});

describe("parsePolicy: YAML syntax", () => {
  it("reports a malformed document at the YAML parser's own position", () => {
    const text = lines("version: 1", "endpoints: [a, b", "  x: 1");
    expect(errorsOf(text)).toEqual([
      "2:16: YAML syntax error: Implicit keys of flow sequence pairs need to be on a single line",
      "4:1: YAML syntax error: Flow sequence in block collection must be sufficiently indented and end with a ]",
    ]);
  });

  it("reports a duplicate key at the second occurrence", () => {
    const text = lines(...HEAD, "  work: { default_chain: {} }", "endpoints:", ...endpoint());
    expect(errorsOf(text)).toEqual(['5:3: duplicate key "work": keys of a mapping must be unique']);
  });

  it("refuses a document whose aliases expand without bound (billion laughs)", () => {
    const levels = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 1; i < 9; i++) levels.push(`l${i}: &l${i} [${Array<string>(10).fill(`*l${i - 1}`).join(", ")}]`);
    expect(errorsOf(lines(...levels))).toEqual([
      "1:1: YAML document refused: Excessive alias count indicates a resource exhaustion attack (more than 100 alias expansions)",
    ]);
  });

  it("rejects an unknown tag instead of reading it as a string", () => {
    expect(errorsOf(lines("version: !int 1", ...HEAD.slice(1), "endpoints:", ...endpoint()))).toEqual([
      "1:10: YAML syntax error: Unresolved tag: !int",
    ]);
  });

  it("reports a problem in data reached through an alias at the alias", () => {
    const text = lines(...HEAD, "endpoints:", '  - &s3 { host: "*.s3.*.amazonaws.com", credential_signing: sigv4, signing_service: s3, credentials: work }', "  - *s3");
    expect(errorsOf(text)).toEqual([
      '7:5: duplicate endpoint: host "*.s3.*.amazonaws.com" (any port) can never match, because endpoints[0] has the same host (any port) and comes first',
    ]);
  });

  it("reports an empty document as not being a mapping", () => {
    expect(errorsOf("")).toEqual(["1:1: the policy must be a mapping with version, credentials and endpoints, got nothing"]);
  });

  it("reports a top-level list as not being a mapping", () => {
    expect(errorsOf("- 1\n")).toEqual(["1:1: the policy must be a mapping with version, credentials and endpoints, got a list"]);
  });
});

describe("parsePolicy: structure", () => {
  it("rejects a version other than 1 at its value", () => {
    const text = lines("version: 2", ...HEAD.slice(1), "endpoints:", ...endpoint());
    expect(errorsOf(text)).toEqual(["1:10: unsupported version 2 (expected 1)"]);
  });

  it("rejects a missing version", () => {
    const text = lines(...HEAD.slice(1), "endpoints:", ...endpoint());
    expect(errorsOf(text)).toEqual(['1:1: the policy is missing required key "version" (1)']);
  });

  it("rejects an unknown top-level key with a suggestion", () => {
    const text = lines(...HEAD, "limit: {}", "endpoints:", ...endpoint());
    expect(errorsOf(text)).toEqual(['5:1: unknown key "limit" at the top level (did you mean "limits"?)']);
  });

  it("rejects an unknown key in an endpoint at the key, suggesting the close one", () => {
    const text = withEndpoints(...endpoint(), "    prot: 443");
    expect(errorsOf(text)).toEqual(['10:5: unknown key "prot" in endpoint (did you mean "port"?)']);
  });

  it('names the likely key for "hots" and also reports the missing host', () => {
    const text = withEndpoints('  - hots: "*.s3.*.amazonaws.com"', ...endpoint({ host: undefined }).map((l) => l.replace("  - ", "    ")));
    expect(errorsOf(text)).toEqual([
      '6:5: endpoint is missing required key "host" (a host pattern such as "*.s3.*.amazonaws.com")',
      '6:5: unknown key "hots" in endpoint (did you mean "host"?)',
    ]);
  });

  it("lists the allowed keys when nothing is close", () => {
    const text = withEndpoints(...endpoint(), "    zzzzzzzz: 1");
    expect(errorsOf(text)).toEqual([
      '10:5: unknown key "zzzzzzzz" in endpoint (expected host, port, credential_signing, signing_service, region, region_set, credentials, client_access_key_ids, callers, rules, access or enforcement)',
    ]);
  });

  it("rejects an unknown key inside a static source", () => {
    const text = lines("version: 1", "credentials:", "  work:", "    static: { access_key_id_env: AK, secret_access_key_env: SK, token_env: T }", "endpoints:", ...endpoint());
    expect(errorsOf(text)).toEqual([
      '4:65: unknown key "token_env" in static of credentials entry "work" (expected access_key_id_env, secret_access_key_env or session_token_env)',
    ]);
  });

  it("rejects settings under default_chain", () => {
    const text = lines("version: 1", "credentials:", "  work:", "    default_chain: { profile: x }", "endpoints:", ...endpoint());
    expect(errorsOf(text)).toEqual([
      '4:22: unknown key "profile" in default_chain of credentials entry "work" (it takes no settings; write default_chain: {})',
    ]);
  });

  it("rejects an unknown key under limits", () => {
    const text = lines(...HEAD, "limits: { max_body: 5 }", "endpoints:", ...endpoint());
    expect(errorsOf(text)).toEqual(['5:11: unknown key "max_body" in limits (expected max_buffered_body_bytes)']);
  });

  it("rejects a credentials entry without a source", () => {
    const text = lines(...HEAD, "  none: {}", "endpoints:", ...endpoint());
    expect(errorsOf(text)).toEqual(['5:3: credentials entry "none" needs a source: static, file, default_chain or assume_role']);
  });

  it("rejects a credentials entry with two sources, at the second", () => {
    const text = lines(...HEAD, "  two:", "    default_chain: {}", "    file: { path: /x }", "endpoints:", ...endpoint());
    expect(errorsOf(text)).toEqual(['7:5: credentials entry "two" has 2 sources (default_chain, file); use exactly one']);
  });

  it("rejects an unknown source kind with a suggestion", () => {
    const text = lines(...HEAD, "  typo: { statik: {} }", "endpoints:", ...endpoint());
    expect(errorsOf(text)).toEqual(['5:11: unknown key "statik" in credentials entry "typo" (did you mean "static"?)']);
  });

  it("rejects an empty endpoints list", () => {
    expect(errorsOf(lines(...HEAD, "endpoints: []"))).toEqual(["5:12: endpoints must list at least one endpoint"]);
  });
});

describe("parsePolicy: access and enforcement", () => {
  it("defaults to access full and enforcement enforce", () => {
    const [e] = parsed(withEndpoints(...endpoint())).endpoints;
    expect([e?.access, e?.enforcement]).toEqual(["full", "enforce"]);
  });

  it.each(["read-only", "read-write", "full"] as const)("reads access: %s", (access) => {
    expect(parsed(withEndpoints(...endpoint({ access }))).endpoints[0]?.access).toBe(access);
  });

  it("reads enforcement: audit", () => {
    expect(parsed(withEndpoints(...endpoint({ enforcement: "audit" }))).endpoints[0]?.enforcement).toBe("audit");
  });

  it("rejects an unknown access value at its value, listing the valid ones", () => {
    expect(errorsOf(withEndpoints(...endpoint({ access: "readonly" })))).toEqual([
      '10:13: unknown access "readonly" (expected read-only, read-write or full)',
    ]);
  });

  it("rejects an unknown enforcement value at its value, listing the valid ones", () => {
    expect(errorsOf(withEndpoints(...endpoint({ enforcement: "warn" })))).toEqual([
      '10:18: unknown enforcement "warn" (expected enforce or audit)',
    ]);
  });

  it("rejects a misspelt access key, suggesting access", () => {
    expect(errorsOf(withEndpoints(...endpoint({ acess: "read-only" })))).toEqual([
      '10:5: unknown key "acess" in endpoint (did you mean "access"?)',
    ]);
  });
});

describe("parsePolicy: callers", () => {
  /** HEAD plus a second static entry "other" (lines 5-6), then endpoints: on line 7. */
  function withCallers(...endpointLines: string[]): string {
    return lines(...HEAD, "  other:", "    static: { access_key_id_env: AK2, secret_access_key_env: SK2 }", "endpoints:", ...endpointLines);
  }
  const base = ['  - host: "*.s3.*.amazonaws.com"', "    credential_signing: sigv4", "    signing_service: s3"];

  it("maps each placeholder key id to its credentials entry, with or without default credentials", () => {
    const both = parsed(withCallers(...base, "    credentials: work", "    callers:", "      AKIDTENANTA: other"));
    expect([both.endpoints[0]?.credentials, both.endpoints[0]?.callers]).toStrictEqual(["work", new Map([["AKIDTENANTA", "other"]])]);
    const only = parsed(withCallers(...base, "    callers: { AKIDTENANTA: other, AKIDTENANTB: work }"));
    expect(only.endpoints[0]).toStrictEqual({
      index: 0,
      host: "*.s3.*.amazonaws.com",
      credentialSigning: "sigv4",
      signingService: "s3",
      callers: new Map([["AKIDTENANTA", "other"], ["AKIDTENANTB", "work"]]),
      access: "full",
      enforcement: "enforce",
    });
  });

  it("still requires credentials when callers is absent", () => {
    expect(errorsOf(withCallers(...base))).toEqual([
      '8:5: endpoint is missing required key "credentials" (the name of a credentials entry, unless callers names one for each placeholder key id)',
    ]);
  });

  it("rejects a caller mapped to an unknown credentials entry, at its value, suggesting the close one", () => {
    expect(errorsOf(withCallers(...base, "    callers:", "      AKIDTENANTA: othr"))).toEqual([
      '12:20: caller AKIDTENANTA is mapped to unknown credentials "othr" (no such credentials entry; did you mean "other"?)',
    ]);
  });

  it("rejects a caller written twice, at the second", () => {
    expect(errorsOf(withCallers(...base, "    callers:", "      AKIDTENANTA: other", "      AKIDTENANTA: work"))).toEqual([
      '13:7: duplicate key "AKIDTENANTA": keys of a mapping must be unique',
    ]);
  });

  it("rejects a caller that client_access_key_ids would refuse first, at its key", () => {
    expect(errorsOf(withCallers(...base, "    credentials: work", "    client_access_key_ids: [AKIDTENANTA]", "    callers:", "      AKIDTENANTA: other", "      AKIDTENANTB: other"))).toEqual([
      "15:7: caller AKIDTENANTB is not in this endpoint's client_access_key_ids, which refuses it first: add it there or remove it here",
    ]);
  });

  it("rejects a caller that is not shaped like an access key id, and an empty callers mapping", () => {
    expect(errorsOf(withCallers(...base, "    callers:", '      "AKID-TENANT": other'))).toEqual([
      '12:7: caller "AKID-TENANT" is not an access key id (1 to 128 letters and digits)',
    ]);
    expect(errorsOf(withCallers(...base, "    credentials: work", "    callers: {}"))).toEqual(["12:14: callers must define at least one entry"]);
  });
});

describe("parsePolicy: rules", () => {
  /** One S3 endpoint (lines 6-9) whose rules start on line 11. */
  function withRules(...ruleLines: string[]): string {
    return withEndpoints(...endpoint(), "    rules:", ...ruleLines.map((line) => `      ${line}`));
  }

  it("compiles rules in order, methods upper-cased, a single glob read as a list of one", () => {
    const [e] = parsed(withRules("- { effect: deny, methods: [delete] }", '- { effect: allow, paths: ["/a/**"], s3: { bucket: datasets, key: [x, "y/*"] } }')).endpoints;
    expect(e?.rules?.map((r) => ({ index: r.index, effect: r.effect, methods: r.methods && [...r.methods], paths: r.paths?.map((g) => g.text), bucket: r.s3?.bucket?.map((g) => g.text), key: r.s3?.key?.map((g) => g.text) }))).toEqual([
      { index: 0, effect: "deny", methods: ["DELETE"], paths: undefined, bucket: undefined, key: undefined },
      { index: 1, effect: "allow", methods: undefined, paths: ["/a/**"], bucket: ["datasets"], key: ["x", "y/*"] },
    ]);
  });

  it("rejects an unknown effect at its value", () => {
    expect(errorsOf(withRules("- { effect: permit, methods: [GET] }"))).toEqual(['11:19: unknown effect "permit" (expected allow or deny)']);
  });

  it("rejects a rule without an effect", () => {
    expect(errorsOf(withRules("- { methods: [GET] }"))).toEqual(['11:9: rule is missing required key "effect"']);
  });

  it("rejects an empty rule: it would match every request", () => {
    expect(errorsOf(withRules("- effect: allow"))).toEqual([
      '11:9: rules[0] has no condition (methods, paths, s3 or actions) and would match every request; say what it matches, e.g. paths: ["/**"]',
    ]);
  });

  it("rejects an s3 block on an endpoint that does not sign for S3, at the s3 key", () => {
    const text = withEndpoints(...endpoint({ signing_service: "dynamodb" }), "    rules:", "      - effect: allow", "        s3: { bucket: x }");
    expect(errorsOf(text)).toEqual(['12:9: rules[0] has an s3 block, but endpoints[0] signs for "dynamodb", not S3, so it could never match']);
  });

  it("accepts an s3 block on a signing_service: auto endpoint (it matches only S3 requests)", () => {
    expect(errorsOf(withEndpoints(...endpoint({ signing_service: "auto" }), "    rules:", "      - { effect: allow, s3: { bucket: x } }"))).toEqual([]);
  });

  it("rejects an unknown key in a rule, suggesting the close one (the rule then has no condition either)", () => {
    expect(errorsOf(withRules("- { effect: allow, method: [GET] }"))).toEqual([
      '11:9: rules[0] has no condition (methods, paths, s3 or actions) and would match every request; say what it matches, e.g. paths: ["/**"]',
      '11:26: unknown key "method" in rule (did you mean "methods"?)',
    ]);
  });

  it("rejects a path that does not start with /, a method that is not one, an empty s3 block and a bucket that is not a glob", () => {
    expect(errorsOf(withRules('- { effect: allow, paths: ["a/**"] }', '- { effect: allow, methods: ["GET /"] }', "- { effect: allow, s3: {} }", "- { effect: allow, s3: { bucket: 3 } }"))).toEqual([
      '11:34: paths[0] "a/**" must start with "/" (a glob over the request\'s path)',
      '12:36: methods[0] "GET /" is not an HTTP method (letters only, e.g. GET)',
      "13:30: s3 must name a bucket, a key or both",
      "14:40: bucket must be a glob or a list of globs, got 3",
    ]);
  });

  it("reads actions as IAM patterns and rejects an unknown one at its value, suggesting the nearest name", () => {
    expect(parsed(withRules('- { effect: allow, actions: ["s3:Get*"] }')).endpoints[0]?.rules?.[0]?.actions?.map((g) => g.text)).toEqual(["s3:Get*"]);
    expect(errorsOf(withRules('- { effect: deny, actions: ["s3:DeleteObject", "s3:DeletObjects", "dynamo:GetItem"] }'))).toEqual([
      '11:54: action "s3:DeletObjects" is not a known s3 action (did you mean "s3:DeleteObjects"?)',
      '11:73: action "dynamo:GetItem" names unknown service "dynamo" (did you mean "dynamodb"?)',
    ]);
  });

  it("rejects an empty rules list", () => {
    expect(errorsOf(withEndpoints(...endpoint(), "    rules: []"))).toEqual(["10:12: rules must not be empty"]);
  });
});

describe("parsePolicy: endpoint fields", () => {
  it("rejects an unknown credential_signing value, listing the valid ones", () => {
    expect(errorsOf(withEndpoints(...endpoint({ credential_signing: "sigv4_typo" })))).toEqual([
      '7:25: unknown credential_signing "sigv4_typo" (expected sigv4, sigv4:body, sigv4:no_body or sigv4a)',
    ]);
  });

  it("accepts sigv4a with a region_set, and sigv4a without one", () => {
    const p = parsed(withEndpoints(...endpoint({ host: '"*.mrap.accesspoint.s3-global.amazonaws.com"', credential_signing: "sigv4a", region_set: '["*"]' })));
    expect(p.endpoints[0]).toMatchObject({ credentialSigning: "sigv4a", regionSet: ["*"] });
    const q = parsed(withEndpoints(...endpoint({ credential_signing: "sigv4a", region_set: "[us-east-1, eu-west-1]" })));
    expect(q.endpoints[0]?.regionSet).toEqual(["us-east-1", "eu-west-1"]);
    expect(parsed(withEndpoints(...endpoint({ credential_signing: "sigv4a" }))).endpoints[0]?.regionSet).toBeUndefined();
  });

  it("rejects region on a sigv4a endpoint (SigV4A's scope has no region) and region_set on a sigv4 one", () => {
    expect(errorsOf(withEndpoints(...endpoint({ credential_signing: "sigv4a", region: "us-east-1" })))).toEqual([
      '10:5: region does not apply to credential_signing: sigv4a, whose signature has no region; use region_set (e.g. ["*"])',
    ]);
    expect(errorsOf(withEndpoints(...endpoint({ region_set: '["*"]' })))).toEqual([
      "10:5: region_set applies only to credential_signing: sigv4a (SigV4A signs for a set of regions); with sigv4 use region",
    ]);
  });

  it("rejects a region_set entry that is neither * nor a region, and an empty region_set", () => {
    expect(errorsOf(withEndpoints(...endpoint({ credential_signing: "sigv4a", region_set: "[us-east-1, mars]" })))).toEqual([
      '10:29: region_set[1] "mars" is neither "*" nor shaped like an AWS region (e.g. us-east-1)',
    ]);
    expect(errorsOf(withEndpoints(...endpoint({ credential_signing: "sigv4a", region_set: "[]" })))).toEqual([
      "10:17: region_set must not be an empty list; omit it to sign for the client's own x-amz-region-set, or write [\"*\"]",
    ]);
  });

  it("accepts sigv4:body and sigv4:no_body", () => {
    expect(parsed(withEndpoints(...endpoint({ credential_signing: "sigv4:body" }))).endpoints[0]?.credentialSigning).toBe("sigv4:body");
    expect(parsed(withEndpoints(...endpoint({ credential_signing: "sigv4:no_body" }))).endpoints[0]?.credentialSigning).toBe(
      "sigv4:no_body",
    );
  });

  it("rejects a missing signing_service at the endpoint", () => {
    expect(errorsOf(withEndpoints(...endpoint({ signing_service: undefined })))).toEqual([
      '6:5: endpoint is missing required key "signing_service" (a SigV4 service name such as s3, or auto)',
    ]);
  });

  it("rejects an empty signing_service string at its value", () => {
    expect(errorsOf(withEndpoints(...endpoint({ signing_service: '""' })))).toEqual([
      "8:22: signing_service must not be empty (expected a SigV4 service name such as s3, or auto)",
    ]);
  });

  it("rejects a signing_service key with no value, at the key", () => {
    expect(errorsOf(withEndpoints(...endpoint({ signing_service: "" })))).toEqual([
      "8:5: signing_service has no value (expected a SigV4 service name such as s3, or auto)",
    ]);
  });

  it("rejects a signing_service that is not a service name", () => {
    expect(errorsOf(withEndpoints(...endpoint({ signing_service: "S3" })))).toEqual([
      '8:22: signing_service "S3" is not a SigV4 service name (lower-case letters, digits, ".", "-" and "_", e.g. s3 or execute-api) or auto',
    ]);
  });

  it.each([
    ["0", "0"],
    ["65536", "65536"],
    ["70000", "70000"],
  ])("rejects port %s outside 1..65535", (port, shown) => {
    expect(errorsOf(withEndpoints(...endpoint(), `    port: ${port}`))).toEqual([`10:11: port must be between 1 and 65535, got ${shown}`]);
  });

  it("rejects a quoted port", () => {
    expect(errorsOf(withEndpoints(...endpoint(), '    port: "443"'))).toEqual(['10:11: port must be a whole number, got the string "443"']);
  });

  it("rejects a reference to an unknown credentials entry, suggesting the close one", () => {
    expect(errorsOf(withEndpoints(...endpoint({ credentials: "wrok" })))).toEqual([
      '9:18: unknown credentials "wrok" (no such credentials entry; did you mean "work"?)',
    ]);
  });

  it("lists the defined entries when an unknown reference is not close to any", () => {
    expect(errorsOf(withEndpoints(...endpoint({ credentials: "production" })))).toEqual([
      '9:18: unknown credentials "production" (no such credentials entry; defined: work)',
    ]);
  });

  it.each(["us_east_1", "useast1", "US-EAST-1", "us-east", "east-1"])("rejects region %s that is not shaped like a region", (region) => {
    expect(errorsOf(withEndpoints(...endpoint({ region })))).toEqual([
      `10:13: region ${JSON.stringify(region)} is not shaped like an AWS region (e.g. us-east-1, cn-north-1, us-gov-west-1)`,
    ]);
  });

  it("rejects an empty client_access_key_ids list", () => {
    expect(errorsOf(withEndpoints(...endpoint({ client_access_key_ids: "[]" })))).toEqual([
      "10:28: client_access_key_ids must not be an empty list (it would refuse every request); omit it to accept any placeholder key id",
    ]);
  });

  it("rejects a client access key id with characters an access key id cannot hold", () => {
    expect(errorsOf(withEndpoints(...endpoint({ client_access_key_ids: '[AKID, "no spaces"]' })))).toEqual([
      '10:35: client_access_key_ids[1] "no spaces" is not an access key id (1 to 128 letters and digits)',
    ]);
  });
});

describe("parsePolicy: host patterns", () => {
  const hostError = (host: string, message: string): void => {
    expect(errorsOf(withEndpoints(...endpoint({ host: JSON.stringify(host) })))).toEqual([`6:11: host ${JSON.stringify(host)}${message}`]);
  };

  it('rejects the partial-label wildcard "us-*"', () => {
    hostError("s3.us-*.amazonaws.com", ': label "us-*" is a partial wildcard; "*" must be a whole label (e.g. "*.s3.*.amazonaws.com")');
  });

  it('rejects the partial-label wildcard "s3-*"', () => {
    hostError("s3-*.amazonaws.com", ': label "s3-*" is a partial wildcard; "*" must be a whole label (e.g. "*.s3.*.amazonaws.com")');
  });

  it('rejects "**" in a label other than the first', () => {
    hostError("s3.**.amazonaws.com", ': "**" is only allowed as the whole first label (e.g. "**.amazonaws.com")');
  });

  it('rejects a bare "*"', () => {
    hostError("*", ' would match every host; name the domain too, e.g. "*.amazonaws.com"');
  });

  it('rejects a bare "**"', () => {
    hostError("**", ' would match every host; name the domain too, e.g. "*.amazonaws.com"');
  });

  it("rejects a wildcard top-level label", () => {
    hostError("amazonaws.*", ": the last label (the top-level domain) cannot be a wildcard");
  });

  it("rejects an empty label", () => {
    hostError("s3..amazonaws.com", " has an empty label (two dots in a row, or a leading dot)");
  });

  it("rejects a character that is not allowed in a DNS name", () => {
    hostError("s3.amazon aws.com", ': label "amazon aws" has the invalid character " " (allowed: letters, digits, "-" and "_")');
  });

  it("rejects an empty host", () => {
    expect(errorsOf(withEndpoints(...endpoint({ host: '""' })))).toEqual([
      '6:11: host must not be empty (expected a host pattern such as "*.s3.*.amazonaws.com")',
    ]);
  });

  it("rejects a second endpoint with the same host and port, since it can never match", () => {
    const text = withEndpoints(...endpoint(), ...endpoint({ host: '"*.S3.*.amazonaws.com"' }));
    expect(errorsOf(text)).toEqual([
      '10:11: duplicate endpoint: host "*.S3.*.amazonaws.com" (any port) can never match, because endpoints[0] has the same host (any port) and comes first',
    ]);
  });

  it("rejects a port-specific endpoint after an any-port endpoint with the same host", () => {
    const text = withEndpoints(...endpoint(), ...endpoint(), "    port: 443");
    expect(errorsOf(text)).toEqual([
      '10:11: duplicate endpoint: host "*.s3.*.amazonaws.com" (port 443) can never match, because endpoints[0] has the same host (any port) and comes first',
    ]);
  });

  it("accepts the same host on different ports", () => {
    const text = withEndpoints(...endpoint(), "    port: 443", ...endpoint(), "    port: 8443");
    expect(errorsOf(text)).toEqual([]);
  });
});

describe("parsePolicy: assume_role", () => {
  it("accepts a role sourced from another entry", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work"))).toEqual([]);
  });

  it("rejects an unknown source, suggesting the close one", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: wrk"))).toEqual(['8:15: unknown source "wrk" (no such credentials entry; did you mean "work"?)']);
  });

  it("rejects a missing source", () => {
    expect(errorsOf(withRole(ROLE_ARN))).toEqual([
      '7:7: assume_role of credentials entry "role" is missing required key "source" (the name of another credentials entry)',
    ]);
  });

  it("rejects a role that is its own source", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: role"))).toEqual(['8:15: credentials entry "role" uses itself as its assume_role source']);
  });

  it("rejects a cycle of sources once, at its first member", () => {
    const text = lines(
      ...HEAD,
      "  a:",
      "    assume_role: { role_arn: 'arn:aws:iam::123456789012:role/a', source: b }",
      "  b:",
      "    assume_role: { role_arn: 'arn:aws:iam::123456789012:role/b', source: a }",
      "endpoints:",
      ...endpoint(),
    );
    expect(errorsOf(text)).toEqual(["6:74: assume_role sources form a cycle: a → b → a"]);
  });

  it.each([899, 43201])("rejects duration_seconds %i outside 900..43200", (duration) => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", `duration_seconds: ${duration}`))).toEqual([
      `9:25: duration_seconds must be between 900 and 43200, got ${duration}`,
    ]);
  });

  it("accepts duration_seconds 43200 when the source is not a role", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "duration_seconds: 43200"))).toEqual([]);
  });

  it("rejects duration_seconds over 3600 when the source is itself an assume_role entry (role chaining)", () => {
    const text = lines(
      ...HEAD,
      "  first: { assume_role: { role_arn: 'arn:aws:iam::123456789012:role/a', source: work } }",
      "  second:",
      "    assume_role:",
      "      role_arn: arn:aws:iam::123456789012:role/b",
      "      source: first",
      "      duration_seconds: 3601",
      "endpoints:",
      ...endpoint(),
    );
    expect(errorsOf(text)).toEqual([
      '10:25: duration_seconds 3601 is over 3600: source "first" is itself an assume_role entry, and AWS limits chained role sessions to one hour',
    ]);
  });

  it.each([
    ["arn:aws:iam::12345678901:role/x", "an 11-digit account"],
    ["arn:aws-eu:iam::123456789012:role/x", "an unknown partition"],
    ["arn:aws:iam::123456789012:user/x", "a user, not a role"],
    ["arn:aws:sts::123456789012:role/x", "the sts service"],
    ["arn:aws:iam::123456789012:role/", "no role name"],
  ])("rejects role_arn %s (%s)", (arn) => {
    expect(errorsOf(withRole(`role_arn: "${arn}"`, "source: work"))).toEqual([
      `7:17: role_arn "${arn}" is not an IAM role ARN (expected arn:<aws|aws-cn|aws-us-gov>:iam::<12-digit account id>:role/<path/name>)`,
    ]);
  });

  it.each(["arn:aws-cn:iam::123456789012:role/x", "arn:aws-us-gov:iam::123456789012:role/path/to/x"])("accepts role_arn %s", (arn) => {
    expect(errorsOf(withRole(`role_arn: ${arn}`, "source: work"))).toEqual([]);
  });

  it("rejects refresh_before_seconds equal to duration_seconds", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "duration_seconds: 900", "refresh_before_seconds: 900"))).toEqual([
      "10:31: refresh_before_seconds (900) must be less than duration_seconds (900)",
    ]);
  });

  it("rejects refresh_before_seconds at or over the default duration", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "refresh_before_seconds: 4000"))).toEqual([
      "9:31: refresh_before_seconds (4000) must be less than duration_seconds (3600, the default)",
    ]);
  });

  it("rejects expiry_margin_seconds equal to refresh_before_seconds", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "refresh_before_seconds: 120", "expiry_margin_seconds: 120"))).toEqual([
      "10:30: expiry_margin_seconds (120) must be less than refresh_before_seconds (120)",
    ]);
  });

  it("rejects expiry_margin_seconds over the default refresh_before_seconds", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "expiry_margin_seconds: 301"))).toEqual([
      "9:30: expiry_margin_seconds (301) must be less than refresh_before_seconds (300, the default)",
    ]);
  });

  it("rejects a refresh_before_seconds that the default expiry margin (30) is not below, at refresh_before_seconds", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "refresh_before_seconds: 30"))).toEqual([
      "9:31: expiry_margin_seconds (30, the default) must be less than refresh_before_seconds (30)",
    ]);
  });

  it("rejects expiry_margin_seconds at or over half of duration_seconds, where the refresh window is capped", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "duration_seconds: 900", "refresh_before_seconds: 800", "expiry_margin_seconds: 450"))).toEqual([
      "11:30: expiry_margin_seconds (450) must be less than half of duration_seconds (900), where the refresh window is capped",
    ]);
  });

  it("rejects a negative or fractional expiry_margin_seconds; accepts 0 (sign until the expiry)", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "expiry_margin_seconds: -1"))).toHaveLength(1);
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "expiry_margin_seconds: 1.5"))).toHaveLength(1);
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "expiry_margin_seconds: 0"))).toEqual([]);
    expect(parsed(withRole(ROLE_ARN, "source: work", "expiry_margin_seconds: 0")).credentials.get("role")).toMatchObject({ expiryMarginSeconds: 0 });
  });

  it("rejects a session policy that is not JSON", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "policy: optional inline session policy JSON"))).toEqual([
      expect.stringMatching(/^9:15: policy is not a JSON session policy: Unexpected token/) as string,
    ]);
  });

  it("rejects a session policy that is JSON but not an object", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "policy: '[1]'"))).toEqual(["9:15: policy is not a JSON session policy: expected a JSON object"]);
  });

  it("rejects an sts_region not shaped like a region", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "sts_region: global"))).toEqual([
      '9:19: sts_region "global" is not shaped like an AWS region (e.g. us-east-1, cn-north-1, us-gov-west-1)',
    ]);
  });

  it("rejects an sts_endpoint over plain http to a remote host", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "sts_endpoint: http://sts.amazonaws.com"))).toEqual([
      '9:21: sts_endpoint "http://sts.amazonaws.com" must use https (http is only allowed for loopback test servers)',
    ]);
  });

  it("rejects a session tag whose value is not a string", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "tags: { team: 7 }"))).toEqual(['9:21: tag "team" must be a string, got 7']);
  });

  it("does not echo an invalid external_id", () => {
    expect(errorsOf(withRole(ROLE_ARN, "source: work", "external_id: 'secret value'"))).toEqual([
      "9:20: external_id must be 2 to 1224 characters of letters, digits and _+=,.@:/-",
    ]);
  });
});

describe("parsePolicy: reporting", () => {
  it("collects every error of the document, sorted by position", () => {
    const text = lines(
      "version: 3",
      "credentials:",
      "  work: { static: { access_key_id_env: AK, secret_access_key_env: SK } }",
      "endpoints:",
      '  - { host: "s3-*.amazonaws.com", credential_signing: sigv4, signing_service: s3, credentials: work }',
      '  - { host: "a.com", port: 0, credential_signing: sig, signing_service: s3, credentials: nope }',
    );
    expect(errorsOf(text)).toEqual([
      "1:10: unsupported version 3 (expected 1)",
      '5:13: host "s3-*.amazonaws.com": label "s3-*" is a partial wildcard; "*" must be a whole label (e.g. "*.s3.*.amazonaws.com")',
      "6:28: port must be between 1 and 65535, got 0",
      '6:51: unknown credential_signing "sig" (expected sigv4, sigv4:body, sigv4:no_body or sigv4a)',
      '6:90: unknown credentials "nope" (no such credentials entry; defined: work)',
    ]);
  });

  it("labels every error with the file name it was given", () => {
    const result = parsePolicy("version: 2\n", "/etc/countersign/policy.yaml");
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error.every((e) => e.file === "/etc/countersign/policy.yaml")).toBe(true);
  });

  it("formats an error as FILE:LINE:COL: message", () => {
    expect(formatPolicyError({ file: "p.yaml", line: 12, col: 7, message: "something is wrong" })).toBe("p.yaml:12:7: something is wrong");
  });
});
