// Tests the rule index's keys for raw `:path` leaves (Cilium's whole-value path regexes) and pod-identity
// leaves (`peer.namespace`): the index must report exactly what a linear scan reports, and file them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { matcherTrees } from '../../../test/helpers/matcher-trees.js';
import RE2 from 're2';
import type { PeerIdentity, RequestContext } from '../context-types.js';
import type { Matcher, TierRule } from '../ir.js';
import { DECIDE } from '../program.js';
import { regexLiteralPrefix } from './regex.js';
import { buildRuleSet, firstMatch, firstMatchLinear } from './rule-index.js';

function ctx(over: Partial<RequestContext> = {}): RequestContext {
  return {
    protocol: 'http', method: 'GET', path: '/', query: '', authority: 'api', host: 'api', headers: {}, peer: null,
    sourceIp: '10.0.0.9', remoteIp: '10.0.0.9', destinationIp: undefined, port: 8080, sni: undefined, jwt: null, ...over,
  };
}

function peer(spiffeId: string): PeerIdentity {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(spiffeId);
  const td = /^spiffe:\/\/([^/]+)/.exec(spiffeId)?.[1] ?? '';
  return { spiffeId, principal: spiffeId.slice('spiffe://'.length), trustDomain: td, namespace: m?.[2], serviceAccount: m?.[3] };
}

const policy = { dialect: 'test', kind: 'Test', namespace: 'n', name: 'p' };
const entry = (id: string, match: Matcher): { rule: TierRule; kind: number } => ({ rule: { id, policy, action: 'deny', match, reason: 'deny_policy_matched', namedAs: 'rule' }, kind: DECIDE });

test('regexLiteralPrefix: the literal every whole match starts with', () => {
  const cases: [string, string][] = [
    ['/api/v1/.*', '/api/v1/'], ['/svc1/items/5', '/svc1/items/5'], ['/a\\.b/c', '/a.b/c'], ['/ab?', '/a'], ['/ab*', '/a'],
    ['/ab+', '/a'], ['/ab{2}', '/a'], ['/a(b|c)', '/a'], ['/a|/b', ''], ['(/a)', ''], ['^/a', ''], ['/a[bc]', '/a'],
    ['/a[|]b', '/a'], ['(?i)/a', ''], ['/a\\d', '/a'], ['/x/😀?', '/x/'], ['/a\\?b', '/a?b'], ['', ''], ['.*', ''],
  ];
  for (const [pattern, want] of cases) assert.equal(regexLiteralPrefix(pattern), want, pattern);
});

test('property: every whole match of a pattern starts with its literal prefix', () => {
  const piece = fc.constantFrom('/', 'a', 'b', '\\.', '.', '.*', 'a?', 'b+', '(a|b)', '[ab]', '|', 'a{1,2}', '\\?', '?x');
  const values = ['', '/', '/a', '/ab', '/b', 'a', 'ab', 'b', '/a.', '/a?x', 'a/b', '/aab', '/ba', 'ba', '/a/b', '?x', 'a?x'];
  fc.assert(fc.property(fc.array(piece, { maxLength: 6 }), (pieces) => {
    const pattern = pieces.join('');
    let re: RE2;
    try { re = new RE2(`^(?:${pattern})$`, 'u'); } catch { return; }
    const prefix = regexLiteralPrefix(pattern);
    for (const v of values) if (re.test(v)) assert.ok(v.startsWith(prefix), `${JSON.stringify(pattern)} matches ${JSON.stringify(v)} but the prefix is ${JSON.stringify(prefix)}`);
  }), { numRuns: 3000 });
});

test(':path leaves are filed by path and pod identities by namespace, not left residual', () => {
  const pods = (namespaces: string[]): Matcher => ({ type: 'peer.namespace', trustDomains: ['td'], namespaces });
  const set = buildRuleSet([
    entry('a', { type: 'and', of: [pods(['shop']), { type: 'request.header', name: ':path', match: { kind: 'regex', pattern: '/api/v1/.*' } }] }),
    entry('b', { type: 'request.header', name: ':path', match: { kind: 'exact', value: '/login' } }),
    entry('c', pods(['other'])),
    entry('d', { type: 'request.header', name: ':path', match: { kind: 'regex', pattern: '/a|/b' } }),
  ], {});
  assert.deepEqual(set.stats, { indexed: 3, residual: 1, never: 0 });
  const start = set.namespace.get('other') as number;
  assert.deepEqual([...set.candidates.subarray(start + 1, start + 1 + (set.candidates[start] as number))].map((o) => set.rules[o]?.id), ['c']);
  const shop = peer('spiffe://td/ns/shop/sa/web');
  assert.equal(firstMatch(set, ctx({ peer: shop, path: '/api/v1/users', query: 'x=1' }))?.id, 'a');
  assert.equal(firstMatch(set, ctx({ peer: shop, path: '/login' }))?.id, 'b');
  assert.equal(firstMatch(set, ctx({ peer: shop, path: '/login', query: 'next=/' })), null);
  assert.equal(firstMatch(set, ctx({ peer: peer('spiffe://td/ns/other/sa/web'), path: '/x' }))?.id, 'c');
});

const pathWord = fc.constantFrom('/', '/a', '/a/', '/a/b', '/ab', '/a?x=1', '/a?', '', '?');
const leafArb: fc.Arbitrary<Matcher> = fc.oneof(
  pathWord.map((value): Matcher => ({ type: 'request.header', name: ':path', match: { kind: 'exact', value } })),
  pathWord.map((value): Matcher => ({ type: 'request.header', name: ':PATH', match: { kind: 'prefix', value } })),
  fc.constantFrom('/a/.*', '/a.*', '/a', '/ab?', '/a\\?x=1', '/a(/.*)?', '/a|/b', '.*', '/a/b|/ab', '/[ab]/?.*').map((pattern): Matcher => ({ type: 'request.header', name: ':path', match: { kind: 'regex', pattern } })),
  fc.record({
    namespaces: fc.option(fc.subarray(['a', 'b', 'c']), { nil: undefined }),
    serviceAccounts: fc.option(fc.subarray(['x', 'y']), { nil: undefined }),
    trustDomains: fc.subarray(['td', 'other'], { minLength: 1 }),
  }).map(({ namespaces, serviceAccounts, trustDomains }): Matcher => ({
    type: 'peer.namespace', trustDomains, ...(namespaces === undefined ? {} : { namespaces }), ...(serviceAccounts === undefined ? {} : { serviceAccounts }),
  })),
  fc.constantFrom(80, 8080).map((p): Matcher => ({ type: 'destination.port', ports: [p] })),
  fc.constant<Matcher>({ type: 'any' }),
);
const treeArb = matcherTrees([leafArb]);
const reqArb = fc.record({
  path: fc.constantFrom('/', '/a', '/a/', '/a/b', '/ab', '/b', ''), query: fc.constantFrom('', 'x=1'),
  port: fc.constantFrom(80, 8080),
  peer: fc.option(fc.constantFrom('spiffe://td/ns/a/sa/x', 'spiffe://td/ns/b/sa/y', 'spiffe://other/ns/c/sa/x', 'spiffe://td/ns/a/sa/x/extra', 'spiffe://td/web').map(peer), { nil: null }),
}).map((r) => ctx(r));

test('property: indexed selection equals the linear scan for :path leaves and pod identities', () => {
  fc.assert(fc.property(fc.array(treeArb, { maxLength: 20 }), fc.array(reqArb, { minLength: 1, maxLength: 8 }), (matchers, requests) => {
    const set = buildRuleSet(matchers.map((m, i) => entry(`r${String(i).padStart(2, '0')}`, m)), {});
    for (const r of requests) assert.equal(firstMatch(set, r)?.id, firstMatchLinear(set, r)?.id);
  }), { numRuns: 4000 });
});
