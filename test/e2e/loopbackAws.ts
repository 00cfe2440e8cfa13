/**
 * "AWS" as real Envoy reaches it in the end-to-end tests, the demo and the soak: the fake AWS
 * serving HTTPS on port 443 of a loopback address of its own (127.x.y.z), with a certificate for
 * the AWS host names issued by a test CA, and a DNS server on 127.0.0.1 that resolves every
 * *.amazonaws.com name to that address. Envoy's dynamic forward proxy dials the host it resolved
 * on 443 with SNI and a SAN check for the signed host, exactly as it would reach AWS.
 *
 * Each stack takes its own 127.x.y.z, so stacks in parallel test files never share a port.
 * Port 443 needs root (or net.ipv4.ip_unprivileged_port_start <= 443), as CI has.
 */
import "reflect-metadata";
import { randomInt } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCa, createLeaf } from "../../src/certs/certificates.js";
import { startFakeAws, type FakeAws, type FakeAwsOptions } from "../fakeaws/server.js";
import { startDnsServer, type DnsServer } from "../support/dnsServer.js";

const REGIONS = ["us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"];

/** The names the fake AWS's certificate covers (what AWS's own certificates cover for these endpoints). */
export const AWS_CERT_HOSTS: readonly string[] = [
  "s3.amazonaws.com",
  "*.s3.amazonaws.com",
  "sts.amazonaws.com",
  // S3 Multi-Region Access Points, both host shapes.
  "*.mrap.accesspoint.s3-global.amazonaws.com",
  "*.accesspoint.s3-global.amazonaws.com",
  ...REGIONS.flatMap((r) => [`s3.${r}.amazonaws.com`, `*.s3.${r}.amazonaws.com`, `sts.${r}.amazonaws.com`, `bedrock-runtime.${r}.amazonaws.com`, `dynamodb.${r}.amazonaws.com`, `transcribestreaming.${r}.amazonaws.com`]),
];

export interface LoopbackAws {
  readonly fake: FakeAws;
  readonly dns: DnsServer;
  /** The loopback address every AWS name resolves to. */
  readonly ip: string;
  /** PEM file of the CA that issued the fake AWS's certificate (Envoy's upstream trust bundle). */
  readonly caFile: string;
  readonly caPem: string;
  close(): Promise<void>;
}

function randomLoopback(): string {
  return `127.${randomInt(1, 255)}.${randomInt(1, 255)}.${randomInt(1, 255)}`;
}

export async function startLoopbackAws(dir: string, fakeOptions: Omit<FakeAwsOptions, "tls" | "host" | "port">): Promise<LoopbackAws> {
  const ca = await createCa({ commonName: "fake AWS root CA (tests only)" });
  const leaf = await createLeaf({ ca, hosts: AWS_CERT_HOSTS });
  const caFile = join(dir, "fake-aws-ca.crt");
  writeFileSync(caFile, ca.certPem);

  let fake: FakeAws | undefined;
  let ip = "";
  for (let attempt = 0; fake === undefined; attempt++) {
    ip = randomLoopback();
    try {
      fake = await startFakeAws({ ...fakeOptions, tls: { certPem: leaf.certPem, keyPem: leaf.keyPem }, host: ip, port: 443 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EACCES") {
        throw new Error(`the fake AWS needs port 443 on ${ip} (Envoy dials AWS hosts on 443): run as root, or set sysctl net.ipv4.ip_unprivileged_port_start=443`, { cause: err });
      }
      if (code !== "EADDRINUSE" || attempt >= 20) throw err;
    }
  }
  const dns = await startDnsServer({ zones: ["amazonaws.com"], ipv4: ip });
  const f = fake;
  return {
    fake: f,
    dns,
    ip,
    caFile,
    caPem: ca.certPem,
    close: async () => {
      await f.close();
      await dns.close();
    },
  };
}
