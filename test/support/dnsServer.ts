/**
 * A tiny authoritative DNS server on 127.0.0.1 (UDP, port 0; its answers are far below the 512-byte
 * limit, so c-ares never needs TCP) for the end-to-end tests.
 * Envoy's dynamic forward proxy resolves the AWS host names through it (c-ares with this server as
 * its only resolver), so the shipped DNS-driven upstream stays in the path without /etc/hosts or
 * any real DNS.
 *
 * It answers only what it is told: names under one of `zones` get A records pointing at `ipv4`
 * (which must be a 127.0.0.0/8 address) and an empty AAAA answer; every other name is NXDOMAIN.
 * Messages are encoded and decoded with `dns-packet`.
 */
import dgram from "node:dgram";
import * as dnsPacket from "dns-packet";

export interface DnsServer {
  readonly port: number;
  /** Every question seen, as "TYPE name" (e.g. "A my-bucket.s3.eu-west-1.amazonaws.com"). */
  readonly queries: string[];
  /** Stops answering (a second call does nothing). */
  close(): Promise<void>;
}

export interface DnsServerOptions {
  /** Domain suffixes answered, e.g. ["amazonaws.com"] (the zone apex and every name below it). */
  zones: string[];
  /** The address every answered name resolves to; must be in 127.0.0.0/8. */
  ipv4: string;
  ttlSeconds?: number;
}

function inZone(name: string, zones: readonly string[]): boolean {
  const n = name.toLowerCase().replace(/\.$/, "");
  return zones.some((z) => n === z || n.endsWith(`.${z}`));
}

/** Builds the answer to one query packet; undefined for something that is not a query. */
export function answer(query: Buffer, opts: DnsServerOptions, seen: string[] = []): Buffer | undefined {
  let packet: dnsPacket.Packet;
  try {
    packet = dnsPacket.decode(query);
  } catch {
    return undefined;
  }
  if (packet.type !== "query") return undefined;
  const questions = packet.questions ?? [];
  const zones = opts.zones.map((z) => z.toLowerCase());
  const answers: dnsPacket.Answer[] = [];
  let known = questions.length > 0;
  for (const q of questions) {
    seen.push(`${q.type} ${q.name}`);
    if (!inZone(q.name, zones)) {
      known = false;
      continue;
    }
    if (q.type === "A") answers.push({ type: "A", name: q.name, ttl: opts.ttlSeconds ?? 30, data: opts.ipv4 });
    // AAAA and every other type: the name exists but has no such record (NOERROR, no answers).
  }
  return dnsPacket.encode({
    type: "response",
    id: packet.id ?? 0,
    // AA (authoritative) + RD copied + RA; rcode NXDOMAIN (3) for names outside the zones.
    flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | (known ? 0 : 3),
    questions,
    answers,
  });
}

export async function startDnsServer(opts: DnsServerOptions): Promise<DnsServer> {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(opts.ipv4)) throw new Error(`the test DNS server only hands out loopback addresses, not ${opts.ipv4}`);
  const queries: string[] = [];
  const udp = dgram.createSocket("udp4");
  udp.on("message", (msg, rinfo) => {
    const out = answer(msg, opts, queries);
    if (out) udp.send(out, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    udp.once("error", reject);
    udp.bind(0, "127.0.0.1", () => resolve());
  });
  const port = udp.address().port;

  let closed = false;
  return {
    port,
    queries,
    // Once: a test may take the server away (a resolver outage) before the stack closes it.
    close: async () => {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    },
  };
}
