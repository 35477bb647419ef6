import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AggregatorRegistry, Histogram, Registry } from 'prom-client';
import { createMetrics, decisionBuckets, upstreamBuckets } from './metrics.js';

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
