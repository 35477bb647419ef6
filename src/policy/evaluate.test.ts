import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { matcherTrees } from '../../test/helpers/matcher-trees.js';
import type { PeerIdentity, RequestContext } from './context-types.js';
import { evaluate } from './evaluate.js';
import type { CompileOptions, Matcher, PolicyProgram } from './ir.js';
import type { PolicySnapshot } from './snapshot.js';
import { buildRuleSet, firstMatch, firstMatchLinear, testRule } from './match/rule-index.js';
import { compileProgram, DECIDE } from './program.js';
import { istioTiers } from './dialects/istio/tiers.js';
import type { IstioAction, IstioChain, IstioRule } from './dialects/istio/types.js';
import { testCompileOptions } from '../../test/helpers/compile-options.js';

const options: CompileOptions = testCompileOptions({ namespace: 'foo', serviceAccount: 'sa' }, { pathNormalization: 'BASE' });

let seq = 0;
function rule(action: IstioAction, name: string, match: Matcher, extra: Partial<IstioRule> = {}): IstioRule {
  const index = seq++;
  return { id: `ns[foo]-policy[${name}]-rule[${index}]`, policy: { dialect: 'istio', kind: 'AuthorizationPolicy', namespace: 'foo', name }, index, action, dryRun: false, match, ...extra };
}

function chain(rules: IstioRule[], over: Partial<IstioChain> = {}): IstioChain {
  return {
    custom: rules.filter((r) => r.action === 'CUSTOM'), deny: rules.filter((r) => r.action === 'DENY'),
    allow: rules.filter((r) => r.action === 'ALLOW'), audit: rules.filter((r) => r.action === 'AUDIT'),
    hasEnforcedAllow: rules.some((r) => r.action === 'ALLOW' && !r.dryRun), hasShadowAllow: rules.some((r) => r.action === 'ALLOW' && r.dryRun), ...over,
  };
}

/** Istio chains written as tiers by the dialect, compiled as compile.ts does. */
function snapshot(http: IstioChain | undefined, tcp?: IstioChain): PolicySnapshot {
  const program: PolicyProgram = { tiers: http ? istioTiers({ http, tcp: tcp ?? chain([]) }, options.customProviders) : [] };
  return { revision: 'r', options, program, compiled: compileProgram(program, {}), jwtProviders: [], jwtOutputHeaders: new Set(), documents: [], diagnostics: [] };
}

function ctx(over: Partial<RequestContext> = {}): RequestContext {
  return {
    protocol: 'http', method: 'GET', path: '/', query: '', authority: 'api', host: 'api', headers: {}, peer: null,
    sourceIp: '10.0.0.1', remoteIp: '10.0.0.1', destinationIp: undefined, port: 8080, sni: undefined, jwt: null, ...over,
  };
}

const pathIs = (value: string): Matcher => ({ type: 'request.path', match: { kind: 'exact', value } });
const pathPrefix = (value: string): Matcher => ({ type: 'request.path', match: { kind: 'prefix', value } });
const methodIs = (value: string): Matcher => ({ type: 'request.method', match: { kind: 'exact', value } });

test('no Istio program: allow no_policies', () => {
  const d = evaluate(snapshot(undefined), ctx());
  assert.equal(d.verdict, 'allow');
  assert.equal(d.reason, 'no_policies');
  assert.equal(d.dialect, null);
});

test('DENY beats ALLOW; first DENY in id order is reported', () => {
  const allow = rule('ALLOW', 'allow-all', { type: 'any' });
  const denyB = rule('DENY', 'b-deny', pathIs('/admin'));
  const denyA = rule('DENY', 'a-deny', pathPrefix('/adm'));
  const snap = snapshot(chain([allow, denyB, denyA]));
  const d = evaluate(snap, ctx({ path: '/admin' }));
  assert.equal(d.verdict, 'deny');
  assert.equal(d.reason, 'deny_policy_matched');
  assert.equal(d.rule, denyA.id);
  // The core names no wire status: the same verdict and reason for gRPC (respond.ts maps them).
  const g = evaluate(snap, ctx({ path: '/admin', protocol: 'grpc' }));
  assert.deepEqual([g.verdict, g.reason, g.rule], ['deny', 'deny_policy_matched', denyA.id]);
  assert.ok(!('status' in g) && !('grpcStatus' in g));
  const ok = evaluate(snap, ctx({ path: '/public', protocol: 'grpc' }));
  assert.equal(ok.verdict, 'allow');
  assert.equal(ok.reason, 'allow_policy_matched');
  assert.equal(ok.rule, allow.id);
});

test('ALLOW present but unmatched denies; allow-nothing denies everything', () => {
  const snap = snapshot(chain([rule('ALLOW', 'get-only', methodIs('GET'))]));
  assert.equal(evaluate(snap, ctx({ method: 'POST' })).reason, 'no_allow_policy_matched');
  const nothing = snapshot(chain([], { hasEnforcedAllow: true }));
  const d = evaluate(nothing, ctx());
  assert.equal(d.verdict, 'deny');
  assert.equal(d.reason, 'no_allow_policy_matched');
  const onlyDeny = snapshot(chain([rule('DENY', 'd', pathIs('/x'))]));
  const a = evaluate(onlyDeny, ctx());
  assert.equal(a.verdict, 'allow');
  assert.equal(a.reason, 'no_policies');
});

test('CUSTOM without a provider fails closed', () => {
  const snap = snapshot(chain([rule('CUSTOM', 'ext', pathPrefix('/'), { provider: 'opa' }), rule('ALLOW', 'all', { type: 'any' })]));
  const d = evaluate(snap, ctx());
  assert.equal(d.verdict, 'deny');
  assert.equal(d.reason, 'custom_no_provider');
});

test('AUDIT marks without changing the verdict', () => {
  const audit = rule('AUDIT', 'audit-admin', pathIs('/admin'));
  const snap = snapshot(chain([audit, rule('DENY', 'd', pathIs('/admin'))]));
  const d = evaluate(snap, ctx({ path: '/admin' }));
  assert.equal(d.verdict, 'deny');
  assert.deepEqual(d.audit, { policy: audit.policy, rule: audit.id, log: true });
  const onlyAudit = evaluate(snapshot(chain([audit])), ctx({ path: '/admin' }));
  assert.equal(onlyAudit.verdict, 'allow');
  assert.equal(onlyAudit.audit?.rule, audit.id);
});

test('dry-run: shadow result, never enforced', () => {
  const shadowDeny = rule('DENY', 'dry-deny', pathIs('/admin'), { dryRun: true });
  const snap = snapshot(chain([shadowDeny]));
  const d = evaluate(snap, ctx({ path: '/admin' }));
  assert.equal(d.verdict, 'allow');
  assert.deepEqual(d.shadow, { verdict: 'deny', action: 'DENY', policy: shadowDeny.policy, rule: shadowDeny.id });
  assert.deepEqual(evaluate(snap, ctx({ path: '/x' })).shadow, { verdict: 'allow', action: 'DENY', policy: null, rule: null });
  // Every ALLOW policy dry-run: nothing is enforced, the shadow reports what would have happened.
  const shadowAllow = rule('ALLOW', 'dry-allow', methodIs('GET'), { dryRun: true });
  const s2 = snapshot(chain([shadowAllow]));
  const post = evaluate(s2, ctx({ method: 'POST' }));
  assert.equal(post.verdict, 'allow');
  assert.deepEqual(post.shadow, { verdict: 'deny', action: 'ALLOW', policy: null, rule: null });
  assert.equal(evaluate(s2, ctx()).shadow?.rule, shadowAllow.id);
});

test('tcp requests use the tcp chain', () => {
  const snap = snapshot(chain([rule('ALLOW', 'http', methodIs('GET'))]), chain([], { hasEnforcedAllow: true }));
  assert.equal(evaluate(snap, ctx({ protocol: 'tcp', method: '', path: '' })).verdict, 'deny');
  assert.equal(evaluate(snap, ctx()).verdict, 'allow');
  // The decision names the tier that decided; no policy at all names none.
  assert.equal(evaluate(snap, ctx({ protocol: 'tcp', method: '', path: '' })).tier, 'tcp');
  assert.equal(evaluate(snap, ctx()).tier, 'http');
  assert.equal(evaluate(snapshot(undefined), ctx()).tier, null);
});

test('the compiled program is built with the snapshot, not on first use', () => {
  const snap = snapshot(chain([rule('ALLOW', 'a', methodIs('GET'))]));
  assert.equal(snap.compiled.tiers.length, 2);
  assert.equal(evaluate(snap, ctx()).verdict, 'allow');
});

// ---- property: the index reports exactly what a linear scan reports ----

const pathWord = fc.constantFrom('/', '/a', '/a/', '/a/b', '/ab', '/b', '/b/c', '/api/v1', '/api/v1/users', '', 'a', '/api/v', '/api/v1/u', '/api/v10', '//');
const leafArb: fc.Arbitrary<Matcher> = fc.oneof(
  pathWord.map((v) => pathIs(v)),
  pathWord.map((v) => pathPrefix(v)),
  pathWord.map((value): Matcher => ({ type: 'request.path', match: { kind: 'segment-prefix', value: value || '/' } })),
  fc.constantFrom('/a/{*}', '/api/{**}', '/{*}/c').map((t): Matcher => ({ type: 'request.path', match: { kind: 'template', segments: t.split('/').slice(1).map((s) => (s === '{*}' ? { kind: 'one' as const } : s === '{**}' ? { kind: 'many' as const } : { kind: 'literal' as const, value: s })) } })),
  fc.constantFrom('GET', 'POST').map(methodIs),
  fc.constantFrom('td/ns/a/sa/x', 'td/ns/b/sa/y').map((value): Matcher => ({ type: 'peer.principal', match: { kind: 'exact', value } })),
  fc.constantFrom('api', 'API', 'other:80').map((value): Matcher => ({ type: 'request.host', match: { kind: 'exact', value } })),
  fc.array(fc.constantFrom(80, 8080), { minLength: 1, maxLength: 2 }).map((ports): Matcher => ({ type: 'destination.port', ports })),
  fc.constant<Matcher>({ type: 'any' }), fc.constant<Matcher>({ type: 'none' }),
);
const treeArb = matcherTrees([leafArb]);
const peerArb = fc.option(fc.constantFrom('td/ns/a/sa/x', 'td/ns/b/sa/y').map((principal): PeerIdentity => ({ spiffeId: `spiffe://${principal}`, principal, trustDomain: 'td', namespace: undefined, serviceAccount: undefined })), { nil: null });
const reqArb = fc.record({
  path: fc.constantFrom('/', '/a', '/a/', '/a/b', '/ab', '/abc', '/b/c', '/api/v1', '/api/v1/users', '/api/v1/users/1', '/x/c', '', '/api/v10/x', '//a', '*', '/api/v'),
  method: fc.constantFrom('GET', 'POST'), authority: fc.constantFrom('api', 'other:80'), port: fc.constantFrom(80, 8080, 9000), peer: peerArb,
}).map((r) => ctx(r));

test('property: indexed rule selection equals the linear scan', () => {
  fc.assert(fc.property(fc.array(treeArb, { maxLength: 25 }), fc.array(reqArb, { minLength: 1, maxLength: 8 }), (matchers, requests) => {
    const rules = matchers.map((m, i) => rule('DENY', `p${String(i % 7)}`, m));
    const entries = rules.map((r) => ({ rule: { id: r.id, policy: r.policy, action: 'deny' as const, match: r.match, reason: 'deny_policy_matched', namedAs: 'rule' as const }, kind: DECIDE }));
    // Closures (small lists) and flat code (large lists, here forced) select alike.
    for (const set of [buildRuleSet(entries, {}), buildRuleSet(entries, {}, undefined, 0)]) {
      for (const r of requests) assert.equal(firstMatch(set, r)?.rule.id, firstMatchLinear(set, r)?.rule.id);
    }
  }), { numRuns: 4000 });
});

// The secure defaults' DENY widenings (case-insensitive paths, hosts on any port) are indexed under folded
// keys: the index must still report exactly what a linear scan reports, on mixed-case paths and ported hosts.
// Non-ASCII words: lower-casing them is not per ASCII letter ('İ' lower-cases to two code units).
const foldedWord = fc.constantFrom('/', '/a', '/A', '/Api/V1', '/api/v1/Users', '/AB', '', '/b/C', '/Ünï', '/İx', '/i\u0307x/Y');
const foldedLeafArb: fc.Arbitrary<Matcher> = fc.oneof(
  foldedWord.map((value): Matcher => ({ type: 'request.path', match: { kind: 'exact', value, ignoreCase: true } })),
  foldedWord.map((value): Matcher => ({ type: 'request.path', match: { kind: 'prefix', value, ignoreCase: true } })),
  fc.constantFrom('/A/{*}', '/Api/{**}', '/{*}/C').map((t): Matcher => ({ type: 'request.path', match: { kind: 'template', ignoreCase: true, segments: t.split('/').slice(1).map((s) => (s === '{*}' ? { kind: 'one' as const } : s === '{**}' ? { kind: 'many' as const } : { kind: 'literal' as const, value: s })) } })),
  fc.constantFrom('api', 'API', 'other', '::1').map((value): Matcher => ({ type: 'request.host', match: { kind: 'exact', value, ignoreCase: true }, anyPort: true })),
);
const foldedTreeArb = matcherTrees([leafArb, foldedLeafArb]);
const mixedCaseReqArb = fc.record({
  path: fc.constantFrom('/', '/a', '/A', '/ab', '/AB/c', '/api/v1', '/API/V1/users', '/Api/v1/USERS/1', '/a/X', '/b/c', '/B/C', '', '/ÜNÏ/a', '/ünï', '/İx/y', '/i\u0307X/y', '/Aİx'),
  authority: fc.constantFrom('api', 'api:443', 'other:80', 'other', '[::1]:80'),
  port: fc.constantFrom(80, 8080), peer: peerArb,
}).map(({ authority, ...r }) => ctx({ ...r, authority, host: authority.startsWith('[') ? authority.slice(0, authority.indexOf(']') + 1) : authority.split(':')[0] as string }));

const denyRef = rule('DENY', 'p', { type: 'any' }).policy;

test('property: indexed selection equals the linear scan for case-insensitive paths and any-port hosts', () => {
  fc.assert(fc.property(fc.array(foldedTreeArb, { maxLength: 25 }), fc.array(mixedCaseReqArb, { minLength: 1, maxLength: 8 }), (matchers, requests) => {
    const entries = matchers.map((match, i) => ({ rule: { id: `r${String(i).padStart(2, '0')}`, policy: denyRef, action: 'deny' as const, match, reason: 'deny_policy_matched', namedAs: 'rule' as const }, kind: DECIDE }));
    for (const set of [buildRuleSet(entries, {}), buildRuleSet(entries, {}, undefined, 0)]) {
      for (const r of requests) assert.equal(firstMatch(set, r)?.rule.id, firstMatchLinear(set, r)?.rule.id);
    }
  }), { numRuns: 4000 });
});

// The scan runs each rule's flat code (match/flat.ts); its compiled closure is the reference.
test('property: a rule\'s flat code answers as its compiled closure', () => {
  fc.assert(fc.property(fc.array(fc.oneof(treeArb, foldedTreeArb), { minLength: 1, maxLength: 10 }), fc.array(fc.oneof(reqArb, mixedCaseReqArb), { minLength: 1, maxLength: 8 }), (matchers, requests) => {
    const set = buildRuleSet(matchers.map((match, i) => ({ rule: { id: `r${String(i).padStart(2, '0')}`, policy: denyRef, action: 'deny', match, reason: 'deny_policy_matched', namedAs: 'rule' }, kind: DECIDE })), {}, undefined, 0);
    for (const r of requests) set.rules.forEach((rule, order) => assert.equal(testRule(set, order, r), rule.test(r), JSON.stringify(rule.rule.match)));
  }), { numRuns: 4000 });
});

test('a matcher that cannot be built refuses a large (flat-code) rule list too', () => {
  const bad = { type: 'no.such.leaf' } as unknown as Matcher;
  for (const match of [bad, { type: 'and', of: [methodIs('GET'), bad] }, { type: 'not', of: bad }, { type: 'or', of: [methodIs('GET'), { type: 'and', of: [bad] }] }] as Matcher[]) {
    const entries = [methodIs('GET'), match].map((m, i) => ({ rule: { id: `r${i}`, policy: denyRef, action: 'deny' as const, match: m, reason: 'deny_policy_matched', namedAs: 'rule' as const }, kind: DECIDE }));
    assert.throws(() => buildRuleSet(entries, {}, undefined, 0), /unknown matcher type/);
  }
});

test('case-insensitive DENY paths and any-port DENY hosts are indexed, not residual', () => {
  const set = buildRuleSet([
    { rule: { id: 'a', policy: denyRef, action: 'deny', match: { type: 'request.path', match: { kind: 'prefix', value: '/Admin', ignoreCase: true } }, reason: 'deny_policy_matched', namedAs: 'rule' }, kind: DECIDE },
    { rule: { id: 'b', policy: denyRef, action: 'deny', match: { type: 'request.path', match: { kind: 'exact', value: '/Login', ignoreCase: true } }, reason: 'deny_policy_matched', namedAs: 'rule' }, kind: DECIDE },
    { rule: { id: 'c', policy: denyRef, action: 'deny', match: { type: 'request.host', match: { kind: 'exact', value: 'admin.api', ignoreCase: true }, anyPort: true }, reason: 'deny_policy_matched', namedAs: 'rule' }, kind: DECIDE },
  ], {});
  assert.deepEqual(set.stats, { indexed: 3, residual: 0, never: 0 });
  assert.equal(firstMatch(set, ctx({ path: '/ADMIN/users' }))?.rule.id, 'a');
  assert.equal(firstMatch(set, ctx({ path: '/login' }))?.rule.id, 'b');
  assert.equal(firstMatch(set, ctx({ path: '/x', authority: 'admin.api:8443', host: 'admin.api' }))?.rule.id, 'c');
  assert.equal(firstMatch(set, ctx({ path: '/x', authority: 'api:8443', host: 'api' })), null);
});

test('property: evaluate equals a naive linear interpretation of the algorithm', () => {
  const actions = fc.constantFrom<IstioAction>('ALLOW', 'DENY', 'AUDIT');
  fc.assert(fc.property(fc.array(fc.tuple(actions, treeArb, fc.boolean()), { maxLength: 20 }), fc.array(reqArb, { minLength: 1, maxLength: 5 }), (specs, requests) => {
    const rules = specs.map(([a, m, dry], i) => rule(a, `p${String(i)}`, m, { dryRun: a !== 'AUDIT' && dry && i % 3 === 0 }));
    const c = chain(rules);
    const snap = snapshot(c);
    for (const r of requests) {
      const d = evaluate(snap, r);
      const byId = (list: IstioRule[]) => [...list].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
      const linear = (list: IstioRule[]) => byId(list).find((x) => naiveMatch(x.match, r)) ?? null;
      const deny = linear(c.deny.filter((x) => !x.dryRun));
      const allow = linear(c.allow.filter((x) => !x.dryRun));
      const audit = linear(c.audit);
      const want = deny ? ['deny', deny.id] : !c.hasEnforcedAllow ? ['allow', null] : allow ? ['allow', allow.id] : ['deny', null];
      assert.deepEqual([d.verdict, d.rule], want);
      assert.equal(d.audit?.rule ?? null, audit?.id ?? null);
    }
  }), { numRuns: 1000 });
});

function naiveMatch(m: Matcher, c: RequestContext): boolean {
  switch (m.type) {
    case 'any': return true;
    case 'none': return false;
    case 'and': return m.of.every((x) => naiveMatch(x, c));
    case 'or': return m.of.some((x) => naiveMatch(x, c));
    case 'not': return !naiveMatch(m.of, c);
    case 'request.method': return m.match.kind === 'exact' && c.method === m.match.value;
    case 'peer.principal': return c.peer !== null && m.match.kind === 'exact' && c.peer.principal === m.match.value;
    case 'request.host': return m.match.kind === 'exact' && c.authority === m.match.value.toLowerCase();
    case 'destination.port': return m.ports.includes(c.port);
    case 'request.path': {
      const p = c.path;
      if (p === '') return false;
      const pm = m.match;
      if (pm.kind === 'exact') return p === pm.value;
      if (pm.kind === 'prefix') return p.startsWith(pm.value);
      if (pm.kind === 'segment-prefix') {
        const pre = pm.value.replace(/\/+$/, '');
        const q = p.replace(/\/+$/, '');
        return pre === '' ? p.startsWith('/') : q === pre || q.startsWith(pre + '/');
      }
      if (pm.kind === 'template') {
        const re = pm.segments.map((s) => (s.kind === 'one' ? '[^/]+' : s.kind === 'many' ? '.*' : s.value)).join('/');
        return new RegExp(`^/${re}$`).test(p);
      }
      throw new Error('unexpected');
    }
    default: throw new Error(`naive lacks ${m.type}`);
  }
}
