/**
 * STS whose credentials live a few minutes, so an `assume_role` profile refreshes about every minute.
 *
 * AWS (and the fake) issue role sessions of at least 900 s, and countersign refreshes no earlier
 * than half the session (`refresh_before_seconds` is capped at duration/2), i.e. every 7½ min at
 * best. This loopback proxy stands in front of the ops STS gateway (test/ops/support/stsGateway.ts,
 * which verifies the caller's signature and relays to the fake's STS) and shortens the Expiration
 * of every AssumeRole answer to `lifetimeSeconds` from now. It also tells the fake AWS (and any
 * other fake in `alsoTrust`, such as the one serving S3 behind Envoy) the new credentials and their
 * expiry, so a request signed with credentials past their (shortened) expiry fails verification
 * there (ExpiredToken): the soak would count it as an error.
 *
 * The request is relayed with its headers untouched (Host included), so the gateway verifies the
 * signature countersign computed for this proxy's URL.
 */
import http from "node:http";
import type { FakeAws } from "../fakeaws/server.js";
import { startStsGateway, type StsGateway } from "../ops/support/stsGateway.js";
import type { StaticKey } from "../ops/support/policyText.js";
import { listenOnLoopback } from "../support/freePort.js";

export interface ShortLivedSts {
  /** `http://127.0.0.1:<port>`, the policy's sts_endpoint. */
  readonly url: string;
  /** AssumeRole answers shortened so far, with the expiry handed out. */
  readonly issued: ReadonlyArray<{ readonly accessKeyId: string; readonly expiration: Date; readonly at: Date }>;
  /** Answers that were not a 200 with credentials. */
  readonly failures: readonly string[];
  close(): Promise<void>;
}

const EXPIRATION_RE = /<Expiration>([^<]+)<\/Expiration>/;
const KEY_ID_RE = /<AccessKeyId>([^<]+)<\/AccessKeyId>/;

function readAll(stream: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    stream.on("data", (d: Buffer) => parts.push(d));
    stream.on("end", () => resolve(Buffer.concat(parts)));
    stream.on("error", reject);
  });
}

export async function startShortLivedSts(opts: { fake: FakeAws; source: StaticKey; lifetimeSeconds: number; alsoTrust?: readonly FakeAws[] }): Promise<ShortLivedSts> {
  const gateway: StsGateway = await startStsGateway({ fakePort: opts.fake.port, accounts: [opts.source] });
  const gatewayPort = Number(new URL(gateway.url).port);
  const issued: Array<{ accessKeyId: string; expiration: Date; at: Date }> = [];
  const failures: string[] = [];

  const server = http.createServer((req, res) => {
    void (async () => {
      const body = await readAll(req);
      const headers: Record<string, string | string[]> = {};
      for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = v;
      const answer = await new Promise<{ status: number; contentType: string; body: Buffer }>((resolve, reject) => {
        const c = http.request({ host: "127.0.0.1", port: gatewayPort, method: req.method, path: req.url, headers, agent: false }, (r) => {
          void readAll(r).then((b) => resolve({ status: r.statusCode ?? 0, contentType: String(r.headers["content-type"] ?? "text/xml"), body: b }), reject);
        });
        c.on("error", reject);
        c.end(body);
      });
      let text = answer.body.toString("utf8");
      const keyId = KEY_ID_RE.exec(text)?.[1];
      if (answer.status === 200 && keyId !== undefined && EXPIRATION_RE.test(text)) {
        const now = new Date();
        const expiration = new Date(now.getTime() + opts.lifetimeSeconds * 1000);
        // Seconds precision, as STS writes it.
        const iso = `${expiration.toISOString().slice(0, 19)}Z`;
        text = text.replace(EXPIRATION_RE, `<Expiration>${iso}</Expiration>`);
        const account = opts.fake.sts.issued.find((a) => a.accessKeyId === keyId);
        if (!account) throw new Error(`the fake STS did not issue ${keyId}`);
        for (const f of [opts.fake, ...(opts.alsoTrust ?? [])]) f.addAccount({ ...account, expiration: new Date(iso) });
        issued.push({ accessKeyId: keyId, expiration: new Date(iso), at: now });
      } else {
        failures.push(`STS answered ${answer.status}: ${text.slice(0, 200)}`);
      }
      const out = Buffer.from(text, "utf8");
      res.writeHead(answer.status, { "content-type": answer.contentType, "content-length": String(out.length) }).end(out);
    })().catch((err: unknown) => {
      failures.push(`sts proxy: ${err instanceof Error ? err.message : String(err)}`);
      if (!res.headersSent) res.writeHead(500).end("sts proxy failure");
    });
  });
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}`,
    issued,
    failures,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await gateway.close();
    },
  };
}
