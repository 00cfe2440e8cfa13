/**
 * The authentication decision for one request, as strict as AWS: given the request as received,
 * the endpoint its Host names, the payload hash to use and the accounts the fake accepts, either
 * verify it, refuse it with the error AWS would send, or call it anonymous.
 */
import { awsError, type AwsError } from "./errors.js";
import type { Endpoint, Protocol } from "./hosts.js";
import {
  PRESIGNED_SIGNATURE_PARAM,
  SIGV4A_ALGORITHM_NAME,
  SIGV4_ALGORITHM,
  buildCanonicalRequest,
  checkSignature,
  credentialScope,
  deriveSigningKey,
  hasPresignedAuth,
  headerNames,
  headerValue,
  parseAmzDate,
  parseAuthorizationHeader,
  parsePresignedQuery,
  type ParsedAuthorization,
  type SignatureCheck,
  type WireRequest,
} from "./verifier.js";
import { regionSetCovers, sigV4aPublicKey, sigV4aScope, sigV4aStringToSign, verifySigV4aSignature } from "./sigv4a.js";

export interface FakeAwsAccount {
  accessKeyId: string;
  secretAccessKey: string;
  /** Temporary credentials: requests must carry exactly this x-amz-security-token. */
  sessionToken?: string;
  /** Temporary credentials stop working at this instant (ExpiredToken). */
  expiration?: Date;
  /** Identity reported by GetCallerIdentity. */
  arn?: string;
}

export interface AuthContext {
  request: WireRequest;
  endpoint: Endpoint;
  /** What goes on the canonical request's last line (header value for S3, body hash otherwise). */
  payloadHash: string;
  now: Date;
  maxSkewMs: number;
  findAccount(accessKeyId: string): FakeAwsAccount | undefined;
}

export type AuthKind = "header" | "query";

export type AuthOutcome =
  | { kind: "anonymous" }
  | { kind: "denied"; error: AwsError; authKind?: AuthKind; accessKeyId?: string; signedHeaders?: string[]; check?: SignatureCheck }
  | {
      kind: "verified";
      authKind: AuthKind;
      account: FakeAwsAccount;
      auth: ParsedAuthorization;
      amzDate: string;
      scope: string;
      /** The SigV4 signing key chunk signatures chain under; undefined for SigV4A. */
      signingKey: Buffer | undefined;
      check: SignatureCheck;
    };

interface ProtocolCodes {
  signature: string;
  unknownKey: string;
  invalidToken: string;
  expiredToken: string;
  missingAuth: [number, string, string];
  malformed: [number, string];
}

const CODES: Record<Protocol, ProtocolCodes> = {
  s3: {
    signature: "SignatureDoesNotMatch",
    unknownKey: "InvalidAccessKeyId",
    invalidToken: "InvalidToken",
    expiredToken: "ExpiredToken",
    missingAuth: [403, "AccessDenied", "Access Denied"],
    malformed: [400, "AuthorizationHeaderMalformed"],
  },
  query: {
    signature: "SignatureDoesNotMatch",
    unknownKey: "InvalidClientTokenId",
    invalidToken: "InvalidClientTokenId",
    expiredToken: "ExpiredToken",
    missingAuth: [403, "MissingAuthenticationToken", "Request is missing Authentication Token"],
    malformed: [403, "IncompleteSignature"],
  },
  json: {
    signature: "InvalidSignatureException",
    unknownKey: "UnrecognizedClientException",
    invalidToken: "UnrecognizedClientException",
    expiredToken: "ExpiredTokenException",
    missingAuth: [403, "MissingAuthenticationTokenException", "Missing Authentication Token"],
    malformed: [403, "IncompleteSignature"],
  },
};

export function codesFor(protocol: Protocol): ProtocolCodes {
  return CODES[protocol];
}

/** The refusal for a request that carries no authentication at all. */
export function missingAuthError(protocol: Protocol): AwsError {
  const [status, code, message] = CODES[protocol].missingAuth;
  return awsError(status, code, message, "missing-auth");
}

const SIGNATURE_MISMATCH_MESSAGE =
  "The request signature we calculated does not match the signature you provided. Check your key and signing method.";

function bytesOf(text: string): string {
  return [...Buffer.from(text, "utf8")].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** The SignatureDoesNotMatch error, carrying what the fake computed (never the secret). */
export function signatureMismatchError(protocol: Protocol, accessKeyId: string, check: SignatureCheck): AwsError {
  if (protocol === "s3") {
    return awsError(403, CODES.s3.signature, SIGNATURE_MISMATCH_MESSAGE, "signature", {
      AWSAccessKeyId: accessKeyId,
      StringToSign: check.stringToSign,
      SignatureProvided: check.providedSignature,
      StringToSignBytes: bytesOf(check.stringToSign),
      CanonicalRequest: check.canonicalRequest,
      CanonicalRequestBytes: bytesOf(check.canonicalRequest),
    });
  }
  const message =
    `${SIGNATURE_MISMATCH_MESSAGE}\n\nThe Canonical String for this request should have been\n'${check.canonicalRequest}'\n\n` +
    `The String-to-Sign should have been\n'${check.stringToSign}'\n`;
  return awsError(403, CODES[protocol].signature, message, "signature", {
    CanonicalRequest: check.canonicalRequest,
    StringToSign: check.stringToSign,
  });
}

/** Headers S3 insists are signed when present: every x-amz-* (bar the payload hash) and content-md5. */
export function s3HeadersThatMustBeSigned(request: WireRequest): string[] {
  return [...headerNames(request.headers)]
    .filter((n) => (n.startsWith("x-amz-") && n !== "x-amz-content-sha256") || n === "content-md5")
    .sort();
}

interface Credentials {
  authKind: AuthKind;
  auth: ParsedAuthorization;
  amzDateText: string;
  securityToken: string | undefined;
  presignExpiresSeconds?: number;
}

function readCredentials(ctx: AuthContext): Credentials | AwsError | "anonymous" {
  const { request, endpoint } = ctx;
  const codes = CODES[endpoint.protocol];
  const authorization = headerValue(request.headers, "authorization");
  if (authorization !== undefined) {
    const algorithm = authorization.trim().split(" ")[0] ?? "";
    if (algorithm !== SIGV4_ALGORITHM && algorithm !== SIGV4A_ALGORITHM_NAME) {
      return awsError(400, "InvalidRequest", `The authorization mechanism '${algorithm}' is not supported by this fake; use ${SIGV4_ALGORITHM} or ${SIGV4A_ALGORITHM_NAME}.`, "unsupported-algorithm");
    }
    if (algorithm === SIGV4_ALGORITHM && endpoint.multiRegionAccessPoint) {
      return awsError(400, "InvalidRequest", `The authorization mechanism you have provided is not supported for a Multi-Region Access Point. Please use ${SIGV4A_ALGORITHM_NAME}.`, "unsupported-algorithm");
    }
    const parsed = parseAuthorizationHeader(authorization);
    if (!parsed.ok) return awsError(codes.malformed[0], codes.malformed[1], `The authorization header is malformed; ${parsed.error}`, "malformed-auth");
    const amzDateText = headerValue(request.headers, "x-amz-date");
    if (amzDateText === undefined) {
      return awsError(403, endpoint.protocol === "s3" ? "AccessDenied" : "IncompleteSignature", "AWS authentication requires a valid Date or x-amz-date header", "malformed-auth");
    }
    return { authKind: "header", auth: parsed.value, amzDateText, securityToken: headerValue(request.headers, "x-amz-security-token") };
  }
  if (hasPresignedAuth(request.rawQuery)) {
    const parsed = parsePresignedQuery(request.rawQuery);
    if (!parsed.ok) return awsError(400, "AuthorizationQueryParametersError", parsed.error, "malformed-auth");
    if (parsed.value.expiresSeconds > 604800) {
      return awsError(400, "AuthorizationQueryParametersError", "X-Amz-Expires must be less than a week (in seconds) that is 604800", "malformed-auth");
    }
    return {
      authKind: "query",
      auth: parsed.value,
      amzDateText: parsed.value.amzDate,
      securityToken: parsed.value.securityToken,
      presignExpiresSeconds: parsed.value.expiresSeconds,
    };
  }
  return "anonymous";
}

function checkScope(ctx: AuthContext, auth: ParsedAuthorization, amzDateText: string): AwsError | undefined {
  const { endpoint } = ctx;
  const code = CODES[endpoint.protocol].signature;
  if (auth.scopeDate !== amzDateText.slice(0, 8)) {
    return awsError(403, code, `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${auth.scopeDate}' != '${amzDateText.slice(0, 8)}', from '${amzDateText}'.`, "scope");
  }
  if (auth.algorithm === SIGV4A_ALGORITHM_NAME) {
    // SigV4A: no region in the scope; the signed x-amz-region-set must cover the serving region.
    const regionSet = headerValue(ctx.request.headers, "x-amz-region-set");
    if (regionSet === undefined || !auth.signedHeaders.includes("x-amz-region-set")) {
      return awsError(403, code, "SigV4A requests must carry a signed x-amz-region-set header.", "scope");
    }
    if (!regionSetCovers(regionSet, endpoint.region)) {
      return awsError(403, code, `The region set '${regionSet}' does not include the region '${endpoint.region}' that serves this request.`, "scope", { Region: endpoint.region });
    }
  } else if (auth.region !== endpoint.region) {
    return awsError(403, code, `Credential should be scoped to a valid region. The region '${auth.region}' is wrong; expecting '${endpoint.region}'.`, "scope", {
      Region: endpoint.region,
    });
  }
  if (auth.service !== endpoint.service) {
    return awsError(403, code, `Credential should be scoped to correct service: '${endpoint.service}'.`, "scope");
  }
  return undefined;
}

function checkToken(ctx: AuthContext, account: FakeAwsAccount, token: string | undefined): AwsError | undefined {
  const codes = CODES[ctx.endpoint.protocol];
  const invalid = ctx.endpoint.protocol === "s3" ? "The provided token is malformed or otherwise invalid." : "The security token included in the request is invalid.";
  if (account.sessionToken === undefined) {
    return token === undefined ? undefined : awsError(403, codes.invalidToken, invalid, "invalid-token");
  }
  if (token === undefined || token !== account.sessionToken) return awsError(403, codes.invalidToken, invalid, "invalid-token");
  if (account.expiration && account.expiration.getTime() <= ctx.now.getTime()) {
    const message = ctx.endpoint.protocol === "s3" ? "The provided token has expired." : "The security token included in the request is expired";
    return awsError(403, codes.expiredToken, message, "expired-token");
  }
  return undefined;
}

function checkTime(ctx: AuthContext, creds: Credentials): AwsError | undefined {
  const requestTime = parseAmzDate(creds.amzDateText);
  const code = CODES[ctx.endpoint.protocol].signature;
  if (!requestTime) return awsError(403, code, `x-amz-date '${creds.amzDateText}' is not in the form YYYYMMDD'T'HHMMSS'Z'`, "malformed-auth");
  const now = ctx.now.getTime();
  if (creds.presignExpiresSeconds !== undefined && now > requestTime.getTime() + creds.presignExpiresSeconds * 1000) {
    return awsError(403, "AccessDenied", "Request has expired", "expired-presign", {
      "X-Amz-Expires": String(creds.presignExpiresSeconds),
      Expires: new Date(requestTime.getTime() + creds.presignExpiresSeconds * 1000).toISOString(),
      ServerTime: ctx.now.toISOString(),
    });
  }
  const skew = Math.abs(now - requestTime.getTime());
  const tooEarly = creds.presignExpiresSeconds !== undefined ? requestTime.getTime() - now > ctx.maxSkewMs : skew > ctx.maxSkewMs;
  if (tooEarly) {
    return awsError(403, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.", "skew", {
      RequestTime: creds.amzDateText,
      ServerTime: ctx.now.toISOString().replace(/\.\d{3}Z$/, "Z"),
      MaxAllowedSkewMilliseconds: String(ctx.maxSkewMs),
    });
  }
  return undefined;
}

function checkSignedHeaderSet(ctx: AuthContext, signedHeaders: string[]): AwsError | undefined {
  const code = CODES[ctx.endpoint.protocol].signature;
  // Over HTTP/2 the host is :authority, and AWS accepts either signed (the SDK signs :authority).
  const authoritySigned = signedHeaders.includes(":authority") && headerValue(ctx.request.headers, ":authority") !== undefined;
  if (!signedHeaders.includes("host") && !authoritySigned) {
    return awsError(403, ctx.endpoint.protocol === "s3" ? "AccessDenied" : code, "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.", "host-not-signed");
  }
  if (ctx.endpoint.protocol !== "s3") return undefined;
  const unsigned = s3HeadersThatMustBeSigned(ctx.request).filter((n) => !signedHeaders.includes(n));
  if (unsigned.length > 0) {
    return awsError(403, "AccessDenied", "There were headers present in the request which were not signed", "headers-not-signed", {
      HeadersNotSigned: unsigned.join(", "),
    });
  }
  return undefined;
}

/** Runs every check AWS runs before it looks at the body, in a fixed order. */
export function authenticate(ctx: AuthContext): AuthOutcome {
  const creds = readCredentials(ctx);
  if (creds === "anonymous") return { kind: "anonymous" };
  if ("status" in creds) return { kind: "denied", error: creds };
  const { auth, authKind } = creds;
  const denied = (error: AwsError, check?: SignatureCheck): AuthOutcome => ({
    kind: "denied",
    error,
    authKind,
    accessKeyId: auth.accessKeyId,
    signedHeaders: auth.signedHeaders,
    ...(check ? { check } : {}),
  });
  const scopeError = checkScope(ctx, auth, creds.amzDateText);
  if (scopeError) return denied(scopeError);
  const account = ctx.findAccount(auth.accessKeyId);
  if (!account) {
    const message =
      ctx.endpoint.protocol === "s3"
        ? "The AWS Access Key Id you provided does not exist in our records."
        : "The security token included in the request is invalid.";
    return denied(awsError(403, CODES[ctx.endpoint.protocol].unknownKey, message, "unknown-key", ctx.endpoint.protocol === "s3" ? { AWSAccessKeyId: auth.accessKeyId } : undefined));
  }
  const tokenError = checkToken(ctx, account, creds.securityToken);
  if (tokenError) return denied(tokenError);
  const timeError = checkTime(ctx, creds);
  if (timeError) return denied(timeError);
  const headerSetError = checkSignedHeaderSet(ctx, auth.signedHeaders);
  if (headerSetError) return denied(headerSetError);

  if (auth.algorithm === SIGV4A_ALGORITHM_NAME) {
    const scope = sigV4aScope(auth.scopeDate, auth.service);
    const check = checkSigV4aSignature(ctx, auth, creds.amzDateText, scope, account);
    if (!check.matches) return denied(signatureMismatchError(ctx.endpoint.protocol, auth.accessKeyId, check), check);
    return { kind: "verified", authKind, account, auth, amzDate: creds.amzDateText, scope, signingKey: undefined, check };
  }
  const scope = credentialScope(auth.scopeDate, auth.region, auth.service);
  const signingKey = deriveSigningKey(account.secretAccessKey, auth.scopeDate, auth.region, auth.service);
  const check = checkSignature({
    request: ctx.request,
    service: auth.service,
    signedHeaders: auth.signedHeaders,
    payloadHash: ctx.payloadHash,
    omitQueryParams: authKind === "query" ? [PRESIGNED_SIGNATURE_PARAM] : [],
    amzDate: creds.amzDateText,
    scope,
    signingKey,
    providedSignature: auth.signature,
  });
  if (!check.matches) return denied(signatureMismatchError(ctx.endpoint.protocol, auth.accessKeyId, check), check);
  return { kind: "verified", authKind, account, auth, amzDate: creds.amzDateText, scope, signingKey, check };
}

/** SigV4A: the same canonical request as SigV4, its own string to sign, ECDSA verified with the key derived from the secret. */
function checkSigV4aSignature(ctx: AuthContext, auth: ParsedAuthorization, amzDate: string, scope: string, account: FakeAwsAccount): SignatureCheck {
  const canonicalRequest = buildCanonicalRequest({
    request: ctx.request,
    service: auth.service,
    signedHeaders: auth.signedHeaders,
    payloadHash: ctx.payloadHash,
  });
  const stringToSign = sigV4aStringToSign(amzDate, scope, canonicalRequest);
  const matches = verifySigV4aSignature(sigV4aPublicKey(account.accessKeyId, account.secretAccessKey), stringToSign, auth.signature);
  return {
    matches,
    canonicalRequest,
    stringToSign,
    // ECDSA signatures differ each time: there is no one expected value, only a verdict.
    expectedSignature: matches ? auth.signature : "",
    providedSignature: auth.signature,
  };
}
