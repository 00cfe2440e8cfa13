/**
 * The request direction of Envoy's ext_proc HTTP filter, one instance per HTTP request, written
 * to follow envoyproxy/envoy `source/extensions/filters/http/ext_proc/ext_proc.cc` (Filter) and
 * `processor_state.cc` (ProcessorState) closely, method by method. It also plays the part of
 * Envoy's FilterManager around this single filter (iteration stop/continue, the decoding buffer,
 * the 413 on an over-limit buffered body), because those decide what leaves "Envoy" and when.
 *
 * Response-direction processing is not emulated (the shipped config SKIPs it); a config or a
 * mode_override that asks for it fails the request with details `emulator_unsupported{…}`.
 * Request trailers never reach the filter: Envoy's HTTP/1 codec drops them unless
 * `enable_trailers` is set, so a request_trailer_mode of SEND has nothing to send.
 */
import type { BodyMutation__Output } from "../../protos/generated/envoy/service/ext_proc/v3/BodyMutation.js";
import type { BodyResponse__Output } from "../../protos/generated/envoy/service/ext_proc/v3/BodyResponse.js";
import type { CommonResponse__Output } from "../../protos/generated/envoy/service/ext_proc/v3/CommonResponse.js";
import type { HeadersResponse__Output } from "../../protos/generated/envoy/service/ext_proc/v3/HeadersResponse.js";
import type { ImmediateResponse__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ImmediateResponse.js";
import type { ProcessingRequest } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingRequest.js";
import type { ProcessingResponse__Output } from "../../protos/generated/envoy/service/ext_proc/v3/ProcessingResponse.js";
import type { Duration__Output } from "../../protos/generated/google/protobuf/Duration.js";
import { applyHeaderMutations } from "./applyHeaderMutations.js";
import type { ExtProcSettings } from "./config.js";
import { headerCanBeForwarded } from "./forwardRules.js";
import { HeaderMap, headerValueToBytes } from "./headerMap.js";
import { statusCodeNumber } from "./httpStatus.js";
import { type Checker, createChecker } from "./mutationRules.js";
import { failedPrecondition, internalError, OK, type ProcessingStatus } from "./processingStatus.js";
import {
  effectiveModeOverride,
  overrideIsAllowed,
  type ProcessingMode,
  responsePathIsSkipped,
  sendsRequestHeaders,
  sendsRequestTrailers,
  shouldRemoveContentLength,
  toProcessingMode,
} from "./processingMode.js";
import type { EmulatorStats } from "./stats.js";

/** The gRPC `Process` stream as the filter uses it. */
export interface ProcessStream {
  send(request: ProcessingRequest): void;
  /** `closeStream()`: half-close and reset now. */
  close(): void;
  /** `closeStreamMaybeGraceful()`: half-close, wait for the server's status (bounded), then reset. */
  closeGracefully(): void;
}

export interface ProcessStreamEvents {
  onMessage(response: ProcessingResponse__Output): void;
  onGrpcError(code: number, message: string): void;
  onGrpcClose(): void;
}

export type OpenProcessStream = (events: ProcessStreamEvents) => ProcessStream;

export interface LocalReply {
  status: number;
  headers: [string, string][];
  body: Buffer;
  details: string;
}

/** The rest of the filter chain and the HCM, as this filter sees them. */
export interface DecoderCallbacks {
  /** Headers continue to the router, which starts the upstream request. */
  forwardHeaders(headers: HeaderMap, endStream: boolean): void;
  forwardData(data: Buffer, endStream: boolean): void;
  /** `sendLocalReply`: answer the client from "Envoy"; nothing (more) goes upstream. */
  localReply(reply: LocalReply): void;
  /** Watermarks: stop/restart reading the downstream body for the named reason. */
  setReadDisabled(reason: string, disabled: boolean): void;
}

export interface FilterOptions {
  settings: ExtProcSettings;
  bufferLimitBytes: number;
  maxHeadersCount: number;
  maxHeadersKb: number;
  stats: EmulatorStats;
  openStream: OpenProcessStream;
}

type CallbackState = "idle" | "headers" | "buffered_body" | "streamed_body" | "partial_body";

interface QueuedChunk {
  data: Buffer;
  endStream: boolean;
}

const EMPTY = Buffer.alloc(0);
const ERROR_PREFIX = "ext_proc_error";

export class ExtProcFilter {
  private readonly checker: Checker;
  private mode: ProcessingMode;

  // --- ProcessorState (decoding) -----------------------------------------------------------
  private callbackState: CallbackState = "idle";
  private processingComplete = false;
  private paused = false;
  /** `headers_`: the request headers while ext_proc may still mutate them. */
  private heldHeaders: HeaderMap | null = null;
  private noBody = false;
  private completeBodyAvailable = false;
  private bodyReplaced = false;
  private partialBodyProcessed = false;
  private chunkQueue: QueuedChunk[] = [];
  private timer: NodeJS.Timeout | null = null;
  private timerOverridden = false;

  // --- the gRPC stream -------------------------------------------------------------------------
  private stream: ProcessStream | null = null;
  private remoteClosed = false;

  // --- FilterManager around this filter ----------------------------------------------------------
  private iterationStopped = false;
  /** The decoding buffer (`bufferedData()`); null until something was buffered. */
  private decodingBuffer: Buffer | null = null;
  /** The end of stream reached this filter and was not passed on yet. */
  private endStreamHeld = false;
  private headersForwarded = false;
  private upstreamEnded = false;
  private finished = false;

  constructor(
    private readonly headers: HeaderMap,
    private readonly callbacks: DecoderCallbacks,
    private readonly options: FilterOptions,
  ) {
    this.checker = createChecker(options.settings.mutationRules);
    this.mode = { ...options.settings.processingMode };
  }

  private get stats(): EmulatorStats {
    return this.options.stats;
  }

  private get settings(): ExtProcSettings {
    return this.options.settings;
  }

  // ===== HTTP events ==========================================================================

  /**
   * `Filter::decodeHeaders`.
   *
   * The reference's open point — content-length when STREAMED is reached through mode_override —
   * as the envoyproxy/envoy source settles it:
   * - `ext_proc.cc` `Filter::decodeHeaders` removes content-length right after sending the
   *   headers message, using `shouldRemoveContentLength()` of the body mode configured AT THAT
   *   MOMENT (NONE in the shipped config), so nothing is removed there;
   * - `processor_state.cc` `ProcessorState::processHeaderMutation` passes
   *   `shouldRemoveContentLength()`, now evaluated with the overridden mode, to
   *   `MutationUtils::applyHeaderMutations` as `remove_content_length`;
   * - `mutation_utils.cc` reads that flag in one place only: a `set_headers` entry whose key is
   *   content-length is passed over (before any other check, uncounted); the existing header is
   *   never removed there.
   * So under a STREAMED (or BUFFERED_PARTIAL) mode chosen by mode_override the client's
   * content-length stays on the request and goes upstream, and the processor cannot change it:
   * a body mutation that changes the length breaks the upstream request.
   */
  decodeHeaders(endStream: boolean): void {
    if (endStream) this.completeBodyAvailable = true;
    let stop = false;
    if (sendsRequestHeaders(this.mode)) stop = this.onHeaders(endStream);
    // With the mode configured AT THIS MOMENT; a later mode_override does not come back here.
    if (!this.processingComplete && shouldRemoveContentLength(this.mode)) this.headers.remove("content-length");
    if (endStream) this.endStreamHeld = true;
    if (stop) this.iterationStopped = true;
    else this.continueDecoding();
  }

  /** `Filter::decodeData` / `onData`. Over HTTP/1 the last call is an empty chunk with endStream. */
  decodeData(data: Buffer, endStream: boolean): void {
    if (this.finished) return;
    if (endStream) this.completeBodyAvailable = true;
    if (this.bodyReplaced) return this.fmContinue(EMPTY, endStream);
    if (this.processingComplete) return this.fmContinue(data, endStream);

    if (this.callbackState === "headers") {
      // Held while the headers message is outstanding: buffered (413 past the limit) in BUFFERED,
      // watermarked otherwise.
      this.paused = true;
      if (this.mode.request_body_mode === "BUFFERED") return this.fmStopAndBuffer(data, endStream);
      return this.fmStopAndWatermark(data, endStream);
    }

    switch (this.mode.request_body_mode) {
      case "BUFFERED":
        return this.handleDataBufferedMode(data, endStream);
      case "STREAMED":
        return this.handleDataStreamedMode(data, endStream);
      case "BUFFERED_PARTIAL":
        return this.handleDataBufferedPartialMode(data, endStream);
      case "NONE":
        return this.fmContinue(data, endStream);
      default:
        return this.unsupported(`request_body_mode ${this.mode.request_body_mode}`);
    }
  }

  /** `Filter::onDestroy`: the HTTP stream is over (completed, reset or answered locally). */
  onDestroy(): void {
    if (this.finished) return;
    this.finished = true;
    this.processingComplete = true;
    this.stopTimer();
    this.closeStreamMaybeGraceful();
    this.callbacks.setReadDisabled("ext_proc", false);
    this.callbacks.setReadDisabled("buffer", false);
  }

  // ===== sending ================================================================================

  private onHeaders(endStream: boolean): boolean {
    if (!this.openStream()) return false;
    this.heldHeaders = this.headers;
    this.noBody = endStream;
    this.sendMessage({
      request_headers: { headers: { headers: this.headerProto() }, end_of_stream: endStream },
      metadata_context: {},
    });
    this.startCall("headers");
    this.paused = true;
    return true;
  }

  /** Headers exactly as Envoy sends them: lower-case keys, bytes in `raw_value`, `value` empty. */
  private headerProto(): { key: string; raw_value: Buffer }[] {
    return this.headers
      .pairs()
      .filter(([key]) => headerCanBeForwarded(key, this.settings.forwardRules))
      .map(([key, value]) => ({ key, raw_value: headerValueToBytes(value) }));
  }

  private sendBody(data: Buffer, endStream: boolean, state: CallbackState): void {
    this.sendMessage({ request_body: { body: data, end_of_stream: endStream }, metadata_context: {} });
    this.startCall(state);
  }

  private handleDataBufferedMode(data: Buffer, endStream: boolean): void {
    if (endStream) {
      if (!this.openStream()) return this.fmContinue(data, endStream);
      this.addBufferedData(data);
      this.sendBody(this.decodingBuffer ?? EMPTY, true, "buffered_body");
      this.paused = true;
      return this.fmStopNoBuffer(endStream);
    }
    this.paused = true;
    return this.fmStopAndBuffer(data, endStream);
  }

  private handleDataStreamedMode(data: Buffer, endStream: boolean): void {
    if (!this.openStream()) return this.fmContinue(data, endStream);
    this.enqueueChunk(data, endStream);
    this.sendBody(data, endStream, "streamed_body");
    if (endStream) {
      this.paused = true;
      return this.fmStopNoBuffer(endStream);
    }
    return this.fmContinue(EMPTY, false);
  }

  private handleDataBufferedPartialMode(data: Buffer, endStream: boolean): void {
    if (this.partialBodyProcessed) {
      this.heldHeaders = null;
      return this.fmContinue(data, endStream);
    }
    if (this.callbackState === "partial_body") {
      this.enqueueChunk(data, endStream);
      this.paused = true;
      return this.fmStopNoBuffer(endStream);
    }
    this.enqueueChunk(data, endStream);
    if (endStream || this.queuedBytes() > this.options.bufferLimitBytes) {
      if (!this.openStream()) return this.fmContinue(EMPTY, endStream);
      this.sendConsolidatedChunk();
      this.paused = true;
    }
    return this.fmStopNoBuffer(endStream);
  }

  private sendConsolidatedChunk(): void {
    const all = this.consolidateQueue();
    this.sendBody(all.data, all.endStream, "partial_body");
  }

  /** `sendBufferedDataInStreamedMode`. */
  private sendBufferedDataInStreamedMode(endStream: boolean): void {
    if (this.decodingBuffer && this.decodingBuffer.length > 0) {
      const chunk = this.decodingBuffer;
      this.decodingBuffer = EMPTY;
      this.enqueueChunk(chunk, endStream);
      this.sendBody(chunk, endStream, "streamed_body");
    }
    if (this.queuedBytes() < this.options.bufferLimitBytes / 2) this.callbacks.setReadDisabled("ext_proc", false);
  }

  // ===== receiving ==============================================================================

  /** `Filter::onReceiveMessage`. */
  onMessage(response: ProcessingResponse__Output): void {
    if (this.processingComplete) return;
    if (response.override_message_timeout) return this.onNewTimeout(response.override_message_timeout);

    this.applyModeOverride(response);

    let isLastBodyResponse = false;
    let status: ProcessingStatus;
    switch (response.response) {
      case "request_headers":
        status = this.handleHeadersResponse(response.request_headers);
        break;
      case "request_body":
        isLastBodyResponse = this.isLastBodyResponse();
        status = this.handleBodyResponse(response.request_body);
        break;
      case "immediate_response":
        if (this.settings.disableImmediateResponse) {
          status = failedPrecondition("unhandled immediate response due to config disabled it");
        } else {
          this.processingComplete = true;
          this.stopTimer();
          this.callbackState = "idle";
          this.closeStreamMaybeGraceful();
          this.sendImmediateResponse(response.immediate_response);
          status = OK;
        }
        break;
      default:
        // request_trailers / response_* were never asked for here, and an empty oneof is
        // "unhandled message": all FailedPrecondition, i.e. spurious.
        status = failedPrecondition(response.response === undefined ? "unhandled message" : "spurious message");
    }

    if (status.ok) {
      this.stats.stream_msgs_received++;
    } else if (status.code === "FAILED_PRECONDITION") {
      this.stats.spurious_msgs_received++;
      // Since #39994 (runtime guard ext_proc_fail_close_spurious_resp, on by default) a spurious
      // message fails the request unless failure_mode_allow.
      if (this.settings.failureModeAllow) {
        this.stats.failure_mode_allowed++;
        this.closeStream();
        this.clearAsyncState();
        this.processingComplete = true;
      } else {
        this.handleErrorResponse(status.message);
      }
    } else {
      this.stats.stream_msgs_received++;
      this.handleErrorResponse(status.message);
    }
    this.closeGrpcStreamIfLastResponseReceived(response.response, isLastBodyResponse);
  }

  /** Honoured only while a headers message is outstanding, with allow_mode_override, etc. */
  private applyModeOverride(response: ProcessingResponse__Output): void {
    const configured = this.settings.processingMode;
    if (
      !this.settings.allowModeOverride ||
      this.settings.sendBodyWithoutWaitingForHeaderResponse ||
      configured.request_body_mode === "FULL_DUPLEX_STREAMED" ||
      configured.response_body_mode === "FULL_DUPLEX_STREAMED" ||
      this.callbackState !== "headers" ||
      !response.mode_override
    ) {
      return;
    }
    const candidate = effectiveModeOverride(toProcessingMode(response.mode_override), configured);
    if (overrideIsAllowed(candidate, this.settings.allowedOverrideModes)) this.mode = candidate;
  }

  /** `ProcessorState::handleHeadersResponse`. */
  private handleHeadersResponse(response: HeadersResponse__Output | null | undefined): ProcessingStatus {
    if (this.callbackState !== "headers") return failedPrecondition("spurious message");
    const common = response?.response ?? null;
    if (common?.header_mutation) {
      const mutated = this.processHeaderMutation(common);
      if (!mutated.ok) return mutated;
    }
    this.countIgnoredRouteCacheClear(common);
    this.finishCall();
    if (!responsePathIsSkipped(this.mode)) return this.unsupportedStatus("response-direction processing");
    if (!["NONE", "STREAMED", "BUFFERED", "BUFFERED_PARTIAL"].includes(this.mode.request_body_mode)) {
      return this.unsupportedStatus(`request_body_mode ${this.mode.request_body_mode}`);
    }

    if (isContinueAndReplace(common)) {
      if (common?.body_mutation) {
        // The server is unlikely to set a matching content-length for the new body.
        this.headers.remove("content-length");
        this.bodyReplaced = true;
        this.decodingBuffer = applyBodyMutation(common.body_mutation, this.decodingBuffer ?? EMPTY);
      }
      this.chunkQueue = [];
      this.mode = { ...this.mode, request_body_mode: "NONE" };
      this.callbacks.setReadDisabled("ext_proc", false);
    } else if (this.noBody) {
      // No body ever: continue.
    } else if (this.completeBodyAvailable && this.mode.request_body_mode !== "NONE") {
      // The whole body arrived before this response. Whatever the body mode (STREAMED included),
      // Envoy sends it as ONE message and handles the answer as a BUFFERED body response: the
      // headers are still held, so header mutations in that answer ARE applied.
      if (this.decodingBuffer !== null) {
        this.sendBody(this.decodingBuffer, true, "buffered_body");
        this.callbacks.setReadDisabled("buffer", false);
        return OK;
      }
    } else if (this.mode.request_body_mode === "BUFFERED") {
      // Keep the headers until the body is complete. The read stop a body past the buffer limit
      // raised while this answer was awaited (StopIterationAndWatermark) is NOT lifted here:
      // ProcessorState::clearWatermark only lifts ext_proc's own, and the filter manager lifts its
      // own when the held data drains, which BUFFERED never does. Real Envoy 1.40 then never
      // reads the rest of the body: the request stalls until the stream idle timeout (408 after
      // 5 minutes), measured. countersign asks for BUFFERED_PARTIAL when there is no
      // content-length, so it never gets here with a body past the limit.
      return OK;
    } else if (this.mode.request_body_mode === "STREAMED") {
      this.sendBufferedDataInStreamedMode(false);
      this.heldHeaders = null;
      this.continueIfNecessary();
      return OK;
    } else if (this.mode.request_body_mode === "BUFFERED_PARTIAL") {
      if (this.decodingBuffer && this.decodingBuffer.length > 0) {
        this.enqueueChunk(this.decodingBuffer, false);
        this.decodingBuffer = EMPTY;
      }
      if (this.queuedBytes() > this.options.bufferLimitBytes) this.sendConsolidatedChunk();
      this.callbacks.setReadDisabled("buffer", false);
      return OK;
    }

    this.heldHeaders = null;
    this.continueIfNecessary();
    return OK;
  }

  /** `ProcessorState::handleBodyResponse`. */
  private handleBodyResponse(response: BodyResponse__Output | null | undefined): ProcessingStatus {
    const state = this.callbackState;
    if (state !== "buffered_body" && state !== "streamed_body" && state !== "partial_body") {
      return failedPrecondition("spurious message");
    }
    const common = response?.response ?? null;
    let shouldContinue: boolean;

    if (state === "buffered_body") {
      if (common?.header_mutation && this.heldHeaders) {
        const mutated = this.processHeaderMutation(common);
        if (!mutated.ok) return mutated;
      }
      if (common?.body_mutation) {
        const checked = this.validateContentLength(common.body_mutation);
        if (!checked.ok) return checked;
        this.decodingBuffer = applyBodyMutation(common.body_mutation, this.decodingBuffer ?? EMPTY);
      }
      this.callbacks.setReadDisabled("buffer", false);
      this.finishCall();
      shouldContinue = true;
    } else if (state === "streamed_body") {
      // Header mutations in a STREAMED body response are dropped without a word.
      const chunk = this.chunkQueue.shift();
      if (!chunk) return internalError("Bad streamed body callback state");
      const data = common?.body_mutation ? applyBodyMutation(common.body_mutation, chunk.data) : chunk.data;
      shouldContinue = chunk.endStream;
      if (data.length > 0) this.injectData(data, chunk.endStream);
      if (this.queuedBytes() < this.options.bufferLimitBytes / 2) this.callbacks.setReadDisabled("ext_proc", false);
      // The timer stops here even when more chunks are outstanding (onFinishProcessorCall).
      this.finishCall(this.chunkQueue.length === 0 ? "idle" : "streamed_body");
    } else {
      const chunk = this.chunkQueue.shift();
      if (!chunk) return internalError("Invalid chunk in partial body callback");
      if (common?.header_mutation && this.heldHeaders) {
        const mutated = this.processHeaderMutation(common);
        if (!mutated.ok) return mutated;
      }
      const data = common?.body_mutation ? applyBodyMutation(common.body_mutation, chunk.data) : chunk.data;
      if (data.length > 0) this.injectData(data, chunk.endStream);
      this.finishCall();
      if (this.queuedBytes() > 0) {
        const rest = this.consolidateQueue();
        this.chunkQueue = [];
        this.injectData(rest.data, rest.endStream);
      }
      this.callbacks.setReadDisabled("ext_proc", false);
      this.partialBodyProcessed = true;
      shouldContinue = true;
    }

    this.countIgnoredRouteCacheClear(common);
    this.heldHeaders = null;
    if (shouldContinue) this.continueIfNecessary();
    return OK;
  }

  private processHeaderMutation(common: CommonResponse__Output): ProcessingStatus {
    if (!this.heldHeaders || !common.header_mutation) return OK;
    const outcome = applyHeaderMutations(common.header_mutation, this.heldHeaders, {
      checker: this.checker,
      replacingMessage: isContinueAndReplace(common),
      removeContentLength: shouldRemoveContentLength(this.mode),
      maxHeadersCount: this.options.maxHeadersCount,
      maxHeadersKb: this.options.maxHeadersKb,
    });
    this.stats.rejected_header_mutations += outcome.rejected;
    return outcome.status;
  }

  /** BUFFERED with a kept content-length: a mutated body of another length is an error. */
  private validateContentLength(mutation: BodyMutation__Output): ProcessingStatus {
    const declared = this.heldHeaders?.first("content-length");
    if (declared === undefined || !/^\d+$/.test(declared)) return OK;
    const mutatedLength = mutation.mutation === "body" ? (mutation.body?.length ?? 0) : 0;
    if (Number(declared) !== mutatedLength) {
      return internalError("mismatch between content length and the length of the mutated body");
    }
    return OK;
  }

  private isLastBodyResponse(): boolean {
    if (this.mode.request_body_mode !== "STREAMED") return false;
    return this.chunkQueue[0]?.endStream ?? false;
  }

  private countIgnoredRouteCacheClear(common: CommonResponse__Output | null): void {
    if (common?.clear_route_cache && !common.header_mutation) this.stats.clear_route_cache_ignored++;
  }

  /** `Filter::sendImmediateResponse`. */
  private sendImmediateResponse(response: ImmediateResponse__Output | null | undefined): void {
    let status = response?.status ? statusCodeNumber(response.status.code) : 200;
    if (status < 200) status = 200;
    const headers = HeaderMap.from([[":status", String(status)]]);
    if (response?.headers) {
      // Mutation errors are only logged by Envoy; what was applied before the error stays.
      const outcome = applyHeaderMutations(response.headers, headers, {
        checker: this.checker,
        replacingMessage: false,
        removeContentLength: false,
        maxHeadersCount: this.options.maxHeadersCount,
        maxHeadersKb: this.options.maxHeadersKb,
      });
      this.stats.rejected_header_mutations += outcome.rejected;
    }
    const finalStatus = Number(headers.first(":status") ?? status);
    this.localReply(
      finalStatus,
      headers.pairs().filter(([k]) => !k.startsWith(":")),
      Buffer.from(response?.body ?? EMPTY),
      response?.details ?? "",
    );
  }

  // ===== failures ===============================================================================

  /** `Filter::onGrpcError`: a non-OK status from the server. */
  onGrpcError(code: number, message: string): void {
    this.remoteClosed = true;
    this.stats.streams_failed++;
    if (this.processingComplete) return;
    if (this.settings.failureModeAllow) {
      this.onGrpcClose(false);
      this.stats.failure_mode_allowed++;
      return;
    }
    this.processingComplete = true;
    this.finishCall();
    this.closeStream();
    this.localReply(this.settings.statusOnError, [], EMPTY, `${ERROR_PREFIX}_gRPC_error_${code}{${message}}`);
  }

  /** `Filter::onGrpcClose`: the server ended the stream with OK. Processing stops; the request
   *  continues UNMODIFIED from wherever it was. */
  onGrpcClose(fromServer = true): void {
    this.remoteClosed = true;
    if (this.processingComplete) return;
    if (fromServer && this.callbackState !== "idle") this.stats.streams_closed_before_response++;
    this.processingComplete = true;
    this.stats.streams_closed++;
    this.stream = null;
    this.clearAsyncState();
  }

  private onMessageTimeout(): void {
    this.timer = null;
    this.stats.message_timeouts++;
    this.processingComplete = true;
    this.closeStream();
    if (this.settings.failureModeAllow) {
      this.stats.failure_mode_allowed++;
      this.clearAsyncState();
      return;
    }
    this.finishCall();
    this.localReply(504, [], EMPTY, `${ERROR_PREFIX}_per-message_timeout_exceeded`);
  }

  private onNewTimeout(duration: Duration__Output): void {
    const ms = Number(duration.seconds ?? 0) * 1000 + Math.floor((duration.nanos ?? 0) / 1e6);
    if (ms < 1 || ms > this.settings.maxMessageTimeoutMs || this.timer === null || this.timerOverridden) {
      this.stats.override_message_timeout_ignored++;
      return;
    }
    this.armTimer(ms);
    this.timerOverridden = true;
    this.stats.override_message_timeout_received++;
  }

  private handleErrorResponse(message: string): void {
    this.processingComplete = true;
    this.finishCall();
    this.closeStream();
    this.localReply(this.settings.statusOnError, [], EMPTY, message);
  }

  private unsupportedStatus(what: string): ProcessingStatus {
    return internalError(`emulator_unsupported{${what}}`);
  }

  private unsupported(what: string): void {
    this.handleErrorResponse(`emulator_unsupported{${what}}`);
  }

  /** `ProcessorState::clearAsyncState`: forget the outstanding call and let everything through. */
  private clearAsyncState(): void {
    this.finishCall();
    if (this.queuedBytes() > 0 || this.chunkQueue.length > 0) {
      const rest = this.consolidateQueue();
      this.chunkQueue = [];
      this.injectData(rest.data, rest.endStream);
    }
    this.callbacks.setReadDisabled("ext_proc", false);
    this.continueIfNecessary();
  }

  private localReply(status: number, headers: [string, string][], body: Buffer, details: string): void {
    this.processingComplete = true;
    this.callbacks.localReply({ status, headers, body, details: replaceAllEmptySpace(details) });
    this.onDestroy();
  }

  // ===== stream and timer plumbing ===============================================================

  /** `Filter::openStream`: false means processing is complete (IgnoreError → Continue). */
  private openStream(): boolean {
    if (this.processingComplete) return false;
    if (!this.stream) {
      this.stream = this.options.openStream({
        onMessage: (r) => this.onMessage(r),
        onGrpcError: (code, message) => this.onGrpcError(code, message),
        onGrpcClose: () => this.onGrpcClose(),
      });
      this.remoteClosed = false;
      this.stats.streams_started++;
    }
    return true;
  }

  private sendMessage(request: ProcessingRequest): void {
    this.stream?.send(request);
    this.stats.stream_msgs_sent++;
  }

  /** `closeStream()`: counts `streams_closed` when Envoy is the one closing an open stream. */
  private closeStream(): void {
    if (!this.stream) return;
    if (!this.remoteClosed) this.stats.streams_closed++;
    this.stream.close();
    this.stream = null;
  }

  private closeStreamMaybeGraceful(): void {
    this.processingComplete = true;
    if (!this.stream) return;
    if (!this.remoteClosed) this.stats.streams_closed++;
    this.stream.closeGracefully();
    this.stream = null;
  }

  /** Closes the stream right after the last response the request direction needs. */
  private closeGrpcStreamIfLastResponseReceived(kind: ProcessingResponse__Output["response"], lastBody: boolean): void {
    if (!this.stream) return;
    const responsesSkipped = responsePathIsSkipped(this.mode);
    const last =
      (kind === "request_headers" &&
        (this.noBody || (this.mode.request_body_mode === "NONE" && !sendsRequestTrailers(this.mode))) &&
        responsesSkipped) ||
      (kind === "request_body" && lastBody && responsesSkipped);
    if (last) this.closeStreamMaybeGraceful();
  }

  private startCall(state: CallbackState): void {
    this.callbackState = state;
    this.timerOverridden = false;
    this.armTimer(this.settings.messageTimeoutMs);
  }

  private finishCall(next: CallbackState = "idle"): void {
    this.stopTimer();
    this.callbackState = next;
    this.timerOverridden = false;
  }

  private armTimer(ms: number): void {
    this.stopTimer();
    this.timer = setTimeout(() => this.onMessageTimeout(), ms);
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  // ===== the chunk queue =========================================================================

  private enqueueChunk(data: Buffer, endStream: boolean): void {
    this.chunkQueue.push({ data, endStream });
    if (this.queuedBytes() > this.options.bufferLimitBytes) this.callbacks.setReadDisabled("ext_proc", true);
  }

  private queuedBytes(): number {
    return this.chunkQueue.reduce((n, c) => n + c.data.length, 0);
  }

  private consolidateQueue(): QueuedChunk {
    const last = this.chunkQueue[this.chunkQueue.length - 1];
    const merged = { data: Buffer.concat(this.chunkQueue.map((c) => c.data)), endStream: last?.endStream ?? false };
    this.chunkQueue = this.chunkQueue.length > 0 ? [merged] : [];
    return merged;
  }

  // ===== FilterManager ===========================================================================

  private continueIfNecessary(): void {
    if (this.paused) {
      this.paused = false;
      this.continueDecoding();
    }
  }

  /**
   * `continueDecoding()`: the headers (once; they end the stream only when nothing was ever
   * buffered), then the decoding buffer, then a held end of stream.
   */
  private continueDecoding(): void {
    if (this.finished) return;
    this.iterationStopped = false;
    this.forwardHeadersOnce(this.endStreamHeld && this.decodingBuffer === null);
    const buffered = this.decodingBuffer;
    if (buffered !== null) this.decodingBuffer = EMPTY;
    this.forward(buffered ?? EMPTY, this.endStreamHeld);
    this.callbacks.setReadDisabled("buffer", false);
  }

  private forwardHeadersOnce(endStream: boolean): void {
    if (this.headersForwarded) return;
    this.headersForwarded = true;
    this.upstreamEnded = endStream;
    this.callbacks.forwardHeaders(this.headers, endStream);
  }

  private forward(data: Buffer, endStream: boolean): void {
    if (this.upstreamEnded || this.finished) return;
    if (data.length === 0 && !endStream) return;
    if (endStream) this.upstreamEnded = true;
    this.callbacks.forwardData(data, endStream);
  }

  /** `injectDataToFilterChain`: processed body data goes on towards the router. */
  private injectData(data: Buffer, endStream: boolean): void {
    this.forwardHeadersOnce(false);
    this.forward(data, endStream);
  }

  private fmContinue(data: Buffer, endStream: boolean): void {
    if (this.iterationStopped) {
      this.addBufferedData(data);
      if (endStream) this.endStreamHeld = true;
      this.continueDecoding();
      return;
    }
    this.forward(data, endStream);
  }

  private fmStopAndBuffer(data: Buffer, endStream: boolean): void {
    this.fmStopAndWatermark(data, endStream, false);
    if ((this.decodingBuffer?.length ?? 0) > this.options.bufferLimitBytes) {
      this.stats.downstream_rq_too_large++;
      this.localReply(413, [], Buffer.from("Payload Too Large"), "request_payload_too_large");
    }
  }

  private fmStopAndWatermark(data: Buffer, endStream: boolean, watermark = true): void {
    this.iterationStopped = true;
    this.addBufferedData(data);
    if (endStream) this.endStreamHeld = true;
    if (watermark && (this.decodingBuffer?.length ?? 0) > this.options.bufferLimitBytes) {
      this.callbacks.setReadDisabled("buffer", true);
    }
  }

  private fmStopNoBuffer(endStream: boolean): void {
    this.iterationStopped = true;
    if (endStream) this.endStreamHeld = true;
  }

  private addBufferedData(data: Buffer): void {
    this.decodingBuffer = this.decodingBuffer ? Buffer.concat([this.decodingBuffer, data]) : Buffer.from(data);
  }
}

function isContinueAndReplace(common: CommonResponse__Output | null): boolean {
  const s: unknown = common?.status;
  return s === "CONTINUE_AND_REPLACE" || s === 1;
}

/** `MutationUtils::applyBodyMutations`. */
export function applyBodyMutation(mutation: BodyMutation__Output, data: Buffer): Buffer {
  if (mutation.mutation === "clear_body") return mutation.clear_body ? EMPTY : data;
  if (mutation.mutation === "body") return Buffer.from(mutation.body ?? EMPTY);
  return data;
}

/** `StringUtil::replaceAllEmptySpace`: details never contain whitespace. */
export function replaceAllEmptySpace(s: string): string {
  return s.replace(/\s/g, "_");
}
