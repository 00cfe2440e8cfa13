/**
 * Certificate renewal through real Envoy: the listener certificate comes through file-based SDS
 * (envoy/tls-certificate.sds.yaml) with watched_directory on the TLS Secret's folder. When the
 * Secret is renewed the Kubernetes way (one atomic `..data` swap), new connections get the new
 * certificate without a restart, and a connection opened before keeps working.
 */
import { X509Certificate } from "node:crypto";
import https from "node:https";
import type { TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TunnelAgent } from "../support/tunnelAgent.js";
import { PLACEHOLDER, REAL, startStack, type Stack } from "./harness.js";

const HOST = "e2e-bucket.s3.eu-west-1.amazonaws.com";
const ZEROS = "0".repeat(64);

let stack: Stack;
/** A keep-alive agent whose connections are CONNECT tunnels through Envoy, trusting the stack's CA. */
const tunnelAgent = (): TunnelAgent => new TunnelAgent({ host: "127.0.0.1", port: Number(new URL(stack.proxyUrl).port) }, { keepAlive: true, maxSockets: 1, ca: stack.caPem });

beforeAll(async () => {
  stack = await startStack({ logLevel: "warn" });
});
afterAll(async () => {
  await stack?.close();
});

interface Answer {
  status: number;
  socket: TLSSocket;
  fingerprint: string;
}

/** A GET through Envoy's CONNECT listener on `agent`; countersign re-signs it (the fake answers NoSuchKey). */
function get(agent: https.Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        host: HOST,
        port: 443,
        path: "/rotation/missing.txt",
        agent,
        headers: {
          authorization: `AWS4-HMAC-SHA256 Credential=${PLACEHOLDER.accessKeyId}/20240101/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${ZEROS}`,
          "x-amz-date": "20240101T000000Z",
          "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        },
      },
      (res) => {
        const socket = res.socket as TLSSocket;
        const fingerprint = socket.getPeerCertificate().fingerprint256;
        res.resume();
        res.on("end", () => resolve({ status: res.statusCode ?? 0, socket, fingerprint }));
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const fingerprintOf = (pem: string): string => new X509Certificate(pem).fingerprint256;

describe("the listener certificate is renewed without a restart", () => {
  it("new connections get the renewed certificate; a connection opened before keeps its own and keeps working", async () => {
    const longLived = tunnelAgent();
    const first = await get(longLived);
    expect(first.status).toBe(404);
    expect(stack.fake.requests.at(-1)).toMatchObject({ host: HOST, verified: true, accessKeyId: REAL.accessKeyId });
    const oldFingerprint = first.fingerprint;

    const renewedPem = await stack.renewListenerCertificate();
    const renewed = fingerprintOf(renewedPem);
    expect(renewed).not.toBe(oldFingerprint);

    // New connections: Envoy re-reads the files once the watch fires (about a second).
    const deadline = Date.now() + 30_000;
    let seen = "";
    while (Date.now() < deadline) {
      const fresh = tunnelAgent();
      const answer = await get(fresh);
      fresh.destroy();
      expect(answer.status).toBe(404);
      seen = answer.fingerprint;
      if (seen === renewed) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(seen).toBe(renewed);

    // The connection opened before the renewal: same socket, old certificate, still signing.
    const again = await get(longLived);
    expect(again.socket).toBe(first.socket);
    expect(again.fingerprint).toBe(oldFingerprint);
    expect(again.status).toBe(404);
    expect(stack.fake.requests.at(-1)).toMatchObject({ host: HOST, verified: true });
    longLived.destroy();
  });
});
