const MAX_SESSION_NAME_LENGTH = 64;

/** Default STS RoleSessionName: countersign-<hostname>, limited to [\w+=,.@-] and 64 characters. */
export function defaultSessionName(hostname: string): string {
  const sanitised = `countersign-${hostname}`.replace(/[^\w+=,.@-]/g, "-");
  return sanitised.slice(0, MAX_SESSION_NAME_LENGTH);
}
