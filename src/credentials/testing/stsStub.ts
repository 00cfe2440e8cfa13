/**
 * A tiny STS stand-in for tests: AssumeRole and AssumeRoleWithWebIdentity over the AWS query
 * protocol (form POST, XML answers), on 127.0.0.1. It checks nothing; it records every request
 * and answers whatever the test says.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface IssuedSet {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
  readonly expiration: Date;
}

export interface StsRequest {
  readonly action: string;
  readonly params: URLSearchParams;
  readonly authorization: string | undefined;
  /** The access key id from the SigV4 Authorization header, if the request was signed. */
  readonly signedWithKeyId: string | undefined;
}

export type StsReply =
  /** `heldUntil`: the answer is sent only once it resolves (the request itself is recorded at once). */
  | { readonly kind: "credentials"; readonly expiresInSeconds: number; readonly heldUntil?: Promise<void> }
  | { readonly kind: "error"; readonly status: number; readonly code: string; readonly message: string }
  | { readonly kind: "raw"; readonly status: number; readonly body: string }
  | { readonly kind: "hang" };

export interface StsStub {
  readonly url: string;
  readonly requests: StsRequest[];
  readonly issued: IssuedSet[];
  /** Decides the answer to each request; default: credentials valid for an hour. */
  reply: (request: StsRequest) => StsReply;
  close(): Promise<void>;
}

export async function startStsStub(): Promise<StsStub> {
  const requests: StsRequest[] = [];
  const issued: IssuedSet[] = [];
  const hanging = new Set<ServerResponse>();
  const stub: StsStub = {
    url: "",
    requests,
    issued,
    reply: () => ({ kind: "credentials", expiresInSeconds: 3600 }),
    close: async () => {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const server = createServer((req, res) => {
    void readBody(req).then((body) => {
      const params = new URLSearchParams(body);
      const authorization = req.headers.authorization;
      const request: StsRequest = {
        action: params.get("Action") ?? "",
        params,
        authorization,
        signedWithKeyId: /Credential=([^/]+)\//.exec(authorization ?? "")?.[1],
      };
      requests.push(request);
      answer(stub.reply(request), request, res);
    });
  });

  function answer(reply: StsReply, request: StsRequest, res: ServerResponse): void {
    switch (reply.kind) {
      case "hang":
        hanging.add(res);
        res.on("close", () => hanging.delete(res));
        return;
      case "raw":
        res.writeHead(reply.status, { "content-type": "text/plain" }).end(reply.body);
        return;
      case "error":
        res.writeHead(reply.status, { "content-type": "text/xml" }).end(errorXml(reply.code, reply.message));
        return;
      case "credentials": {
        const set = issueSet(reply.expiresInSeconds);
        issued.push(set);
        const send = (): void => {
          res.writeHead(200, { "content-type": "text/xml" }).end(credentialsXml(request.action, set));
        };
        if (reply.heldUntil) void reply.heldUntil.then(send);
        else send();
        return;
      }
    }
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(stub, { url: `http://127.0.0.1:${port}` });
}

/** A new set whose parts are recognisably one set's (same serial in all three). */
export function issueSet(expiresInSeconds: number): IssuedSet {
  const serial = randomBytes(8).toString("hex").toUpperCase();
  return {
    accessKeyId: `ASIA${serial}`,
    secretAccessKey: `secret/${serial}/${randomBytes(12).toString("base64")}`,
    sessionToken: `token+${serial}+${randomBytes(24).toString("base64")}`,
    expiration: new Date(Math.floor(Date.now() / 1000) * 1000 + expiresInSeconds * 1000),
  };
}

function credentialsXml(action: string, set: IssuedSet): string {
  const name = action === "AssumeRoleWithWebIdentity" ? "AssumeRoleWithWebIdentity" : "AssumeRole";
  return `<${name}Response xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <${name}Result>
    <Credentials>
      <AccessKeyId>${set.accessKeyId}</AccessKeyId>
      <SecretAccessKey>${set.secretAccessKey}</SecretAccessKey>
      <SessionToken>${set.sessionToken}</SessionToken>
      <Expiration>${set.expiration.toISOString()}</Expiration>
    </Credentials>
    <AssumedRoleUser>
      <AssumedRoleId>AROAEXAMPLE:session</AssumedRoleId>
      <Arn>arn:aws:sts::111122223333:assumed-role/example/session</Arn>
    </AssumedRoleUser>
  </${name}Result>
  <ResponseMetadata><RequestId>00000000-0000-0000-0000-000000000000</RequestId></ResponseMetadata>
</${name}Response>`;
}

function errorXml(code: string, message: string): string {
  return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>${code}</Code><Message>${message}</Message></Error>
  <RequestId>00000000-0000-0000-0000-000000000001</RequestId>
</ErrorResponse>`;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}
