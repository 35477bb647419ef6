import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Decision } from '../policy/decision.js';
import { buildDecisionEvent, type DecisionRecord } from './decision-event.js';
import { decisionRecordJson } from './decision-json.js';
import { redactionFor, type CaptureFacts } from './capture.js';
import type { RequestContext } from '../policy/context-types.js';
import type { PolicySnapshot } from '../policy/snapshot.js';

// Strings with what JSON must escape: quotes, backslashes, controls, paired and lone surrogates, DEL, non-ASCII.
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.string({ unit: fc.constantFrom('"', '\\', '\n', '\u0000', '\u001f', '\u007f', '\u2028', 'é', '\ud83d', '\ude00', '\ud83d\ude00', 'a', '/') }),
);
const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });
const number = fc.oneof(fc.integer(), fc.double(), fc.constantFrom(0, -0, 9, 10, 99, 100, 0x7fffffff, 0x80000000, 1e21, 1e-7, Number.MAX_SAFE_INTEGER));
const policyRef = fc.record({ dialect: text, kind: text, namespace: text, name: text });

const decision: fc.Arbitrary<Decision | null> = maybe(fc.record({
  verdict: text, reason: text, dialect: text, tier: maybe(text), policy: maybe(policyRef), rule: maybe(text), authorization: maybe(text),
  audit: maybe(fc.record({ policy: policyRef, rule: maybe(text) })),
  shadow: maybe(fc.record({ verdict: text, action: text, policy: maybe(policyRef), rule: maybe(text) })),
  effects: fc.constant(null),
}).map((d) => d as unknown as Decision));

const record: fc.Arbitrary<DecisionRecord> = fc.record({
  decision,
  override: fc.option(fc.record({ verdict: text, reason: text }), { nil: undefined }),
  mode: fc.constantFrom('enforce' as const, 'audit' as const),
  wouldDeny: fc.boolean(),
  policyRevision: text,
  peer: fc.record({ spiffeId: maybe(text), ip: text }),
  request: fc.record({ protocol: text, method: text, authority: text, path: text, listener: text, port: number }),
  jwt: maybe(fc.record({ iss: text, sub: text })),
  status: number,
  grpcStatus: maybe(number),
  latencyUs: number,
  upstream: fc.option(fc.record({
    outcome: text, status: maybe(number), durationUs: number,
    bytesSent: fc.option(number, { nil: undefined }), bytesReceived: fc.option(number, { nil: undefined }),
  }, { requiredKeys: ['outcome', 'status', 'durationUs'] }), { nil: undefined }),
  // Times of this century, and any a Date can hold (six-digit and negative years are written in ISO's extended form).
  time: fc.oneof(fc.integer({ min: 0, max: 4102444800000 }), fc.integer({ min: -8.64e15, max: 8.64e15 })),
  decisionId: fc.option(text, { nil: undefined }),
}, { requiredKeys: ['decision', 'mode', 'wouldDeny', 'policyRevision', 'peer', 'request', 'jwt', 'status', 'grpcStatus', 'latencyUs'] });

test('the line written straight from a record is exactly JSON.stringify(buildDecisionEvent(record)), with and without capture', () => {
  const redaction = redactionFor({ jwtProviders: [{ fromHeaders: [{ name: 'x-token', prefix: 'Token ' }] }] } as unknown as PolicySnapshot, { mode: 'replayable', redactHeaders: ['x-secret'] });
  const capture: fc.Arbitrary<CaptureFacts | undefined> = fc.option(fc.record({
    context: fc.record({
      protocol: fc.constantFrom('http', 'grpc', 'tcp'), path: text, sourceIp: fc.constantFrom('10.0.0.1', '10.0.0.2'), remoteIp: fc.constantFrom('10.0.0.1', '10.0.0.2'),
      destinationIp: fc.option(text, { nil: undefined }), sni: fc.option(text, { nil: undefined }),
      jwt: maybe(fc.record({ issuer: text, subject: text, claims: fc.dictionary(text, fc.jsonValue()) })),
    }).map((c) => c as unknown as RequestContext),
    target: fc.option(fc.oneof(text, fc.constantFrom('/a?x=1&y&&z=2#f', '/p?', '/q?a=1&a=2', '/r#h?x')), { nil: undefined }),
    headers: fc.option(fc.dictionary(fc.oneof(text, fc.constantFrom('authorization', 'cookie', 'x-secret', 'x-token', ':path', 'host', '__proto__', '1', '20')),
      fc.oneof(text, fc.array(text), fc.constantFrom('Bearer abc', 'token Token x', 'a=1; b=2'))), { nil: undefined }),
    redaction: fc.constant(redaction),
  }, { requiredKeys: ['context', 'redaction'] }), { nil: undefined });
  fc.assert(fc.property(record, capture, (r, c) => {
    const withCapture: DecisionRecord = c ? { ...r, capture: c } : { ...r };
    const line = decisionRecordJson(withCapture);
    // The id and time are fixed in the record by the first call, so the event built afterwards is the same event.
    assert.equal(line, JSON.stringify(buildDecisionEvent(withCapture)));
  }), { numRuns: 5000 });
});

test('a record with a field of an unexpected type still gets the line JSON.stringify writes for its event', () => {
  const base: DecisionRecord = {
    decision: null, override: { verdict: 'allow', reason: 'forwarded' }, mode: 'enforce', wouldDeny: false, policyRevision: 'r',
    peer: { spiffeId: null, ip: '127.0.0.1' }, request: { protocol: 'http1', method: 'GET', authority: 'a', path: '/', listener: 'l', port: 1 },
    jwt: null, status: 200, grpcStatus: null, latencyUs: 1, time: 0, decisionId: 'd',
  };
  const odd = [
    { ...base, status: '200' },
    { ...base, request: { ...base.request, method: undefined } },
    { ...base, decision: { verdict: 'deny', reason: 'x', dialect: 'istio', tier: null, policy: null, rule: { nested: [1] }, authorization: null, audit: null, shadow: null } },
    { ...base, upstream: { outcome: 'ok', status: 200, durationUs: 1, bytesSent: '3' } },
  ] as unknown as DecisionRecord[];
  for (const r of odd) assert.equal(decisionRecordJson(r), JSON.stringify(buildDecisionEvent(r)));
});

test('a record without an id or time gets them once: the line and a later built event agree', () => {
  const r: DecisionRecord = {
    decision: null, override: { verdict: 'deny', reason: 'x' }, mode: 'audit', wouldDeny: true, policyRevision: 'r',
    peer: { spiffeId: 'spiffe://a/b', ip: '::1' }, request: { protocol: 'http2', method: 'POST', authority: 'h', path: '/p', listener: 'l', port: 8080 },
    jwt: { iss: 'i', sub: 's' }, status: 403, grpcStatus: 7, latencyUs: 12,
  };
  // Plain ASCII fields need no JSON.stringify at all: the line comes from the record, not from the fallback.
  const stringify = JSON.stringify;
  let line: string;
  JSON.stringify = () => { throw new Error('fallback taken'); };
  try { line = decisionRecordJson(r); } finally { JSON.stringify = stringify; }
  assert.ok(r.decisionId && typeof r.time === 'number');
  assert.equal(line, JSON.stringify(buildDecisionEvent(r)));
});

test('lines whose values repeat from record to record (kept runs copied, missed and replaced) are each exactly JSON.stringify(buildDecisionEvent(record))', () => {
  // Each field usually has its first value and sometimes another, so a record often differs from one written
  // before it in one field alone: each value a kept run is copied for must be one it was written from. Odd
  // types ('200', NaN, -0) sit beside the usual ones.
  const usually = <T>(first: T, ...others: T[]) => fc.oneof({ arbitrary: fc.constant(first), weight: 6 * Math.max(1, others.length) }, ...others.map((o) => ({ arbitrary: fc.constant(o), weight: 1 })));
  const ref = fc.record({ dialect: usually('istio'), kind: usually('AuthorizationPolicy', 'Server'), namespace: usually('shop', 'pay'), name: usually('allow', 'deny') });
  const smallDecision = fc.record({
    verdict: usually('allow', 'deny'), reason: usually('allow_policy_matched', 'deny_policy_matched'), dialect: usually('istio', 'linkerd'),
    tier: usually<string | null>('http', null), policy: fc.oneof({ arbitrary: ref, weight: 9 }, { arbitrary: fc.constant(null), weight: 1 }),
    rule: usually<string | null>('ns[shop]-policy[allow]-rule[0]', 'ns[shop]-policy[allow]-rule[1]', null), authorization: usually<string | null>(null, 'authorizationpolicy/a'),
    audit: fc.oneof({ arbitrary: fc.constant(null), weight: 9 }, { arbitrary: fc.record({ policy: ref, rule: usually<string | null>('r', null) }), weight: 1 }),
    shadow: fc.oneof({ arbitrary: fc.constant(null), weight: 9 }, { arbitrary: fc.record({ verdict: usually('deny'), action: usually('DENY'), policy: ref, rule: usually<string | null>('r') }), weight: 1 }),
    effects: fc.constant(null),
  }).map((d) => d as unknown as Decision);
  const smallNumber = usually<unknown>(200, 403, 0, -0, NaN, '200');
  const smallRecord = fc.record({
    decision: fc.oneof({ arbitrary: smallDecision, weight: 9 }, { arbitrary: fc.constant(null), weight: 1 }),
    override: usually(undefined, { verdict: 'deny', reason: 'jwt_invalid' }),
    mode: usually('enforce' as const, 'audit' as const),
    wouldDeny: usually(false, true),
    policyRevision: usually('r1', 'r2'),
    peer: fc.record({ spiffeId: usually<string | null>('spiffe://a/x', 'spiffe://a/"y"', null), ip: usually('10.0.0.1', '10.0.0.2') }),
    request: fc.record({ protocol: usually('http1', 'grpc'), method: usually('GET', 'POST'), authority: usually('a:80', 'b:80'), path: usually('/a', '/b'), listener: usually('in', 'out'), port: usually<unknown>(8080, 9090, '8080') }),
    jwt: usually<{ iss: string; sub: string } | null>(null, { iss: 'i', sub: 's' }, { iss: 'i', sub: 't' }, { iss: 'j', sub: 's' }),
    status: smallNumber,
    grpcStatus: usually<unknown>(null, 0, 7, '0'),
    latencyUs: usually(1, 2),
    upstream: usually(undefined, { outcome: 'ok', status: 200, durationUs: 5 }, { outcome: 'reset', status: 200, durationUs: 5 }, { outcome: 'ok', status: null, durationUs: 6 }, { outcome: 'ok', status: '200', durationUs: 6 }),
    time: usually(1_800_000_000_123, 0),
  }).map((r) => r as unknown as DecisionRecord);
  const redaction = redactionFor({ jwtProviders: [] } as unknown as PolicySnapshot, { mode: 'replayable', redactHeaders: [] });
  const smallCapture = usually<CaptureFacts | undefined>(undefined,
    { context: { protocol: 'http', path: '/a', sourceIp: '10.0.0.1', remoteIp: '10.0.0.1', jwt: null } as unknown as RequestContext, target: '/a?x=1', headers: { accept: '*/*' }, redaction },
    { context: { protocol: 'http', path: '/a', sourceIp: '10.0.0.1', remoteIp: '10.0.0.9', jwt: null } as unknown as RequestContext, target: '/a', redaction },
    { context: { protocol: 'http', path: '/a', sourceIp: '10.0.0.1', remoteIp: '10.0.0.1', jwt: { issuer: 'i', subject: 's', claims: { scope: 'a' } } } as unknown as RequestContext, target: '/a', redaction });
  fc.assert(fc.property(fc.array(fc.tuple(smallRecord, smallCapture), { minLength: 20, maxLength: 60 }), (records) => {
    for (const [r, c] of records) {
      const withCapture: DecisionRecord = c ? { ...r, capture: c } : { ...r };
      assert.equal(decisionRecordJson(withCapture), JSON.stringify(buildDecisionEvent(withCapture)));
    }
  }), { numRuns: 400 });
});
