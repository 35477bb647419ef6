import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Decision } from '../policy/decision.js';
import { createDecisionLog, fanOut } from './decision-log.js';
import { buildDecisionEvent, newDecisionId, type DecisionRecord } from './decision-event.js';
import { createMetrics } from './metrics.js';

const deny: Decision = {
  verdict: 'deny', reason: 'no_allow_policy_matched', dialect: 'istio', tier: 'http',
  policy: { dialect: 'istio', kind: 'AuthorizationPolicy', namespace: 'shop', name: 'allow-get' },
  rule: null, authorization: null, audit: null,
  shadow: { verdict: 'allow', action: 'ALLOW', policy: { dialect: 'istio', kind: 'AuthorizationPolicy', namespace: 'shop', name: 'dry' }, rule: 'ns[shop]-policy[dry]-rule[0]' },
  effects: null,
};

function input(i: number, overrides: Partial<DecisionRecord> = {}): DecisionRecord {
  return {
    decision: deny, mode: 'audit', wouldDeny: true, policyRevision: 'abcd1234',
    peer: { spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', ip: '10.0.0.7' },
    request: { protocol: 'HTTP/2', method: 'POST', authority: 'orders.shop:8443', path: `/orders/${i}`, listener: 'inbound-8443', port: 8080 },
    jwt: { iss: 'https://issuer.example', sub: 'alice' }, status: 200, grpcStatus: null, latencyUs: 42 + i,
    upstream: { outcome: 'success', status: 200, durationUs: 900 }, time: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
    ...overrides,
  };
}

async function dropped(metrics: ReturnType<typeof createMetrics>): Promise<number> {
  const m = await metrics.registry.getSingleMetric('portcullis_decision_log_dropped_total')?.get();
  return m?.values[0]?.value ?? 0;
}

test('buildDecisionEvent fills every v1 field', () => {
  const e = buildDecisionEvent(input(1, { decisionId: 'd-1' }));
  assert.deepEqual(e, {
    v: 1, decision_id: 'd-1', time: '2026-01-02T03:04:05.006Z', mode: 'audit', verdict: 'deny', would_deny: true, dialect: 'istio', tier: 'http',
    policy: { kind: 'AuthorizationPolicy', namespace: 'shop', name: 'allow-get' }, rule: null, authorization: null, reason: 'no_allow_policy_matched',
    audit: null, shadow: { verdict: 'allow', action: 'ALLOW', policy: { kind: 'AuthorizationPolicy', namespace: 'shop', name: 'dry' }, rule: 'ns[shop]-policy[dry]-rule[0]' },
    peer: { spiffe_id: 'spiffe://cluster.local/ns/shop/sa/web', ip: '10.0.0.7' },
    request: { protocol: 'HTTP/2', method: 'POST', authority: 'orders.shop:8443', path: '/orders/1', listener: 'inbound-8443', port: 8080 },
    jwt: { iss: 'https://issuer.example', sub: 'alice' }, status: 200, grpc_status: null, policy_revision: 'abcd1234', latency_us: 43,
    upstream: { outcome: 'success', status: 200, duration_us: 900 },
  });
  const bare = buildDecisionEvent(input(2, { upstream: undefined, jwt: null }));
  assert.equal('upstream' in bare, false);
  assert.equal(bare.jwt, null);
  assert.match(bare.decision_id, /^[0-9a-f]{12}-[0-9a-z]+$/);
});

test('lines with multi-byte characters and lines larger than a batch arrive whole and in order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-dlog-'));
  const path = join(dir, 'decisions.ndjson');
  const log = createDecisionLog({ destination: path, maxBufferedEvents: 10_000 });
  try {
    await log.ready();
    // Two-, three- and four-byte UTF-8 (a surrogate pair) in paths, and every 50th path far above 64 KiB of bytes.
    const records = Array.from({ length: 400 }, (_, i) => input(i, { request: { ...input(i).request, path: i % 50 === 7 ? `/big/${'ü€😀'.repeat(12_000)}/${i}` : `/é/€/😀/${i}` } }));
    for (const r of records) log.publishRecord?.(r);
    await log.close();
    const lines = (await readFile(path, 'utf8')).split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, records.length);
    lines.forEach((line, i) => assert.equal(JSON.parse(line).request.path, records[i]!.request.path));
    assert.equal(log.dropped, 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('newDecisionId is unique', () => {
  const ids = new Set<string>();
  for (let i = 0; i < 100_000; i++) ids.add(newDecisionId());
  assert.equal(ids.size, 100_000);
});

test('a file destination gets one NDJSON line per event, in order', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-dlog-'));
  const path = join(dir, 'sub', 'decisions.ndjson');
  const metrics = createMetrics({ processMetrics: false });
  const log = createDecisionLog({ destination: path, maxBufferedEvents: 1000, metrics });
  try {
    await log.ready();
    const events = Array.from({ length: 250 }, (_, i) => buildDecisionEvent(input(i)));
    for (const e of events) log.publish(e);
    await log.close();
    const lines = (await readFile(path, 'utf8')).split('\n');
    assert.equal(lines.pop(), '', 'the file ends with a newline');
    assert.equal(lines.length, events.length);
    lines.forEach((line, i) => assert.deepEqual(JSON.parse(line), events[i]));
    assert.equal(log.dropped, 0);
    assert.equal(await dropped(metrics), 0);
    log.publish(events[0]!);
    assert.equal(log.dropped, 1, 'publishing after close is a counted drop, not a crash');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a stalled destination drops new events and counts them, never blocking', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-dlog-'));
  const fifo = join(dir, 'stalled.fifo');
  execFileSync('mkfifo', [fifo]);
  const metrics = createMetrics({ processMetrics: false });
  // Opening a FIFO for writing waits for a reader: the destination is stalled until we read.
  const log = createDecisionLog({ destination: fifo, maxBufferedEvents: 10, metrics });
  let reader: ReturnType<typeof createReadStream> | undefined;
  try {
    const events = Array.from({ length: 50 }, (_, i) => buildDecisionEvent(input(i)));
    for (const e of events) log.publish(e);
    assert.equal(log.pending, 10);
    assert.equal(log.dropped, 40);
    assert.equal(await dropped(metrics), 40);
    const text = await metrics.scrape();
    assert.match(text, /^portcullis_decision_log_dropped_total 40$/m);

    // Once the destination drains, the buffered events arrive whole and new ones are accepted again.
    reader = createReadStream(fifo, { encoding: 'utf8' });
    let received = '';
    reader.on('data', (chunk) => { received += chunk as string; });
    await log.flush(5000);
    assert.equal(log.pending, 0);
    log.publish(events[49]!);
    await log.flush(5000);
    for (let i = 0; i < 100 && received.split('\n').length < 12; i++) await new Promise((r) => setTimeout(r, 10));
    const lines = received.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { request: { path: string } });
    assert.deepEqual(lines.map((l) => l.request.path), [...Array.from({ length: 10 }, (_, i) => `/orders/${i}`), '/orders/49']);
    assert.equal(log.dropped, 40);
    await log.close();
  } finally {
    reader?.destroy();
    await rm(dir, { recursive: true, force: true });
  }
});

test('destination off publishes nothing; an unopenable path is reported by ready()', async () => {
  const off = createDecisionLog({ destination: 'off', maxBufferedEvents: 1 });
  off.publish(buildDecisionEvent(input(0)));
  assert.equal(off.dropped, 0);
  // The data plane publishes records through fanOut: a disabled log takes them as they are, no event is built for it.
  let peerReads = 0;
  const record = { ...input(1), get peer() { peerReads++; return { spiffeId: null, ip: '::1' }; } };
  fanOut(off).publishRecord?.(record);
  assert.equal(peerReads, 0);
  await off.close();

  const errors: Error[] = [];
  const bad = createDecisionLog({ destination: '/etc/hostname/portcullis/x.ndjson', maxBufferedEvents: 5, onError: (e) => errors.push(e) });
  await assert.rejects(bad.ready(2000));
  assert.equal(errors.length, 1);
});
