import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { createMetrics, decisionBuckets, upstreamBuckets } from './metrics.js';
import { requestDurationBucketsMs, requestLabels } from './mesh-metrics.js';

/** The lines of one metric family in a text exposition. */
const family = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(`${name}_`) || l.startsWith(`# HELP ${name} `) || l.startsWith(`# TYPE ${name} `));

test('duration histograms expose exactly what prom-client\'s Histogram would (text and JSON)', async () => {
  const metrics = createMetrics({ processMetrics: false });
  const reference = new Registry();
  const decision = new Histogram({ name: 'portcullis_decision_duration_seconds', help: 'Time to decide one request (context, authentication, authorization).', buckets: decisionBuckets, registers: [reference] });
  const upstream = new Histogram({ name: 'portcullis_upstream_duration_seconds', help: 'Time from forwarding to the upstream response headers (or failure), by outcome.', labelNames: ['outcome'], buckets: upstreamBuckets, registers: [reference] });
  const before = await metrics.scrape();
  const referenceBefore = await reference.metrics();
  for (const name of ['portcullis_decision_duration_seconds', 'portcullis_upstream_duration_seconds']) assert.deepEqual(family(before, name), family(referenceBefore, name), `${name} before any observation`);

  const samples = [0, 0.000004, 0.000005, 0.0000051, 0.003, 0.05, 0.2, 7, 61, 301, 1e9];
  const outcomes = ['success', 'timeout', 'success', 'reset', 'refused'];
  samples.forEach((v, i) => {
    metrics.recordDecision({ listener: 'l', verdict: 'allow', mode: 'enforce', reason: 'r', wouldDeny: false, decisionSeconds: v });
    decision.observe(v);
    const outcome = outcomes[i % outcomes.length] as string;
    metrics.recordUpstream(outcome, v);
    upstream.observe({ outcome }, v);
  });
  const text = await metrics.scrape();
  const expected = await reference.metrics();
  for (const name of ['portcullis_decision_duration_seconds', 'portcullis_upstream_duration_seconds']) {
    assert.deepEqual(family(text, name), family(expected, name), name);
  }
  const json = (await metrics.registry.getMetricsAsJSON()).filter((m) => m.name.endsWith('_duration_seconds'));
  const expectedJson = await reference.getMetricsAsJSON();
  assert.deepEqual(json, expectedJson);
  // Workers' histograms add up in the concurrency primary.
  const summed = await AggregatorRegistry.aggregate([json, json]).metrics();
  assert.match(summed, /^portcullis_upstream_duration_seconds_count\{outcome="success"\} 10$/m);
});

test('the mesh request histogram and the counter derived from it expose exactly what prom-client\'s Histogram would', async () => {
  const metrics = createMetrics({ processMetrics: false });
  const reference = new Registry();
  const duration = new Histogram({ name: 'portcullis_request_duration_milliseconds', help: 'End-to-end request duration (decision plus the workload until the response ended), by listener, protocol, response code and gRPC status (as istio_request_duration_milliseconds).', labelNames: [...requestLabels], buckets: requestDurationBucketsMs, registers: [reference] });
  const requests = [
    { listener: 'inbound', protocol: 'http1', status: 200, grpcStatus: null, durationMs: 0.4 },
    { listener: 'inbound', protocol: 'http1', status: 200, grpcStatus: null, durationMs: 0.5 },
    { listener: 'inbound', protocol: 'http1', status: 403, grpcStatus: null, durationMs: 0.51 },
    { listener: 'rpc', protocol: 'grpc', status: 200, grpcStatus: 0, durationMs: 12 },
    { listener: 'rpc', protocol: 'grpc', status: 200, grpcStatus: 7, durationMs: 3_600_001 },
    { listener: 'inbound', protocol: 'http2', status: 502, grpcStatus: null, durationMs: 250 },
    { listener: 'inbound', protocol: 'http1', status: 200, grpcStatus: null, durationMs: 1 },
  ];
  for (const request of requests) {
    metrics.recordDecision({ listener: request.listener, verdict: 'allow', mode: 'enforce', reason: 'r', wouldDeny: false, decisionSeconds: 0.00001, request });
    duration.observe({ listener: request.listener, request_protocol: request.protocol, response_code: String(request.status), grpc_response_status: request.grpcStatus === null ? '' : String(request.grpcStatus) }, request.durationMs);
  }
  const text = await metrics.scrape();
  const expected = await reference.metrics();
  assert.deepEqual(family(text, 'portcullis_request_duration_milliseconds'), family(expected, 'portcullis_request_duration_milliseconds'));
  // The request counter is the histogram's count, row for row.
  const counts = family(expected, 'portcullis_request_duration_milliseconds').filter((l) => l.startsWith('portcullis_request_duration_milliseconds_count'));
  assert.equal(counts.length, 5);
  for (const line of counts) assert.ok(text.includes(line.replace('portcullis_request_duration_milliseconds_count', 'portcullis_http_requests_total')), line);
});
