import net from "node:net";

/** Starts `server` listening on 127.0.0.1, on a port the system picks, and returns that port. */
export async function listenOnLoopback(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

/**
 * Ports handed out by `freePort` are drawn from below Linux's ephemeral range (32768–60999 by
 * default), which the kernel uses both for `listen(0)` and for the local end of every outgoing
 * connection: a port found free by `listen(0)` and closed again can be taken by any connection
 * opened before the process that was meant to bind it does (seen as EADDRINUSE under load).
 * Below that range only an explicit bind takes a port.
 */
const LOW = 20_000;
const HIGH = 32_767;
const handedOut = new Set<number>();

function tryListen(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A TCP port on 127.0.0.1 that was free a moment ago, outside the ephemeral range, not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (handedOut.has(port)) continue;
    if (await tryListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port on 127.0.0.1 between ${LOW} and ${HIGH} after 200 tries`);
}
