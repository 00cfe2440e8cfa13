/**
 * Counters named and counted like Envoy's `http.<prefix>.ext_proc.*` stats, plus records the
 * emulator keeps so tests can assert what left "Envoy".
 *
 * Envoy semantics worth knowing when asserting:
 * - `streams_closed` counts every stream close that Envoy performs or observes cleanly: the normal
 *   close after the last response, a timeout close, AND a server closing the stream with OK. A
 *   healthy run therefore shows streams_closed == streams_started. The emulator-only
 *   `streams_closed_before_response` counts the dangerous case alone: the server closed with OK
 *   while Envoy was waiting for an answer, so the request went upstream UNMODIFIED.
 * - `streams_failed` counts gRPC errors (non-OK status) from the server.
 */
import type { HeaderMap } from "./headerMap.js";

export interface UpstreamRequestRecord {
  method: string;
  path: string;
  authority: string;
  /** Header name → value; repeated headers joined with ", " (as node does). */
  headers: Record<string, string>;
  /** Every header line in the order sent, including `host`. */
  rawHeaders: [string, string][];
  target: { host: string; port: number; tls: boolean };
  /** The bytes written upstream (only when body recording is on). */
  body: Buffer;
  bodyLength: number;
  /** "Envoy" finished writing the request (end of stream reached upstream). */
  complete: boolean;
}

export interface LocalReplyRecord {
  status: number;
  details: string;
  authority: string;
  path: string;
}

export interface TunnelRecord {
  /** The CONNECT target (request-target of the CONNECT line). */
  connectAuthority: string;
  /** SNI the client sent in its TLS ClientHello, or null. */
  sni: string | null;
}

export interface EmulatorStats {
  streams_started: number;
  stream_msgs_sent: number;
  stream_msgs_received: number;
  spurious_msgs_received: number;
  streams_closed: number;
  streams_failed: number;
  failure_mode_allowed: number;
  message_timeouts: number;
  rejected_header_mutations: number;
  override_message_timeout_received: number;
  override_message_timeout_ignored: number;
  clear_route_cache_ignored: number;
  /** HCM `downstream_rq_too_large`: 413 local replies for bodies over the buffer limit. */
  downstream_rq_too_large: number;
  /** Emulator-only: the server closed with OK while a message awaited its response. */
  streams_closed_before_response: number;
  /** Emulator-only: bytes sent upstream differed from a content-length kept by "Envoy". */
  upstream_content_length_mismatch: number;
  upstreamRequests: UpstreamRequestRecord[];
  localReplies: LocalReplyRecord[];
  tunnels: TunnelRecord[];
}

export function createStats(): EmulatorStats {
  return {
    streams_started: 0,
    stream_msgs_sent: 0,
    stream_msgs_received: 0,
    spurious_msgs_received: 0,
    streams_closed: 0,
    streams_failed: 0,
    failure_mode_allowed: 0,
    message_timeouts: 0,
    rejected_header_mutations: 0,
    override_message_timeout_received: 0,
    override_message_timeout_ignored: 0,
    clear_route_cache_ignored: 0,
    downstream_rq_too_large: 0,
    streams_closed_before_response: 0,
    upstream_content_length_mismatch: 0,
    upstreamRequests: [],
    localReplies: [],
    tunnels: [],
  };
}

/** Resets every counter and record in place (the object handed out stays the same). */
export function resetStats(stats: EmulatorStats): void {
  Object.assign(stats, createStats());
}

export function headerRecord(headers: HeaderMap): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of headers.pairs()) out[k] = k in out ? `${out[k]}, ${v}` : v;
  return out;
}
