/**
 * One request's record: opened with its ext_proc stream, filled in as the request proceeds (its
 * id and method, what planning learned, time spent, bytes hashed, chunks re-signed, the outcome)
 * and emitted once, as one DecisionEvent for the log and the metrics, on every path: signed,
 * refused, cancelled, or refused after an internal error. A decision hook that throws loses
 * nothing: the answer already decided still goes out.
 */
import type { DecisionEvent } from "./context.js";
import type { PlanFacts } from "./plan.js";

let requestCounter = 0;

/**
 * The longest request id kept. Envoy's own are 36-character UUIDs, but the workload may send its
 * own x-request-id (Envoy keeps it): an id is a label for the logs (and the error body's
 * RequestId), never trusted, never a reason to refuse; a longer one is cut to this many characters.
 */
export const MAX_REQUEST_ID_CHARS = 128;

/** The id a record is opened with, kept when the request brings none (no x-request-id, or no readable head). */
function newRequestId(): string {
  return `countersign-${process.pid}-${++requestCounter}`;
}

interface Outcome {
  readonly decision: DecisionEvent["decision"];
  readonly reason: string;
  readonly status: number;
}

export class RequestRecord {
  private id = newRequestId();
  private method = "";
  private facts: PlanFacts = {};
  private signingSeconds = 0;
  private bytesHashed = 0;
  private chunksResigned = 0;
  private outcome: Outcome | undefined;
  private emitted = false;

  constructor(private readonly sink: (event: DecisionEvent) => void) {}

  /**
   * The one id of the request, in its decision event and in the body of its refusal alike: the
   * head's x-request-id, else countersign's own, given when the record was opened.
   */
  get requestId(): string {
    return this.id;
  }

  /** The request's head was read; `requestId` is its x-request-id, if any. */
  identify(requestId: string | undefined, method: string): void {
    // An empty x-request-id names nothing: the record keeps the id it was opened with.
    if (requestId) this.id = requestId.length <= MAX_REQUEST_ID_CHARS ? requestId : Array.from(requestId).slice(0, MAX_REQUEST_ID_CHARS).join("");
    this.method = method;
  }

  /** What planning learned about the request, whether it was planned or refused. */
  learned(facts: PlanFacts): void {
    this.facts = facts;
  }

  /** Time spent inside countersign on one message. */
  busy(seconds: number): void {
    this.signingSeconds += seconds;
  }

  /** Body bytes hashed so far, in total, and aws-chunked chunk signatures computed. */
  hashed(bytesHashed: number, chunksResigned = 0): void {
    this.bytesHashed = bytesHashed;
    this.chunksResigned = chunksResigned;
  }

  /** The request's one outcome; the first one given wins. */
  decide(decision: DecisionEvent["decision"], reason: string, status: number): void {
    this.outcome ??= { decision, reason, status };
  }

  /** Sends the decision event, once, if the request was decided; never throws. */
  emit(): void {
    const o = this.outcome;
    if (!o || this.emitted) return;
    this.emitted = true;
    const f = this.facts;
    try {
      // Optional facts are added when present, not spread in (spreads are slow on this path).
      const event: { -readonly [K in keyof DecisionEvent]: DecisionEvent[K] } = {
        requestId: this.id,
        method: this.method,
        host: f.host ?? "",
        service: f.service ?? "",
        region: f.region ?? "",
        payloadMode: f.payloadMode ?? "",
        profile: f.profile ?? "",
        endpointIndex: f.endpointIndex ?? -1,
        decision: o.decision,
        reason: o.reason,
        status: o.status,
        signingSeconds: this.signingSeconds,
        bytesHashed: this.bytesHashed,
        chunksResigned: this.chunksResigned,
        clientKeyId: f.clientKeyId,
      };
      if (f.credentialsRefusal !== undefined) event.credentialsRefusal = f.credentialsRefusal;
      if (f.audit !== undefined) event.audit = f.audit;
      if (f.action !== undefined) event.action = f.action;
      this.sink(event);
    } catch {
      // Metrics or logging failed: the answer already decided must still go out.
    }
  }
}
