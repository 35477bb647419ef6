// Benchmark of the per-request observability cost: metrics, decision event construction, decision log.
// Prints figures only (no assertions): `node --import tsx src/observe/bench-observe.ts`.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Decision } from '../policy/decision.js';
import { createDecisionLog } from './decision-log.js';
import { buildDecisionEvent, newDecisionId, type DecisionRecord } from './decision-event.js';
import { createMetrics } from './metrics.js';

const decision: Decision = {
  verdict: 'allow', reason: 'allow_policy_matched', dialect: 'istio',
  policy: { dialect: 'istio', kind: 'AuthorizationPolicy', namespace: 'shop', name: 'allow-get' },
  rule: 'ns[shop]-policy[allow-get]-rule[0]', authorization: null, audit: null, shadow: null, effects: null,
};

const input: DecisionRecord = {
  decision, mode: 'enforce', wouldDeny: false, policyRevision: 'abcd1234',
  peer: { spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', ip: '10.0.0.7' },
  request: { protocol: 'HTTP/1.1', method: 'GET', authority: 'orders.shop:8443', path: '/orders/123', listener: 'inbound-8443', port: 8080 },
  jwt: null, status: 200, grpcStatus: null, latencyUs: 35,
};

function measure(name: string, iterations: number, fn: (i: number) => void): void {
  for (let i = 0; i < Math.min(iterations, 20_000); i++) fn(i); // warm-up
  const t0 = performance.now();
  for (let i = 0; i < iterations; i++) fn(i);
  const ns = ((performance.now() - t0) * 1e6) / iterations;
  process.stdout.write(`${name.padEnd(48)} ${ns.toFixed(0).padStart(7)} ns/op  (${iterations} ops)\n`);
}

async function main(): Promise<void> {
  const metrics = createMetrics({ processMetrics: false });
  const reasons = ['allow_policy_matched', 'no_allow_policy_matched', 'deny_policy_matched'];
  measure('metrics.recordDecision', 1_000_000, (i) => metrics.recordDecision({ listener: 'inbound-8443', verdict: i % 3 ? 'allow' : 'deny', mode: 'enforce', reason: reasons[i % 3] as string, wouldDeny: false, decisionSeconds: 0.00002 }));
  measure('metrics.recordUpstream', 1_000_000, () => metrics.recordUpstream('success', 0.002));
  measure('newDecisionId', 1_000_000, () => newDecisionId());
  measure('buildDecisionEvent', 500_000, () => buildDecisionEvent(input));
  measure('buildDecisionEvent + JSON.stringify', 500_000, () => JSON.stringify(buildDecisionEvent(input)));

  const dir = await mkdtemp(join(tmpdir(), 'portcullis-bench-'));
  const log = createDecisionLog({ destination: join(dir, 'd.ndjson'), maxBufferedEvents: 10_000, metrics });
  await log.ready();
  // Published in bursts with a yield between, as request handlers would; the bound drops what the disk cannot take.
  const bursts = 200;
  const perBurst = 1000;
  const t0 = performance.now();
  for (let b = 0; b < bursts; b++) {
    for (let i = 0; i < perBurst; i++) log.publish(buildDecisionEvent(input));
    await new Promise((r) => setImmediate(r));
  }
  const ns = ((performance.now() - t0) * 1e6) / (bursts * perBurst);
  await log.close();
  process.stdout.write(`${'decision log publish (build+stringify+write)'.padEnd(48)} ${ns.toFixed(0).padStart(7)} ns/op  (${bursts * perBurst} events, ${log.dropped} dropped)\n`);
  const stalled = createDecisionLog({ destination: join(dir, 'never', '..', 'x.ndjson'), maxBufferedEvents: 100, metrics });
  const event = buildDecisionEvent(input);
  for (let i = 0; i < 100; i++) stalled.publish(event);
  measure('decision log publish when full (drop path)', 1_000_000, () => stalled.publish(event));
  await stalled.close();
  await rm(dir, { recursive: true, force: true });
}

void main();
