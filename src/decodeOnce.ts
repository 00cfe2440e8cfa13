/**
 * Each %XX of `raw` decoded once, as AWS services read a path segment or a query value; undefined
 * when an escape is malformed or the bytes are not UTF-8. Shared by sigv4's path split and the
 * policy's path and S3 key rules, so both read a request the same way.
 */
export function decodeOnce(raw: string): string | undefined {
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}
