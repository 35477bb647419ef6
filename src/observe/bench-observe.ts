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
import { redactionFor } from './capture.js';
import type { RequestContext } from '../policy/context-types.js';
import type { PolicySnapshot } from '../policy/snapshot.js';

const decision: Decision = {
  verdict: 'allow', reason: 'allow_policy_matched', dialect: 'istio', tier: 'http',
  policy: { dialect: 'istio', kind: 'AuthorizationPolicy', namespace: 'shop', name: 'allow-get' },
  rule: 'ns[shop]-policy[allow-get]-rule[0]', authorization: null, audit: null, shadow: null, effects: null,
};

const input: DecisionRecord = {
  decision, mode: 'enforce', wouldDeny: false, policyRevision: 'abcd1234',
  peer: { spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', ip: '10.0.0.7' },
  request: { protocol: 'HTTP/1.1', method: 'GET', authority: 'orders.shop:8443', path: '/orders/123', listener: 'inbound-8443', port: 8080 },
  jwt: null, status: 200, grpcStatus: null, latencyUs: 35,
};

// A request as a replayable event records it: typical browser/service headers, a bearer token, verified claims.
const claims = { iss: 'https://issuer.example', sub: 'alice', aud: 'orders', exp: 1_900_000_000, iat: 1_800_000_000, scope: 'orders:read orders:write' };
const context = {
  protocol: 'http', method: 'GET', path: '/orders/123', query: 'page=2', authority: 'orders.shop:8443', host: 'orders.shop', headers: {},
  peer: null, sourceIp: '10.0.0.7', remoteIp: '10.0.0.7', destinationIp: undefined, port: 8080, sni: undefined,
  jwt: { issuer: claims.iss, subject: claims.sub, claims },
} as unknown as RequestContext;
const originalHeaders = {
  host: 'orders.shop:8443', authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl',
  'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36',
  accept: 'application/json, text/plain, */*', 'accept-language': 'en-US,en;q=0.9',
  'x-request-id': '4bf92f35-77b3-4da6-a3ce-929d0e0e4736', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  cookie: 'session=6a1f0c9e2b7d4e11; theme=dark',
};
const snapshot = { jwtProviders: [] } as unknown as PolicySnapshot;
const withJwt: DecisionRecord = { ...input, jwt: { iss: claims.iss, sub: claims.sub } };
const captured: DecisionRecord = {
  ...withJwt,
  capture: { context, target: '/orders/123?page=2', headers: originalHeaders, redaction: redactionFor(snapshot, { mode: 'replayable', redactHeaders: [] }) },
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
  measure('  same, minimal capture (JWT request)', 500_000, () => JSON.stringify(buildDecisionEvent(withJwt)));
  measure('  same, replayable capture (7 headers + claims)', 500_000, () => JSON.stringify(buildDecisionEvent(captured)));

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
