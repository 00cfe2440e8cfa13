/**
 * Fuzzing of signed event streams through ExtProcStream (STREAMED via mode_override): random
 * messages, dates and split points across body messages, random corruption. The forwarded bytes
 * are compared with the independent checker's re-signing (test/support/eventStreams.ts on the
 * fake AWS's event-stream module, written from the event-stream and SigV4 specs with node:crypto
 * and zlib.crc32, no code shared with src/) and verified with the real secret; and the pure re-signer is fed arbitrary bytes.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EventStreamResigner } from "../../src/sigv4/eventStreamResigner.js";
import { PLACEHOLDER_KEY_ID, REAL, SECURITY_POLICY, placeholderAuthorization } from "../security/support/fixtures.js";
import { clientEnvelope, oracleResign, verifyEventStream } from "../support/eventStreams.js";
import { inProcessContext } from "../support/extProcHarness.js";
import { policyFrom } from "../support/policyFrom.js";
import { FUZZ_TIMEOUT_MS, corrupt, corruptionArb, fuzzRuns } from "./support/arbitraries.js";
import { requestBodyMessage, requestHead, requestHeadersMessage, splitAt } from "./support/messages.js";
import { headersSet, modeOverride } from "./support/oracle.js";
import { forwardedUntilRefusal } from "./support/forwarded.js";
import { runStream } from "./support/run.js";

const RUNS = fuzzRuns();
const policy = policyFrom(SECURITY_POLICY);

/** Milliseconds between 2001 and 2099 (a date change inside one stream included). */
const dateArb = fc.integer({ min: 978_307_200_000, max: 4_102_444_799_999 });

const streamArb = fc.record({
  messages: fc.array(fc.record({ date: dateArb, payload: fc.uint8Array({ minLength: 1, maxLength: 96 }), signature: fc.uint8Array({ minLength: 32, maxLength: 32 }) }), { maxLength: 4 }),
  finalDate: dateArb,
  cuts: fc.array(fc.nat(700), { maxLength: 6 }),
  corruption: corruptionArb,
});

const HOST = "photos.s3.us-west-2.amazonaws.com";

describe(`signed event-stream re-signing under random framing (${RUNS} cases)`, () => {
  it("forwards exactly the checker's re-signed stream, verified with the real key — or refuses with 400 at the first error and forwards nothing more", async () => {
    await fc.assert(
      fc.asyncProperty(streamArb, async ({ messages, finalDate, cuts, corruption }) => {
        const original = Buffer.concat([...messages.map((m) => clientEnvelope(m.date, m.payload, m.signature)), clientEnvelope(finalDate, new Uint8Array(0))]);
        const body = corrupt(original, corruption);
        const intact = body.equals(original);
        const pieces = splitAt(body, cuts);
        const headers = requestHead("POST", HOST, "/stream", [
          ["x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-EVENTS"],
          ["content-type", "application/vnd.amazon.eventstream"],
          ["authorization", placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-west-2", "s3")],
        ]);
        const { ctx } = inProcessContext(policy, REAL);
        const transcript = await runStream(ctx, [
          { msg: requestHeadersMessage(headers, false), headers },
          ...pieces.map((p, i) => ({ msg: requestBodyMessage(p, i === pieces.length - 1) })),
        ]);
        const [head, ...bodyAnswers] = transcript;
        expect(modeOverride(head?.response)?.request).toBe("STREAMED");
        const auth = headersSet(head?.response).get("authorization") ?? "";
        const m = /Credential=[^/]+\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=[^,]+, Signature=([0-9a-f]{64})$/.exec(auth);
        expect(m, auth).not.toBeNull();
        const [, region, service, seed] = m as unknown as [string, string, string, string];
        const chain = { seedSignature: seed, secretAccessKey: REAL.secretAccessKey, region, service };

        // After a refusal nothing is forwarded: every later body message is refused too.
        const { forwarded, refusedAt } = forwardedUntilRefusal(bodyAnswers, pieces, "countersign_bad_event_framing");
        if (intact) {
          expect(refusedAt).toBe(-1);
          expect(forwarded.equals(oracleResign(original, chain))).toBe(true);
          expect(verifyEventStream(forwarded, chain)).toHaveLength(messages.length);
          return;
        }
        // Every byte of an envelope is under a CRC: a corrupted stream is always refused, and what
        // went out before is whole messages the checker re-signs the same way.
        expect(refusedAt).toBeGreaterThanOrEqual(0);
        const want = oracleResign(original, chain);
        expect(forwarded.equals(want.subarray(0, forwarded.length))).toBe(true);
      }),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT_MS);

  it("the pure re-signer never throws on arbitrary bytes, and once it fails forwards nothing more", async () => {
    // Any key: the property is about framing and failure, not about the signatures' values (the
    // property above checks those). A message on another day than the seed's gets another key.
    const seed = { signature: "0".repeat(64), amzDate: "20240501T120000Z", scope: "20240501/us-east-1/transcribe/aws4_request", signingKey: new Uint8Array(32).fill(1) };
    const signingKeyFor = (shortDate: string) => Promise.resolve(new Uint8Array(Buffer.from(shortDate.padEnd(32, "k"))));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }), dateArb.map((d) => new Uint8Array(clientEnvelope(d, Buffer.from("p"))))), { maxLength: 6 }),
        fc.boolean(),
        async (pieces, withFinal) => {
          const resigner = new EventStreamResigner({ seed, signingKeyFor, maxMessageBytes: 256 });
          const all = withFinal ? [...pieces, new Uint8Array(clientEnvelope(0, new Uint8Array(0)))] : pieces;
          let failed: string | undefined;
          for (const p of all) {
            const r = await resigner.push(Buffer.from(p));
            if (failed !== undefined) expect(r).toEqual({ ok: false, error: failed });
            else if (!r.ok) failed = r.error;
            expect(resigner.heldBytes).toBeLessThanOrEqual(256);
          }
          const end = resigner.finish();
          if (failed !== undefined) expect(end).toEqual({ ok: false, error: failed });
        },
      ),
      { numRuns: RUNS },
    );
  }, FUZZ_TIMEOUT_MS);
});
