// Integration: traffic recorded by the real proxy (mTLS clients, real JWTs) is replayed by `portcullis replay`
// (the CLI as shipped) under a changed policy set: the exact changes, no change for the unchanged set, the
// exit codes of --fail-on, gzip input, and damaged or older lines counted instead of crashing.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { jwksJson, makeKey, mint, type TestKey } from '../../src/jwt/testing.js';
import type { DecisionEventV1 } from '../../src/observe/types.js';
import { getText, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { repoRoot } from '../helpers/paths.js';

const main = join(repoRoot(), 'dist/src/main.js');
const workload = ['--namespace', 'foo', '--service-account', 'httpbin'];

const policies = (key: TestKey, o: { orderMethods: string; postPrincipals: string; otherPolicy: string }): string => `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec:
  jwtRules:
  - issuer: https://issuer.example
    jwks: '${jwksJson(key)}'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin", "/admin/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders, namespace: foo}
spec:
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/frontend"]}}]
    to: [{operation: {methods: ${o.orderMethods}, paths: ["/orders", "/orders/*"]}}]
  - from: [{source: {requestPrincipals: ${o.postPrincipals}}}]
    to: [{operation: {methods: ["POST"], paths: ["/orders"]}}]
  - to: [{operation: {paths: ["/reports/*"]}}]
    when: [{key: "request.auth.claims[role]", values: [auditor]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ${o.otherPolicy}, namespace: foo}
spec:
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/other"]}}]
    to: [{operation: {methods: ["GET"], paths: ["/orders/*"]}}]
`;
const recorded = (key: TestKey) => policies(key, { orderMethods: '["GET", "DELETE"]', postPrincipals: '["https://issuer.example/alice"]', otherPolicy: 'orders-other' });
/** Tightens one rule (no DELETE), widens another (any subject of the issuer may POST), renames a policy. */
const candidate = (key: TestKey) => policies(key, { orderMethods: '["GET"]', postPrincipals: '["https://issuer.example/*"]', otherPolicy: 'orders-readers' });

interface Run { code: number; stdout: string; stderr: string }
function replay(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [main, 'replay', ...args, ...workload], { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

interface Report {
  counts: Record<string, number>;
  changes: Record<string, { total: number; by_rule: { key: string; count: number; samples: { method: string; path: string; peer: string | null; failing?: string[]; at: string }[] }[]; by_peer: { key: string; count: number }[]; by_path: { key: string; count: number }[] }>;
  not_replayable: { why: string; count: number; first: string }[];
  malformed: { count: number; first: { at: string; error: string }[] };
}

describe('portcullis replay of traffic recorded by portcullis run', () => {
  let key: TestKey;
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  let dir: string;
  let log: string;
  let events: DecisionEventV1[];
  const files = { recorded: '', candidate: '' };

  before(async () => {
    key = await makeKey('ES256', 'k1');
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: recorded(key), upstream: upstream.url });
    const { svids } = proxy;
    const frontend = mtlsAgent(proxy, svids.frontend);
    const other = mtlsAgent(proxy, svids.other);
    const admin = mtlsAgent(proxy, svids.admin);
    const exp = Math.floor(Date.now() / 1000) + 600;
    const alice = await mint(key, { iss: 'https://issuer.example', sub: 'alice', exp });
    const bob = await mint(key, { iss: 'https://issuer.example', sub: 'bob', role: 'auditor', exp });
    const expired = await mint(key, { iss: 'https://issuer.example', sub: 'alice', exp: Math.floor(Date.now() / 1000) - 3600 });
    const calls: [ReturnType<typeof mtlsAgent>, string, string, Record<string, string>, number][] = [
      [frontend, 'GET', '/orders/1', { 'user-agent': 'replay-test' }, 200],
      [frontend, 'GET', '/orders//2?page=3', {}, 200],
      [frontend, 'DELETE', '/orders/3', {}, 200],
      [other, 'GET', '/orders/4', {}, 200],
      [other, 'DELETE', '/orders/5', {}, 403],
      [frontend, 'POST', '/orders', { authorization: `Bearer ${alice}` }, 200],
      [frontend, 'POST', '/orders', {}, 403],
      [admin, 'GET', '/reports/q1', { authorization: `Bearer ${bob}` }, 200],
      [frontend, 'GET', '/admin/x', {}, 403],
      [frontend, 'GET', '/orders/6', { authorization: `Bearer ${expired}` }, 401],
      [admin, 'POST', '/orders', { authorization: `Bearer ${bob}`, cookie: 'session=s3cret' }, 403],
    ];
    for (const [agent, method, path, headers, status] of calls) {
      const r = await getText(`${proxy.origin}${path}`, agent, { method, headers });
      assert.equal(r.status, status, `${method} ${path}`);
    }
    await Promise.all([frontend.close(), other.close(), admin.close()]);
    events = await proxy.events(calls.length);
    assert.equal(events.length, calls.length);
    dir = mkdtempSync(join(tmpdir(), 'portcullis-replay-'));
    log = join(dir, 'decisions.ndjson');
    writeFileSync(log, readFileSync(proxy.logFile, 'utf8'));
    files.recorded = join(dir, 'recorded.yaml');
    files.candidate = join(dir, 'candidate.yaml');
    writeFileSync(files.recorded, recorded(key));
    writeFileSync(files.candidate, candidate(key));
  });
  after(async () => {
    await proxy?.stop();
    await upstream?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('the log holds the replay attributes and no secret', () => {
    const text = readFileSync(log, 'utf8');
    assert.ok(!text.includes('s3cret'));
    assert.ok(!/eyJ[A-Za-z0-9_-]+\.eyJ/.test(text), 'no token in the log');
    assert.ok(events.every((e) => e.capture === 'replayable'));
    assert.deepEqual(events[5]?.request.headers?.['authorization'], 'Bearer [redacted]');
    assert.deepEqual(events[1]?.request.raw_path, '/orders//2');
  });

  it('a changed policy set: the exact changes, grouped, with the failing condition of the newly denied request', async () => {
    const r = await replay(['--log', log, '--policies', files.candidate, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.deepEqual(report.counts, { events: 11, replayed: 11, unchanged: 8, newly_denied: 1, newly_allowed: 1, changed_reason: 1, not_replayable: 0, malformed: 0 });
    const denied = report.changes['newly_denied']!;
    assert.deepEqual(denied.by_rule.map((g) => [g.key, g.count]), [[
      'allow (allow_policy_matched) by istio AuthorizationPolicy foo/orders, rule ns[foo]-policy[orders]-rule[0] -> deny (no_allow_policy_matched)', 1,
    ]]);
    const sample = denied.by_rule[0]!.samples[0]!;
    assert.deepEqual([sample.method, sample.path, sample.peer, sample.at], ['DELETE', '/orders/3', 'spiffe://cluster.local/ns/foo/sa/frontend', 'decisions.ndjson:3']);
    assert.ok(sample.failing?.some((f) => f.startsWith('ns[foo]-policy[orders]-rule[0] did not match') && f.includes('request.method') && f.includes('"DELETE"')), JSON.stringify(sample.failing));
    assert.deepEqual(denied.by_peer.map((g) => [g.key, g.count]), [['spiffe://cluster.local/ns/foo/sa/frontend', 1]]);
    assert.deepEqual(denied.by_path.map((g) => [g.key, g.count]), [['/orders/*', 1]]);
    const allowed = report.changes['newly_allowed']!;
    assert.deepEqual(allowed.by_rule.map((g) => [g.key, g.count]), [[
      'deny (no_allow_policy_matched) -> allow (allow_policy_matched) by istio AuthorizationPolicy foo/orders, rule ns[foo]-policy[orders]-rule[1]', 1,
    ]]);
    assert.deepEqual(allowed.by_peer.map((g) => g.key), ['spiffe://cluster.local/ns/foo/sa/admin']);
    const changed = report.changes['changed_reason']!;
    assert.deepEqual(changed.by_rule.map((g) => g.key), [
      'allow (allow_policy_matched) by istio AuthorizationPolicy foo/orders-other, rule ns[foo]-policy[orders-other]-rule[0] -> allow (allow_policy_matched) by istio AuthorizationPolicy foo/orders-readers, rule ns[foo]-policy[orders-readers]-rule[0]',
    ]);
  });

  it('the unchanged policy set reports zero changes, as the baseline or against the recorded decisions', async () => {
    for (const args of [['--policies', files.recorded], ['--policies', files.recorded, '--baseline', files.recorded]]) {
      const r = await replay(['--log', log, ...args, '--format', 'json', '--fail-on', 'any']);
      assert.equal(r.code, 0, r.stderr + r.stdout);
      assert.deepEqual((JSON.parse(r.stdout) as Report).counts, { events: 11, replayed: 11, unchanged: 11, newly_denied: 0, newly_allowed: 0, changed_reason: 0, not_replayable: 0, malformed: 0 });
    }
  });

  it('--baseline CURRENT decides both sides and finds the same changes', async () => {
    const r = await replay(['--log', log, '--policies', files.candidate, '--baseline', files.recorded, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const c = (JSON.parse(r.stdout) as Report).counts;
    assert.deepEqual([c['unchanged'], c['newly_denied'], c['newly_allowed'], c['changed_reason']], [8, 1, 1, 1]);
  });

  it('--fail-on exits 1 only for the change it names', async () => {
    const codes = await Promise.all([undefined, 'newly-denied', 'newly-allowed', 'any'].map(async (f) => (await replay(['--log', log, '--policies', files.candidate, ...(f ? ['--fail-on', f] : [])])).code));
    assert.deepEqual(codes, [0, 1, 1, 1]);
    const tightenOnly = join(dir, 'tighten-only.yaml');
    writeFileSync(tightenOnly, policies(key, { orderMethods: '["GET"]', postPrincipals: '["https://issuer.example/alice"]', otherPolicy: 'orders-other' }));
    const only = await Promise.all(['newly-denied', 'newly-allowed'].map(async (f) => (await replay(['--log', log, '--policies', tightenOnly, '--fail-on', f])).code));
    assert.deepEqual(only, [1, 0]);
    const bad = await replay(['--log', log, '--policies', files.candidate, '--fail-on', 'newly_denied']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--fail-on must be one of newly-denied, newly-allowed, any/);
  });

  it('reads gzip logs, several logs at once, and counts damaged and older lines without crashing', async () => {
    const gz = join(dir, 'decisions.ndjson.gz');
    writeFileSync(gz, gzipSync(readFileSync(log)));
    const first = JSON.parse(readFileSync(log, 'utf8').split('\n')[0]!) as Record<string, unknown>;
    const { capture: _c, ...older } = first;
    const damaged = join(dir, 'damaged.ndjson');
    writeFileSync(damaged, ['not json at all', JSON.stringify({ ...first, v: 2 }), JSON.stringify(older), '{"v":1,"capture":"replayable","verdict":"allow"}', ''].join('\n'));
    const r = await replay(['--log', gz, '--log', damaged, '--policies', files.candidate, '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as Report;
    assert.deepEqual(report.counts, { events: 15, replayed: 11, unchanged: 8, newly_denied: 1, newly_allowed: 1, changed_reason: 1, not_replayable: 1, malformed: 3 });
    assert.deepEqual(report.malformed.first.map((p) => p.at), ['damaged.ndjson:1', 'damaged.ndjson:2', 'damaged.ndjson:4']);
    assert.match(report.malformed.first[1]!.error, /schema version 2 is newer/);
    assert.deepEqual(report.not_replayable.map((s) => [s.count, s.first]), [[1, 'damaged.ndjson:3']]);
    assert.match(report.not_replayable[0]!.why, /decisionLogCapture: minimal/);
    const text = await replay(['--log', gz, '--log', damaged, '--policies', files.candidate]);
    assert.match(text.stdout, /malformed: damaged\.ndjson:1: not JSON/);
  });

  it('a log with nothing to replay, or that cannot be read, is unusable input (exit 2) with a clear message', async () => {
    const older = join(dir, 'older.ndjson');
    writeFileSync(older, readFileSync(log, 'utf8').split('\n').filter((l) => l).map((l) => {
      const { capture: _c, ...rest } = JSON.parse(l) as Record<string, unknown>;
      return JSON.stringify(rest);
    }).join('\n'));
    const r = await replay(['--log', older, '--policies', files.candidate]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no event could be decided again: 11 not replayable \(no replay attributes/);
    // A candidate that does not parse is refused, never replayed as "no policies" (which would allow everything).
    const broken = join(dir, 'broken.yaml');
    writeFileSync(broken, candidate(key).replace('values: [auditor]}]', 'values: [auditor]}'));
    const refused = await replay(['--log', log, '--policies', broken]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /error PRT_YAML_SYNTAX[\s\S]*the policy set has errors; nothing was decided/);
    assert.equal(refused.stdout, '');
    const missing = await replay(['--log', join(dir, 'nope.ndjson'), '--policies', files.candidate]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read the log .*nope\.ndjson: no such file/);
  });

  it('--format markdown is a short pull-request comment', async () => {
    const r = await replay(['--log', log, '--policies', files.candidate, '--format', 'markdown']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^### Policy replay: 1 newly denied, 1 newly allowed\n/);
    assert.match(r.stdout, /\| newly denied \| 1 \|/);
    assert.match(r.stdout, /`DELETE \/orders\/3` from `spiffe:\/\/cluster.local\/ns\/foo\/sa\/frontend`<br>failing: /);
    assert.ok(r.stdout.split('\n').length < 40);
  });
});
