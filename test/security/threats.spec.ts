/**
 * One test (or a few) per threat of SECURITY.md that no other suite already proves. Two setups:
 * `countersign serve` driven over gRPC as Envoy would (SECURITY_POLICY, a fake AWS whose clock the
 * replay test moves), and the whole path — workload → real Envoy (envoy/envoy.yaml) →
 * countersign → fake AWS — for what depends on Envoy's side (CONNECT target, SNI, HTTP/1 framing).
 */
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { PLACEHOLDER, startStack, type Stack } from "../e2e/harness.js";
import { startFakeAws, type FakeAws } from "../fakeaws/server.js";
import { runGrpcStream } from "../fuzz/support/grpcRun.js";
import { header, requestHead, requestHeadersMessage, type HeaderSpec } from "../fuzz/support/messages.js";
import { headersSet, refusalBody, refusalDetails, refusalStatus, responseKinds } from "../fuzz/support/oracle.js";
import { forwardToFake } from "../ops/support/requests.js";
import { connectExtProc, exchange, type ExchangeResult, type TestRequest } from "../support/extProcClient.js";
import { OTHER_KEY_ID, PLACEHOLDER_KEY_ID, REAL, SECURITY_POLICY, placeholderAuthorization } from "./support/fixtures.js";
import { serveWithPolicy, unsignedPayloadGet, type ServedPolicy } from "./support/serveFixture.js";
import { rawRequestInTunnel } from "./support/tunnel.js";

const S3 = "photos.s3.us-west-2.amazonaws.com";
const BOUND = "bucket.s3.eu-west-1.amazonaws.com";
const ZEROS = "0".repeat(64);

let served: ServedPolicy;
let client: ExternalProcessorClient;
let fake: FakeAws;
let clockOffsetMs = 0;

beforeAll(async () => {
  served = await serveWithPolicy(SECURITY_POLICY);
  client = connectExtProc(served.serve.grpcAddress);
  fake = await startFakeAws({ accounts: [REAL], now: () => new Date(Date.now() + clockOffsetMs) });
});

afterAll(async () => {
  client?.close();
  await served?.serve.stop();
  await fake?.close();
});

async function decide(headers: readonly HeaderSpec[], endOfStream = true) {
  const { responses, code } = await runGrpcStream(client, [{ msg: requestHeadersMessage(headers, endOfStream) }]);
  expect(code).toBe(0);
  return responses[0];
}

function s3Get(authority: string, extra: Array<[string, string]> = [], keyId = PLACEHOLDER_KEY_ID, scope: [string, string] = ["us-west-2", "s3"]): TestRequest {
  return {
    method: "GET",
    authority,
    path: "/key.txt",
    headers: [
      ["authorization", placeholderAuthorization(keyId, scope[0], scope[1])],
      ["x-amz-date", "20240101T000000Z"],
      ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"],
      ...extra,
    ],
  };
}

function authOf(r: ExchangeResult): string {
  if (r.kind !== "forwarded") throw new Error(`expected a signed request, got ${r.status}: ${r.body}`);
  return r.request.headers.find(([k]) => k === "authorization")?.[1] ?? "";
}

/** Sends a signed request on to the fake AWS; resolves with its verdict. */
async function atAws(r: ExchangeResult): Promise<{ status: number; verified: boolean | undefined; errorCode: string | undefined; host: string | undefined }> {
  if (r.kind !== "forwarded") throw new Error(`expected a signed request, got ${r.status}`);
  const status = await forwardToFake(fake.port, r.request);
  const rec = fake.requests.at(-1);
  return { status, verified: rec?.verified, errorCode: rec?.errorCode, host: rec?.host };
}

describe("confused deputy: nothing is signed for a host, port or service outside the policy", () => {
  it.each([
    ["a suffix that only looks like the allowed host", `${S3}.evil.example`],
    ["userinfo before the allowed host", `evil.example@${S3}`],
    ["a percent-encoded dot", S3.replace(".amazonaws", "%2Eamazonaws")],
    ["an extra label under a one-label wildcard", `a.${S3}`],
    ["an IP literal", "127.0.0.1"],
    ["an IPv6 literal with the allowed host's port", "[::1]:443"],
    ["the allowed host on a port the endpoint does not allow", "dynamodb.eu-central-1.amazonaws.com:443"],
    ["an empty label", `photos..s3.us-west-2.amazonaws.com`],
    ["a backslash (parsers disagree where the host ends)", `evil.example\\.${S3}`],
  ])("refuses %s (%s) with 403 and sets no signature", async (_what, authority) => {
    const r = await decide(unsignedPayloadGet(authority));
    expect(refusalStatus(r)).toBe(403);
    expect(refusalDetails(r)).toBe("countersign_no_endpoint");
    expect(headersSet(r).has("authorization")).toBe(false);
  });

  it("signs for the endpoint's own signing_service and region whatever service and region the client's scope claims, and AWS verifies it", async () => {
    const r = await exchange(client, s3Get(S3, [], PLACEHOLDER_KEY_ID, ["us-east-1", "iam"]));
    expect(authOf(r)).toContain(`Credential=${REAL.accessKeyId}/`);
    expect(authOf(r)).toMatch(/\/us-west-2\/s3\/aws4_request,/);
    expect(await atAws(r)).toMatchObject({ verified: true, host: S3 });
  });
});

describe(":authority, Host, TLS SNI and the CONNECT target disagree", () => {
  it("over gRPC, a host header that differs from :authority is refused (400) and nothing is signed: which one AWS would read is not guessed", async () => {
    const r = await exchange(client, s3Get(S3, [["host", "evil.example"]]));
    expect({ kind: r.kind, status: r.kind === "refused" ? r.status : 0 }).toEqual({ kind: "refused", status: 400 });
    expect(r.responses.flatMap((x) => [...headersSet(x).keys()])).not.toContain("authorization");
  });

  it("over gRPC, an :authority refused by the policy with a host header naming an allowed host is refused (400), nothing signed", async () => {
    const head = requestHead("GET", "evil.example", "/key", [
      ["host", S3],
      ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"],
      ["authorization", placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-west-2", "s3")],
    ]);
    const r = await decide(head);
    expect(refusalStatus(r)).toBe(400);
    expect(refusalBody(r)).toContain("differs from :authority");
    expect(headersSet(r).has("authorization")).toBe(false);
  });

  it("over gRPC, a host header equal to :authority (any letter case) is accepted and signed", async () => {
    const r = await exchange(client, s3Get(S3, [["host", S3.toUpperCase()]]));
    expect(authOf(r)).toMatch(/SignedHeaders=host;/);
    if (r.kind !== "forwarded") return;
    // Envoy has one Host, its :authority, and sends that upstream.
    const asEnvoySendsIt = { ...r, request: { ...r.request, headers: r.request.headers.filter(([k]) => k !== "host") } };
    expect(await atAws(asEnvoySendsIt)).toMatchObject({ verified: true, host: S3 });
  });

  describe("through real Envoy (envoy/envoy.yaml) to the fake AWS", () => {
    let stack: Stack;
    const S3_HOST = "tenant.s3.eu-west-1.amazonaws.com";
    const get = (host: string): string =>
      [
        "GET /obj.txt HTTP/1.1",
        `Host: ${host}`,
        `Authorization: AWS4-HMAC-SHA256 Credential=${PLACEHOLDER.accessKeyId}/20240101/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${ZEROS}`,
        "X-Amz-Date: 20240101T000000Z",
        "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD",
        "Connection: close",
        "",
        "",
      ].join("\r\n");

    beforeAll(async () => {
      stack = await startStack({ logLevel: "warn" });
    });
    afterAll(async () => {
      await stack?.close();
    });

    /** Envoy's count of ext_proc streams opened on the TLS-terminating listener. */
    const extProcStreams = async (): Promise<number> => {
      if (!stack.envoy) throw new Error("these tests run through real Envoy");
      const n = (await stack.envoy.stats())["http.tls_decap.ext_proc.countersign.streams_started"];
      if (n === undefined) throw new Error("Envoy has no http.tls_decap.ext_proc.countersign.streams_started counter");
      return n;
    };

    it("CONNECT and SNI name an allowed host, the inner Host does not: countersign refuses (403) and nothing leaves for AWS", async () => {
      const dnsBefore = stack.dns.queries.length;
      const fakeBefore = stack.fake.requests.length;
      const res = await rawRequestInTunnel({ proxyPort: Number(new URL(stack.proxyUrl).port), target: `${S3_HOST}:443`, sni: S3_HOST, ca: stack.caPem, request: get("example.com") });
      expect(res.status).toBe(403);
      expect(res.text).toContain("<Code>AccessDenied</Code>");
      expect(res.text).toContain("no endpoint for host &quot;example.com&quot;");
      // Envoy did not even resolve a name for it: nothing was dialled.
      expect(stack.dns.queries.slice(dnsBefore)).toEqual([]);
      expect(stack.fake.requests.length).toBe(fakeBefore);
    });

    it("CONNECT and SNI name a host outside the policy, the inner Host an allowed one: it is signed for, sent to, and verified as the inner Host only", async () => {
      const dnsBefore = stack.dns.queries.length;
      const res = await rawRequestInTunnel({ proxyPort: Number(new URL(stack.proxyUrl).port), target: "example.com:443", sni: "example.com", ca: stack.caPem, request: get(S3_HOST) });
      // The router dials the signed :authority (dynamic forward proxy; auto_sni/auto_san_validation
      // follow it too): Envoy resolved the inner host, never the CONNECT target.
      const asked = stack.dns.queries.slice(dnsBefore).join(" ");
      expect(asked).not.toContain("example.com");
      expect(stack.fake.requests.at(-1)).toMatchObject({ host: S3_HOST, method: "GET", path: "/obj.txt", verified: true });
      expect(res.status).toBe(404); // NoSuchKey: the signature itself was accepted
    });

    it("a request with both Content-Length and Transfer-Encoding is refused by the HTTP/1 codec (400) before ext_proc: no stream, nothing upstream", async () => {
      const startedBefore = await extProcStreams();
      const fakeBefore = stack.fake.requests.length;
      const smuggled = [
        "PUT /obj.txt HTTP/1.1",
        `Host: ${S3_HOST}`,
        `Authorization: AWS4-HMAC-SHA256 Credential=${PLACEHOLDER.accessKeyId}/20240101/eu-west-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=${ZEROS}`,
        "X-Amz-Date: 20240101T000000Z",
        "X-Amz-Content-Sha256: UNSIGNED-PAYLOAD",
        "Content-Length: 5",
        "Transfer-Encoding: chunked",
        "Connection: close",
        "",
        "0",
        "",
        "GET /other.txt HTTP/1.1",
        `Host: ${S3_HOST}`,
        "",
        "",
      ].join("\r\n");
      const res = await rawRequestInTunnel({ proxyPort: Number(new URL(stack.proxyUrl).port), target: `${S3_HOST}:443`, sni: S3_HOST, ca: stack.caPem, request: smuggled });
      expect(res.status).toBe(400);
      expect(await extProcStreams()).toBe(startedBefore);
      // The counter is live: the tunnels above opened streams on this listener.
      expect(startedBefore).toBeGreaterThan(0);
      expect(stack.fake.requests.length).toBe(fakeBefore);
    });
  });
});

describe("request smuggling at countersign: the signature binds the framing it saw", () => {
  it("signs content-length with a client-hashed body, so a body re-framed to another length after signing is refused by AWS", async () => {
    const body = Buffer.from("exactly this body");
    const hash = (await import("node:crypto")).createHash("sha256").update(body).digest("hex");
    const req: TestRequest = {
      method: "PUT",
      authority: S3,
      path: "/framed.txt",
      headers: [
        ["authorization", placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-west-2", "s3")],
        ["x-amz-content-sha256", hash],
        ["content-length", String(body.length)],
      ],
      body,
    };
    const r = await exchange(client, req);
    expect(authOf(r)).toMatch(/SignedHeaders=[^,]*content-length/);
    expect(await atAws(r)).toMatchObject({ status: 200, verified: true });
    if (r.kind !== "forwarded") return;
    const longer = Buffer.concat([body, Buffer.from("+smuggled")]);
    const reframed = { ...r.request, headers: r.request.headers.map(([k, v]): [string, string] => [k, k === "content-length" ? String(longer.length) : v]), body: longer };
    expect(await forwardToFake(fake.port, reframed)).toBe(403);
    expect(fake.requests.at(-1)).toMatchObject({ verified: false });
  });

  // Defence in depth (src/extproc/headers.ts): reachable only by a client that talks to the gRPC
  // port directly, since Envoy's HTTP/1 codec refuses such heads itself (the real-Envoy test above).
  it("refuses a head with both content-length and transfer-encoding, or with two content-length values, with 400", async () => {
    for (const framing of [
      [["content-length", "5"], ["transfer-encoding", "chunked"]],
      [["content-length", "5"], ["content-length", "7"]],
    ] as Array<Array<[string, string]>>) {
      const head = requestHead("PUT", S3, "/k", [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"], ["authorization", placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-west-2", "s3")], ...framing]);
      const r = await decide(head, false);
      expect(refusalStatus(r)).toBe(400);
    }
  });
});

describe("header injection through raw_value (and value) bytes", () => {
  const base = (): HeaderSpec[] => unsignedPayloadGet(S3);
  it.each([
    ["CRLF and a second header in an x-amz-meta value", header("x-amz-meta-note", "ok\r\nx-amz-security-token: injected")],
    ["a bare LF", header("x-amz-meta-note", "a\nb")],
    ["a bare CR", header("x-amz-meta-note", "a\rb")],
    ["a NUL byte", header("x-amz-meta-note", Buffer.from([0x61, 0x00, 0x62]))],
    ["CRLF in the legacy `value` field (Envoy < 1.27)", header("x-amz-meta-note", "ok\r\nhost: evil.example", "value")],
    ["bytes that are not UTF-8", header("x-amz-meta-note", Buffer.from([0x61, 0xc3, 0x28]))],
  ])("refuses %s with 400 and sets nothing", async (_what, bad) => {
    const r = await decide([...base(), bad]);
    expect(refusalStatus(r)).toBe(400);
    expect(refusalDetails(r)).toBe("countersign_malformed_request");
    expect(responseKinds(r)).toEqual(["immediate_response"]);
    expect(headersSet(r).size).toBe(0);
  });

  it.each([
    [":authority", `${S3}\r\nx-evil: 1`],
    [":path", "/key\r\nx-evil: 1"],
    [":method", "GET\r\n"],
  ])("refuses CR/LF in the pseudo-header %s with 400", async (name, value) => {
    const head = base().map((h) => (h.key === name ? header(name, value) : h));
    const r = await decide(head);
    expect(refusalStatus(r)).toBe(400);
    expect(headersSet(r).has("authorization")).toBe(false);
  });

  it("sets only values free of CR, LF and NUL, in raw_value, even when the client's signed headers and query carry escaped control characters", async () => {
    const head = requestHead("GET", S3, "/key%0D%0Ax-evil:%201?prefix=%0A%00", [
      ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"],
      ["x-amz-meta-escaped", "%0D%0A"],
      ["authorization", placeholderAuthorization(PLACEHOLDER_KEY_ID, "us-west-2", "s3", "host;x-amz-content-sha256;x-amz-date;x-amz-meta-escaped")],
    ]);
    const r = await decide(head);
    const set = headersSet(r);
    expect(set.get("authorization")).toMatch(/^AWS4-HMAC-SHA256 /);
    for (const [k, v] of set) expect(`${k}: ${v}`).not.toMatch(/[\r\n\0]/);
  });
});

describe("a workload presenting another workload's placeholder key id", () => {
  it("refuses a presigned URL whose X-Amz-Credential names another key id (403 InvalidAccessKeyId, key id masked)", async () => {
    const q = `X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=${OTHER_KEY_ID}%2F20240101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Date=20240101T000000Z&X-Amz-Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature=${ZEROS}`;
    const r = await decide(requestHead("GET", BOUND, `/key?${q}`, [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"]]));
    expect(refusalStatus(r)).toBe(403);
    expect(refusalBody(r)).toContain("<Code>InvalidAccessKeyId</Code>");
    expect(refusalBody(r)).not.toContain(OTHER_KEY_ID);
    expect(headersSet(r).has("authorization")).toBe(false);
  });

  it("judges the Authorization header, not a bound key id smuggled into the query beside it", async () => {
    const q = `X-Amz-Credential=${PLACEHOLDER_KEY_ID}%2F20240101%2Feu-west-1%2Fs3%2Faws4_request&X-Amz-Signature=${ZEROS}`;
    const r = await decide(requestHead("GET", BOUND, `/key?${q}`, [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"], ["authorization", placeholderAuthorization(OTHER_KEY_ID, "eu-west-1", "s3")]]));
    expect(refusalStatus(r)).toBe(403);
    expect(refusalDetails(r)).toBe("countersign_key_id_not_allowed");
  });

  it("refuses two Authorization headers (one bound, one not) with 400, and an unsigned request with 403", async () => {
    const two = await decide(
      requestHead("GET", BOUND, "/key", [
        ["x-amz-content-sha256", "UNSIGNED-PAYLOAD"],
        ["authorization", placeholderAuthorization(PLACEHOLDER_KEY_ID, "eu-west-1", "s3")],
        ["authorization", placeholderAuthorization(OTHER_KEY_ID, "eu-west-1", "s3")],
      ]),
    );
    expect(refusalStatus(two)).toBe(400);
    const unsigned = await decide(requestHead("GET", BOUND, "/key", [["x-amz-content-sha256", "UNSIGNED-PAYLOAD"]]));
    expect(refusalStatus(unsigned)).toBe(403);
    expect(refusalDetails(unsigned)).toBe("countersign_unsigned_client");
  });
});

describe("signature replay", () => {
  it("ignores the client's x-amz-date: each request gets a fresh date (within 5 s of now) and its own signature", async () => {
    const first = await exchange(client, s3Get(S3));
    await new Promise((r) => setTimeout(r, 1_100));
    const second = await exchange(client, s3Get(S3));
    const dates = [first, second].map((r) => (r.kind === "forwarded" ? r.request.headers.find(([k]) => k === "x-amz-date")?.[1] : undefined));
    for (const d of dates) {
      const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(d ?? "");
      expect(m, d).not.toBeNull();
      const at = Date.UTC(Number(m?.[1]), Number(m?.[2]) - 1, Number(m?.[3]), Number(m?.[4]), Number(m?.[5]), Number(m?.[6]));
      expect(Math.abs(Date.now() - at)).toBeLessThan(5_000);
    }
    expect(dates[0]).not.toBe(dates[1]);
    expect(authOf(first)).not.toBe(authOf(second));
  });

  it("a signed request captured on its way to AWS and replayed 16 minutes later is refused by AWS (RequestTimeTooSkewed)", async () => {
    const r = await exchange(client, s3Get(S3));
    expect(await atAws(r)).toMatchObject({ verified: true });
    try {
      clockOffsetMs = 16 * 60_000;
      expect(await atAws(r)).toMatchObject({ status: 403, errorCode: "RequestTimeTooSkewed" });
    } finally {
      clockOffsetMs = 0;
    }
  });
});

describe("secret exposure", () => {
  it("no real secret, session token, real key id or signature in /metrics, /healthz, /readyz, refusal bodies or the log, after signed, refused and unavailable-credential requests", async () => {
    const noCreds = await serveWithPolicy(SECURITY_POLICY, { SEC_REAL_ACCESS_KEY_ID: REAL.accessKeyId }, ["--log-level", "debug"]);
    const c2 = connectExtProc(noCreds.serve.grpcAddress);
    try {
      const signed = await exchange(client, s3Get(S3));
      const signature = /Signature=([0-9a-f]{64})/.exec(authOf(signed))?.[1] ?? "<none>";
      const refusals = [
        await exchange(client, s3Get("evil.example")),
        await exchange(client, s3Get(BOUND, [], OTHER_KEY_ID, ["eu-west-1", "s3"])),
        await exchange(c2, s3Get(S3)),
      ];
      expect(refusals.map((r) => (r.kind === "refused" ? r.status : "signed"))).toEqual([403, 403, 503]);
      const texts = [...refusals.map((r) => (r.kind === "refused" ? r.body : ""))];
      for (const s of [served.serve, noCreds.serve]) {
        for (const path of ["/metrics", "/healthz", "/readyz"]) texts.push(await (await fetch(`${s.adminUrl}${path}`)).text());
      }
      await noCreds.serve.stop();
      texts.push(served.serve.lines.join("\n"), noCreds.serve.lines.join("\n"));
      const all = texts.join("\n");
      expect(all).toContain("SEC_REAL_SECRET_ACCESS_KEY"); // the 503 names the variable…
      for (const secret of [REAL.secretAccessKey, REAL.sessionToken, REAL.accessKeyId, signature]) expect(all).not.toContain(secret); // …never a value
    } finally {
      c2.close();
      await noCreds.serve.stop();
    }
  });

  it("takes secrets only from the environment or files: the command line (/proc/<pid>/cmdline, world-readable) holds none", () => {
    const cmdline = readFileSync(`/proc/${served.serve.proc.pid as number}/cmdline`, "utf8");
    expect(cmdline).toContain("serve");
    for (const secret of [REAL.secretAccessKey, REAL.sessionToken, REAL.accessKeyId]) expect(cmdline).not.toContain(secret);
  });
});
