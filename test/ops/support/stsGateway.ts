/**
 * STS on a loopback URL, for a policy's `sts_endpoint: http://127.0.0.1:<port>`.
 *
 * The fake AWS routes by Host and does not serve STS under `127.0.0.1:<port>` (it answers
 * UnknownEndpoint), so this gateway stands in front of it: it verifies the caller's SigV4 exactly
 * as STS would for a request addressed to this URL (the fake's own independent verifier, scope
 * us-east-1/sts), then passes the call on to the fake's STS at `sts.amazonaws.com`, signed again
 * with the same caller's key, and relays the answer. The fake issues and registers the temporary
 * credentials as usual, so requests signed with them verify there.
 *
 * AssumeRoleWithWebIdentity (IRSA) is unsigned, as STS allows: it is passed on unsigned and the
 * fake checks the token. `hold()` keeps calls waiting here (after they were verified) until
 * released, so a test can keep a refresh in flight for as long as it likes.
 */
import http from "node:http";
import { Hash } from "@smithy/hash-node";
import { HttpRequest } from "@smithy/protocol-http";
import { SignatureV4 } from "@smithy/signature-v4";
import { authenticate, type FakeAwsAccount } from "../../fakeaws/auth.js";
import type { Endpoint } from "../../fakeaws/hosts.js";
import { sha256Hex } from "./requests.js";
import { listenOnLoopback } from "../../support/freePort.js";

export interface GatewayCall {
  readonly action: string;
  readonly verified: boolean;
  /** An unsigned call STS allows (AssumeRoleWithWebIdentity), passed on unsigned. */
  readonly anonymous?: true;
  /** For AssumeRoleWithWebIdentity: what the caller sent (test tokens only). */
  readonly webIdentity?: { readonly roleArn: string; readonly sessionName: string; readonly token: string };
  readonly accessKeyId?: string;
  readonly errorCode?: string;
  /** Key id of the set STS handed out in its answer, if it handed one out. */
  readonly issuedKeyId?: string;
  /** Status the fake's STS answered (0 when the call was refused here). */
  readonly upstreamStatus: number;
}

export interface StsGateway {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly calls: readonly GatewayCall[];
  /** Calls received and verified but held back by hold(), not yet passed on. */
  readonly waiting: number;
  /** Holds every call from now on until the returned release() is called. */
  hold(): () => void;
  close(): Promise<void>;
}

export interface StsGatewayOptions {
  readonly fakePort: number;
  /** Keys the gateway accepts signatures from; a function is asked on every call (e.g. issued role credentials). */
  readonly accounts: readonly FakeAwsAccount[] | (() => readonly FakeAwsAccount[]);
}

const ANONYMOUS_ACTIONS = new Set(["AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"]);

const STS_HOST = "sts.amazonaws.com";
const Sha256 = Hash.bind(null, "sha256");

function headerPairs(raw: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < raw.length; i += 2) out.push([(raw[i] as string).toLowerCase(), raw[i + 1] as string]);
  return out;
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of req) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

function relay(fakePort: number, signed: HttpRequest, body: Buffer): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const c = http.request({ host: "127.0.0.1", port: fakePort, method: signed.method, path: signed.path, headers: signed.headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
    });
    c.on("error", reject);
    c.end(body);
  });
}

function issuedIn(body: Buffer): { issuedKeyId?: string } {
  const id = /<AccessKeyId>([^<]+)<\/AccessKeyId>/.exec(body.toString("utf8"))?.[1];
  return id === undefined ? {} : { issuedKeyId: id };
}

export async function startStsGateway(opts: StsGatewayOptions): Promise<StsGateway> {
  const calls: GatewayCall[] = [];
  const accounts = (): readonly FakeAwsAccount[] => (typeof opts.accounts === "function" ? opts.accounts() : opts.accounts);
  let held: Promise<void> | undefined;
  let waiting = 0;
  const server = http.createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const url = req.url ?? "/";
      const q = url.indexOf("?");
      const rawPath = q < 0 ? url : url.slice(0, q);
      const rawQuery = q < 0 ? "" : url.slice(q + 1);
      const headers = headerPairs(req.rawHeaders);
      const form = new URLSearchParams(body.toString("utf8"));
      const action = form.get("Action") ?? "";
      const host = req.headers.host ?? "";
      const endpoint: Endpoint = { api: "sts", service: "sts", region: "us-east-1", protocol: "query", hostname: host.split(":")[0] ?? "" };
      const outcome = authenticate({
        request: { method: req.method ?? "POST", rawPath, rawQuery, headers },
        endpoint,
        payloadHash: sha256Hex(body),
        now: new Date(),
        maxSkewMs: 5 * 60_000,
        findAccount: (id) => accounts().find((a) => a.accessKeyId === id),
      });
      const contentType = req.headers["content-type"] ?? "application/x-www-form-urlencoded";
      /** The same call, addressed to the fake's STS host (signed again below unless anonymous). */
      const upstream = (): HttpRequest =>
        new HttpRequest({
          method: req.method ?? "POST",
          protocol: "http:",
          hostname: STS_HOST,
          path: rawPath,
          headers: { host: STS_HOST, "content-type": contentType, "content-length": String(body.length) },
          body,
        });
      if (outcome.kind === "anonymous" && ANONYMOUS_ACTIONS.has(action)) {
        await whileHeld();
        const answer = await relay(opts.fakePort, upstream(), body);
        const webIdentity = { roleArn: form.get("RoleArn") ?? "", sessionName: form.get("RoleSessionName") ?? "", token: form.get("WebIdentityToken") ?? "" };
        calls.push({ action, verified: false, anonymous: true, ...(action === "AssumeRoleWithWebIdentity" ? { webIdentity } : {}), ...issuedIn(answer.body), upstreamStatus: answer.status });
        res.writeHead(answer.status, { "content-type": String(answer.headers["content-type"] ?? "text/xml") }).end(answer.body);
        return;
      }
      if (outcome.kind !== "verified") {
        const code = outcome.kind === "denied" ? outcome.error.code : "MissingAuthenticationToken";
        calls.push({ action, verified: false, ...(outcome.kind === "denied" && outcome.accessKeyId ? { accessKeyId: outcome.accessKeyId } : {}), errorCode: code, upstreamStatus: 0 });
        res.writeHead(403, { "content-type": "text/xml" }).end(`<ErrorResponse><Error><Type>Sender</Type><Code>${code}</Code><Message>sts gateway refused the caller</Message></Error></ErrorResponse>`);
        return;
      }
      await whileHeld();
      const signer = new SignatureV4({ service: "sts", region: "us-east-1", sha256: Sha256, credentials: outcome.account });
      const signed = (await signer.sign(upstream())) as HttpRequest;
      const answer = await relay(opts.fakePort, signed, body);
      calls.push({ action, verified: true, accessKeyId: outcome.account.accessKeyId, ...issuedIn(answer.body), upstreamStatus: answer.status });
      res.writeHead(answer.status, { "content-type": String(answer.headers["content-type"] ?? "text/xml") }).end(answer.body);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(`sts gateway: ${err instanceof Error ? err.message : String(err)}`);
    });
  });
  async function whileHeld(): Promise<void> {
    if (!held) return;
    waiting += 1;
    try {
      await held;
    } finally {
      waiting -= 1;
    }
  }
  const port = await listenOnLoopback(server);
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    get waiting() {
      return waiting;
    },
    hold() {
      let release = (): void => {};
      held = new Promise<void>((resolve) => {
        release = () => {
          held = undefined;
          resolve();
        };
      });
      return release;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
