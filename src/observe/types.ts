// Owns the decision event (schema v1, see ARCHITECTURE.md) and the sinks the data plane publishes to;
// decision-event.ts builds one event per request or connection from the proxy's record; logs and metrics subscribe.

export interface DecisionEventV1 {
  v: 1;
  decision_id: string;
  time: string;
  mode: 'enforce' | 'audit';
  verdict: string;
  would_deny: boolean;
  dialect: string | null;
  policy: { kind: string; namespace: string; name: string } | null;
  rule: string | null;
  authorization: string | null;
  reason: string;
  audit: { policy: { kind: string; namespace: string; name: string }; rule: string | null } | null;
  shadow: { verdict: string; action: string; policy: { kind: string; namespace: string; name: string } | null; rule: string | null } | null;
  peer: { spiffe_id: string | null; ip: string };
  request: { protocol: string; method: string; authority: string; path: string; listener: string; port: number };
  jwt: { iss: string; sub: string } | null;
  status: number;
  grpc_status: number | null;
  policy_revision: string;
  latency_us: number;
  /** `bytes_sent`/`bytes_received` (optional, opaque TCP listeners): bytes piped to / from the workload. */
  upstream?: { outcome: string; status: number | null; duration_us: number; bytes_sent?: number; bytes_received?: number };
}

export interface DecisionSink {
  publish(event: DecisionEventV1): void;
}
