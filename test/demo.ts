/**
 * `make demo`: the main job end to end on an embedded default, all on loopback.
 *
 *   AWS SDK v3 (placeholder keys) ──HTTPS_PROXY──▶ Envoy emulator (envoy/envoy.yaml)
 *        ──ext_proc──▶ countersign serve (real keys) ──▶ fake AWS (verifies SigV4 with the real key)
 *
 * Prints a short transcript and a few lines of /metrics, then stops everything it started.
 */
import { Readable } from "node:stream";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { GetCallerIdentityCommand } from "@aws-sdk/client-sts";
import { s3Client, stsClient } from "./e2e/clients.js";
import { PLACEHOLDER, REAL, startStack } from "./e2e/harness.js";

// The SDK's notice that its 2027 releases need Node 22 says nothing about this demo; keep the
// transcript readable (set the variable yourself to see it).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

const mask = (k: string | undefined): string => (k ? `${k.slice(0, 4)}…${k.slice(-4)}` : "-");

async function main(): Promise<void> {
  console.log("countersign demo — everything below runs on 127.0.0.1\n");
  const stack = await startStack({ logLevel: "warn" });
  console.log(`  fake AWS           ${stack.fake.url}   (knows only the real key ${mask(REAL.accessKeyId)})`);
  console.log(`  countersign serve  grpc ${stack.serve.grpcAddress}, admin ${stack.serve.adminUrl}   (holds the real key)`);
  console.log(`  Envoy emulator     HTTPS_PROXY=${stack.proxyUrl}   (config: envoy/envoy.yaml)`);
  console.log(`  workload SDK       placeholder key ${mask(PLACEHOLDER.accessKeyId)}\n`);
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
    console.log("\n/metrics (excerpt):");
    const metrics = await (await fetch(`${stack.serve.adminUrl}/metrics`)).text();
    for (const line of metrics.split("\n")) {
      if (/^countersign_(requests_total|body_bytes_hashed_total|credentials_usable|policy_info)/.test(line)) console.log(`  ${line}`);
    }
    console.log(failed === 0 ? "\ndemo OK: every request was re-signed by countersign and verified by the fake AWS." : `\ndemo FAILED: ${failed} step(s) failed`);
    process.exitCode = failed === 0 ? 0 : 1;
  } finally {
    await stack.close();
  }
}

main().catch((err: unknown) => {
  console.error(`demo failed: ${err instanceof Error ? err.stack : String(err)}`);
  process.exitCode = 1;
});
