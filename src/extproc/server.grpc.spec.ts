/**
 * The server over a real gRPC connection (grpc-js both ends, in process): STREAMED answers are
 * written to the wire from the re-signed pieces, through a buffer reused from one answer to the
 * next (mutations.ts, answerSerializer). That is safe only because grpc-js copies each serialized
 * answer into its own frame before the next is serialized; this test fails if that ever changes.
 * Several streams send all their body pieces at once, interleaved, so answers are written back to
 * back; each stream's forwarded body must be its own, every chunk verified under the real key.
 */
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProcessingRequest } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { ProcessingResponse__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import type { ExternalProcessorClient } from "../../protos/generated/envoy/service/ext_proc/v3/ExternalProcessor.js";
import { AwsChunkedDecoder, deriveSigningKey, STREAMING_SIGNED_PAYLOAD } from "../../test/fakeaws/verifier.js";
import { awsChunkedBody, requestBodyMessage, requestHead, requestHeadersMessage, splitAt } from "../../test/fuzz/support/messages.js";
import { connectExtProc } from "../../test/support/extProcClient.js";
import { headersSetBy, inProcessContext } from "../../test/support/extProcHarness.js";
import { extProcPolicy } from "../../test/support/extProcPolicy.js";
import { ANSWER_SCRATCH_BYTES } from "./mutations.js";
import { startExtProcServer, type ExtProcServer } from "./server.js";

const CREDS = { accessKeyId: "AKIASERVERGRPCSPEC01", secretAccessKey: "server/grpc/spec/secret/00000000000000001" };
const NOW = new Date("2024-05-01T12:00:00Z");
const HOST = "photos.s3.us-west-2.amazonaws.com";
const PLACEHOLDER_AUTH = `AWS4-HMAC-SHA256 Credential=AKIDPLACEHOLDER00001/20240501/us-west-2/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=${"0".repeat(64)}`;

let server: ExtProcServer;
let client: ExternalProcessorClient;

beforeAll(async () => {
  const { ctx } = inProcessContext(extProcPolicy(64), CREDS, { now: () => NOW });
  server = await startExtProcServer("127.0.0.1:0", ctx);
  client = connectExtProc(`127.0.0.1:${server.port}`);
});

afterAll(async () => {
  client?.close();
  await server?.shutdown(1000);
});

/** One chunk-signed upload: all its messages written at once; resolves to every answer. */
function upload(chunks: readonly Buffer[], cuts: readonly number[]): { wire: Buffer; answers: Promise<ProcessingResponse__Output[]> } {
  const wire = awsChunkedBody(chunks, undefined);
  const decoded = chunks.reduce((n, c) => n + c.length, 0);
  const pieces = splitAt(wire, cuts);
  const call: ClientDuplexStream<ProcessingRequest, ProcessingResponse__Output> = client.Process();
  const answers = new Promise<ProcessingResponse__Output[]>((resolve, reject) => {
    const got: ProcessingResponse__Output[] = [];
    call.on("data", (r: ProcessingResponse__Output) => {
      got.push(r);
      if (got.length === pieces.length + 1) {
        call.end();
        resolve(got);
      }
    });
    call.on("error", reject);
  });
  const head = requestHead("PUT", HOST, "/key", [["x-amz-content-sha256", STREAMING_SIGNED_PAYLOAD], ["x-amz-decoded-content-length", String(decoded)], ["content-encoding", "aws-chunked"], ["authorization", PLACEHOLDER_AUTH]]);
  call.write(requestHeadersMessage(head, false));
  for (const [i, p] of pieces.entries()) call.write(requestBodyMessage(p, i === pieces.length - 1));
  return { wire, answers };
}

function verify(answers: readonly ProcessingResponse__Output[], wire: Buffer, decodedContentLength: number): string {
  const auth = headersSetBy(answers[0] as ProcessingResponse__Output).get("authorization") ?? "";
  const seedSignature = /Signature=([0-9a-f]{64})$/.exec(auth)?.[1] ?? "";
  const forwarded = Buffer.concat(answers.slice(1).map((a) => (a.request_body?.response?.body_mutation?.body as Buffer | undefined) ?? Buffer.alloc(0)));
  if (forwarded.length !== wire.length) return `forwarded ${forwarded.length} bytes, not ${wire.length}`;
  const decoder = new AwsChunkedDecoder({
    mode: STREAMING_SIGNED_PAYLOAD,
    signing: { signingKey: deriveSigningKey(CREDS.secretAccessKey, "20240501", "us-west-2", "s3"), amzDate: "20240501T120000Z", scope: "20240501/us-west-2/s3/aws4_request", seedSignature },
    declaredTrailers: [],
    decodedContentLength,
    minChunkSize: 0,
  });
  decoder.write(forwarded);
  const verdict = decoder.end();
  return verdict.ok ? "verified" : `${verdict.failure.code}: ${verdict.failure.message}`;
}

describe("STREAMED answers over gRPC", () => {
  it("several streams' answers, written back to back from the reused buffer, each arrive intact and verify", async () => {
    // Different fill bytes per stream, so an answer carrying another's bytes cannot verify; chunks
    // of 64 KiB and a last one past the reused buffer's size.
    const streams = [0x61, 0x62, 0x63, 0x64].map((fill, s) => {
      const chunks = [Buffer.alloc(65_536, fill), Buffer.alloc(65_536, fill + 8), Buffer.alloc(1000 + s, fill + 16), ...(s === 3 ? [Buffer.alloc(ANSWER_SCRATCH_BYTES + 10, fill)] : [])];
      const cuts = [100, 70_000, 131_000, 140_000];
      return { chunks, ...upload(chunks, cuts) };
    });
    for (const s of streams) {
      const answers = await s.answers;
      expect(answers.every((a) => a.immediate_response === null || a.immediate_response === undefined)).toBe(true);
      expect(verify(answers, s.wire, s.chunks.reduce((n, c) => n + c.length, 0))).toBe("verified");
    }
  });
});
