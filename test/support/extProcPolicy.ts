/**
 * The one policy the unit specs of src/extproc plan and sign against (plan.spec.ts, stream.spec.ts),
 * with inProcessContext (extProcHarness.ts). Its endpoints, by index (first match wins):
 *
 *   0  locked.s3.eu-west-1.amazonaws.com          s3, only the placeholder key id PLACEHOLDER_KEY_ID
 *   1  *.s3.us-west-2.amazonaws.com               s3
 *   2  storage.example.com                        s3, no region can be derived from the host
 *   3  fixed.example.com                          s3, region ap-south-1
 *   4  bedrock-runtime.us-east-1.amazonaws.com    sigv4:no_body, signing_service auto
 *   5  sts.amazonaws.com                          sigv4:body, sts, us-east-1
 *   6  vault.s3.eu-central-1.amazonaws.com        s3, credentials "missing"
 *   7  *.mrap.accesspoint.s3-global.amazonaws.com sigv4a, s3 (region set from the client)
 *   8  pinned.accesspoint.s3-global.amazonaws.com sigv4a, s3, region_set us-east-1 + eu-west-1
 *
 * Every endpoint but 6 signs with the profile "main"; nothing reads the environment
 * variables the profiles name (the specs hand the credentials to inProcessContext).
 */
import type { Policy } from "../../src/policy/types.js";
import { policyFrom } from "./policyFrom.js";

/** The only key id endpoint 0 accepts. */
export const PLACEHOLDER_KEY_ID = "AKIDPLACEHOLDER00001";

/** The policy above, with limits.max_buffered_body_bytes set to `maxBufferedBodyBytes`. */
export function extProcPolicy(maxBufferedBodyBytes: number): Policy {
  return policyFrom(
    `version: 1
credentials:
  main:
    static:
      access_key_id_env: EXTPROC_SPEC_ID
      secret_access_key_env: EXTPROC_SPEC_SECRET
  missing:
    static:
      access_key_id_env: EXTPROC_SPEC_MISSING_ID
      secret_access_key_env: EXTPROC_SPEC_MISSING_SECRET
limits:
  max_buffered_body_bytes: ${maxBufferedBodyBytes}
endpoints:
  - host: "locked.s3.eu-west-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
    client_access_key_ids: [${PLACEHOLDER_KEY_ID}]
  - host: "*.s3.us-west-2.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
  - host: "storage.example.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: main
  - host: "fixed.example.com"
    credential_signing: sigv4
    signing_service: s3
    region: ap-south-1
    credentials: main
  - host: "bedrock-runtime.us-east-1.amazonaws.com"
    credential_signing: "sigv4:no_body"
    signing_service: auto
    credentials: main
  - host: "sts.amazonaws.com"
    credential_signing: "sigv4:body"
    signing_service: sts
    region: us-east-1
    credentials: main
  - host: "vault.s3.eu-central-1.amazonaws.com"
    credential_signing: sigv4
    signing_service: s3
    credentials: missing
  - host: "*.mrap.accesspoint.s3-global.amazonaws.com"
    credential_signing: sigv4a
    signing_service: s3
    credentials: main
  - host: "pinned.accesspoint.s3-global.amazonaws.com"
    credential_signing: sigv4a
    signing_service: s3
    region_set: ["us-east-1", "eu-west-1"]
    credentials: main
`,
    "extproc-spec-policy.yaml",
  );
}
