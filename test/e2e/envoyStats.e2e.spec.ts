/**
 * The Envoy metrics the alerts and dashboards use (k8s/), read the way Prometheus reads them:
 * GET /stats/prometheus on envoy_stats, the pod-reachable port, of real Envoy running the shipped
 * envoy.yaml. Each failure is produced for real and the exact series it moves is named, with its
 * labels: a countersign too slow (504, ext_proc message timeout), a refusal with 413, an upstream
 * whose certificate does not match (TLS failure), a host DNS does not know, the resolver gone, and
 * countersign gone (502, ext_proc stream failure).
 */
import http from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sendHandSigned } from "./handSigned.js";
import { E2E_POLICY, startStack, type Stack } from "./harness.js";

const BUCKET_HOST = "e2e-bucket.s3.eu-west-1.amazonaws.com";
/** In the policy, resolved by the test DNS to the fake AWS, whose certificate does not name it. */
const NO_CERT_HOST = "sqs.eu-west-1.amazonaws.com";
/** In the policy, unknown to the test DNS (NXDOMAIN). */
const NO_DNS_HOST = "nowhere.example.org";

const POLICY = `${E2E_POLICY}  - host: "${NO_CERT_HOST}"
    credential_signing: sigv4
    signing_service: sqs
    credentials: workload
  - host: "${NO_DNS_HOST}"
    credential_signing: sigv4
    signing_service: s3
    region: us-east-1
    credentials: workload
`;

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ policy: POLICY });
});
afterAll(async () => {
  await stack?.close();
});

type Series = Map<string, number>;

/** Every sample of a Prometheus text exposition, by `name{labels}` as written. */
function parse(text: string): Series {
  const out: Series = new Map();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^(\S+?(?:\{.*\})?) (\S+)$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) out.set(m[1], Number(m[2]));
  }
  return out;
}

async function scrape(): Promise<Series> {
  if (!stack.envoy) throw new Error("this suite needs real Envoy");
  const res = await fetch(`http://127.0.0.1:${stack.envoy.statsPort}/stats/prometheus`);
  expect(res.status).toBe(200);
  return parse(await res.text());
}

/** The counters that moved between two scrapes (histogram buckets, sums and gauges left out). */
function moved(before: Series, after: Series): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of after) {
    if (/_bucket\{|_sum\{|_count\{/.test(k)) continue;
    const d = v - (before.get(k) ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}

/** An absolute-form proxy request (HTTP_PROXY): connect_in → plain_sign; no client signature needed. */
function viaHttpProxy(host: string, path: string): Promise<{ status: number; body: string }> {
  if (!stack.envoy) throw new Error("this suite needs real Envoy");
  const port = stack.envoy.connectPort;
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method: "GET", path: `http://${host}${path}`, headers: { host, "x-amz-content-sha256": "UNSIGNED-PAYLOAD" }, agent: false, timeout: 30_000 }, (res) => {
      const parts: Buffer[] = [];
      res.on("data", (b: Buffer) => parts.push(b));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString() }));
    });
    req.on("timeout", () => req.destroy(new Error("no answer within 30 s")));
    req.on("error", reject);
    req.end();
  });
}

/** Series names as Envoy 1.40 exports them (the label values are envoy.yaml's listener and cluster names). */
const TLS_DECAP = 'envoy_http_conn_manager_prefix="tls_decap"';
const PLAIN_SIGN = 'envoy_http_conn_manager_prefix="plain_sign"';
const M = {
  messageTimeouts: (hcm: string) => `envoy_http_ext_proc_countersign_message_timeouts{${hcm}}`,
  streamsFailed: (hcm: string) => `envoy_http_ext_proc_countersign_streams_failed{${hcm}}`,
  immediateResponses: (hcm: string) => `envoy_http_ext_proc_countersign_immediate_responses_sent{${hcm}}`,
  rqClass: (cls: 4 | 5, hcm: string) => `envoy_http_downstream_rq_xx{envoy_response_code_class="${cls}",${hcm}}`,
  rqTooLarge: (hcm: string) => `envoy_http_downstream_rq_too_large{${hcm}}`,
  sslFailVerifySan: 'envoy_cluster_ssl_fail_verify_san{envoy_cluster_name="aws_upstream"}',
  sslConnectionError: 'envoy_cluster_ssl_connection_error{envoy_cluster_name="aws_upstream"}',
  connectFail: (cluster: string) => `envoy_cluster_upstream_cx_connect_fail{envoy_cluster_name="${cluster}"}`,
  caresNotFound: "envoy_dns_cares_not_found{}",
  caresGetAddrFailure: "envoy_dns_cares_get_addr_failure{}",
  dnsQuerySuccess: "envoy_dns_cache_aws_dns_cache_dns_query_success{}",
  dnsQueryFailure: "envoy_dns_cache_aws_dns_cache_dns_query_failure{}",
  dnsQueryTimeout: "envoy_dns_cache_aws_dns_cache_dns_query_timeout{}",
};

describe("Envoy's own metrics, scraped from envoy_stats (:9902 in a pod) like Prometheus does", () => {
  it("exports every series the alerts use, and each failure moves the series named for it", async () => {
    const first = await scrape();
    for (const hcm of [TLS_DECAP, PLAIN_SIGN]) {
      for (const name of [M.messageTimeouts(hcm), M.streamsFailed(hcm), M.immediateResponses(hcm), M.rqClass(4, hcm), M.rqClass(5, hcm), M.rqTooLarge(hcm)]) expect(first.has(name), name).toBe(true);
    }
    for (const name of [M.sslFailVerifySan, M.sslConnectionError, M.connectFail("aws_upstream"), M.connectFail("countersign"), M.caresNotFound, M.caresGetAddrFailure, M.dnsQuerySuccess, M.dnsQueryFailure, M.dnsQueryTimeout]) expect(first.has(name), name).toBe(true);

    // 504: countersign frozen past message_timeout.
    let before = await scrape();
    stack.serve.proc.kill("SIGSTOP");
    let res;
    try {
      res = await sendHandSigned(stack, { method: "GET", host: BUCKET_HOST, path: "/frozen", service: "s3", region: "eu-west-1", contentSha256: "UNSIGNED-PAYLOAD" });
    } finally {
      stack.serve.proc.kill("SIGCONT");
    }
    expect(res.status).toBe(504);
    let delta = moved(before, await scrape());
    expect(delta).toMatchObject({ [M.messageTimeouts(TLS_DECAP)]: 1, [M.immediateResponses(TLS_DECAP)]: 1, [M.rqClass(5, TLS_DECAP)]: 1 });
    expect(delta).not.toHaveProperty([M.streamsFailed(TLS_DECAP)]);

    // 413 from countersign: a body without a hash over the buffered-body limit. Envoy counts a 4xx
    // on the listener; its own downstream_rq_too_large is for bodies over its buffer, not this.
    before = await scrape();
    res = await sendHandSigned(stack, { method: "PUT", host: BUCKET_HOST, path: "/big", service: "s3", region: "eu-west-1", body: Buffer.alloc(1024 * 1024 + 1, "b") });
    expect(res.status).toBe(413);
    delta = moved(before, await scrape());
    expect(delta).toMatchObject({ [M.immediateResponses(TLS_DECAP)]: 1, [M.rqClass(4, TLS_DECAP)]: 1 });
    expect(delta).not.toHaveProperty([M.rqTooLarge(TLS_DECAP)]);

    // Upstream TLS: the fake AWS's certificate does not name the host (auto_san_validation).
    before = await scrape();
    const tls = await viaHttpProxy(NO_CERT_HOST, "/?Action=ListQueues");
    expect(tls.status).toBe(503);
    delta = moved(before, await scrape());
    expect(delta).toMatchObject({ [M.sslFailVerifySan]: 1, [M.connectFail("aws_upstream")]: 1, [M.rqClass(5, PLAIN_SIGN)]: 1 });

    // DNS: the host does not exist (NXDOMAIN, asked for A and AAAA). The DNS cache counts the
    // query as a success (it was answered); c-ares counts the two "not found" answers.
    before = await scrape();
    const dns = await viaHttpProxy(NO_DNS_HOST, "/x");
    expect(dns.status, dns.body).toBe(503);
    delta = moved(before, await scrape());
    expect(delta).toMatchObject({ [M.caresNotFound]: 2, [M.dnsQuerySuccess]: 1, [M.rqClass(5, PLAIN_SIGN)]: 1 });
    expect(delta).not.toHaveProperty([M.dnsQueryFailure]);

    // The resolver gone: the test DNS server closed, a host not in the DNS cache yet.
    before = await scrape();
    await stack.dns.close();
    const down = await viaHttpProxy("sts.eu-central-1.amazonaws.com", "/?Action=GetCallerIdentity");
    expect(down.status, down.body).toBe(503);
    delta = moved(before, await scrape());
    expect(delta).toMatchObject({ [M.dnsQueryFailure]: 1, [M.caresGetAddrFailure]: 2, [M.rqClass(5, PLAIN_SIGN)]: 1 });
    expect(delta).not.toHaveProperty([M.dnsQuerySuccess]);

    // 502: countersign gone (killed): the stream fails, the connection to it is refused.
    before = await scrape();
    await stack.serve.stop("SIGKILL");
    res = await sendHandSigned(stack, { method: "GET", host: BUCKET_HOST, path: "/gone", service: "s3", region: "eu-west-1", contentSha256: "UNSIGNED-PAYLOAD" });
    expect(res.status).toBe(502);
    delta = moved(before, await scrape());
    expect(delta).toMatchObject({ [M.streamsFailed(TLS_DECAP)]: 1, [M.immediateResponses(TLS_DECAP)]: 1, [M.connectFail("countersign")]: 1, [M.rqClass(5, TLS_DECAP)]: 1 });
    expect(delta).not.toHaveProperty([M.messageTimeouts(TLS_DECAP)]);
  });
});
