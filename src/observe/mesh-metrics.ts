// Owns the request metrics mesh users look for first, in the shape of Istio's istio_requests_total /
// istio_request_duration_milliseconds and Linkerd's inbound_http_authz_{allow,deny}_total (bounded labels only).
// Per request: one addition into a histogram series; the counters are derived at scrape time from what is already counted.

import { Counter, type Registry } from 'prom-client';
import { ScrapeTimeHistogram, type HistogramSeries } from './scrape-time-histogram.js';

/** Istio's default buckets for istio_request_duration_milliseconds. */
export const requestDurationBucketsMs = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

export const requestLabels = ['listener', 'request_protocol', 'response_code', 'grpc_response_status'] as const;
export const authzLabels = ['listener', 'mode', 'reason'] as const;

export interface CountSource {
  /** Current totals per label set (labels keyed by the counter's label names). */
  entries(): Iterable<{ labels: Record<string, string>; count: number }>;
}

/**
 * A prom-client Counter whose value is another count's total, moved over by deltas at each scrape: the
 * request path pays nothing for it.
 */
function derivedCounter(registry: Registry, name: string, help: string, labelNames: readonly string[], totals: () => Promise<Iterable<{ labels: Record<string, string>; count: number }>>): void {
  const reported = new Map<string, number>();
  new Counter({
    name, help, labelNames, registers: [registry],
    async collect() {
      for (const { labels, count } of await totals()) {
        const key = labelNames.map((n) => labels[n] ?? '').join('\u0000');
        const before = reported.get(key) ?? 0;
        if (count > before) { this.inc(labels, count - before); reported.set(key, count); }
      }
    },
  });
}

export interface MeshMetrics {
  /** One observe per decided HTTP/gRPC request: end-to-end milliseconds by listener, protocol, code and gRPC status. */
  observeRequest(listener: string, protocol: string, status: number, grpcStatus: number | null, ms: number): void;
}

/**
 * Registers the mesh-style metrics. `decisions` is the existing per-request verdict count (labels verdict,
 * mode, reason, listener); the authz counters are its allow and deny rows.
 */
export function registerMeshMetrics(registry: Registry, decisions: CountSource, maxSeries: number): MeshMetrics {
  const duration = new ScrapeTimeHistogram({
    name: 'portcullis_request_duration_milliseconds',
    help: 'End-to-end request duration (decision plus the workload until the response ended), by listener, protocol, response code and gRPC status (as istio_request_duration_milliseconds).',
    labelNames: requestLabels, buckets: requestDurationBucketsMs, registers: [registry], maxSeries,
  });
  derivedCounter(registry, 'portcullis_http_requests_total', 'Requests by listener, protocol, response code and gRPC status (as istio_requests_total); the count of portcullis_request_duration_milliseconds.', requestLabels, async () => {
    const { values } = await duration.get();
    return values.filter((v) => v.metricName === 'portcullis_request_duration_milliseconds_count').map((v) => ({ labels: v.labels as Record<string, string>, count: v.value }));
  });
  const authzRows = (verdict: string) => async () => [...decisions.entries()]
    .filter((e) => e.labels['verdict'] === verdict)
    .map((e) => ({ labels: { listener: e.labels['listener'] ?? '', mode: e.labels['mode'] ?? '', reason: e.labels['reason'] ?? '' }, count: e.count }));
  derivedCounter(registry, 'portcullis_inbound_http_authz_allow_total', 'Requests authorized, by listener, mode and reason (as Linkerd\'s inbound_http_authz_allow_total).', authzLabels, authzRows('allow'));
  derivedCounter(registry, 'portcullis_inbound_http_authz_deny_total', 'Requests denied by authorization, by listener, mode and reason; in audit mode these were forwarded (as Linkerd\'s inbound_http_authz_deny_total).', authzLabels, authzRows('deny'));

  // Series by listener, protocol, status and gRPC status in nested maps keyed by the values themselves:
  // no label string is built per request once a combination has been seen.
  const byListener = new Map<string, Map<string, Map<number, Map<number | null, HistogramSeries>>>>();
  const seriesFor = (listener: string, protocol: string, status: number, grpcStatus: number | null): HistogramSeries => {
    let byProtocol = byListener.get(listener);
    if (byProtocol === undefined) { byProtocol = new Map(); byListener.set(listener, byProtocol); }
    let byStatus = byProtocol.get(protocol);
    if (byStatus === undefined) { byStatus = new Map(); byProtocol.set(protocol, byStatus); }
    let byGrpc = byStatus.get(status);
    if (byGrpc === undefined) { byGrpc = new Map(); byStatus.set(status, byGrpc); }
    let series = byGrpc.get(grpcStatus);
    if (series === undefined) {
      // Every key is bounded (listeners and protocols by the configuration, HTTP and gRPC status codes by
      // their ranges); past the histogram's series ceiling, new combinations share its `other` series.
      series = duration.series(listener, protocol, String(status), grpcStatus === null ? '' : String(grpcStatus));
      byGrpc.set(grpcStatus, series);
    }
    return series;
  };
  return {
    observeRequest(listener, protocol, status, grpcStatus, ms) {
      duration.record(seriesFor(listener, protocol, status, grpcStatus), ms);
    },
  };
}
