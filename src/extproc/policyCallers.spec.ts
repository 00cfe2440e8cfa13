/**
 * An endpoint's `callers` through one ext_proc stream: the placeholder key id picks the credentials
 * profile; an unlisted one uses `credentials`, or is refused (403 AccessDenied, reason "caller")
 * when the endpoint has none; `client_access_key_ids` is still checked first.
 */
import { describe, expect, it } from "vitest";
import { requestHead, requestHeadersMessage } from "../../test/fuzz/support/messages.js";
import { headersSetBy, inProcessContext, refusalOf } from "../../test/support/extProcHarness.js";
import { policyFrom } from "../../test/support/policyFrom.js";
import { profilesInUse } from "../runtime.js";
import type { SigningContext } from "./context.js";
import { ExtProcStream } from "./stream.js";

const KEYS: Record<string, { accessKeyId: string; secretAccessKey: string }> = {
  "tenant-a": { accessKeyId: "AKIATENANTAREAL00001", secretAccessKey: "tenant/a/secret/00000000000000000000000001" },
  "tenant-b": { accessKeyId: "AKIATENANTBREAL00001", secretAccessKey: "tenant/b/secret/00000000000000000000000001" },
  shared: { accessKeyId: "AKIASHAREDREAL000001", secretAccessKey: "shared/secret/0000000000000000000000000001" },
};
const POLICY = policyFrom(`version: 1
credentials:
  tenant-a: { static: { access_key_id_env: A_ID, secret_access_key_env: A_SECRET } }
  tenant-b: { static: { access_key_id_env: B_ID, secret_access_key_env: B_SECRET } }
  shared: { static: { access_key_id_env: S_ID, secret_access_key_env: S_SECRET } }
  unused: { static: { access_key_id_env: U_ID, secret_access_key_env: U_SECRET } }
endpoints:
  - host: "tenants.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    callers:
      AKIDTENANTA0000000000: tenant-a
      AKIDTENANTB0000000000: tenant-b
  - host: "shared.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: shared
    callers: { AKIDTENANTA0000000000: tenant-a }
  - host: "locked.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: shared
    client_access_key_ids: [AKIDTENANTA0000000000]
    callers: { AKIDTENANTA0000000000: tenant-a }
`);

/** Every profile resolves to its own key. */
function context(): { ctx: SigningContext; decisions: ReturnType<typeof inProcessContext>["decisions"] } {
  const { ctx, decisions } = inProcessContext(POLICY, undefined);
  const snapshot = { policy: POLICY, credentials: (p: string) => (KEYS[p] ? { ok: true as const, credentials: KEYS[p] } : { ok: false as const, error: { cause: "unavailable" as const, message: "none" } }) };
  return { ctx: { ...ctx, snapshot: () => snapshot }, decisions };
}

function auth(keyId: string): string {
  return `AWS4-HMAC-SHA256 Credential=${keyId}/20240101/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${"0".repeat(64)}`;
}

async function send(host: string, keyId: string | undefined) {
  const { ctx, decisions } = context();
  const headers: Array<[string, string]> = [["x-request-id", "rid-callers"], ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"]];
  if (keyId !== undefined) headers.push(["authorization", auth(keyId)]);
  const response = await new ExtProcStream(ctx).handle(requestHeadersMessage(requestHead("GET", host, "/k", headers), true));
  const signedWith = /Credential=([A-Z0-9]+)\//.exec(headersSetBy(response).get("authorization") ?? "")?.[1];
  return { response, decisions, signedWith };
}

describe("callers", () => {
  it.each([
    ["tenants", "AKIDTENANTA0000000000", "tenant-a"],
    ["tenants", "AKIDTENANTB0000000000", "tenant-b"],
    ["shared", "AKIDTENANTA0000000000", "tenant-a"],
    ["shared", "AKIDSOMEONEELSE000000", "shared"],
    ["shared", undefined, "shared"],
  ])("%s endpoint, key id %s: signed with profile %s", async (bucket, keyId, profile) => {
    const { response, decisions, signedWith } = await send(`${bucket}.s3.eu-west-1.amazonaws.com`, keyId);
    expect(refusalOf(response)).toBeUndefined();
    expect(signedWith).toBe(KEYS[profile]?.accessKeyId);
    expect(decisions.map((d) => [d.decision, d.profile])).toEqual([["signed", profile]]);
  });

  it("an unlisted key id where the endpoint has no credentials is 403 AccessDenied, reason caller, key id masked", async () => {
    const { response, decisions } = await send("tenants.s3.eu-west-1.amazonaws.com", "AKIDSOMEONEELSE000000");
    const refusal = refusalOf(response);
    expect({ status: refusal?.status, code: refusal?.code, message: refusal?.message, denial: refusal?.headers.get("x-countersign-denial") }).toEqual({
      status: 403,
      code: "AccessDenied",
      message: "placeholder key id AKID…0000 is not one of the callers of endpoints[0] (tenants.s3.eu-west-1.amazonaws.com), which has no default credentials",
      denial: "caller",
    });
    expect(decisions.map((d) => [d.decision, d.reason, d.profile])).toEqual([["refused", "caller", ""]]);
  });

  it("an unsigned request where the endpoint has no credentials is refused the same way", async () => {
    const { response } = await send("tenants.s3.eu-west-1.amazonaws.com", undefined);
    expect(refusalOf(response)?.message).toBe(
      "a request without a readable SigV4 signature names no caller, and is not one of the callers of endpoints[0] (tenants.s3.eu-west-1.amazonaws.com), which has no default credentials",
    );
  });

  it("client_access_key_ids is checked first: an id it does not list is 403 InvalidAccessKeyId, not signed with the default", async () => {
    const { response, decisions } = await send("locked.s3.eu-west-1.amazonaws.com", "AKIDSOMEONEELSE000000");
    expect([refusalOf(response)?.status, refusalOf(response)?.code]).toEqual([403, "InvalidAccessKeyId"]);
    expect(decisions.map((d) => d.reason)).toEqual(["key_id_not_allowed"]);
  });

  it("the runtime starts every profile a caller names, and not the unused one", () => {
    expect([...profilesInUse(POLICY)].sort()).toEqual(["shared", "tenant-a", "tenant-b"]);
  });
});
