import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Decision } from '../policy/decision.js';
import { buildDecisionEvent, type DecisionRecord } from './decision-event.js';

const decision = {
  verdict: 'deny', reason: 'no_allow_policy_matched', dialect: 'istio', tier: 'http',
  policy: { dialect: 'istio', kind: 'AuthorizationPolicy', namespace: 'shop', name: 'allow-get' },
  rule: null, authorization: null, audit: null, shadow: null, effects: null,
} as unknown as Decision;

const base: DecisionRecord = {
  decision, mode: 'enforce', wouldDeny: false, policyRevision: 'rev-1',
  peer: { spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', ip: '10.0.0.7' },
  request: { protocol: 'http1', method: 'GET', authority: 'shop', path: '/admin', listener: 'inbound-8443', port: 8080 },
  jwt: null, status: 403, grpcStatus: null, latencyUs: 42, time: Date.UTC(2026, 0, 2, 3, 4, 5, 6), decisionId: 'd-1',
};

test('an inbound HTTP event has every v1 field, in the order every line has', () => {
  assert.equal(JSON.stringify(buildDecisionEvent(base)),
    '{"v":1,"decision_id":"d-1","time":"2026-01-02T03:04:05.006Z","mode":"enforce","verdict":"deny","would_deny":false,'
    + '"dialect":"istio","tier":"http","policy":{"kind":"AuthorizationPolicy","namespace":"shop","name":"allow-get"},"rule":null,"authorization":null,'
    + '"reason":"no_allow_policy_matched","audit":null,"shadow":null,"peer":{"spiffe_id":"spiffe://cluster.local/ns/shop/sa/web","ip":"10.0.0.7"},'
    + '"request":{"protocol":"http1","method":"GET","authority":"shop","path":"/admin","listener":"inbound-8443","port":8080},'
    + '"jwt":null,"status":403,"grpc_status":null,"policy_revision":"rev-1","latency_us":42}');
});

test('an opaque TCP event counts the bytes after the upstream outcome', () => {
  const e = buildDecisionEvent({
    ...base, status: 0,
    request: { protocol: 'tcp', method: '', authority: '', path: '', listener: 'db', port: 5432 },
    upstream: { outcome: 'ok', status: null, durationUs: 900, bytesSent: 12, bytesReceived: 34 },
  });
  assert.equal(JSON.stringify(e.upstream), '{"outcome":"ok","status":null,"duration_us":900,"bytes_sent":12,"bytes_received":34}');
});

test('a refusal that did not come from the engine keeps the decision\'s provenance and names its own verdict', () => {
  const e = buildDecisionEvent({ ...base, override: { verdict: 'unauthenticated', reason: 'jwt_expired' }, status: 401 });
  assert.equal(e.verdict, 'unauthenticated');
  assert.equal(e.reason, 'jwt_expired');
  assert.deepEqual(e.policy, { kind: 'AuthorizationPolicy', namespace: 'shop', name: 'allow-get' });
});

test('a record with neither a decision nor an override is an internal error, never an allow', () => {
  const e = buildDecisionEvent({ ...base, decision: null });
  assert.equal(e.verdict, 'error');
  assert.equal(e.reason, 'internal_error');
  assert.equal(e.dialect, null);
});

test('outbound events get decision ids of the same form as inbound ones', () => {
  const { decisionId: _omit, ...rest } = base;
  const a = buildDecisionEvent({ ...rest, decision: null, override: { verdict: 'allow', reason: 'forwarded' } });
  const b = buildDecisionEvent({ ...rest, decision: null, override: { verdict: 'allow', reason: 'forwarded' } });
  assert.match(a.decision_id, /^[0-9a-f]{12}-[0-9a-z]+$/);
  assert.notEqual(a.decision_id, b.decision_id);
});
