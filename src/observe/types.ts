// Owns the decision event (schema v1, see ARCHITECTURE.md) and the sinks the data plane publishes to;
// decision-event.ts builds one event per request or connection from the proxy's record; logs and metrics subscribe.

import type { Decision } from '../policy/decision.js';
import type { CaptureFacts } from './capture.js';

export interface DecisionEventV1 {
  v: 1;
  decision_id: string;
  time: string;
  mode: 'enforce' | 'audit';
  verdict: string;
  would_deny: boolean;
  dialect: string | null;
  /** The dialect's tier that decided (`http`, a Calico tier, `admin`, ...), or null. */
  tier: string | null;
  policy: { kind: string; namespace: string; name: string } | null;
  rule: string | null;
  authorization: string | null;
  reason: string;
  audit: { policy: { kind: string; namespace: string; name: string }; rule: string | null } | null;
  shadow: { verdict: string; action: string; policy: { kind: string; namespace: string; name: string } | null; rule: string | null } | null;
  /** `remote_ip`: replayable capture, only when it differs from `ip`. */
  peer: { spiffe_id: string | null; ip: string; remote_ip?: string };
  /** `raw_path` .. `sni`: replayable capture (observe/capture.ts); `raw_path` only when it differs from `path`. */
  request: {
    protocol: string; method: string; authority: string; path: string; listener: string; port: number;
    raw_path?: string; query_keys?: string[]; headers?: Record<string, string | string[]>; destination_ip?: string; sni?: string;
  };
  /** `claims`: replayable capture, the verified payload (the token itself is never logged). */
  jwt: { iss: string; sub: string; claims?: Readonly<Record<string, unknown>> } | null;
  status: number;
  grpc_status: number | null;
  policy_revision: string;
  latency_us: number;
  /** `bytes_sent`/`bytes_received` (optional, opaque TCP listeners): bytes piped to / from the workload. */
  upstream?: { outcome: string; status: number | null; duration_us: number; bytes_sent?: number; bytes_received?: number };
  /** `replayable` when the event carries what `portcullis replay` needs to decide the request again; else absent. */
  capture?: 'replayable';
}

export interface DecisionSink {
  publish(event: DecisionEventV1): void;
  /**
   * The same event as the data plane's record, for a sink that can use it without the event object
   * (the decision log writes its line straight from it). Called through publishDecision (decision-event.ts).
   */
  publishRecord?(record: DecisionRecord): void;
}

/** What the data plane knows about one decided request or connection. */
export interface DecisionRecord {
  /** The engine's decision, when the request got that far (null: refused before, or outbound). */
  decision: Decision | null;
  /** Verdict and reason of a refusal that did not come from the engine (parse error, JWT, upstream, ...). */
  override?: { verdict: string; reason: string } | null;
  mode: 'enforce' | 'audit';
  /** Forwarded only because of audit mode (Permit.wouldDeny). */
  wouldDeny: boolean;
  policyRevision: string;
  peer: { spiffeId: string | null; ip: string };
  request: { protocol: string; method: string; authority: string; path: string; listener: string; port: number };
  jwt: { iss: string; sub: string } | null;
  /** Status sent downstream (the upstream's, or the local reply's); 0 on opaque TCP. */
  status: number;
  grpcStatus: number | null;
  latencyUs: number;
  /** Bytes are counted on opaque TCP tunnels only. */
  upstream?: { outcome: string; status: number | null; durationUs: number; bytesSent?: number; bytesReceived?: number };
  /** Epoch ms of the decision (default Date.now()). */
  time?: number;
  decisionId?: string;
  /** The request as policy saw it, for a replayable event (absent: minimal capture, or refused before policy). */
  capture?: CaptureFacts;
}
