/**
 * One ext_proc stream = one HTTP request. The state machine reads like the protocol:
 *
 *   request_headers ─┬─ refuse ────────────────────────────▶ immediate_response      (done)
 *                    ├─ sign now (hash known / no body) ──▶ headers response + mutations (done)
 *                    ├─ body needed ─▶ mode_override BUFFERED ─▶ request_body ─▶ sign (done)
 *                    └─ chunk-signed or ─▶ new seed + mode_override STREAMED
 *                       event stream        ─▶ request_body* ─▶ re-signed bytes each ─▶ (done at end_of_stream)
 *
 * Exactly one response per request message. Response-direction messages (only sent if an operator
 * turned them on in envoy.yaml) pass through untouched. Anything out of order gets a 500
 * immediate_response: nothing is ever let through with the placeholder signature.
 */
import { createHash } from "node:crypto";
import type { ProcessingRequest__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { ProcessingResponse } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import {
  H_AMZ_DATE,
  H_AUTHORIZATION,
  H_SECURITY_TOKEN,
  signHead,
  EVENT_STREAM_MAX_MESSAGE_BYTES,
  startChunkedResigning,
  startEventStreamResigning,
  type ResignResult,
  type SignInput,
  type SignOutput,
} from "../sigv4/index.js";
import type { Reservation } from "./admission.js";
import type { DecisionEvent, SigningContext } from "./context.js";
import { deny, type Denial } from "./denial.js";
import { decodeRequestHead, isDenial } from "./headers.js";
import {
  bodyContinue,
  bodyReplace,
  headersContinue,
  headersContinueAndBuffer,
  headersContinueAndStream,
  immediateDenial,
  passThrough,
  type HeaderChanges,
} from "./mutations.js";
import { planRequest, signInputFor, type Plan } from "./plan.js";
import { RequestRecord } from "./requestRecord.js";

type State = "awaiting_headers" | "awaiting_body" | "streaming" | "done";

/** Largest aws-chunked chunk held in memory while it is hashed (SDKs use 64 KiB to 1 MiB). */
export const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * What re-signs a streamed body, aws-chunked or event stream: fed each piece, it answers the
 * bytes to forward, or the first framing error.
 */
interface BodyResigner {
  push(input: Buffer): ResignResult | Promise<ResignResult>;
  /** At end of stream: the framing must be complete. */
  finish(): ResignResult;
  readonly bytesHashed: number;
  readonly signaturesComputed: number;
  /** Bytes of the body held in memory until they can be re-signed. */
  readonly heldBytes: number;
}

/** A streamed body being re-signed, and how its framing errors are answered. */
interface StreamedBody {
  readonly resigner: BodyResigner;
  readonly refusal: "malformed_chunk" | "malformed_event";
  /** What the body is, for messages: "aws-chunked body", "event stream". */
  readonly what: string;
  /** What one unit of it is, for the held-bytes refusal. */
  readonly unit: string;
}

/**
 * Removed in the headers response when the body is still to come, so that if Envoy ever ignored
 * the mode_override (allow_mode_override off) the placeholder signature would not go out.
 */
const PLACEHOLDER_AUTH: HeaderChanges = { set: [], remove: [H_AUTHORIZATION, H_AMZ_DATE, H_SECURITY_TOKEN] };

/**
 * The protocol state machine of one stream. What the request holds is its Reservation (slot and
 * held bytes); what is reported about it is its RequestRecord, emitted once it is decided.
 */
export class ExtProcStream {
  private state: State = "awaiting_headers";
  private plan: Plan | undefined;
  private streamed: StreamedBody | undefined;
  private readonly reservation: Reservation;
  private readonly record: RequestRecord;

  /** Opening the stream reserves its slot; at the process's stream limit it is refused with 503. */
  constructor(private readonly ctx: SigningContext) {
    this.reservation = ctx.admission.reserve();
    this.record = new RequestRecord((event) => ctx.onDecision?.(event));
  }

  /**
   * The stream has ended: gives back its reservation, and reports a request that was still
   * waiting for (or in the middle of) its body as cancelled (499, as proxies log a client that
   * went away), so every request gets its one decision event.
   */
  release(): void {
    this.reservation.release();
    if (this.state === "awaiting_body" || this.state === "streaming") {
      this.streamed = undefined;
      this.finish("cancelled", "client_cancelled", 499);
    }
    this.record.emit();
  }

  private overBudget(what: string, bytes: number): Denial {
    return deny("too_many_held_bytes", `countersign is holding too many request bodies: ${what} (${bytes} bytes) does not fit under its ${this.reservation.limits.maxHeldBytes}-byte limit (--max-held-bytes); retry later`);
  }

  /** Handles one message and returns the one response it needs. Never throws. */
  async handle(msg: ProcessingRequest__Output): Promise<ProcessingResponse> {
    const started = process.hrtime.bigint();
    try {
      return await this.dispatch(msg);
    } catch (err) {
      // A bug must not let the request through: refuse it, and say so in the log via the event.
      return this.refuse(deny("internal_error", `countersign failed while signing: ${err instanceof Error ? err.message : String(err)}`));
    } finally {
      this.record.busy(Number(process.hrtime.bigint() - started) / 1e9);
      this.record.emit(); // once, and only once the request is decided
    }
  }

  /** True once the request was signed or refused. */
  get finished(): boolean {
    return this.state === "done";
  }

  /** Not async: the synchronous answers (body pieces, pass-through) take no promise hop of their own. */
  private dispatch(msg: ProcessingRequest__Output): ProcessingResponse | Promise<ProcessingResponse> {
    switch (msg.request) {
      case "request_headers":
        return this.onRequestHeaders(msg);
      case "request_body":
        return this.onRequestBody(msg);
      case "request_trailers":
      case "response_headers":
      case "response_body":
      case "response_trailers":
        return passThrough(msg.request);
      default:
        return this.refuse(deny("protocol_error", "ext_proc message carries no request or response part"));
    }
  }

  private async onRequestHeaders(msg: ProcessingRequest__Output): Promise<ProcessingResponse> {
    if (this.state !== "awaiting_headers") {
      return this.refuse(deny("protocol_error", "request_headers arrived twice on one ext_proc stream"));
    }
    const h = msg.request_headers;
    const head = decodeRequestHead(h?.headers, { maxHeaderBytes: this.ctx.maxHeaderBytes });
    if (isDenial(head)) return this.refuse(head);
    this.record.identify(head.headers.get("x-request-id"), head.method);
    if (!this.reservation.admitted) {
      return this.refuse(deny("too_many_streams", `countersign is at its limit of ${this.reservation.limits.maxConcurrentStreams} concurrent requests (--max-streams); retry later`));
    }

    const { result: plan, facts } = planRequest(head, h?.end_of_stream ?? false, this.ctx);
    this.record.learned(facts);
    if (isDenial(plan)) return this.refuse(plan);
    this.plan = plan;

    switch (plan.mode.kind) {
      case "header": {
        const changes = await this.sign(plan, plan.mode.payloadHash);
        this.finish("signed", "signed", 200);
        return headersContinue(changes);
      }
      case "buffer":
        this.state = "awaiting_body";
        return headersContinueAndBuffer(PLACEHOLDER_AUTH, plan.head.headers.has("content-length") ? "BUFFERED" : "BUFFERED_PARTIAL");
      case "chunked": {
        // content-length is signed as on every other path: switched to STREAMED by mode_override,
        // Envoy keeps the client's content-length (measured with Envoy 1.40 up to 1 GiB; it would
        // drop it only if envoy.yaml configured STREAMED statically, which the config checks
        // forbid), and the re-signed body has exactly the client's length.
        const { resigner, ...signed } = await startChunkedResigning(this.signInput(plan, plan.mode.payloadHash), {
          trailer: plan.mode.trailer,
          // Never more than the process-wide held-bytes budget, which one chunk must fit in.
          maxChunkBytes: Math.min(MAX_CHUNK_BYTES, this.reservation.limits.maxHeldBytes),
          decodedContentLength: plan.decodedContentLength,
        });
        this.streamed = { resigner, refusal: "malformed_chunk", what: "aws-chunked body", unit: "the current aws-chunked chunk" };
        this.state = "streaming";
        return headersContinueAndStream(changesFor(plan, signed));
      }
      case "eventstream": {
        // The same STREAMED switch as aws-chunked (see STREAMED_BODY_MODE in mutations.ts for why not
        // FULL_DUPLEX_STREAMED): each re-signed message has the client's length.
        const { resigner, ...signed } = await startEventStreamResigning(this.signInput(plan, plan.mode.payloadHash), {
          // Never more than the process-wide held-bytes budget, which one message must fit in.
          maxMessageBytes: Math.min(EVENT_STREAM_MAX_MESSAGE_BYTES, this.reservation.limits.maxHeldBytes),
        });
        this.streamed = { resigner, refusal: "malformed_event", what: "event stream", unit: "the current event-stream message" };
        this.state = "streaming";
        return headersContinueAndStream(changesFor(plan, signed));
      }
    }
  }

  /** STREAMED: re-sign this piece of the body; refuse (400) at the first framing error. */
  private async onStreamedBody(msg: ProcessingRequest__Output): Promise<ProcessingResponse> {
    const { resigner, refusal, what, unit } = this.streamed as StreamedBody;
    const body = msg.request_body?.body ?? Buffer.alloc(0);
    let result = await resigner.push(body);
    if (result.ok && msg.request_body?.end_of_stream) {
      const end = resigner.finish();
      result = end.ok ? result : end;
    }
    this.record.hashed(resigner.bytesHashed, resigner.signaturesComputed);
    if (!result.ok) {
      this.reservation.hold(0);
      return this.refuse(deny(refusal, `${what} is malformed: ${result.error}; nothing more was forwarded`));
    }
    if (!this.reservation.hold(resigner.heldBytes)) {
      this.reservation.hold(0);
      return this.refuse(this.overBudget(unit, resigner.heldBytes));
    }
    if (msg.request_body?.end_of_stream) {
      this.streamed = undefined;
      this.finish("signed", "signed", 200);
    }
    return bodyReplace(result.out);
  }

  private onRequestBody(msg: ProcessingRequest__Output): ProcessingResponse | Promise<ProcessingResponse> {
    // STREAMED pieces are answered synchronously; a BUFFERED body is hashed, then signed.
    return this.state === "streaming" ? this.onStreamedBody(msg) : this.onBufferedBody(msg);
  }

  private async onBufferedBody(msg: ProcessingRequest__Output): Promise<ProcessingResponse> {
    const plan = this.plan;
    if (this.state !== "awaiting_body" || !plan) {
      return this.refuse(deny("protocol_error", `request_body arrived while ${this.state === "done" ? "the request was already decided" : "no headers had been seen"}; check that envoy.yaml sets request_body_mode: NONE`));
    }
    // In BUFFERED mode Envoy sends the whole body in one message.
    const body = msg.request_body?.body ?? Buffer.alloc(0);
    if (body.length > plan.maxBufferedBodyBytes) {
      // BUFFERED_PARTIAL sends what it holds once past the limit, before the body's end.
      const size = msg.request_body?.end_of_stream ? `${body.length} bytes` : `at least ${body.length} bytes, sent without a content-length`;
      return this.refuse(deny("body_too_large", `the body (${size}) is over the ${plan.maxBufferedBodyBytes}-byte limit for hashing`));
    }
    const ruled = plan.afterBody?.(body);
    if (ruled !== undefined) return this.refuse(ruled);
    if (!this.reservation.hold(body.length)) return this.refuse(this.overBudget("the buffered body", body.length));
    try {
      this.record.hashed(body.length);
      const hash = createHash("sha256").update(body).digest("hex");
      const changes = await this.sign(plan, hash);
      this.finish("signed", "signed", 200);
      return bodyContinue(changes);
    } finally {
      this.reservation.hold(0);
    }
  }

  private async sign(plan: Plan, payloadHash: string): Promise<HeaderChanges> {
    return changesFor(plan, await signHead(this.signInput(plan, payloadHash)));
  }

  private signInput(plan: Plan, payloadHash: string): SignInput {
    return signInputFor(plan, payloadHash, this.ctx.now());
  }

  private refuse(denial: Denial): ProcessingResponse {
    this.finish("refused", denial.reason, denial.status);
    return immediateDenial(denial, this.record.requestId);
  }

  /** The request is decided (the first outcome given is the one recorded); nothing more is signed. */
  private finish(decision: DecisionEvent["decision"], reason: string, status: number): void {
    this.state = "done";
    this.record.decide(decision, reason, status);
  }
}

/** The signer's header changes as Envoy mutations, with the path the plan rewrote. */
function changesFor(plan: Plan, signed: Pick<SignOutput, "setHeaders" | "removeHeaders">): HeaderChanges {
  const set = plan.rewrittenPath === undefined ? signed.setHeaders : [...signed.setHeaders, [":path", plan.rewrittenPath] as const];
  return { set, remove: signed.removeHeaders };
}
