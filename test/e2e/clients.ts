/** Real AWS SDK v3 clients as a workload would configure them: placeholder keys, Envoy as HTTPS proxy. */
import { BedrockRuntimeClient } from "@aws-sdk/client-bedrock-runtime";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { S3Client, type S3ClientConfig } from "@aws-sdk/client-s3";
import { STSClient } from "@aws-sdk/client-sts";
import { NodeHttpHandler } from "@smithy/node-http-handler";
import type { ClientRequest, IncomingHttpHeaders } from "node:http";
import https from "node:https";
import type { AgentConnectOpts } from "agent-base";
import { HttpsProxyAgent } from "https-proxy-agent";
import { PLACEHOLDER, type Stack } from "./harness.js";

/**
 * The JavaScript SDK v3 does not read HTTPS_PROXY itself: a workload gives it a proxy agent,
 * and trusts countersign's CA (what NODE_EXTRA_CA_CERTS would do).
 */
/** An https agent that tunnels through Envoy's CONNECT listener and trusts countersign's CA. */
export function proxiedAgent(stack: Stack): HttpsProxyAgent<string> {
  return new TrustingProxyAgent(stack.proxyUrl, stack.caPem);
}

export function proxiedHandler(stack: Stack): NodeHttpHandler {
  const agent = proxiedAgent(stack);
  return new NodeHttpHandler({ httpsAgent: agent, requestTimeout: 60_000, throwOnRequestTimeout: true });
}

/** CONNECT through Envoy, then TLS to the AWS host trusting countersign's CA (as NODE_EXTRA_CA_CERTS would). */
class TrustingProxyAgent extends HttpsProxyAgent<string> {
  constructor(
    proxy: string,
    private readonly ca: string,
  ) {
    super(proxy, { keepAlive: true });
  }

  override connect(req: ClientRequest, opts: AgentConnectOpts): ReturnType<HttpsProxyAgent<string>["connect"]> {
    return super.connect(req, { ...opts, ca: this.ca } as AgentConnectOpts);
  }
}

export function s3Client(stack: Stack, extra: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({ region: "eu-west-1", credentials: PLACEHOLDER, requestHandler: proxiedHandler(stack), maxAttempts: 1, ...extra });
}

/**
 * Endpoint mode, as with AWS_ENDPOINT_URL_S3=stack.endpointUrl: plain HTTP to Envoy's endpoint_in,
 * which sets the host to s3.us-east-1.amazonaws.com; path-style, since the bucket cannot ride in a
 * host that is replaced. No proxy.
 */
export function endpointS3Client(stack: Stack, extra: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client({
    region: "us-east-1",
    endpoint: stack.endpointUrl,
    forcePathStyle: true,
    credentials: PLACEHOLDER,
    requestHandler: new NodeHttpHandler({ requestTimeout: 60_000, throwOnRequestTimeout: true }),
    maxAttempts: 1,
    ...extra,
  });
}

export function stsClient(stack: Stack): STSClient {
  // us-east-1 resolves to the global endpoint sts.amazonaws.com, as the AWS CLI and boto3 do.
  return new STSClient({ region: "us-east-1", credentials: PLACEHOLDER, requestHandler: proxiedHandler(stack), maxAttempts: 1, endpoint: "https://sts.amazonaws.com" });
}

export function bedrockClient(stack: Stack): BedrockRuntimeClient {
  return new BedrockRuntimeClient({ region: "us-west-2", credentials: PLACEHOLDER, requestHandler: proxiedHandler(stack), maxAttempts: 1 });
}

export function dynamoClient(stack: Stack): DynamoDBClient {
  return new DynamoDBClient({ region: "eu-west-1", credentials: PLACEHOLDER, requestHandler: proxiedHandler(stack), maxAttempts: 1 });
}

export interface HttpsAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * One https request whose body `send` writes. The answer wins: a response that arrives while the
 * body is still being written (a refusal) is the result, not the write error that may follow when
 * the proxy closes the connection. `answered` runs the moment the answer is complete.
 */
export function httpsExchange<T>(options: https.RequestOptions, send: (req: ClientRequest) => void, answered: (answer: HttpsAnswer) => T): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let responded = false;
    const req = https.request(options, (res) => {
      responded = true;
      const parts: Buffer[] = [];
      const done = (): void => resolve(answered({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString() }));
      res.on("data", (d: Buffer) => parts.push(d));
      res.on("end", done);
      // A refusal may close the connection while the body is still being written: what arrived
      // of the answer is the answer.
      res.on("close", done);
      res.on("error", () => undefined);
    });
    req.on("error", (err) => {
      if (!responded) reject(err);
    });
    send(req);
  });
}
