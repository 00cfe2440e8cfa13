/** Helpers that keep secrets out of logs, events, metrics and error strings. */

const MAX_ERROR_LENGTH = 400;
const KEY_ID_PATTERN = /\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{12,124}\b/g;

/** At most the last 4 characters of an access key id, for logs. */
export function keyIdSuffix(accessKeyId: string): string {
  return accessKeyId.length <= 4 ? "" : accessKeyId.slice(-4);
}

/** Replaces anything shaped like an AWS access key id with its last 4 characters, folds the text onto one line and cuts it. */
export function redactKeyIds(text: string): string {
  const redacted = text.replace(/\s+/g, " ").trim().replace(KEY_ID_PATTERN, (id) => `<key id …${id.slice(-4)}>`);
  return redacted.length > MAX_ERROR_LENGTH ? `${redacted.slice(0, MAX_ERROR_LENGTH)}…` : redacted;
}

/**
 * One line that says why an attempt failed: the SDK's error name (the AWS error code for service
 * errors), its message, and the HTTP status when there was one. Never includes request data.
 */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const status = httpStatusOf(err);
    const name = err.name && err.name !== "Error" ? `${err.name}: ` : "";
    const message = err.message || "(no message)";
    return redactKeyIds(`${name}${message}${status === undefined ? "" : ` (HTTP ${status})`}`);
  }
  return redactKeyIds(typeof err === "string" ? err : "unknown error");
}

function httpStatusOf(err: Error): number | undefined {
  const metadata: unknown = (err as { $metadata?: unknown }).$metadata;
  if (typeof metadata === "object" && metadata !== null) {
    const status: unknown = (metadata as { httpStatusCode?: unknown }).httpStatusCode;
    if (typeof status === "number") return status;
  }
  return undefined;
}
