/**
 * One ext_proc stream = one HTTP request. The state machine reads like the protocol:
 *
 *   request_headers ─┬─ refuse ────────────────────────────▶ immediate_response      (done)
 *                    ├─ sign now (hash known / no body) ──▶ headers response + mutations (done)
 *                    └─ body needed ─▶ mode_override BUFFERED ─▶ request_body ─▶ sign (done)
 *
 * Exactly one response per request message. Response-direction messages (only sent if an operator
 * turned them on in envoy.yaml) pass through untouched. Anything out of order gets a 500
 * immediate_response: nothing is ever let through with the placeholder signature.
 */
import { createHash } from "node:crypto";
import type { ProcessingRequest__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { ProcessingResponse } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import { signRequest } from "../sigv4/index.js";
import type { SigningContext } from "./context.js";
import { deny, type Denial } from "./denial.js";
import { decodeRequestHead, isDenial } from "./headers.js";
import {
  bodyContinue,
  headersContinue,
  headersContinueAndBuffer,
  immediateDenial,
  responseBodyContinue,
  responseHeadersContinue,
  responseTrailersContinue,
  trailersContinue,
  type HeaderChanges,
} from "./mutations.js";
import { planRequest, type Plan, type PlanFacts } from "./plan.js";

type State = "awaiting_headers" | "awaiting_body" | "done";

let requestCounter = 0;

export class ExtProcStream {
  private state: State = "awaiting_headers";
  private plan: Plan | undefined;
  private requestId = "";
  private method = "";
  private readonly facts: PlanFacts = {};
  private busySeconds = 0;
  private bytesHashed = 0;
  private outcome: { decision: "signed" | "refused"; reason: string; status: number } | undefined;
  private reported = false;

  constructor(private readonly ctx: SigningContext) {}

  /** Handles one message and returns the one response it needs. Never throws. */
  async handle(msg: ProcessingRequest__Output): Promise<ProcessingResponse> {
    const started = process.hrtime.bigint();
    try {
      return await this.dispatch(msg);
    } catch (err) {
      // A bug must not let the request through: refuse it, and say so in the log via the event.
      return this.refuse(deny(500, "InternalError", "internal_error", `countersign failed while signing: ${err instanceof Error ? err.message : String(err)}`));
    } finally {
      this.busySeconds += Number(process.hrtime.bigint() - started) / 1e9;
      if (this.outcome && !this.reported) this.report();
    }
  }

  /** True once the request was signed or refused. */
  get finished(): boolean {
    return this.state === "done";
  }

  private async dispatch(msg: ProcessingRequest__Output): Promise<ProcessingResponse> {
    switch (msg.request) {
      case "request_headers":
        return this.onRequestHeaders(msg);
      case "request_body":
        return this.onRequestBody(msg);
      case "request_trailers":
        return trailersContinue();
      case "response_headers":
        return responseHeadersContinue();
      case "response_body":
        return responseBodyContinue();
      case "response_trailers":
        return responseTrailersContinue();
      default:
        return this.refuse(deny(500, "InternalError", "protocol_error", "ext_proc message carries no request or response part"));
    }
  }

  private async onRequestHeaders(msg: ProcessingRequest__Output): Promise<ProcessingResponse> {
    if (this.state !== "awaiting_headers") {
      return this.refuse(deny(500, "InternalError", "protocol_error", "request_headers arrived twice on one ext_proc stream"));
    }
    const h = msg.request_headers;
    const head = decodeRequestHead(h?.headers, { maxHeaderBytes: this.ctx.maxHeaderBytes });
    if (isDenial(head)) return this.refuse(head);
    this.method = head.method;
    this.requestId = head.headers.get("x-request-id") ?? `countersign-${process.pid}-${++requestCounter}`;

    const plan = planRequest(head, h?.end_of_stream ?? false, this.ctx, this.facts);
    if (isDenial(plan)) return this.refuse(plan);
    this.plan = plan;

    switch (plan.mode.kind) {
      case "header":
        return headersContinue(await this.sign(plan, plan.mode.payloadHash, true));
      case "buffer":
        this.state = "awaiting_body";
        return headersContinueAndBuffer();
      case "chunked":
        return this.refuse(
          deny(501, "NotImplemented", "not_implemented", `x-amz-content-sha256 ${plan.mode.payloadHash} (chunk-signed streaming upload) is not supported yet; use UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER or a hex hash`),
        );
    }
  }

  private async onRequestBody(msg: ProcessingRequest__Output): Promise<ProcessingResponse> {
    const plan = this.plan;
    if (this.state !== "awaiting_body" || !plan) {
      return this.refuse(deny(500, "InternalError", "protocol_error", `request_body arrived while ${this.state === "done" ? "the request was already decided" : "no headers had been seen"}; check that envoy.yaml sets request_body_mode: NONE`));
    }
    // In BUFFERED mode Envoy sends the whole body in one message.
    const body = msg.request_body?.body ?? Buffer.alloc(0);
    if (body.length > plan.maxBufferedBodyBytes) {
      return this.refuse(deny(413, "EntityTooLarge", "body_too_large", `the body (${body.length} bytes) is over the ${plan.maxBufferedBodyBytes}-byte limit for hashing`));
    }
    this.bytesHashed += body.length;
    const hash = createHash("sha256").update(body).digest("hex");
    return bodyContinue(await this.sign(plan, hash, true));
  }

  private async sign(plan: Plan, payloadHash: string, signContentLength: boolean): Promise<HeaderChanges> {
    const out = await signRequest({
      method: plan.head.method,
      host: plan.host,
      path: plan.path,
      query: plan.query,
      headers: plan.head.headers,
      clientSignedHeaders: plan.clientSignedHeaders,
      signContentLength,
      payloadHash,
      service: plan.service,
      region: plan.region,
      credentials: plan.credentials,
      now: this.ctx.now(),
    });
    const set = plan.rewrittenPath === undefined ? out.setHeaders : [...out.setHeaders, [":path", plan.rewrittenPath] as const];
    this.finish("signed", "signed", 200);
    return { set, remove: out.removeHeaders };
  }

  private refuse(denial: Denial): ProcessingResponse {
    this.finish("refused", denial.reason, denial.status);
    return immediateDenial(denial, this.requestId || `countersign-${process.pid}-${++requestCounter}`);
  }

  private finish(decision: "signed" | "refused", reason: string, status: number): void {
    if (this.state === "done") return;
    this.state = "done";
    this.outcome = { decision, reason, status };
  }

  /** Emits the request's one decision event, once its last message has been handled. */
  private report(): void {
    const f = this.facts;
    const o = this.outcome as NonNullable<typeof this.outcome>;
    this.reported = true;
    const { decision, reason, status } = o;
    this.ctx.onDecision?.({
      requestId: this.requestId,
      method: this.method,
      host: f.host ?? "",
      service: f.service ?? "",
      region: f.region ?? "",
      payloadMode: f.payloadMode ?? "",
      profile: f.profile ?? "",
      endpointIndex: f.endpointIndex ?? -1,
      decision,
      reason,
      status,
      signingSeconds: this.busySeconds,
      bytesHashed: this.bytesHashed,
      chunksResigned: 0,
      clientKeyId: f.clientKeyId,
    });
  }
}
