/** Policy YAML for the ops tests: static-key profiles named after their environment variables, S3 endpoints. */

export interface StaticKey {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
}

/** `credentials:` entries: each profile reads `<ENV>_ID` / `<ENV>_SECRET`. */
export function staticCredentials(profiles: Readonly<Record<string, string>>): string {
  return Object.entries(profiles)
    .map(([name, env]) => `  ${name}:\n    static:\n      access_key_id_env: ${env}_ID\n      secret_access_key_env: ${env}_SECRET\n`)
    .join("");
}

/** One S3 endpoint entry (signing_service s3). */
export function s3Endpoint(host: string, credentials: string): string {
  return `  - host: "${host}"\n    credential_signing: sigv4\n    signing_service: s3\n    credentials: ${credentials}\n`;
}

export function policyText(profiles: Readonly<Record<string, string>>, endpoints: ReadonlyArray<readonly [host: string, credentials: string]>): string {
  return `version: 1\ncredentials:\n${staticCredentials(profiles)}endpoints:\n${endpoints.map(([h, c]) => s3Endpoint(h, c)).join("")}`;
}

/** The environment a static profile reads. */
export function envFor(env: string, key: StaticKey): Record<string, string> {
  return { [`${env}_ID`]: key.accessKeyId, [`${env}_SECRET`]: key.secretAccessKey };
}
