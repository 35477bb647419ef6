// Owns the decision event (schema v1, see ARCHITECTURE.md) and the sinks the data plane publishes to;
// decision-event.ts builds one event per request or connection from the proxy's record; logs and metrics subscribe.

import type { DecisionRecord } from './decision-event.js';

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
