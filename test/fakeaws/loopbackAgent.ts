/**
 * Points real AWS SDK clients at the fake while they keep real AWS host names: the SDK signs
 * for `s3.us-east-1.amazonaws.com` and sends `Host: s3.us-east-1.amazonaws.com`, but every
 * connection this agent opens goes to 127.0.0.1:<port>. Nothing ever leaves loopback.
 *
 *   const client = new S3Client({
 *     region: "us-east-1",
 *     endpoint: awsHttpEndpoint("s3.us-east-1.amazonaws.com"),
 *     requestHandler: loopbackRequestHandler(fake.port),
 *     credentials,
 *   });
 */
import * as http from "node:http";
import * as net from "node:net";
import type { Duplex } from "node:stream";
import { NodeHttpHandler } from "@smithy/node-http-handler";

export class LoopbackAgent extends http.Agent {
  constructor(
    readonly port: number,
    options: http.AgentOptions = {},
  ) {
    super({ keepAlive: true, ...options });
  }

  override createConnection(): Duplex {
    return net.createConnection({ host: "127.0.0.1", port: this.port });
  }
}

/** An http.Agent whose every connection goes to 127.0.0.1:`port`, whatever the URL's host. */
export function loopbackHttpAgent(port: number, options: http.AgentOptions = {}): http.Agent {
  return new LoopbackAgent(port, options);
}

export interface LoopbackHandlerOptions {
  requestTimeout?: number;
  connectionTimeout?: number;
  /** Make `requestTimeout` reject the call (the SDK only warns by default). */
  throwOnRequestTimeout?: boolean;
}

/**
 * An HTTP/1.1 request handler for any AWS SDK v3 client's `requestHandler`. It is a real
 * NodeHttpHandler (not an options object) so clients that default to HTTP/2, like Bedrock
 * Runtime, also use it.
 */
export function loopbackRequestHandler(port: number, options: LoopbackHandlerOptions = {}): NodeHttpHandler {
  return new NodeHttpHandler({ httpAgent: loopbackHttpAgent(port), ...options });
}

/** `http://<host>`: the SDK endpoint that keeps the real AWS host (the fake speaks plain HTTP). */
export function awsHttpEndpoint(host: string): string {
  return `http://${host}`;
}
