/**
 * Every metric countersign exports, in one registry. Label sets are bounded: no host names, key
 * ids or request ids — only policy-bounded values (decision, reason, payload mode, a known service
 * name or "other", a credential profile name from the policy).
 */
import client from "prom-client";
import type { DecisionEvent } from "../extproc/context.js";

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

export class Metrics {
  readonly registry = new client.Registry();

  readonly requests = new client.Counter({
    name: "countersign_requests_total",
    help: "Requests decided, by decision (signed|refused|cancelled), reason, payload mode and signing service.",
    labelNames: ["decision", "reason", "payload_mode", "service"] as const,
    registers: [this.registry],
  });
  readonly signingSeconds = new client.Histogram({
    name: "countersign_signing_duration_seconds",
    help: "Time spent inside countersign per request (CPU work, not time waiting for Envoy), by payload mode.",
    labelNames: ["payload_mode"] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
    registers: [this.registry],
  });
  readonly bytesHashed = new client.Counter({
    name: "countersign_body_bytes_hashed_total",
    help: "Request body bytes hashed (buffered bodies and re-signed chunks).",
    registers: [this.registry],
  });
  readonly chunksResigned = new client.Counter({
    name: "countersign_chunks_resigned_total",
    help: "aws-chunked chunk and trailer signatures re-computed.",
    registers: [this.registry],
  });
  readonly streamsActive = new client.Gauge({
    name: "countersign_extproc_streams_active",
    help: "ext_proc gRPC streams currently open.",
    registers: [this.registry],
  });
  readonly streamsTotal = new client.Counter({
    name: "countersign_extproc_streams_total",
    help: "ext_proc gRPC streams opened.",
    registers: [this.registry],
  });
  readonly grpcErrors = new client.Counter({
    name: "countersign_grpc_errors_total",
    help: "ext_proc streams that ended in a gRPC error, by gRPC status name.",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });
  readonly policyReloads = new client.Counter({
    name: "countersign_policy_reloads_total",
    help: "Policy loads and reloads, by result (success|invalid|unreadable).",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });
  readonly policyInfo = new client.Gauge({
    name: "countersign_policy_info",
    help: "The loaded policy: 1 for the SHA-256 of its source text (first 16 hex characters).",
    labelNames: ["sha256"] as const,
    registers: [this.registry],
    // With --workers the primary merges the workers' registries: per-process facts must not be summed.
    aggregator: "max",
  });
  readonly policyLoadedTimestamp = new client.Gauge({
    name: "countersign_policy_loaded_timestamp_seconds",
    help: "Unix time the current policy was loaded.",
    registers: [this.registry],
    aggregator: "min",
  });
  /** Read at scrape time; set by whoever owns the credential profiles. */
  credentialStatus: () => readonly CredentialGaugeSample[] = () => [];

  readonly credentialsExpiry: client.Gauge<"profile"> = new client.Gauge({
    name: "countersign_credentials_expiry_seconds",
    help: "Seconds until the profile's current credentials expire (absent for credentials without expiry).",
    labelNames: ["profile"] as const,
    registers: [this.registry],
    aggregator: "min",
    collect: () => this.collectCredentialGauges(),
  });
  readonly credentialsUsable: client.Gauge<"profile" | "source"> = new client.Gauge({
    name: "countersign_credentials_usable",
    help: "1 when the profile has usable credentials, else 0.",
    labelNames: ["profile", "source"] as const,
    registers: [this.registry],
    aggregator: "min",
  });
  readonly credentialRefreshes = new client.Counter({
    name: "countersign_credential_refreshes_total",
    help: "Credential fetches and refreshes, by profile and result (success|failure).",
    labelNames: ["profile", "result"] as const,
    registers: [this.registry],
  });
  readonly credentialRefreshSeconds = new client.Histogram({
    name: "countersign_credential_refresh_duration_seconds",
    help: "Latency of credential fetches and refreshes, by profile.",
    labelNames: ["profile"] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  /** Read at scrape time: true when /readyz would answer 200. */
  readyCheck: (() => boolean) | undefined;
  readonly ready: client.Gauge = new client.Gauge({
    name: "countersign_ready",
    help: "1 when /readyz answers 200.",
    registers: [this.registry],
    aggregator: "min",
    collect: () => {
      if (this.readyCheck) this.ready.set(this.readyCheck() ? 1 : 0);
    },
  });

  /** Read at scrape time from the process's admission limits. */
  private admission: AdmissionView | undefined;

  readonly heldBytes: client.Gauge = new client.Gauge({
    name: "countersign_body_bytes_held",
    help: "Request body bytes held in memory by all streams (buffered bodies being hashed, current aws-chunked chunks).",
    registers: [this.registry],
    collect: () => {
      const a = this.admission;
      if (!a) return;
      this.heldBytes.set(a.heldBytes);
      this.heldBytesLimit.set(a.limits.maxHeldBytes);
      this.streamsLimit.set(a.limits.maxConcurrentStreams);
    },
  });
  readonly heldBytesLimit = new client.Gauge({
    name: "countersign_body_bytes_held_limit",
    help: "--max-held-bytes (per process): requests that would hold more body bytes than this are refused with 503.",
    registers: [this.registry],
    aggregator: "max",
  });
  readonly streamsLimit = new client.Gauge({
    name: "countersign_extproc_streams_limit",
    help: "--max-streams (per process): streams over this many at once are refused with 503.",
    registers: [this.registry],
    aggregator: "max",
  });

  /** Reports `a`'s held bytes and limits at every scrape. */
  observeAdmission(a: AdmissionView): void {
    this.admission = a;
  }

  constructor(opts: { processMetrics?: boolean } = {}) {
    if (opts.processMetrics ?? true) client.collectDefaultMetrics({ register: this.registry });
    // Every result is exported at 0 from the start: Prometheus's increase() sees nothing in a series
    // whose first sample is already 1, so the alert on rejected reloads would miss the first one.
    for (const result of POLICY_RELOAD_RESULTS) this.policyReloads.inc({ result }, 0);
  }

  private collectCredentialGauges(): void {
    this.credentialsExpiry.reset();
    this.credentialsUsable.reset();
    const now = Date.now();
    for (const c of this.credentialStatus()) {
      this.credentialsUsable.set({ profile: c.profile, source: c.source }, c.usable ? 1 : 0);
      if (c.expiresAt) this.credentialsExpiry.set({ profile: c.profile }, (c.expiresAt.getTime() - now) / 1000);
    }
  }

  /** Labelled children resolved once per label set (the sets are few and bounded). */
  private readonly requestChildren = new Map<string, client.Counter.Internal>();
  private readonly latencyChildren = new Map<string, client.Histogram.Internal<"payload_mode">>();

  recordDecision(e: DecisionEvent): void {
    const mode = e.payloadMode || "none";
    const service = serviceLabel(e.service);
    const key = `${e.decision}|${e.reason}|${mode}|${service}`;
    let counter = this.requestChildren.get(key);
    if (!counter) {
      counter = this.requests.labels({ decision: e.decision, reason: e.reason, payload_mode: mode, service });
      this.requestChildren.set(key, counter);
    }
    counter.inc();
    let latency = this.latencyChildren.get(mode);
    if (!latency) {
      latency = this.signingSeconds.labels({ payload_mode: mode });
      this.latencyChildren.set(mode, latency);
    }
    latency.observe(e.signingSeconds);
    if (e.bytesHashed > 0) this.bytesHashed.inc(e.bytesHashed);
    if (e.chunksResigned > 0) this.chunksResigned.inc(e.chunksResigned);
  }

  setPolicy(sha256: string): void {
    this.policyInfo.reset();
    this.policyInfo.set({ sha256: sha256.slice(0, 16) }, 1);
    this.policyLoadedTimestamp.set(Date.now() / 1000);
  }
}
