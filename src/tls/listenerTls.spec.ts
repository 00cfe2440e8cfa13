/**
 * The listener's TLS files rotated under a real grpc-js server in this process: the files live in
 * memory (src/files/testing/memoryFiles.ts) and the watcher runs with short timings, so a rotation
 * is seen in milliseconds; the TLS handshakes and the gRPC connections are real. Client
 * certificates (mTLS) are rotated through `countersign serve` in test/ops/mtls.spec.ts.
 */
import { X509Certificate } from "node:crypto";
import { connect } from "node:tls";
import * as grpc from "@grpc/grpc-js";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { until } from "../../test/support/eventually.js";
import { createCa, createLeaf, type IssuedCertificate } from "../certs/certificates.js";
import { MemoryFiles } from "../files/testing/memoryFiles.js";
import { startListenerTls, type ListenerTls } from "./listenerTls.js";
import type { TlsFiles } from "./tlsMaterial.js";

const FILES: TlsFiles = { certFile: "/etc/countersign/tls/tls.crt", keyFile: "/etc/countersign/tls/tls.key" };
/** Polls every millisecond, in real time, for at most 5 s. */
const POLL_EVERY_MS_1 = { timeoutMs: 5_000, everyMs: 1 };
const TIMING = { eventDebounceMs: 1, settleMs: 20, unterminatedSettleMs: 50, pollIntervalMs: 60_000 };

/** One unary and one bidi-streaming echo method over raw bytes. */
const RAW = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
const ECHO: grpc.ServiceDefinition = {
  Echo: { path: "/countersign.test.Echo/Echo", requestStream: false, responseStream: false, ...RAW },
  Chat: { path: "/countersign.test.Echo/Chat", requestStream: true, responseStream: true, ...RAW },
};
const EchoClient = grpc.makeGenericClientConstructor(ECHO, "Echo");
type Client = InstanceType<typeof EchoClient>;

interface Pki {
  readonly caPem: string;
  readonly leaf: IssuedCertificate;
}

let first: Pki;
let second: Pki;

beforeAll(async () => {
  const pki = async (name: string): Promise<Pki> => {
    const ca = await createCa({ commonName: `${name} CA` });
    return { caPem: ca.certPem, leaf: await createLeaf({ ca, hosts: ["localhost", "127.0.0.1"], commonName: `${name} listener` }) };
  };
  [first, second] = await Promise.all([pki("first"), pki("second")]);
});

let fs: MemoryFiles;
let lines: Array<Record<string, unknown>>;
let tls: ListenerTls | undefined;
let server: grpc.Server | undefined;
const clients: Client[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  tls?.stop();
  tls = undefined;
  await new Promise<void>((resolve) => (server ? server.tryShutdown(() => resolve()) : resolve()));
  server = undefined;
});

function record(level: string) {
  return (obj: object, msg: string): void => void lines.push({ level, ...obj, msg });
}

/** A TLS listener serving `pki`'s certificate from the in-memory files; resolves with its port. */
async function listen(pki: Pki): Promise<number> {
  fs = new MemoryFiles();
  lines = [];
  fs.write(FILES.certFile, pki.leaf.certPem);
  fs.write(FILES.keyFile, pki.leaf.keyPem);
  tls = await startListenerTls(FILES, { logger: { info: record("info"), warn: record("warn"), error: record("error") }, timing: TIMING, io: fs });
  server = new grpc.Server();
  server.addService(ECHO, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request),
    Chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on("data", (b: Buffer) => call.write(b));
      call.on("end", () => call.end());
    },
  });
  const s = server;
  const credentials = tls.credentials;
  return new Promise((resolve, reject) => s.bindAsync("127.0.0.1:0", credentials, (err, port) => (err ? reject(err) : resolve(port))));
}

function client(port: number, trusting: Pki): Client {
  const c = new EchoClient(`127.0.0.1:${port}`, grpc.credentials.createSsl(Buffer.from(trusting.caPem)), {
    "grpc.ssl_target_name_override": "localhost",
    "grpc.use_local_subchannel_pool": 1,
  });
  clients.push(c);
  return c;
}

/** One unary call on a new connection: "echoed", or the gRPC status name. */
async function callOnce(c: Client): Promise<string> {
  return new Promise((resolve) => {
    c.makeUnaryRequest("/countersign.test.Echo/Echo", (b: Buffer) => b, (b: Buffer) => b, Buffer.from("ping"), { deadline: Date.now() + 10_000 }, (err, res) => {
      resolve(err ? `gRPC ${grpc.status[err.code]}` : res?.toString() === "ping" ? "echoed" : `unexpected ${String(res)}`);
    });
  });
}

/** The SHA-256 fingerprint of the certificate a new TLS connection to `port` is shown. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port, servername: "localhost", ALPNProtocols: ["h2"], rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()?.fingerprint256 ?? "none");
      socket.destroy();
    });
    socket.once("error", reject);
  });
}

const fingerprint = (pki: Pki): string => new X509Certificate(pki.leaf.certPem).fingerprint256;

function rotateTo(pki: Pki): void {
  fs.write(FILES.certFile, pki.leaf.certPem);
  fs.write(FILES.keyFile, pki.leaf.keyPem);
}

const logged = (msg: string): Array<Record<string, unknown>> => lines.filter((l) => l.msg === msg);

describe("startListenerTls", () => {
  it("serves the certificate it read at start and logs what it serves", async () => {
    const port = await listen(first);
    expect(tls?.mode).toBe("tls");
    expect(await servedFingerprint(port)).toBe(fingerprint(first));
    expect(await callOnce(client(port, first))).toBe("echoed");
    expect(logged("TLS certificate loaded")).toEqual([expect.objectContaining({ level: "info", certSubject: "CN=first listener", certSha256: fingerprint(first) })]);
  });

  it("rotated certificate and key: a new connection gets the new certificate while a stream opened before keeps working on its connection", async () => {
    const port = await listen(first);
    const old = client(port, first);
    const stream = old.makeBidiStreamRequest("/countersign.test.Echo/Chat", (b: Buffer) => b, (b: Buffer) => b);
    const received: string[] = [];
    stream.on("data", (b: Buffer) => received.push(b.toString()));
    stream.write(Buffer.from("before"));
    await until(() => received.length === 1, "the echo before the rotation", POLL_EVERY_MS_1);

    rotateTo(second);
    await until(() => logged("TLS certificate reloaded").length === 1, "the reload", POLL_EVERY_MS_1);
    expect(logged("TLS certificate reloaded")[0]).toMatchObject({ level: "info", certSubject: "CN=second listener", certSha256: fingerprint(second) });

    stream.write(Buffer.from("after"));
    await until(() => received.length === 2, "the echo after the rotation", POLL_EVERY_MS_1);
    expect(received).toEqual(["before", "after"]);
    // A new call on the old client rides its open connection (a new handshake would fail: it trusts the first CA only).
    expect(await callOnce(old)).toBe("echoed");
    stream.end();

    expect(await servedFingerprint(port)).toBe(fingerprint(second));
    expect(await callOnce(client(port, second))).toBe("echoed");
    expect(await callOnce(client(port, first))).toBe("gRPC UNAVAILABLE");
    expect(lines.filter((l) => l.level !== "info")).toEqual([]);
  });

  it("refuses a rotation it cannot use (a key from another certificate, a vanished file) and keeps serving what it has; the repaired files are used", async () => {
    const port = await listen(first);
    fs.write(FILES.keyFile, second.leaf.keyPem);
    await until(() => logged("TLS reload refused; the listener keeps its current certificate").length === 1, "the refused mismatch", POLL_EVERY_MS_1);
    expect(logged("TLS reload refused; the listener keeps its current certificate")[0]).toMatchObject({
      level: "error",
      error: `--tls-key ${FILES.keyFile} does not belong to the certificate in --tls-cert ${FILES.certFile}`,
      keptCertSha256: fingerprint(first),
    });
    expect(await servedFingerprint(port)).toBe(fingerprint(first));
    expect(await callOnce(client(port, first))).toBe("echoed");

    fs.remove(FILES.certFile);
    await until(() => logged("TLS reload refused; the listener keeps its current certificate").length === 2, "the refused vanished file", POLL_EVERY_MS_1);
    expect(logged("TLS reload refused; the listener keeps its current certificate")[1]).toMatchObject({ error: `--tls-cert ${FILES.certFile}: file not found (ENOENT)` });
    expect(await callOnce(client(port, first))).toBe("echoed");

    fs.write(FILES.certFile, second.leaf.certPem);
    await until(() => logged("TLS certificate reloaded").length === 1, "the repaired files", POLL_EVERY_MS_1);
    expect(await servedFingerprint(port)).toBe(fingerprint(second));
    expect(await callOnce(client(port, second))).toBe("echoed");
    expect(JSON.stringify(lines)).not.toContain("PRIVATE KEY");
  });

  it("refuses to start when a file is missing or the key does not match, naming the flag and the file", async () => {
    const files = new MemoryFiles();
    const logger = { info: () => undefined, warn: () => undefined, error: () => undefined };
    files.write(FILES.certFile, first.leaf.certPem);
    await expect(startListenerTls(FILES, { logger, io: files })).rejects.toThrow(`--tls-key ${FILES.keyFile}: file not found (ENOENT)`);
    files.write(FILES.keyFile, second.leaf.keyPem);
    await expect(startListenerTls(FILES, { logger, io: files })).rejects.toThrow(`--tls-key ${FILES.keyFile} does not belong to the certificate in --tls-cert ${FILES.certFile}`);
  });
});
