import { normaliseHost } from "./hostPattern.js";

export interface HostAndPort {
  /** Lower-case, no trailing dot; IPv6 literals without brackets. */
  readonly host: string;
  readonly port: number;
}

/**
 * Splits an HTTP `:authority` (`host`, `host:port`, `[v6]`, `[v6]:port`) into a normalised host and
 * a port; without a port, 443 for https and 80 for http. Undefined when the authority is
 * malformed: empty host, user info, spaces or other characters a host cannot hold, a port that is
 * empty, not decimal or outside 1..65535, or no port with a scheme other than http/https.
 */
export function splitAuthority(authority: string, scheme: string): HostAndPort | undefined {
  let hostPart: string;
  let portPart: string | undefined;
  if (authority.charCodeAt(0) === 0x5b /* [ */) {
    const close = authority.indexOf("]");
    if (close < 0) return undefined;
    hostPart = authority.slice(0, close + 1);
    const rest = authority.slice(close + 1);
    if (rest.length > 0) {
      if (rest.charCodeAt(0) !== 0x3a /* : */) return undefined;
      portPart = rest.slice(1);
    }
  } else {
    const colon = authority.indexOf(":");
    if (colon >= 0) {
      if (authority.indexOf(":", colon + 1) >= 0) return undefined; // a bare IPv6 literal needs brackets
      hostPart = authority.slice(0, colon);
      portPart = authority.slice(colon + 1);
    } else {
      hostPart = authority;
    }
  }
  const host = normaliseHost(hostPart);
  if (host === undefined) return undefined;
  const port = portPart === undefined ? defaultPort(scheme) : parsePort(portPart);
  return port === undefined ? undefined : { host, port };
}

function defaultPort(scheme: string): number | undefined {
  const lower = scheme.toLowerCase();
  if (lower === "https") return 443;
  if (lower === "http") return 80;
  return undefined;
}

function parsePort(text: string): number | undefined {
  if (text.length === 0 || text.length > 5) return undefined;
  let port = 0;
  for (let i = 0; i < text.length; i++) {
    const digit = text.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    port = port * 10 + digit;
  }
  return port >= 1 && port <= 65535 ? port : undefined;
}
