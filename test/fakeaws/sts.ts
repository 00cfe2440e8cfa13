/**
 * STS over the query protocol (form POST or GET, XML in the 2011-06-15 namespace):
 * AssumeRole, AssumeRoleWithWebIdentity, GetCallerIdentity, with switches that let tests make
 * STS fail, throttle, hang or hand out already-expired credentials.
 */
import { randomBytes } from "node:crypto";
import type { FakeAwsAccount } from "./auth.js";
import { STS_NAMESPACE, awsError, xmlElement, type AwsError } from "./errors.js";

/**
 * "500" InternalFailure · "throttle" 400 Throttling · "throttle-503" 503 Throttling (as a
 * regional endpoint under load answers) · "timeout" never answers · "expired" credentials
 * already past Expiration.
 */
export type StsFailureKind = "500" | "throttle" | "throttle-503" | "timeout" | "expired";

export type StsResult =
  | { kind: "response"; body: string }
  | { kind: "error"; error: AwsError }
  | { kind: "hang" };

export interface StsControls {
  /** Calls seen per action (every request that reached STS, whatever its outcome). */
  readonly calls: Record<string, number>;
  /** The next `n` STS calls fail the given way ("expired" only affects credential-issuing calls). */
  failNext(n: number, kind: StsFailureKind): void;
  /** Every STS call fails the given way until clearFailures() (an outage of unknown length). */
  failAll(kind: StsFailureKind): void;
  /** Ends failAll() and drops the failNext() queue: STS answers normally again. */
  clearFailures(): void;
  /** Delay every STS answer by `ms`. */
  setDelayMs(ms: number): void;
  /** Credentials issued so far (newest last). */
  readonly issued: readonly FakeAwsAccount[];
}

const CREDENTIAL_ACTIONS = new Set(["AssumeRole", "AssumeRoleWithWebIdentity"]);
const ROLE_ARN_RE = /^arn:aws[a-z-]*:iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*([\w+=,.@-]+)$/;
const SESSION_NAME_RE = /^[\w+=,.@-]{2,64}$/;

function randomAlnum(length: number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  return [...randomBytes(length)].map((b) => alphabet[b % alphabet.length]).join("");
}

function validationError(message: string): AwsError {
  return awsError(400, "ValidationError", message, "operation");
}

export interface StsDeps {
  accountId: string;
  webIdentityTokens: ReadonlySet<string>;
  /** Makes newly issued credentials acceptable to every service of the fake. */
  register(account: FakeAwsAccount): void;
}

export class StsService implements StsControls {
  readonly calls: Record<string, number> = {};
  readonly issued: FakeAwsAccount[] = [];
  private failures: StsFailureKind[] = [];
  private outage: StsFailureKind | undefined;
  private delay = 0;

  constructor(private readonly deps: StsDeps) {}

  failNext(n: number, kind: StsFailureKind): void {
    for (let i = 0; i < n; i++) this.failures.push(kind);
  }

  failAll(kind: StsFailureKind): void {
    this.outage = kind;
  }

  clearFailures(): void {
    this.outage = undefined;
    this.failures = [];
  }

  setDelayMs(ms: number): void {
    this.delay = Math.max(0, ms);
  }

  get delayMs(): number {
    return this.delay;
  }

  countCall(action: string): void {
    this.calls[action] = (this.calls[action] ?? 0) + 1;
  }

  /** Actions that may be called without a signature. */
  static allowsAnonymous(action: string): boolean {
    return action === "AssumeRoleWithWebIdentity" || action === "AssumeRoleWithSAML";
  }

  handle(params: Map<string, string>, caller: FakeAwsAccount | undefined, now: Date): StsResult {
    const action = params.get("Action") ?? "";
    const injected = this.takeFailure(action);
    if (injected === "500") return { kind: "error", error: awsError(500, "InternalFailure", "fakeaws: injected STS failure", "sts-injected") };
    if (injected === "throttle") return { kind: "error", error: awsError(400, "Throttling", "Rate exceeded", "sts-injected") };
    if (injected === "throttle-503") return { kind: "error", error: awsError(503, "Throttling", "Rate exceeded", "sts-injected") };
    if (injected === "timeout") return { kind: "hang" };
    if (params.get("Version") !== "2011-06-15") {
      return { kind: "error", error: awsError(400, "InvalidAction", `Could not find operation ${action} for version ${params.get("Version") ?? "NO_VERSION_SPECIFIED"}`, "operation") };
    }
    const expired = injected === "expired";
    switch (action) {
      case "AssumeRole":
        return this.assumeRole(params, now, expired);
      case "AssumeRoleWithWebIdentity":
        return this.assumeRoleWithWebIdentity(params, now, expired);
      case "GetCallerIdentity":
        return this.getCallerIdentity(caller);
      default:
        return { kind: "error", error: awsError(400, "InvalidAction", `Could not find operation ${action} for version 2011-06-15`, "operation") };
    }
  }

  private takeFailure(action: string): StsFailureKind | undefined {
    if (this.outage !== undefined && (this.outage !== "expired" || CREDENTIAL_ACTIONS.has(action))) return this.outage;
    const next = this.failures[0];
    if (next === undefined) return undefined;
    if (next === "expired" && !CREDENTIAL_ACTIONS.has(action)) return undefined;
    this.failures.shift();
    return next;
  }

  private roleParams(params: Map<string, string>): { roleArn: string; roleName: string; session: string; duration: number } | AwsError {
    const roleArn = params.get("RoleArn");
    const session = params.get("RoleSessionName");
    if (roleArn === undefined) return validationError("1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null");
    if (session === undefined) return validationError("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null");
    const arn = ROLE_ARN_RE.exec(roleArn);
    if (!arn) return validationError(`${roleArn} is invalid`);
    if (!SESSION_NAME_RE.test(session)) {
      return validationError(`1 validation error detected: Value '${session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*`);
    }
    const durationText = params.get("DurationSeconds") ?? "3600";
    const duration = Number(durationText);
    if (!Number.isInteger(duration) || duration < 900 || duration > 43200) {
      return validationError(`1 validation error detected: Value '${durationText}' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200`);
    }
    return { roleArn, roleName: arn[2] as string, session, duration };
  }

  private issue(roleName: string, session: string, now: Date, duration: number, expired: boolean): { account: FakeAwsAccount; xml: string } {
    const expiration = new Date(expired ? now.getTime() - 60_000 : now.getTime() + duration * 1000);
    const arn = `arn:aws:sts::${this.deps.accountId}:assumed-role/${roleName}/${session}`;
    const account: FakeAwsAccount = {
      accessKeyId: `ASIA${randomAlnum(16)}`,
      secretAccessKey: randomBytes(30).toString("base64"),
      sessionToken: `FwoGZXIvYXdzE${randomBytes(96).toString("base64")}`,
      expiration,
      arn,
    };
    this.deps.register(account);
    this.issued.push(account);
    const xml =
      `<AssumedRoleUser>${xmlElement("Arn", arn)}${xmlElement("AssumedRoleId", `AROA${randomAlnum(17)}:${session}`)}</AssumedRoleUser>` +
      `<Credentials>${xmlElement("AccessKeyId", account.accessKeyId)}${xmlElement("SecretAccessKey", account.secretAccessKey)}` +
      `${xmlElement("SessionToken", account.sessionToken ?? "")}${xmlElement("Expiration", expiration.toISOString())}</Credentials>`;
    return { account, xml };
  }

  private assumeRole(params: Map<string, string>, now: Date, expired: boolean): StsResult {
    const role = this.roleParams(params);
    if ("status" in role) return { kind: "error", error: role };
    const { xml } = this.issue(role.roleName, role.session, now, role.duration, expired);
    return { kind: "response", body: envelope("AssumeRole", xml) };
  }

  private assumeRoleWithWebIdentity(params: Map<string, string>, now: Date, expired: boolean): StsResult {
    const role = this.roleParams(params);
    if ("status" in role) return { kind: "error", error: role };
    const token = params.get("WebIdentityToken");
    if (token === undefined || !this.deps.webIdentityTokens.has(token)) {
      return { kind: "error", error: awsError(400, "InvalidIdentityToken", "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.", "operation") };
    }
    const { xml } = this.issue(role.roleName, role.session, now, role.duration, expired);
    const extra = `${xmlElement("SubjectFromWebIdentityToken", "system:serviceaccount:fake:fake")}${xmlElement("Audience", "sts.amazonaws.com")}${xmlElement("Provider", "fakeaws")}`;
    return { kind: "response", body: envelope("AssumeRoleWithWebIdentity", xml + extra) };
  }

  private getCallerIdentity(caller: FakeAwsAccount | undefined): StsResult {
    if (!caller) return { kind: "error", error: awsError(403, "MissingAuthenticationToken", "Request is missing Authentication Token", "missing-auth") };
    const arn = caller.arn ?? `arn:aws:iam::${this.deps.accountId}:user/fakeaws`;
    const body = `${xmlElement("Arn", arn)}${xmlElement("UserId", caller.accessKeyId)}${xmlElement("Account", this.deps.accountId)}`;
    return { kind: "response", body: envelope("GetCallerIdentity", body) };
  }
}

function envelope(action: string, result: string): string {
  const requestId = randomBytes(16).toString("hex");
  return (
    `<${action}Response xmlns="${STS_NAMESPACE}"><${action}Result>${result}</${action}Result>` +
    `<ResponseMetadata>${xmlElement("RequestId", requestId)}</ResponseMetadata></${action}Response>`
  );
}
