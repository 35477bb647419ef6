// Owns every Prometheus metric of Portcullis (prom-client, one private Registry) behind typed methods,
// so the data plane never touches prom-client. Labels are bounded: policy names and reasons, never paths or principals.

import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { registerMeshMetrics } from './mesh-metrics.js';
import { ScrapeTimeHistogram } from './scrape-time-histogram.js';

export type ReloadResult = 'success' | 'failure' | 'unchanged';
export type ConnectionOutcome = 'accepted' | 'tls_error' | 'identity_rejected' | 'limit_exceeded' | 'timeout' | 'error';
export type UpstreamOutcome = 'success' | 'refused' | 'reset' | 'timeout' | 'bad_response' | 'error';

export interface DecisionSample {
  listener: string;
  verdict: string;
  mode: 'enforce' | 'audit';
  reason: string;
  /** Forwarded only because of audit mode. */
  wouldDeny: boolean;
  /** Time spent deciding (context + authenticate + authorize), seconds. */
  decisionSeconds: number;
  /** Provenance (bounded by the policy set): `ns/name`, Istio rule id or Linkerd route, Linkerd authorization. */
  dialect?: string | null;
  policy?: string | null;
  rule?: string | null;
  authorization?: string | null;
  /** For the mesh-style request metrics (HTTP and gRPC only): what the client got and how long it took. */
  request?: { protocol: string; status: number; grpcStatus: number | null; durationMs: number };
}

export interface Metrics {
  readonly registry: Registry;
  /** One call per request, after the decision. */
  recordDecision(sample: DecisionSample): void;
  recordUpstream(outcome: UpstreamOutcome | string, seconds: number): void;
  recordPolicyReload(result: ReloadResult): void;
  /** Every read of the peer registry; `failure` keeps the last good registry. */
  recordPeerReload(result: ReloadResult): void;
  setPolicyRevision(revision: string): void;
  recordDecisionLogDropped(count?: number): void;
  /** The own SVID's notAfter (epoch ms) is read at every scrape; undefined = no certificate loaded. */
  setCertificateNotAfter(source: () => number | undefined): void;
  connectionOpened(listener: string): void;
  connectionClosed(listener: string): void;
  /** Every connection attempt ends in exactly one outcome (TLS/identity rejections included). */
  recordConnection(listener: string, outcome: ConnectionOutcome | string): void;
  http2StreamOpened(): void;
  http2StreamClosed(): void;
  recordJwt(result: string): void;
  recordRateLimited(): void;
  /** Prometheus text exposition. */
  scrape(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsOptions {
  /** Collect process_* / nodejs_* metrics (default true). */
  processMetrics?: boolean;
  /** Wall clock in epoch ms, for the certificate expiry gauge (default Date.now). */
  now?: () => number;
}

const EVENT_LOOP_SAMPLE_MS = 1000;

/** Buckets from 5 µs: decisions are expected in the tens of microseconds. */
export const decisionBuckets = [0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05];
export const upstreamBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

/** Ceiling on distinct label sets per labelled metric: a bug upstream must not become a memory leak. */
const maxSeries = 2000;

/** Caches prom-client label children by a joined key (cheaper than labels() hashing per call). */
class ChildCache<T> {
  private readonly children = new Map<string, T>();
  constructor(private readonly make: (values: string[]) => T, private readonly overflow: () => T) {}
  get(...values: string[]): T {
    const key = values.join('\u0000');
    let child = this.children.get(key);
    if (child === undefined) {
      child = this.children.size >= maxSeries ? this.overflow() : this.make(values);
      this.children.set(key, child);
    }
    return child;
  }
}

interface CountCell { labels: Record<string, string>; count: number; reported: number }

/**
 * Per-request counters kept as plain numbers in nested maps and handed to prom-client at scrape time:
 * prom-client hashes the label object on every inc(), which costs more than the decision itself.
 */
class DeferredCounter {
  private readonly root = new Map<string, unknown>();
  private readonly cells: CountCell[] = [];
  private overflowCell: CountCell | undefined;
  constructor(private readonly labelNames: readonly string[]) {}

  inc(...values: string[]): void {
    let node = this.root;
    const last = values.length - 1;
    for (let i = 0; i < last; i++) {
      let next = node.get(values[i] as string) as Map<string, unknown> | undefined;
      if (next === undefined) { next = new Map(); node.set(values[i] as string, next); }
      node = next;
    }
    let cell = node.get(values[last] as string) as CountCell | undefined;
    if (cell === undefined) {
      cell = this.cells.length >= maxSeries ? this.overflow() : this.newCell(values);
      node.set(values[last] as string, cell);
    }
    cell.count++;
  }

  /** Every label set with its running total (for metrics derived at scrape time). */
  entries(): Iterable<{ labels: Record<string, string>; count: number }> {
    return this.cells;
  }

  /** Moves the counts accumulated since the last scrape into the prom-client counter. */
  flushInto(counter: Counter<string>): void {
    for (const cell of this.cells) {
      if (cell.count > cell.reported) { counter.inc(cell.labels, cell.count - cell.reported); cell.reported = cell.count; }
    }
  }

  private newCell(values: string[]): CountCell {
    const labels: Record<string, string> = {};
    this.labelNames.forEach((n, i) => { labels[n] = values[i] as string; });
    const cell = { labels, count: 0, reported: 0 };
    this.cells.push(cell);
    return cell;
  }

  private overflow(): CountCell {
    if (!this.overflowCell) {
      const labels: Record<string, string> = {};
      for (const n of this.labelNames) labels[n] = 'other';
      this.overflowCell = { labels, count: 0, reported: 0 };
      this.cells.push(this.overflowCell);
    }
    return this.overflowCell;
  }
}

export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  const now = options.now ?? Date.now;
  // The event-loop delay histogram samples every second instead of prom-client's 10 ms: the 10 ms timer was
  // 100 of an idle sidecar's wake-ups per second. Lag is still measured on every sample, only less often.
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });

  const requestCounts = new DeferredCounter(['verdict', 'mode', 'reason', 'listener']);
  const wouldDenyCounts = new DeferredCounter(['reason']);
  const policyCounts = new DeferredCounter(['dialect', 'policy', 'rule', 'authorization', 'verdict']);
  new Counter({ name: 'portcullis_requests_total', help: 'Requests by verdict, mode, reason and listener.', labelNames: ['verdict', 'mode', 'reason', 'listener'] as const, registers: [registry], collect() { requestCounts.flushInto(this); } });
  new Counter({ name: 'portcullis_policy_decisions_total', help: 'Decisions by the policy, rule (Istio) or route (Linkerd) and authorization (Linkerd) that made them; label values come from the policy set.', labelNames: ['dialect', 'policy', 'rule', 'authorization', 'verdict'] as const, registers: [registry], collect() { policyCounts.flushInto(this); } });
  new Counter({ name: 'portcullis_would_deny_total', help: 'Requests forwarded only because of audit mode, by reason.', labelNames: ['reason'] as const, registers: [registry], collect() { wouldDenyCounts.flushInto(this); } });
  const mesh = registerMeshMetrics(registry, requestCounts, maxSeries);
  const decisionDuration = new ScrapeTimeHistogram({ name: 'portcullis_decision_duration_seconds', help: 'Time to decide one request (context, authentication, authorization).', buckets: decisionBuckets, registers: [registry], maxSeries });
  const decisionSeries = decisionDuration.series();
  const upstreamDuration = new ScrapeTimeHistogram({ name: 'portcullis_upstream_duration_seconds', help: 'Time from forwarding to the upstream response headers (or failure), by outcome.', labelNames: ['outcome'], buckets: upstreamBuckets, registers: [registry], maxSeries });
  const reloads = new Counter({ name: 'portcullis_policy_reload_total', help: 'Policy loads and reloads by result (failure keeps the last good snapshot).', labelNames: ['result'] as const, registers: [registry] });
  // Aggregators say how the `concurrency` primary combines workers' values (default: sum).
  const revisionInfo = new Gauge({ name: 'portcullis_policy_revision_info', help: 'The revision of the policy snapshot in force (value 1).', labelNames: ['revision'] as const, registers: [registry], aggregator: 'max' });
  const peerReloads = new Counter({ name: 'portcullis_peer_registry_reload_total', help: 'Peer registry reads by result: success (a new registry), unchanged, failure (refused; the last good registry stays).', labelNames: ['result'] as const, registers: [registry] });
  const peerRefused = new Gauge({ name: 'portcullis_peer_registry_refused', help: '1 while the peer registry source is refused and the last good registry is in force, else 0.', registers: [registry], aggregator: 'max' });
  const dropped = new Counter({ name: 'portcullis_decision_log_dropped_total', help: 'Decision events dropped because the destination could not keep up.', registers: [registry] });
  let notAfter: () => number | undefined = () => undefined;
  new Gauge({
    name: 'portcullis_certificate_expiry_seconds', help: 'Seconds until the own SVID expires (negative when expired).', registers: [registry], aggregator: 'min',
    collect() {
      const t = notAfter();
      if (t === undefined) this.reset();
      else this.set((t - now()) / 1000);
    },
  });
  const connectionsActive = new Gauge({ name: 'portcullis_connections_active', help: 'Open downstream connections by listener.', labelNames: ['listener'] as const, registers: [registry] });
  const connections = new Counter({ name: 'portcullis_connections_total', help: 'Downstream connections by listener and outcome (TLS and identity rejections included).', labelNames: ['listener', 'outcome'] as const, registers: [registry] });
  const streamsActive = new Gauge({ name: 'portcullis_http2_streams_active', help: 'Open HTTP/2 streams.', registers: [registry] });
  const jwt = new Counter({ name: 'portcullis_jwt_total', help: 'JWT verifications by result.', labelNames: ['result'] as const, registers: [registry] });
  const rateLimited = new Counter({ name: 'portcullis_rate_limited_total', help: 'Requests refused by a local rate limit.', registers: [registry] });

  const activeChildren = new ChildCache((v) => connectionsActive.labels(v[0] as string), () => connectionsActive.labels('other'));
  const connectionChildren = new ChildCache((v) => connections.labels(v[0] as string, v[1] as string), () => connections.labels('other', 'other'));
  const jwtChildren = new ChildCache((v) => jwt.labels(v[0] as string), () => jwt.labels('other'));
  // Pre-bind the reload results so the series exist (at 0) from the first scrape.
  for (const r of ['success', 'failure', 'unchanged']) reloads.labels(r).inc(0);

  return {
    registry,
    contentType: registry.contentType,
    recordDecision(s) {
      requestCounts.inc(s.verdict, s.mode, s.reason, s.listener);
      if (s.wouldDeny) wouldDenyCounts.inc(s.reason);
      if (s.dialect) policyCounts.inc(s.dialect, s.policy ?? '', s.rule ?? '', s.authorization ?? '', s.verdict);
      decisionDuration.record(decisionSeries, s.decisionSeconds);
      if (s.request) mesh.observeRequest(s.listener, s.request.protocol, s.request.status, s.request.grpcStatus, s.request.durationMs);
    },
    recordUpstream(outcome, seconds) { upstreamDuration.record(upstreamDuration.series(outcome), seconds); },
    recordPolicyReload(result) { reloads.labels(result).inc(); },
    recordPeerReload(result) { peerReloads.labels(result).inc(); peerRefused.set(result === 'failure' ? 1 : 0); },
    setPolicyRevision(revision) { revisionInfo.reset(); revisionInfo.labels(revision).set(1); },
    recordDecisionLogDropped(count = 1) { dropped.inc(count); },
    setCertificateNotAfter(source) { notAfter = source; },
    connectionOpened(listener) { activeChildren.get(listener).inc(); },
    connectionClosed(listener) { activeChildren.get(listener).dec(); },
    recordConnection(listener, outcome) { connectionChildren.get(listener, outcome).inc(); },
    http2StreamOpened() { streamsActive.inc(); },
    http2StreamClosed() { streamsActive.dec(); },
    recordJwt(result) { jwtChildren.get(result).inc(); },
    recordRateLimited() { rateLimited.inc(); },
    scrape: () => registry.metrics(),
  };
}
