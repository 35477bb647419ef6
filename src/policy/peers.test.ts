import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { PeerIdentity, RequestContext } from './context-types.js';
import { compilePolicies } from './compile.js';
import { evaluate } from './evaluate.js';
import { explain } from './explain.js';
import type { CompileOptions, Matcher, PolicyProgram, TierRule, TierScope } from './ir.js';
import type { PolicySnapshot } from './snapshot.js';
import { compileMatcher } from './match/compile.js';
import { buildRuleSet, candidates, firstMatch, firstMatchLinear } from './match/rule-index.js';
import { buildRegistry, emptyRegistry, isHeterogeneous, peersWhere, type PeerFacts, type PeerRegistry } from './peers.js';
import { compileProgram, DECIDE } from './program.js';
import { testCompileOptions } from '../../test/helpers/compile-options.js';

function peer(spiffeId: string): PeerIdentity {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(spiffeId);
  return { spiffeId, principal: spiffeId.slice('spiffe://'.length), trustDomain: m?.[1] ?? '', namespace: m?.[2], serviceAccount: m?.[3] };
}

function ctx(over: Partial<RequestContext> = {}): RequestContext {
  return {
    protocol: 'http', method: 'GET', path: '/', query: '', authority: 'api', host: 'api', headers: {}, peer: null,
    sourceIp: '10.0.0.9', remoteIp: '10.0.0.9', destinationIp: undefined, port: 8080, sni: undefined, jwt: null, ...over,
  };
}

function pod(ns: string, sa: string, labels: Record<string, string>, ips: string[] = []): PeerFacts {
  return { spiffeId: `spiffe://cluster.local/ns/${ns}/sa/${sa}`, namespace: ns, serviceAccount: sa, labels, namespaceLabels: { team: ns }, serviceAccountLabels: {}, ips };
}

const WEB = 'spiffe://cluster.local/ns/shop/sa/web';
const API = 'spiffe://cluster.local/ns/shop/sa/api';
const STRANGER = 'spiffe://cluster.local/ns/other/sa/nobody';

// Two pods share `web`: one labelled app=web, tier=front; the other app=web, tier=canary.
const registry = buildRegistry([
  pod('shop', 'web', { app: 'web', tier: 'front' }, ['10.0.0.1']),
  pod('shop', 'web', { app: 'web', tier: 'canary' }, ['10.0.0.2']),
  pod('shop', 'api', { app: 'api' }, ['10.0.0.3']),
]);
const labelIs = (key: string, value: string) => (p: PeerFacts) => p.labels[key] === value;
const run = (m: Matcher, reg: PeerRegistry, c: RequestContext) => compileMatcher(m, { peers: reg })(c);

test('buildRegistry groups pods by SPIFFE ID and freezes them', () => {
  assert.equal(registry.byId.get(WEB)?.length, 2);
  assert.equal(registry.byId.get(API)?.length, 1);
  assert.equal(registry.byId.has(STRANGER), false);
  assert.ok(Object.isFrozen(registry.byId.get(WEB)?.[0]?.labels));
  assert.equal(emptyRegistry.byId.size, 0);
});

test('isHeterogeneous: pods of one identity that a selector can tell apart', () => {
  assert.equal(isHeterogeneous(registry, WEB), true);
  assert.equal(isHeterogeneous(registry, API), false);
  assert.equal(isHeterogeneous(registry, STRANGER), false);
  // Different IPs alone do not make pods distinguishable by a label selector.
  const sameLabels = buildRegistry([pod('shop', 'web', { app: 'web' }, ['10.0.0.1']), pod('shop', 'web', { app: 'web' }, ['10.0.0.2'])]);
  assert.equal(isHeterogeneous(sameLabels, WEB), false);
});

test('allow: every pod of the identity must pass; unknown identities and plaintext never match', () => {
  const front = peersWhere(registry, labelIs('tier', 'front'), 'allow', 'labels tier=front (registry)');
  assert.deepEqual(front, { type: 'peer.registered', spiffeIds: [], unknown: false, describe: 'labels tier=front (registry)' });
  const app = peersWhere(registry, (p) => p.labels.app !== undefined, 'allow', 'has app');
  assert.deepEqual(app.type === 'peer.registered' && app.spiffeIds, [API, WEB]);
  assert.equal(run(app, registry, ctx({ peer: peer(WEB) })), true);
  assert.equal(run(front, registry, ctx({ peer: peer(WEB) })), false, 'one web pod is a canary: never over-grant');
  assert.equal(run(app, registry, ctx({ peer: peer(STRANGER) })), false, 'unknown identity fails closed');
  assert.equal(run(app, registry, ctx()), false, 'plaintext');
});

test('deny: any pod of the identity suffices; unknown identities match, plaintext does not', () => {
  const canary = peersWhere(registry, labelIs('tier', 'canary'), 'deny', 'labels tier=canary (registry)');
  assert.deepEqual(canary.type === 'peer.registered' && canary.spiffeIds, [WEB]);
  assert.equal(run(canary, registry, ctx({ peer: peer(WEB) })), true, 'one web pod is a canary: never under-deny');
  assert.equal(run(canary, registry, ctx({ peer: peer(API) })), false, 'known and no pod passes');
  assert.equal(run(canary, registry, ctx({ peer: peer(STRANGER) })), true, 'unknown identity: pessimistic');
  assert.equal(run(canary, registry, ctx()), false, 'plaintext');
  // With no registry at all every verified identity is unknown.
  const none = peersWhere(emptyRegistry, labelIs('tier', 'canary'), 'deny', 'x');
  assert.equal(compileMatcher(none, {})(ctx({ peer: peer(API) })), true);
  assert.equal(compileMatcher(peersWhere(emptyRegistry, () => true, 'allow', 'x'), {})(ctx({ peer: peer(API) })), false);
});

// ---- property: the every-pod / any-pod rule, unknown identities and plaintext, against the definition ----

const ids = ['spiffe://td/ns/a/sa/x', 'spiffe://td/ns/a/sa/y', 'spiffe://td/ns/b/sa/x', 'spiffe://td/ns/b/sa/z'];
const podArb = fc.record({
  id: fc.constantFrom(...ids.slice(0, 3)),
  app: fc.constantFrom('web', 'api', undefined),
  tier: fc.constantFrom('front', 'back', undefined),
}).map(({ id, app, tier }): PeerFacts => {
  const [, ns, sa] = /\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(id) as unknown as [string, string, string];
  const labels: Record<string, string> = {};
  if (app !== undefined) labels.app = app;
  if (tier !== undefined) labels.tier = tier;
  return { spiffeId: id, namespace: ns, serviceAccount: sa, labels, namespaceLabels: {}, serviceAccountLabels: {}, ips: [] };
});
const selectorArb = fc.record({ key: fc.constantFrom('app', 'tier'), value: fc.constantFrom('web', 'api', 'front', 'back'), negate: fc.boolean() })
  .map(({ key, value, negate }) => (p: PeerFacts) => (p.labels[key] === value) !== negate);
const requestPeerArb = fc.option(fc.constantFrom(...ids), { nil: null });

test('property: allow needs every pod, deny any pod; unknown IDs fail closed for allow and match for deny; plaintext never', () => {
  fc.assert(fc.property(fc.array(podArb, { maxLength: 8 }), selectorArb, fc.constantFrom<'allow' | 'deny'>('allow', 'deny'), requestPeerArb, (pods, sel, use, id) => {
    const reg = buildRegistry(pods);
    const got = run(peersWhere(reg, sel, use, 'sel'), reg, ctx({ peer: id === null ? null : peer(id) }));
    const mine = pods.filter((p) => p.spiffeId === id);
    const want = id === null ? false
      : mine.length === 0 ? use === 'deny'
        : use === 'allow' ? mine.every(sel) : mine.some(sel);
    assert.equal(got, want);
  }), { numRuns: 3000 });
});

// Leaves as data: a registered selector is resolved against each case's registry.
type LeafSpec = { kind: 'registered'; sel: (p: PeerFacts) => boolean; use: 'allow' | 'deny' } | { kind: 'leaf'; match: Matcher };
const leafSpecArb: fc.Arbitrary<LeafSpec> = fc.oneof(
  fc.tuple(selectorArb, fc.constantFrom<'allow' | 'deny'>('allow', 'deny')).map(([sel, use]): LeafSpec => ({ kind: 'registered', sel, use })),
  fc.constantFrom(...ids).map((id): LeafSpec => ({ kind: 'leaf', match: { type: 'peer.principal', match: { kind: 'exact', value: id.slice('spiffe://'.length) } } })),
  fc.constantFrom('/a', '/b').map((value): LeafSpec => ({ kind: 'leaf', match: { type: 'request.path', match: { kind: 'exact', value } } })),
  fc.constant<LeafSpec>({ kind: 'leaf', match: { type: 'any' } }),
);

test('property: the rule index files registered identities like principals and reports what a linear scan does', () => {
  fc.assert(fc.property(fc.array(podArb, { maxLength: 8 }), fc.array(fc.array(leafSpecArb, { minLength: 1, maxLength: 3 }), { maxLength: 12 }), fc.array(fc.tuple(requestPeerArb, fc.constantFrom('/a', '/b')), { minLength: 1, maxLength: 6 }), (pods, specs, requests) => {
    const reg = buildRegistry(pods);
    const resolve = (l: LeafSpec): Matcher => (l.kind === 'registered' ? peersWhere(reg, l.sel, l.use, 'sel') : l.match);
    const rules = specs.map((leaves, i): TierRule => ({
      id: `r${String(i).padStart(2, '0')}`, policy: { dialect: 'test', kind: 'Test', namespace: 'n', name: 'p' }, action: 'deny',
      match: { type: i % 2 === 0 ? 'and' : 'or', of: leaves.map(resolve) }, reason: 'deny_policy_matched', namedAs: 'rule',
    }));
    const set = buildRuleSet(rules.map((rule) => ({ rule, kind: DECIDE })), { peers: reg });
    for (const [id, path] of requests) {
      const c = ctx({ peer: id === null ? null : peer(id), path });
      assert.equal(firstMatch(set, c)?.rule.id, firstMatchLinear(set, c)?.rule.id);
    }
  }), { numRuns: 2000 });
});

test('the rule index files registered identities by principal, and a leaf unknown identities match under unregistered', () => {
  const policy = { dialect: 'test', kind: 'Test', namespace: 'n', name: 'p' };
  const mk = (id: string, match: Matcher): { rule: TierRule; kind: number } => ({ rule: { id, policy, action: 'allow', match, reason: 'allowed', namedAs: 'rule' }, kind: DECIDE });
  const set = buildRuleSet([
    mk('a', peersWhere(registry, labelIs('app', 'api'), 'allow', 'app=api')),
    mk('b', peersWhere(registry, labelIs('app', 'nothing'), 'allow', 'app=nothing')),
    mk('c', peersWhere(registry, labelIs('app', 'api'), 'deny', 'app=api')),
  ], { peers: registry });
  assert.deepEqual(set.stats, { indexed: 2, residual: 0, never: 1 });
  // A registered peer is a candidate for the rules naming it; an unknown one only for the pessimistic deny.
  assert.deepEqual(candidates(set, ctx({ peer: peer(API) })).map((r) => r.rule.id), ['a', 'c']);
  assert.deepEqual(candidates(set, ctx({ peer: peer(STRANGER) })).map((r) => r.rule.id), ['c']);
  assert.deepEqual(candidates(set, ctx({ peer: peer(WEB) })).map((r) => r.rule.id), []);
  assert.equal(firstMatch(set, ctx({ peer: peer(API) }))?.rule.id, 'a');
  assert.equal(firstMatch(set, ctx({ peer: peer(STRANGER) }))?.rule.id, 'c');
  assert.equal(firstMatch(set, ctx({ peer: peer(WEB) })), null);
});

// ---- through the evaluator and explain ----

const options: CompileOptions = testCompileOptions({ namespace: 'shop', labels: { app: 'api' }, serviceAccount: 'api', namespaceLabels: { team: 'shop' } }, {
  pathNormalization: 'BASE', peers: registry,
});

function snapshotWith(rules: TierRule[]): PolicySnapshot {
  const scope: TierScope = { ref: null, routes: null, rules, otherwise: { verdict: 'deny', reason: 'no_rule_matched', policy: null }, shadow: null, rateLimit: null };
  const program: PolicyProgram = { tiers: [{ dialect: 'test', name: 'ingress', group: 'test', protocols: ['http', 'grpc', 'tcp'], ports: {}, anyPort: scope }] };
  return { revision: 'r', options, program, compiled: compileProgram(program, { peers: registry }), jwtProviders: [], jwtOutputHeaders: new Set(), documents: [], diagnostics: [] };
}

test('evaluate and explain: a label allow decides by the registry, and explain names the selector and the peer', () => {
  const allow: TierRule = {
    id: 'allow-web', policy: { dialect: 'test', kind: 'Test', namespace: 'shop', name: 'p' }, action: 'allow',
    match: peersWhere(registry, labelIs('app', 'web'), 'allow', 'labels app=web (registry)'), reason: 'allowed', namedAs: 'rule',
  };
  const snap = snapshotWith([allow]);
  assert.equal(evaluate(snap, ctx({ peer: peer(WEB) })).verdict, 'allow');
  assert.equal(evaluate(snap, ctx({ peer: peer(STRANGER) })).verdict, 'deny');
  const report = explain(snap, ctx({ peer: peer(STRANGER) }));
  const rule = report.tiers[0]?.rules[0];
  assert.equal(rule?.matched, false);
  assert.deepEqual(rule?.failed, [`peer.registered wants labels app=web (registry): ${WEB}, saw "${STRANGER} (not in the registry)"`]);
  const plain = explain(snap, ctx());
  assert.deepEqual(plain.tiers[0]?.rules[0]?.failed, [`peer.registered wants labels app=web (registry): ${WEB}, saw (absent)`]);
  const deny = peersWhere(registry, labelIs('app', 'api'), 'deny', 'labels app=api (registry)');
  const denyReport = explain(snapshotWith([{ ...allow, id: 'deny-api', action: 'deny', match: deny, reason: 'denied' }]), ctx({ peer: peer(WEB) }));
  assert.deepEqual(denyReport.tiers[0]?.rules[0]?.failed, [`peer.registered wants labels app=api (registry): ${API}; or any identity not in the registry, saw "${WEB}"`]);
});

test('a registry change is a new snapshot revision; the same registry is the same revision', () => {
  const files = [{ file: 'p.yaml', text: 'apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: shop}\nspec: {}\n' }];
  const r1 = compilePolicies(files, options).snapshot?.revision;
  const r2 = compilePolicies(files, { ...options, peers: buildRegistry([pod('shop', 'web', { app: 'web', tier: 'front' }, ['10.0.0.1'])]) }).snapshot?.revision;
  const r3 = compilePolicies(files, { ...options, peers: buildRegistry([
    pod('shop', 'web', { app: 'web', tier: 'front' }, ['10.0.0.1']), pod('shop', 'web', { app: 'web', tier: 'canary' }, ['10.0.0.2']), pod('shop', 'api', { app: 'api' }, ['10.0.0.3']),
  ]) }).snapshot?.revision;
  assert.ok(r1 !== undefined && r2 !== undefined);
  assert.notEqual(r1, r2);
  assert.equal(r1, r3);
});
