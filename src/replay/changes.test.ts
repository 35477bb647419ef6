import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChangeTally, classify, describeOutcome, MAX_GROUPS, pathPattern } from './changes.js';
import type { Outcome } from './recorded-event.js';

const allow: Outcome = { verdict: 'allow', reason: 'allow_policy_matched', dialect: 'istio', policy: { kind: 'AuthorizationPolicy', namespace: 'demo', name: 'b' }, rule: 'r0', authorization: null };
const deny: Outcome = { verdict: 'deny', reason: 'no_allow_policy_matched', dialect: 'istio', policy: { kind: 'AuthorizationPolicy', namespace: 'demo', name: 'b' }, rule: null, authorization: null };

test('classify: only allow lets a request through; same verdict with another policy, rule or reason is a changed reason', () => {
  assert.equal(classify(allow, allow), 'unchanged');
  assert.equal(classify(allow, deny), 'newly_denied');
  assert.equal(classify(allow, { ...deny, verdict: 'not_found', reason: 'route_not_found' }), 'newly_denied');
  assert.equal(classify(allow, { ...deny, verdict: 'unauthenticated', reason: 'jwt_unknown_issuer', policy: null }), 'newly_denied');
  assert.equal(classify(deny, allow), 'newly_allowed');
  assert.equal(classify(allow, { ...allow, rule: 'r1' }), 'changed_reason');
  assert.equal(classify(deny, { ...deny, reason: 'deny_policy_matched' }), 'changed_reason');
  assert.equal(classify(allow, { ...allow, dialect: 'linkerd' }), 'changed_reason');
  assert.equal(classify({ ...allow, reason: null }, allow), 'unchanged', 'an unknown recorded reason (rate limited) matches any');
});

test('describeOutcome names verdict, reason, policy and rule', () => {
  assert.equal(describeOutcome(allow), 'allow (allow_policy_matched) by istio AuthorizationPolicy demo/b, rule r0');
  assert.equal(describeOutcome({ verdict: 'not_found', reason: 'route_not_found', dialect: null, policy: null, rule: null, authorization: null }), 'not_found (route_not_found)');
});

test('path patterns collapse ids: numbers, UUIDs, hex, long tokens; gRPC methods stay', () => {
  assert.equal(pathPattern('/api/orders/42'), '/api/orders/*');
  assert.equal(pathPattern('/u/3f2b8c1e-0d4a-4b6e-9f1a-2c3d4e5f6a7b/items/9'), '/u/*/items/*');
  assert.equal(pathPattern('/blobs/deadbeefcafe1234'), '/blobs/*');
  assert.equal(pathPattern('/demo.Orders/GetOrder'), '/demo.Orders/GetOrder');
  assert.equal(pathPattern('/api/orders'), '/api/orders');
  assert.equal(pathPattern(''), '(no path: tcp)');
});

test('the tally counts every change and keeps a bounded number of groups and samples', () => {
  const tally = new ChangeTally(2);
  let built = 0;
  const sample = () => { built++; return { at: 'f:1', decisionId: 'd', time: '', method: 'GET', path: '/p', authority: 'a', port: 8080, peer: null, baseline: '', candidate: '' }; };
  for (let i = 0; i < MAX_GROUPS + 50; i++) tally.add({ kind: 'newly_denied', baseline: allow, candidate: deny, peer: `spiffe://td/ns/n/sa/s${i}`, path: '/api/orders/1', request: `GET /api/orders/${i}`, sample });
  tally.add({ kind: 'unchanged', baseline: allow, candidate: allow, peer: null, path: '/', request: 'GET /', sample });
  assert.equal(tally.counts.newly_denied, MAX_GROUPS + 50);
  assert.equal(tally.counts.unchanged, 1);
  const byPeer = tally.groups.newly_denied.byPeer.sorted();
  assert.equal(byPeer.length, MAX_GROUPS + 1);
  assert.deepEqual(byPeer[0]?.key, '(other groups)');
  assert.equal(byPeer[0]?.count, 50);
  const byPath = tally.groups.newly_denied.byPath.sorted();
  assert.deepEqual(byPath.map((g) => [g.key, g.count, g.samples.length]), [['/api/orders/*', MAX_GROUPS + 50, 2]]);
  // A sample is built only while some group wants one (one per peer group here), never for every request.
  assert.ok(built <= MAX_GROUPS + 2, `built ${built}`);
});
