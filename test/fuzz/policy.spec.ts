/**
 * Fuzzing of the policy parser (src/policy/parsePolicy.ts): random text, random policy-shaped
 * documents and random edits of real policies. parsePolicy must never throw, must answer quickly,
 * and must either return a usable policy or errors with positions inside the text.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { stringify } from "yaml";
import { describe, expect, it } from "vitest";
import { matchEndpoint, parsePolicy } from "../../src/policy/index.js";
import type { ParseResult } from "../../src/policy/types.js";
import { SECURITY_POLICY } from "../security/support/fixtures.js";
import { REPO } from "../support/startServe.js";
import { authorityArb, FUZZ_TIMEOUT_MS, fuzzRuns } from "./support/arbitraries.js";

const RUNS = fuzzRuns();
/** Parsing a whole policy costs ~1.5 ms (YAML, JSON Schema, semantics): a tenth of the cases. */
const DOC_RUNS = fuzzRuns(0.1, 100);
const SHIPPED = ["aws.yaml", "aws-s3.yaml", "bedrock.yaml"].map((f) => readFileSync(join(REPO, "policies", f), "utf8"));
const SEEDS = [SECURITY_POLICY, ...SHIPPED];

/** Each parse must finish within this long (a hang or an exponential blow-up fails the case). */
const PARSE_BUDGET_MS = 2_000;

function checkResult(text: string, result: ParseResult, authorities: readonly string[] = []): void {
  if (result.ok) {
    expect(result.policy.endpoints.length).toBeGreaterThanOrEqual(1);
    expect(result.policy.sha256).toMatch(/^[0-9a-f]{64}$/);
    for (const a of authorities) for (const scheme of ["https", "http"]) matchEndpoint(result.policy, a, scheme);
    return;
  }
  const lines = text.split(/\r\n|\r|\n/).length;
  expect(result.error.length).toBeGreaterThanOrEqual(1);
  for (const e of result.error) {
    expect(e.file).toBe("fuzz.yaml");
    expect(e.line).toBeGreaterThanOrEqual(1);
    expect(e.line).toBeLessThanOrEqual(lines + 1);
    expect(e.col).toBeGreaterThanOrEqual(1);
    expect(e.message.length).toBeGreaterThan(0);
  }
}

function timedParse(text: string): ParseResult {
  const started = performance.now();
  const result = parsePolicy(text, "fuzz.yaml");
  const ms = performance.now() - started;
  expect(ms, `parse took ${Math.round(ms)} ms`).toBeLessThan(PARSE_BUDGET_MS);
  return result;
}

const yamlNoise = fc.constantFrom(" ", ":", "-", "[", "]", "{", "}", "&a", "*a", "!", "!!str", "|", ">", "'", '"', "#", "%", "@", "`", "\n", "\t", "  ", "~", "null", "0x1f", "1e9", "<<: *a", "? ", ",", "\u0000", "\ufeff", "\u2028");

/** Random insertions, deletions and replacements at random places of a real policy. */
const editedPolicyArb: fc.Arbitrary<string> = fc
  .tuple(fc.constantFrom(...SEEDS), fc.array(fc.tuple(fc.nat(), fc.nat(12), fc.oneof(yamlNoise, fc.string({ maxLength: 6 }))), { minLength: 1, maxLength: 4 }))
  .map(([seed, edits]) => {
    let text = seed;
    for (const [at, del, ins] of edits) {
      const i = at % (text.length + 1);
      text = text.slice(0, i) + ins + text.slice(i + del);
    }
    return text;
  });

const scalarArb = fc.oneof(
  fc.constantFrom("sigv4", "sigv4:body", "sigv4:no_body", "auto", "s3", "real", "*.amazonaws.com", "**.s3.*.amazonaws.com", "*", "**", "us-east-1", "", "ENV_X", 900, 3600, -1, 0, 1e12, true, null),
  fc.string({ maxLength: 12 }),
  fc.integer(),
);

/** Documents with the policy's keys and random values, serialised as YAML. */
const policyShapedArb: fc.Arbitrary<string> = fc
  .record(
    {
      version: fc.oneof(fc.constant(1), scalarArb),
      credentials: fc.dictionary(
        fc.oneof(fc.constantFrom("real", "role", "file", "bad name"), fc.string({ maxLength: 8 })),
        fc.oneof(
          fc.record({ static: fc.record({ access_key_id_env: scalarArb, secret_access_key_env: scalarArb }, { requiredKeys: [] }) }),
          fc.record({ file: fc.record({ path: scalarArb, profile: scalarArb }, { requiredKeys: [] }) }),
          fc.record({ default_chain: fc.oneof(fc.constant({}), fc.constant(null), scalarArb) }),
          fc.record({
            assume_role: fc.record(
              {
                role_arn: fc.oneof(fc.constant("arn:aws:iam::123456789012:role/r"), scalarArb),
                source: fc.oneof(fc.constantFrom("real", "role"), scalarArb),
                duration_seconds: scalarArb,
                refresh_before_seconds: scalarArb,
                sts_endpoint: fc.oneof(fc.constant("http://127.0.0.1:1"), scalarArb),
              },
              { requiredKeys: [] },
            ),
          }),
          scalarArb,
        ),
        { maxKeys: 3 },
      ),
      limits: fc.record({ max_buffered_body_bytes: scalarArb }, { requiredKeys: [] }),
      endpoints: fc.array(
        fc.record(
          {
            host: scalarArb,
            port: scalarArb,
            credential_signing: scalarArb,
            signing_service: scalarArb,
            region: scalarArb,
            credentials: fc.oneof(fc.constantFrom("real", "role"), scalarArb),
            client_access_key_ids: fc.oneof(fc.array(scalarArb, { maxLength: 2 }), scalarArb),
          },
          { requiredKeys: [] },
        ),
        { maxLength: 3 },
      ),
    },
    { requiredKeys: [] },
  )
  .map((doc) => stringify(doc));

describe(`parsePolicy on random input (${RUNS} random texts, ${DOC_RUNS} documents each)`, () => {
  it("never throws on random text and reports errors with positions inside the text", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.string({ unit: "grapheme", maxLength: 100 }), fc.array(yamlNoise, { maxLength: 40 }).map((a) => a.join(""))), (text) => {
        checkResult(text, timedParse(text));
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT_MS);

  it("never throws on random edits of real policies, and a policy that still parses matches random authorities without throwing", () => {
    fc.assert(
      fc.property(editedPolicyArb, fc.array(authorityArb, { maxLength: 4 }), (text, authorities) => {
        checkResult(text, timedParse(text), authorities);
      }),
      { numRuns: DOC_RUNS },
    );
  }, FUZZ_TIMEOUT_MS);

  it("never throws on random policy-shaped documents", () => {
    fc.assert(
      fc.property(policyShapedArb, fc.array(authorityArb, { maxLength: 4 }), (text, authorities) => {
        checkResult(text, timedParse(text), authorities);
      }),
      { numRuns: DOC_RUNS },
    );
  }, FUZZ_TIMEOUT_MS);

  it("refuses an alias bomb and deeply nested YAML quickly, with an error instead of an exception", () => {
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]", ...Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10).fill(`*${String.fromCharCode(97 + i)}`).join(", ")}]`)].join("\n");
    const nested = `${"[".repeat(5_000)}${"]".repeat(5_000)}`;
    for (const text of [bomb, nested]) {
      const result = timedParse(text);
      expect(result.ok).toBe(false);
      checkResult(text, result);
    }
  });
});
