import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { defaultCompileOptions } from '../config/load.js';
import { createPolicyStore, type PolicyStore } from '../config/policy-store.js';
import { startAdminServer, type AdminServer, type Readiness } from './admin.js';
import { createMetrics } from './metrics.js';

const policies = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-get, namespace: shop}
spec:
  rules:
  - to:
    - operation: {methods: [GET]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: elsewhere, namespace: other}
spec: {}
`;

interface Sample { name: string; labels: Record<string, string>; value: number }

/** Parses the Prometheus text format (enough of it for these assertions). */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line.startsWith('# TYPE ')) { const [, , name, type] = line.split(' '); types.set(name as string, type as string); continue; }
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] as string] = l[2] as string;
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
  }
  return { samples, types };
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

async function get(admin: AdminServer, path: string, method: 'GET' | 'POST' | 'HEAD' = 'GET') {
  const res = await request(`http://127.0.0.1:${admin.address.port}${path}`, { method });
  const body = await res.body.text();
  return { status: res.statusCode, headers: res.headers, body };
}

async function setup(readiness: () => Readiness, withStore = true) {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-admin-'));
  await writeFile(join(dir, 'p.yaml'), policies);
  const metrics = createMetrics({ now: () => Date.UTC(2026, 0, 1) });
  const options = defaultCompileOptions();
  options.workload.namespace = 'shop';
  let store: PolicyStore | undefined;
  if (withStore) {
    const r = await createPolicyStore({ paths: [dir], options, metrics, watch: false });
    if ('diagnostics' in r) assert.fail(JSON.stringify(r.diagnostics));
    store = r.store;
  }
  const admin = await startAdminServer({ listen: { host: '127.0.0.1', port: 0 }, metrics, policyStore: () => store, readiness, version: '0.1.0-test' });
  return {
    dir, metrics, admin, store,
    async close() { await admin.close(); await store?.close(); await rm(dir, { recursive: true, force: true }); },
  };
}

test('/live, /ready, /policy, 404 and 405', async () => {
  let ready: Readiness = { ready: false, reasons: ['listener inbound-8443 not listening'] };
  const env = await setup(() => ready);
  try {
    assert.equal(env.admin.address.host, '127.0.0.1');
    assert.ok(env.admin.address.port > 0);
    assert.equal((await get(env.admin, '/live')).status, 200);

    const notReady = await get(env.admin, '/ready');
    assert.equal(notReady.status, 503);
    assert.deepEqual(JSON.parse(notReady.body), { ready: false, reasons: ['listener inbound-8443 not listening'] });
    ready = { ready: true, reasons: [] };
    const isReady = await get(env.admin, '/ready?verbose=1');
    assert.equal(isReady.status, 200);
    assert.deepEqual(JSON.parse(isReady.body), { ready: true, reasons: [] });

    const pol = await get(env.admin, '/policy');
    assert.equal(pol.status, 200);
    assert.match(String(pol.headers['content-type']), /^application\/json/);
    const body = JSON.parse(pol.body) as { version: string; revision: string; documents: { name: string; applies: boolean }[]; lastReload: { result: string }; diagnostics: unknown[] };
    assert.equal(body.version, '0.1.0-test');
    assert.equal(body.revision, env.store?.current().revision);
    assert.deepEqual(body.documents.map((d) => [d.name, d.applies]), [['allow-get', true], ['elsewhere', false]]);
    assert.equal(body.lastReload.result, 'success');
    assert.deepEqual(body.diagnostics, []);

    // A failed reload shows on /policy while the good revision stays.
    await writeFile(join(env.dir, 'p.yaml'), 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: x, namespace: shop}\nspec: {action: NOPE}\n');
    await env.store?.reload();
    const failed = JSON.parse((await get(env.admin, '/policy')).body) as { revision: string; lastReload: { result: string; diagnostics: { severity: string }[] } };
    assert.equal(failed.revision, body.revision);
    assert.equal(failed.lastReload.result, 'failure');
    assert.ok(failed.lastReload.diagnostics.some((d) => d.severity === 'error'));

    assert.equal((await get(env.admin, '/nope')).status, 404);
    assert.equal((await get(env.admin, '/')).status, 404);
    const post = await get(env.admin, '/metrics', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers['allow'], 'GET, HEAD');
    const head = await get(env.admin, '/live', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
  } finally {
    await env.close();
  }
});

test('/ready is 503 and /policy says so while no policy snapshot is loaded', async () => {
  const env = await setup(() => ({ ready: true, reasons: [] }), false);
  try {
    const r = await get(env.admin, '/ready');
    assert.equal(r.status, 503);
    assert.deepEqual(JSON.parse(r.body), { ready: false, reasons: ['no policy snapshot loaded'] });
    const p = await get(env.admin, '/policy');
    assert.equal(p.status, 503);
    assert.equal((JSON.parse(p.body) as { loaded: boolean }).loaded, false);
  } finally {
    await env.close();
  }
});

test('/metrics exposes every Portcullis metric with bounded labels', async () => {
  const env = await setup(() => ({ ready: true, reasons: [] }));
  try {
    const m = env.metrics;
    m.recordDecision({ listener: 'inbound-8443', verdict: 'deny', mode: 'enforce', reason: 'no_allow_policy_matched', wouldDeny: false, decisionSeconds: 0.000012 });
    m.recordDecision({ listener: 'inbound-8443', verdict: 'deny', mode: 'enforce', reason: 'no_allow_policy_matched', wouldDeny: false, decisionSeconds: 0.000003 });
    m.recordDecision({ listener: 'inbound-8443', verdict: 'deny', mode: 'audit', reason: 'deny_policy_matched', wouldDeny: true, decisionSeconds: 0.0002 });
    m.recordUpstream('success', 0.004);
    m.recordUpstream('refused', 0.0001);
    m.recordDecisionLogDropped();
    m.recordDecisionLogDropped(2);
    m.setCertificateNotAfter(() => Date.UTC(2026, 0, 1, 1));
    m.connectionOpened('inbound-8443');
    m.connectionOpened('inbound-8443');
    m.connectionClosed('inbound-8443');
    m.recordConnection('inbound-8443', 'accepted');
    m.recordConnection('inbound-8443', 'identity_rejected');
    m.http2StreamOpened();
    m.recordJwt('valid');
    m.recordJwt('jwt_expired');
    m.recordRateLimited();

    const res = await get(env.admin, '/metrics');
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const { samples, types } = parseExposition(res.body);
    const revision = env.store?.current().revision as string;

    assert.equal(value(samples, 'portcullis_requests_total', { verdict: 'deny', mode: 'enforce', reason: 'no_allow_policy_matched', listener: 'inbound-8443' }), 2);
    assert.equal(value(samples, 'portcullis_requests_total', { verdict: 'deny', mode: 'audit', reason: 'deny_policy_matched' }), 1);
    assert.equal(value(samples, 'portcullis_would_deny_total', { reason: 'deny_policy_matched' }), 1);
    assert.equal(value(samples, 'portcullis_would_deny_total', { reason: 'no_allow_policy_matched' }), undefined);
    assert.equal(value(samples, 'portcullis_decision_duration_seconds_bucket', { le: '0.000005' }), 1);
    assert.equal(value(samples, 'portcullis_decision_duration_seconds_bucket', { le: '0.000025' }), 2);
    assert.equal(value(samples, 'portcullis_decision_duration_seconds_count'), 3);
    assert.equal(value(samples, 'portcullis_upstream_duration_seconds_count', { outcome: 'success' }), 1);
    assert.equal(value(samples, 'portcullis_upstream_duration_seconds_count', { outcome: 'refused' }), 1);
    assert.equal(value(samples, 'portcullis_policy_reload_total', { result: 'success' }), 1);
    assert.equal(value(samples, 'portcullis_policy_reload_total', { result: 'failure' }), 0);
    assert.equal(value(samples, 'portcullis_policy_revision_info', { revision }), 1);
    assert.equal(value(samples, 'portcullis_decision_log_dropped_total'), 3);
    assert.equal(value(samples, 'portcullis_certificate_expiry_seconds'), 3600);
    assert.equal(value(samples, 'portcullis_connections_active', { listener: 'inbound-8443' }), 1);
    assert.equal(value(samples, 'portcullis_connections_total', { listener: 'inbound-8443', outcome: 'identity_rejected' }), 1);
    assert.equal(value(samples, 'portcullis_http2_streams_active'), 1);
    assert.equal(value(samples, 'portcullis_jwt_total', { result: 'jwt_expired' }), 1);
    assert.equal(value(samples, 'portcullis_rate_limited_total'), 1);
    assert.ok(value(samples, 'process_cpu_user_seconds_total') !== undefined, 'default process metrics are exposed');

    assert.equal(types.get('portcullis_requests_total'), 'counter');
    assert.equal(types.get('portcullis_decision_duration_seconds'), 'histogram');
    assert.equal(types.get('portcullis_certificate_expiry_seconds'), 'gauge');
    // Bounded labels: nothing path- or principal-shaped ever becomes a label name.
    const labelNames = new Set(samples.filter((s) => s.name.startsWith('portcullis_')).flatMap((s) => Object.keys(s.labels)));
    assert.deepEqual([...labelNames].sort(), ['le', 'listener', 'mode', 'outcome', 'reason', 'result', 'revision', 'verdict']);
  } finally {
    await env.close();
  }
});

test('label sets are capped so a label bug cannot grow memory without bound', async () => {
  const m = createMetrics({ processMetrics: false });
  for (let i = 0; i < 3000; i++) m.recordJwt(`result-${i}`);
  const { samples } = parseExposition(await m.scrape());
  const jwt = samples.filter((s) => s.name === 'portcullis_jwt_total');
  assert.ok(jwt.length <= 2001, `${jwt.length} series`);
  assert.equal(value(samples, 'portcullis_jwt_total', { result: 'other' }), 1000);

  for (let i = 0; i < 2500; i++) m.recordDecision({ listener: 'l', verdict: 'deny', mode: 'enforce', reason: `r${i}`, wouldDeny: true, decisionSeconds: 0 });
  const again = parseExposition(await m.scrape()).samples;
  assert.equal(again.filter((s) => s.name === 'portcullis_requests_total').length, 2001);
  assert.equal(value(again, 'portcullis_requests_total', { verdict: 'other', reason: 'other' }), 500);
  assert.equal(value(again, 'portcullis_would_deny_total', { reason: 'other' }), 500);
  // Counts accumulate across scrapes without double counting.
  m.recordDecision({ listener: 'l', verdict: 'deny', mode: 'enforce', reason: 'r1', wouldDeny: false, decisionSeconds: 0 });
  const third = parseExposition(await m.scrape()).samples;
  assert.equal(value(third, 'portcullis_requests_total', { reason: 'r1' }), 2);
  assert.equal(value(third, 'portcullis_would_deny_total', { reason: 'r1' }), 1);
});
