/**
 * Property: no request outside an endpoint's rules is ever signed. Random rules (effect, methods,
 * paths, S3 bucket and key globs, S3 actions) and random S3 requests (virtual-hosted or path
 * style, keys with %2F, %252F, +, spaces, unicode, `..`, `//` and malformed escapes) go through
 * the real ExtProcStream; an oracle written here, independently of src/policy (its own glob
 * matcher, its own percent-decoder, the bucket and key taken from how the request was built),
 * says whether the rules allow each request. A request is signed exactly when the oracle allows
 * it. FUZZ_RUNS sets the case count (default 300; `make fuzz` runs 100000).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { headersSetBy, inProcessContext, refusalOf } from "../support/extProcHarness.js";
import { policyFrom } from "../support/policyFrom.js";
import { ExtProcStream } from "../../src/extproc/stream.js";
import type { Policy } from "../../src/policy/types.js";
import { FUZZ_TIMEOUT_MS, fuzzRuns } from "./support/arbitraries.js";
import { requestHead, requestHeadersMessage } from "./support/messages.js";

const RUNS = fuzzRuns();
const REAL = { accessKeyId: "AKIAFUZZRULES0000001", secretAccessKey: "fuzz/rules/secret/00000000000000000000001" };
const REGION_HOST = "s3.eu-west-1.amazonaws.com";

interface RuleSpec {
  effect: "allow" | "deny";
  methods?: string[];
  paths?: string[];
  bucket?: string[];
  key?: string[];
  actions?: string[];
}

interface RequestSpec {
  method: string;
  virtualHosted: boolean;
  bucket: string;
  /** The key as sent (percent-encoded pieces included); "" for a bucket-level request. */
  rawKey: string;
}

// ---- the oracle: independent of src/policy ----

/** `**` any run, `*` any run without "/", the rest literal; by recursion, no regular expressions. */
function globMatches(glob: string, text: string): boolean {
  if (glob === "") return text === "";
  if (glob.startsWith("**")) {
    for (let i = 0; i <= text.length; i++) if (globMatches(glob.slice(2), text.slice(i))) return true;
    return false;
  }
  if (glob[0] === "*") {
    for (let i = 0; i <= text.length; i++) {
      if (i > 0 && text[i - 1] === "/") return false;
      if (globMatches(glob.slice(1), text.slice(i))) return true;
    }
    return false;
  }
  return text.length > 0 && glob[0] === text[0] && globMatches(glob.slice(1), text.slice(1));
}

/** %XX once into bytes, then strict UTF-8; undefined when malformed. */
function percentDecode(raw: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === "%") {
      const hex = raw.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return undefined;
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(raw[i] as string, "utf8"));
    }
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

/** IAM names of a query-less S3 request; undefined when S3 has no such operation. */
function s3ActionNames(method: string, hasKey: boolean): string[] | undefined {
  const table: Record<string, string[]> = hasKey
    ? { GET: ["GetObject"], HEAD: ["GetObject", "HeadObject"], PUT: ["PutObject"], DELETE: ["DeleteObject"] }
    : { GET: ["ListBucket", "ListObjects"], HEAD: ["ListBucket", "HeadBucket"], PUT: ["CreateBucket"], DELETE: ["DeleteBucket"] };
  return table[method]?.map((n) => `s3:${n}`);
}

function actionMatches(pattern: string, name: string): boolean {
  if (pattern.toLowerCase() === "s3:*") return name.startsWith("s3:");
  return pattern.toLowerCase() === name.toLowerCase();
}

/** Whether the rules allow the request: first match decides, none matching refuses. */
function oracleAllows(rules: readonly RuleSpec[], r: RequestSpec): boolean {
  const rawPath = r.virtualHosted ? `/${r.rawKey}` : `/${r.bucket}${r.rawKey === "" ? "" : `/${r.rawKey}`}`;
  const decodedPath = percentDecode(rawPath);
  const key = r.rawKey === "" ? undefined : percentDecode(r.rawKey.replaceAll("+", " "));
  for (const rule of rules) {
    if (rule.methods && !rule.methods.some((m) => m.toUpperCase() === r.method)) continue;
    if (rule.paths) {
      if (decodedPath === undefined) return false;
      if (!rule.paths.some((g) => globMatches(g, decodedPath))) continue;
    }
    if (rule.bucket || rule.key) {
      if (r.rawKey !== "" && key === undefined) return false;
      if (rule.bucket && !rule.bucket.some((g) => globMatches(g, r.bucket))) continue;
      if (rule.key && (key === undefined || !rule.key.some((g) => globMatches(g, key)))) continue;
    }
    if (rule.actions) {
      // A key that cannot be decoded leaves the action undetermined: no actions rule matches.
      const names = r.rawKey !== "" && key === undefined ? undefined : s3ActionNames(r.method, r.rawKey !== "");
      if (names === undefined) {
        if (rule.effect === "deny") return false; // it could be the denied action
        continue;
      }
      if (!rule.actions.some((p) => names.some((n) => actionMatches(p, n)))) continue;
    }
    return rule.effect === "allow";
  }
  return false;
}

// ---- arbitraries ----

const keyPiece = fc.oneof(
  { arbitrary: fc.constantFrom("a", "b", "/"), weight: 3 },
  { arbitrary: fc.constantFrom("+", "%2F", "%252F", "%20", "..", ".", "%C3%BC", "%F0%9F%A6%84", "%zz", "A"), weight: 2 },
);
const rawKeyArb = fc.array(keyPiece, { maxLength: 6 }).map((pieces) => pieces.join("").replace(/^\/+/, ""));
const globPiece = fc.oneof(
  { arbitrary: fc.constantFrom("a", "b", "/", "*", "**"), weight: 3 },
  { arbitrary: fc.constantFrom(" ", "+", "%2F", "..", "ü", "A"), weight: 1 },
);
const globArb = fc.array(globPiece, { minLength: 1, maxLength: 5 }).map((p) => p.join(""));
const METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE"];
const BUCKETS = ["data", "logs", "data2"];

const ruleArb: fc.Arbitrary<RuleSpec> = fc
  .record(
    {
      effect: fc.constantFrom("allow" as const, "deny" as const),
      methods: fc.subarray([...METHODS, "get"], { minLength: 1 }),
      paths: fc.array(globArb.map((g) => `/${g}`), { minLength: 1, maxLength: 2 }),
      bucket: fc.array(fc.constantFrom(...BUCKETS, "data*", "*", "**"), { minLength: 1, maxLength: 2 }),
      key: fc.array(globArb, { minLength: 1, maxLength: 2 }),
      actions: fc.subarray(["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:HeadObject", "s3:ListBucket", "s3:*", "S3:getobject"], { minLength: 1 }),
    },
    { requiredKeys: ["effect"] },
  )
  .filter((r) => r.methods !== undefined || r.paths !== undefined || r.bucket !== undefined || r.key !== undefined || r.actions !== undefined);

const requestArb: fc.Arbitrary<RequestSpec> = fc.record({
  method: fc.constantFrom(...METHODS),
  virtualHosted: fc.boolean(),
  bucket: fc.constantFrom(...BUCKETS),
  rawKey: rawKeyArb,
});

function yamlString(s: string): string {
  return JSON.stringify(s);
}

function policyText(rules: readonly RuleSpec[]): string {
  const lines = rules.map((r) => {
    const fields = [`effect: ${r.effect}`];
    if (r.methods) fields.push(`methods: [${r.methods.join(", ")}]`);
    if (r.paths) fields.push(`paths: [${r.paths.map(yamlString).join(", ")}]`);
    if (r.bucket || r.key) {
      const s3 = [...(r.bucket ? [`bucket: [${r.bucket.map(yamlString).join(", ")}]`] : []), ...(r.key ? [`key: [${r.key.map(yamlString).join(", ")}]`] : [])];
      fields.push(`s3: { ${s3.join(", ")} }`);
    }
    if (r.actions) fields.push(`actions: [${r.actions.map(yamlString).join(", ")}]`);
    return `      - { ${fields.join(", ")} }`;
  });
  const endpoint = (host: string) => [`  - host: ${yamlString(host)}`, "    credential_signing: sigv4", "    signing_service: s3", "    credentials: real", "    rules:", ...lines];
  return ["version: 1", "credentials:", "  real: { default_chain: {} }", "endpoints:", ...endpoint("*.s3.eu-west-1.amazonaws.com"), ...endpoint(REGION_HOST), ""].join("\n");
}

async function signed(policy: Policy, r: RequestSpec): Promise<boolean> {
  const { ctx } = inProcessContext(policy, REAL);
  const host = r.virtualHosted ? `${r.bucket}.${REGION_HOST}` : REGION_HOST;
  const path = r.virtualHosted ? `/${r.rawKey}` : `/${r.bucket}${r.rawKey === "" ? "" : `/${r.rawKey}`}`;
  const response = await new ExtProcStream(ctx).handle(requestHeadersMessage(requestHead(r.method, host, path, [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"]]), true));
  const refusal = refusalOf(response);
  const authorization = headersSetBy(response).get("authorization");
  if (refusal !== undefined) {
    expect([refusal.status, refusal.code, refusal.headers.get("x-countersign-denial")]).toEqual([403, "AccessDenied", "rule"]);
    expect(authorization).toBeUndefined();
    return false;
  }
  expect(authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAFUZZRULES0000001\//);
  return true;
}

describe(`endpoint rules under random rules and requests (${RUNS} cases)`, () => {
  it("signs a request exactly when the rules allow it, and refuses every other one with 403 AccessDenied, reason rule", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(ruleArb, { minLength: 1, maxLength: 4 }), fc.array(requestArb, { minLength: 1, maxLength: 8 }), async (rules, requests) => {
        const policy = policyFrom(policyText(rules));
        for (const r of requests) expect({ request: r, signed: await signed(policy, r) }).toEqual({ request: r, signed: oracleAllows(rules, r) });
      }),
      { numRuns: RUNS },
    );
  }, Math.max(FUZZ_TIMEOUT_MS, RUNS * 15)); // up to 8 requests a case: about 5 ms a case on the 2-core VM

  it("the oracle's glob matcher agrees with the documented examples", () => {
    expect([globMatches("public/**", "public/a/b"), globMatches("public/*", "public/a/b"), globMatches("a*", "a"), globMatches("**", "")]).toEqual([true, false, true, true]);
  });
});
