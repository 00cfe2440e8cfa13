/**
 * Process-wide limits on what ext_proc streams may hold: how many streams are open at once, and
 * how many body bytes all of them together keep in memory (BUFFERED bodies while they are hashed
 * and signed, the current aws-chunked chunk of each STREAMED upload). A stream over either limit
 * is refused with 503 ServiceUnavailable, which SDKs retry with backoff; it is never forwarded.
 *
 * Each stream's reservation is resized as it goes and a stream that ends (completed, refused,
 * cancelled) gives everything back. What is counted is the body bytes countersign itself holds;
 * messages grpc-js has decoded but not yet handed over are not (each is bounded by the gRPC
 * message cap, and their number by --max-streams and HTTP/2 flow control).
 */
export interface AdmissionLimits {
  /** Streams open at once; the next one is refused with 503 until one closes. */
  readonly maxConcurrentStreams: number;
  /** Body bytes held by all streams together. */
  readonly maxHeldBytes: number;
}

export const DEFAULT_ADMISSION_LIMITS: AdmissionLimits = Object.freeze({
  // Above Envoy's default circuit breaker (max_requests 1024 per cluster), so a single sidecar
  // Envoy meets its own limit first; a shared countersign serving many Envoys may need more.
  maxConcurrentStreams: 4096,
  maxHeldBytes: 128 * 1024 * 1024,
});

export class Admission {
  private streams = 0;
  private held = 0;

  constructor(readonly limits: AdmissionLimits = DEFAULT_ADMISSION_LIMITS) {}

  get activeStreams(): number {
    return this.streams;
  }

  get heldBytes(): number {
    return this.held;
  }

  /** Counts a new stream in; false (and nothing counted) when at the limit. */
  tryOpenStream(): boolean {
    if (this.streams >= this.limits.maxConcurrentStreams) return false;
    this.streams++;
    return true;
  }

  closeStream(): void {
    if (this.streams > 0) this.streams--;
  }

  /**
   * Moves one holder's reservation from `from` to `to` bytes. Shrinking always succeeds; growing
   * fails (and changes nothing) when the total would pass the limit.
   */
  resize(from: number, to: number): boolean {
    const next = this.held - from + to;
    if (to > from && next > this.limits.maxHeldBytes) return false;
    this.held = Math.max(0, next);
    return true;
  }
}
