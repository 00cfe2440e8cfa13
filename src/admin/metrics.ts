/**
 * Every metric countersign exports, in one registry. Label sets are bounded: no host names, key
 * ids or request ids — only policy-bounded values (decision, reason, payload mode, a known service
 * name or "other", a credential profile name from the policy).
 *
 * Data comes in two ways only: events through this class's methods (a decision, a stream opened
 * or closed, a policy load, a credential refresh), and state read at scrape time from the
 * MetricSources given once to observe() (readiness, admission, credential profiles). Nothing
 * outside this file touches a prom-client instrument.
 */
import client from "prom-client";
import type { RefreshEvent } from "../credentials/index.js";
import { CREDENTIAL_REFUSAL_CAUSES } from "../credentials/types.js";
import type { DecisionEvent } from "../extproc/context.js";
import type { StreamObserver } from "../extproc/server.js";
import type { MetricsSource } from "./adminServer.js";
import type { Readiness } from "./readiness.js";

/** SigV4 service names countersign labels as themselves; anything else is "other". */
const KNOWN_SERVICES = new Set([
  "s3", "s3express", "s3-outposts", "sts", "iam", "bedrock", "dynamodb", "sqs", "sns", "lambda", "kms",
  "secretsmanager", "ssm", "logs", "monitoring", "ecr", "execute-api", "es", "aoss", "aps", "events",
  "states", "kinesis", "firehose", "glue", "athena", "sagemaker", "ec2", "ecs", "eks", "cloudformation",
  "route53", "acm", "ses", "cognito-idp", "xray", "textract", "comprehend", "translate", "polly",
  "transcribe", "rekognition", "codeartifact", "appsync",
]);

export interface CredentialGaugeSample {
  readonly profile: string;
  readonly source: string;
  readonly usable: boolean;
  readonly expiresAt?: Date;
}

/** Values of countersign_policy_reloads_total's `result` label (its help text lists them too). */
export const POLICY_RELOAD_RESULTS = ["success", "invalid", "unreadable"] as const;

export function serviceLabel(service: string): string {
  if (service === "") return "none";
  return KNOWN_SERVICES.has(service) ? service : "other";
}

/** What the metrics read from the process's admission limits (src/extproc/admission.ts). */
interface AdmissionView {
  readonly heldBytes: number;
  readonly limits: { readonly maxHeldBytes: number; readonly maxConcurrentStreams: number };
}

/** The process state the gauges read at every scrape. */
export interface MetricSources {
  readonly readiness: Readiness;
  readonly admission: AdmissionView;
  /** The credential profiles of the policy in use. */
  credentials(): readonly CredentialGaugeSample[];
}

/** `countersign_ready`, read from `readiness` at every scrape: the gauge has no other writer. */
function readyGauge(registry: client.Registry, readiness: () => Readiness | undefined): client.Gauge {
  const gauge: client.Gauge = new client.Gauge({
    name: "countersign_ready",
    help: "1 when /readyz answers 200.",
    registers: [registry],
    // With --workers the primary reports its own readiness (which counts its workers), not theirs.
    aggregator: "omit",
    collect: () => {
      const r = readiness();
      if (r) gauge.set(r.isReady() ? 1 : 0);
    },
  });
  return gauge;
}

export class Metrics implements StreamObserver {
  readonly registry = new client.Registry();
  private sources: MetricSources | undefined;

  /**
   * Per-request counts are kept in plain fields and handed to prom-client when the registry is
   * read (each counter's `collect`): prom-client validates and hashes labels on every inc(), which
   * cost more per request than the counting itself.
   */
  private readonly pending = { streamsOpened: 0, streamsActive: 0, bytesHashed: 0, chunksResigned: 0 };
  /** Requests decided since the last read, per label set, with the prom-client child they go to. */
  private readonly requestCounts = new Map<string, { child: client.Counter.Internal; count: number }>();
  private readonly requests: client.Counter<"decision" | "reason" | "payload_mode" | "service"> = new client.Counter({
    name: "countersign_requests_total",
    help: "Requests decided, by decision (signed|refused|cancelled), reason, payload mode and signing service.",
    labelNames: ["decision", "reason", "payload_mode", "service"] as const,
    registers: [this.registry],
    collect: () => {
      for (const entry of this.requestCounts.values()) {
        if (entry.count > 0) entry.child.inc(entry.count);
        entry.count = 0;
      }
    },
  });
  private readonly auditFindings = new client.Counter({
    name: "countersign_audit_would_refuse_total",
    help: "Requests signed by an endpoint in enforcement: audit that a check would have refused, by the check's reason (access|rule), the endpoint's index in the policy and the refusing rule's index (none: access, or no rule matched).",
    labelNames: ["reason", "endpoint", "rule"] as const,
    registers: [this.registry],
  });
  private readonly signingSeconds = new client.Histogram({
    name: "countersign_signing_duration_seconds",
    help: "Time spent inside countersign per request (CPU work, not time waiting for Envoy), by payload mode.",
    labelNames: ["payload_mode"] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  private readonly bytesHashed: client.Counter = new client.Counter({
    name: "countersign_body_bytes_hashed_total",
    help: "Request body bytes hashed (buffered bodies and re-signed chunks).",
    registers: [this.registry],
    collect: () => {
      if (this.pending.bytesHashed > 0) this.bytesHashed.inc(this.pending.bytesHashed);
      this.pending.bytesHashed = 0;
    },
  });
  private readonly chunksResigned: client.Counter = new client.Counter({
    name: "countersign_chunks_resigned_total",
    help: "aws-chunked chunk and trailer signatures and event-stream message signatures re-computed.",
    registers: [this.registry],
    collect: () => {
      if (this.pending.chunksResigned > 0) this.chunksResigned.inc(this.pending.chunksResigned);
      this.pending.chunksResigned = 0;
    },
  });
  private readonly streamsActive: client.Gauge = new client.Gauge({
    name: "countersign_extproc_streams_active",
    help: "ext_proc gRPC streams currently open.",
    registers: [this.registry],
    collect: () => this.streamsActive.set(this.pending.streamsActive),
  });
  private readonly streamsTotal: client.Counter = new client.Counter({
    name: "countersign_extproc_streams_total",
    help: "ext_proc gRPC streams opened.",
    registers: [this.registry],
    collect: () => {
      if (this.pending.streamsOpened > 0) this.streamsTotal.inc(this.pending.streamsOpened);
      this.pending.streamsOpened = 0;
    },
  });
  private readonly grpcErrors = new client.Counter({
    name: "countersign_grpc_errors_total",
    help: "ext_proc streams that ended in a gRPC error, by gRPC status name.",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  private readonly policyReloads = new client.Counter({
    name: "countersign_policy_reloads_total",
    help: "Policy loads and reloads, by result (success|invalid|unreadable).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  private readonly policyInfo = new client.Gauge({
    name: "countersign_policy_info",
    help: "The loaded policy: 1 for the SHA-256 of its source text (first 16 hex characters).",
    labelNames: ["sha256"] as const,
    registers: [this.registry],
    // With --workers the primary merges the workers' registries: per-process facts must not be summed.
    aggregator: "max",
  });
  private readonly policyLoadedTimestamp = new client.Gauge({
    name: "countersign_policy_loaded_timestamp_seconds",
    help: "Unix time the current policy was loaded.",
    registers: [this.registry],
    aggregator: "min",
  });
  private readonly credentialsExpiry: client.Gauge<"profile"> = new client.Gauge({
    name: "countersign_credentials_expiry_seconds",
    help: "Seconds until the profile's current credentials expire (absent for credentials without expiry).",
    labelNames: ["profile"] as const,
    registers: [this.registry],
    aggregator: "min",
    collect: () => this.collectCredentialGauges(),
  });
  private readonly credentialsUsable: client.Gauge<"profile" | "source"> = new client.Gauge({
    name: "countersign_credentials_usable",
    help: "1 when the profile has usable credentials, else 0.",
    labelNames: ["profile", "source"] as const,
    registers: [this.registry],
    aggregator: "min",
  });
  private readonly credentialRefreshes = new client.Counter({
    name: "countersign_credential_refreshes_total",
    help: "Credential fetches and refreshes, by profile and result (success|failure).",
    labelNames: ["profile", "result"] as const,
    registers: [this.registry],
  });
  private readonly credentialRefusals = new client.Counter({
    name: "countersign_credentials_refusals_total",
    help: "Requests refused with 503 because their profile had no credentials to sign with, by reason: expiry_margin (the set expires within expiry_margin_seconds), expired, unavailable (none obtained).",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });
  private readonly credentialRefreshSeconds = new client.Histogram({
    name: "countersign_credential_refresh_duration_seconds",
    help: "Latency of credential fetches and refreshes, by profile.",
    labelNames: ["profile"] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  private readonly heldBytes: client.Gauge = new client.Gauge({
    name: "countersign_body_bytes_held",
    help: "Request body bytes held in memory by all streams (buffered bodies being hashed, current aws-chunked chunks).",
    registers: [this.registry],
    collect: () => {
      const a = this.sources?.admission;
      if (!a) return;
      this.heldBytes.set(a.heldBytes);
      this.heldBytesLimit.set(a.limits.maxHeldBytes);
      this.streamsLimit.set(a.limits.maxConcurrentStreams);
    },
  });
  private readonly heldBytesLimit = new client.Gauge({
    name: "countersign_body_bytes_held_limit",
    help: "--max-held-bytes (per process): requests that would hold more body bytes than this are refused with 503.",
    registers: [this.registry],
    aggregator: "max",
  });
  private readonly streamsLimit = new client.Gauge({
    name: "countersign_extproc_streams_limit",
    help: "--max-streams (per process): streams over this many at once are refused with 503.",
    registers: [this.registry],
    aggregator: "max",
  });

  constructor(opts: { processMetrics?: boolean } = {}) {
    readyGauge(this.registry, () => this.sources?.readiness);
    if (opts.processMetrics ?? true) client.collectDefaultMetrics({ register: this.registry });
    // Every result is exported at 0 from the start: Prometheus's increase() sees nothing in a series
    // whose first sample is already 1, so the alert on rejected reloads would miss the first one.
    for (const result of POLICY_RELOAD_RESULTS) this.policyReloads.inc({ result }, 0);
    for (const reason of CREDENTIAL_REFUSAL_CAUSES) this.credentialRefusals.inc({ reason }, 0);
  }

  /** Names, once, the state the gauges read at every scrape. */
  observe(sources: MetricSources): void {
    this.sources = sources;
  }

  private collectCredentialGauges(): void {
    this.credentialsExpiry.reset();
    this.credentialsUsable.reset();
    const now = Date.now();
    for (const c of this.sources?.credentials() ?? []) {
      this.credentialsUsable.set({ profile: c.profile, source: c.source }, c.usable ? 1 : 0);
      if (c.expiresAt) this.credentialsExpiry.set({ profile: c.profile }, (c.expiresAt.getTime() - now) / 1000);
    }
  }

  /** Labelled children resolved once per label set (the sets are few and bounded). */
  private readonly latencyChildren = new Map<string, client.Histogram.Internal<"payload_mode">>();

  recordDecision(e: DecisionEvent): void {
    const mode = e.payloadMode || "none";
    const service = serviceLabel(e.service);
    const key = `${e.decision}|${e.reason}|${mode}|${service}`;
    let counter = this.requestCounts.get(key);
    if (!counter) {
      counter = { child: this.requests.labels({ decision: e.decision, reason: e.reason, payload_mode: mode, service }), count: 0 };
      this.requestCounts.set(key, counter);
    }
    counter.count++;
    if (e.audit !== undefined && e.decision === "signed") this.auditFindings.inc({ reason: e.audit.reason, endpoint: String(e.endpointIndex), rule: e.audit.rule === undefined ? "none" : String(e.audit.rule) });
    let latency = this.latencyChildren.get(mode);
    if (!latency) {
      latency = this.signingSeconds.labels({ payload_mode: mode });
      this.latencyChildren.set(mode, latency);
    }
    latency.observe(e.signingSeconds);
    this.pending.bytesHashed += e.bytesHashed;
    this.pending.chunksResigned += e.chunksResigned;
    if (e.credentialsRefusal !== undefined) this.credentialRefusals.inc({ reason: e.credentialsRefusal });
  }

  streamOpened(): void {
    this.pending.streamsActive++;
    this.pending.streamsOpened++;
  }

  streamClosed(): void {
    this.pending.streamsActive--;
  }

  grpcError(code: string): void {
    this.grpcErrors.inc({ code });
  }

  /** A policy (the first, or a reload) is in use. */
  policyLoaded(sha256: string): void {
    this.policyReloads.inc({ result: "success" });
    this.policyInfo.reset();
    this.policyInfo.set({ sha256: sha256.slice(0, 16) }, 1);
    this.policyLoadedTimestamp.set(Date.now() / 1000);
  }

  /** A reload was refused; the previous policy stays in use. */
  policyRefused(result: "invalid" | "unreadable"): void {
    this.policyReloads.inc({ result });
  }

  credentialRefreshed(e: RefreshEvent): void {
    this.credentialRefreshes.inc({ profile: e.profile, result: e.result });
    this.credentialRefreshSeconds.observe({ profile: e.profile }, e.durationMs / 1000);
  }
}

/**
 * The `--workers` primary's /metrics: every worker's registry merged by each metric's aggregator
 * (counters summed, per-process facts by min or max), and `countersign_ready` from the primary's
 * own readiness.
 */
export function clusterMetrics(readiness: Readiness): MetricsSource {
  const workers = new client.AggregatorRegistry();
  const own = new client.Registry();
  readyGauge(own, () => readiness);
  return {
    contentType: workers.contentType,
    async metrics() {
      const [merged, mine] = await Promise.all([workers.clusterMetrics(), own.metrics()]);
      return merged === "" ? mine : `${merged}\n${mine}`;
    },
  };
}

/** In a `--workers` worker: answer the primary's requests for metrics from `metrics`' registry. */
export function serveMetricsToPrimary(metrics: Metrics): void {
  // Constructing one installs prom-client's worker-side listener for the primary's requests.
  new client.AggregatorRegistry();
  client.AggregatorRegistry.setRegistries([metrics.registry]);
}
