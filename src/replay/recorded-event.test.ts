// Reading decision-log lines for replay: replayable v1 events become check requests; older events, newer
// schema versions and damaged lines are told apart with a message, never a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { notReplayable, readRecordedLine } from './recorded-event.js';

const replayable = {
  v: 1, decision_id: 'abc-1', time: '2026-12-06T20:00:00.000Z', mode: 'enforce', verdict: 'allow', would_deny: false, dialect: 'istio',
  policy: { kind: 'AuthorizationPolicy', namespace: 'demo', name: 'service-b-allow' }, rule: 'ns[demo]-policy[service-b-allow]-rule[0]',
  authorization: null, reason: 'allow_policy_matched', audit: null, shadow: null,
  peer: { spiffe_id: 'spiffe://cluster.local/ns/demo/sa/service-a', ip: '192.0.2.2' },
  request: {
    protocol: 'http1', method: 'GET', authority: 'service-b:8443', path: '/api/orders/42', listener: 'inbound', port: 8080,
    raw_path: '/api//orders/42', query_keys: ['page', 'access_token'], headers: { 'user-agent': 'curl/8', authorization: 'Bearer [redacted]' },
    destination_ip: '192.0.2.2',
  },
  jwt: { iss: 'https://issuer.example', sub: 'alice', claims: { iss: 'https://issuer.example', sub: 'alice', aud: 'service-b' } },
  status: 200, grpc_status: null, policy_revision: 'r1', latency_us: 30, upstream: { outcome: 'ok', status: 200, duration_us: 400 }, capture: 'replayable',
};

test('a replayable event becomes the request check decides: raw path, parameter names without values, headers, peer', () => {
  const r = readRecordedLine(JSON.stringify(replayable));
  assert.equal(r.kind, 'request');
  if (r.kind !== 'request') return;
  assert.deepEqual(r.value.request, {
    protocol: 'http', port: 8080, peer: 'spiffe://cluster.local/ns/demo/sa/service-a', sourceIp: '192.0.2.2', remoteIp: '192.0.2.2',
    destinationIp: '192.0.2.2', method: 'GET', path: '/api//orders/42?page&access_token', host: 'service-b:8443',
    headers: { 'user-agent': 'curl/8', authorization: 'Bearer [redacted]' },
  });
  assert.deepEqual(r.value.token, { kind: 'verified', claims: replayable.jwt.claims });
  assert.deepEqual(r.value.recorded, {
    verdict: 'allow', reason: 'allow_policy_matched', dialect: 'istio', policy: replayable.policy, rule: replayable.rule, authorization: null,
  });
  assert.equal(r.value.revision, 'r1');
});

test('a rate-limited request is recorded as the allow policy gave; a JWT refusal keeps its reason and status', () => {
  const limited = readRecordedLine(JSON.stringify({ ...replayable, verdict: 'rate_limited', reason: 'rate_limited', status: 429 }));
  assert.ok(limited.kind === 'request');
  assert.equal(limited.value.recorded.verdict, 'allow');
  assert.equal(limited.value.recorded.reason, null);
  const refused = readRecordedLine(JSON.stringify({ ...replayable, verdict: 'unauthenticated', reason: 'jwt_bad_audience', status: 403, jwt: null, policy: null, rule: null, dialect: null }));
  assert.ok(refused.kind === 'request');
  assert.deepEqual(refused.value.token, { kind: 'failed', reason: 'jwt_bad_audience', status: 403, message: 'Audiences in Jwt are not allowed' });
});

test('an event written before replayable capture (or with minimal capture) is not replayable, and says why', () => {
  const { capture: _c, ...old } = replayable;
  const request = { protocol: 'http1', method: 'GET', authority: 'service-b:8443', path: '/api/orders/42', listener: 'inbound', port: 8080 };
  assert.deepEqual(readRecordedLine(JSON.stringify({ ...old, request, jwt: { iss: 'i', sub: 's' } })), { kind: 'not_replayable', why: notReplayable.noCapture });
  assert.match(notReplayable.noCapture, /decisionLogCapture: minimal/);
});

test('damaged lines are malformed with the reason: not JSON, not an event, a newer schema, a wrong field', () => {
  const cases: [string, RegExp][] = [
    ['{"v":1,"verdict":', /^not JSON/],
    ['[1,2]', /not a JSON object/],
    ['{"level":30,"msg":"started"}', /not a decision event/],
    [JSON.stringify({ ...replayable, v: 2 }), /schema version 2 is newer than this Portcullis reads \(1\)/],
    [JSON.stringify({ ...replayable, v: '1' }), /not a schema version/],
    [JSON.stringify({ ...replayable, request: { ...replayable.request, port: 'http' } }), /request.port is not a port number/],
    [JSON.stringify({ ...replayable, request: { ...replayable.request, headers: { a: 1 } } }), /request.headers.a is not a string/],
    [JSON.stringify({ ...replayable, request: { ...replayable.request, protocol: 'spdy' } }), /request.protocol "spdy"/],
    [JSON.stringify({ ...replayable, jwt: { iss: 'i', sub: 's' } }), /jwt.claims is missing/],
    [JSON.stringify({ ...replayable, policy: 'p' }), /policy is not/],
  ];
  for (const [line, error] of cases) {
    const r = readRecordedLine(line);
    assert.equal(r.kind, 'malformed', line);
    if (r.kind === 'malformed') assert.match(r.error, error, line);
  }
});

test('an opaque TCP event has no method, path or headers to replay', () => {
  const tcp = { ...replayable, request: { protocol: 'tcp', method: '', authority: '', path: '', listener: 'db', port: 5432, sni: 'db.demo' }, jwt: null };
  const r = readRecordedLine(JSON.stringify(tcp));
  assert.ok(r.kind === 'request');
  assert.deepEqual(r.value.request, { protocol: 'tcp', port: 5432, peer: 'spiffe://cluster.local/ns/demo/sa/service-a', sourceIp: '192.0.2.2', remoteIp: '192.0.2.2', sni: 'db.demo' });
});
