/**
 * Process-wide limits on what ext_proc streams may hold: how many streams are open at once, and
 * how many body bytes all of them together keep in memory (BUFFERED bodies while they are hashed
 * and signed, the current aws-chunked chunk of each STREAMED upload). A stream over either limit
 * is refused with 503 ServiceUnavailable, which SDKs retry with backoff; it is never forwarded.
 *
 * Each stream takes one Reservation when it opens (a slot, if one is free), resizes its held
 * bytes as it goes, and releases it once when it ends (completed, refused, cancelled), giving
 * everything back. What is counted is the body bytes countersign itself holds;
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

/** Limits nothing ever reaches, for unit tests and benchmarks. */
export function unlimitedAdmission(): Admission {
  return new Admission({ maxConcurrentStreams: Infinity, maxHeldBytes: Infinity });
}

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

  /**
   * One stream's reservation: its slot, if one is free (else not `admitted`, and nothing is
   * counted), and the body bytes it holds. The only way to count anything in or out.
   */
  reserve(): Reservation {
    const admitted = this.streams < this.limits.maxConcurrentStreams;
    if (admitted) this.streams++;
    let mine = 0;
    let released = false;
    const hold = (bytes: number): boolean => {
      if (bytes === mine || released) return true;
      // Growing fails (and changes nothing) when the total would pass the limit; shrinking never does.
      if (bytes > mine && this.held - mine + bytes > this.limits.maxHeldBytes) return false;
      this.held += bytes - mine;
      mine = bytes;
      return true;
    };
    const release = (): void => {
      if (released) return;
      hold(0);
      released = true;
      if (admitted) this.streams--;
    };
    return Object.freeze({ admitted, limits: this.limits, hold, release });
  }
}

/** One stream's share of the admission: its slot (when admitted) and the body bytes it holds. */
export interface Reservation {
  /** false: the process was at its stream limit, and the stream is refused with 503. */
  readonly admitted: boolean;
  readonly limits: AdmissionLimits;
  /** Resizes the held bytes to `bytes`; false when the process-wide budget has no room. After release, a no-op. */
  hold(bytes: number): boolean;
  /** Gives the held bytes and the slot back; only the first call does anything. */
  release(): void;
}
