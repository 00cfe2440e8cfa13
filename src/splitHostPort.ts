/** Reads a `--listen` / `--admin-listen` address: `host:port`, an IPv6 host in brackets (`[::1]:9464`). */
export function splitHostPort(address: string, what: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(address);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`${what} "${address}" is not host:port (e.g. 127.0.0.1:9464 or [::1]:9464)`);
  return { host: m[1] ?? m[2] ?? "", port };
}
