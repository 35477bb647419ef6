import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { matcherTrees } from '../../../test/helpers/matcher-trees.js';
import type { PeerIdentity, RequestContext, VerifiedJwt } from '../context-types.js';
import type { Matcher, PathMatcher, StringMatcher, TemplateSegment } from '../ir.js';
import { compileMatcher } from './compile.js';
import { checkRegex } from './regex.js';

const env = {};

function peer(spiffeId: string): PeerIdentity {
  const m = /^spiffe:\/\/([^/]+)(\/.*)?$/.exec(spiffeId);
  const td = m?.[1] ?? '';
  const ns = /^\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(m?.[2] ?? '');
  return { spiffeId, principal: spiffeId.slice('spiffe://'.length), trustDomain: td, namespace: ns?.[1], serviceAccount: ns?.[2] };
}

function ctx(over: Partial<RequestContext> = {}): RequestContext {
  return {
    protocol: 'http', method: 'GET', path: '/', query: '', authority: 'api.example', host: 'api.example', headers: {},
    peer: null, sourceIp: '10.1.2.3', remoteIp: '10.1.2.3', destinationIp: undefined, port: 8080, sni: undefined, jwt: null, ...over,
  };
}

const run = (m: Matcher, c: RequestContext) => compileMatcher(m, env)(c);
const path = (match: PathMatcher): Matcher => ({ type: 'request.path', match });
const tpl = (t: string): Matcher => path({
  kind: 'template',
  segments: t.split('/').slice(1).map((s): TemplateSegment => (s === '{*}' ? { kind: 'one' } : s === '{**}' ? { kind: 'many' } : { kind: 'literal', value: s })),
});

test('path templates follow the Istio integration examples (istio.md §5)', () => {
  const admin = tpl('/allow/admin/{**}');
  for (const p of ['/allow/admin/', '/allow/admin/temp', '/allow/admin/foo/temp.txt']) assert.ok(run(admin, ctx({ path: p })), p);
  assert.ok(!run(admin, ctx({ path: '/allow/admin' })));
  const foo = tpl('/foo/{*}/bar/{**}');
  for (const p of ['/foo/buzz/bar/bat', '/foo/buzz/bar/bat/fuzz.txt']) assert.ok(run(foo, ctx({ path: p })), p);
  for (const p of ['/foo//bar/bat.txt', '/foo/bar/bat.txt']) assert.ok(!run(foo, ctx({ path: p })), p);
  const store = tpl('/store/{**}/cart');
  for (const p of ['/store//cart', '/store/foo/bar/cart']) assert.ok(run(store, ctx({ path: p })), p);
  assert.ok(!run(store, ctx({ path: '/store/cart' })));
  assert.ok(run(tpl('/a/{*}'), ctx({ path: '/a/b' })));
  assert.ok(!run(tpl('/a/{*}'), ctx({ path: '/a/b/c' })));
});

test('segment-prefix (Linkerd PathPrefix)', () => {
  const api = path({ kind: 'segment-prefix', value: '/api' });
  for (const p of ['/api', '/api/', '/api/x']) assert.ok(run(api, ctx({ path: p })), p);
  assert.ok(!run(api, ctx({ path: '/apix' })));
  assert.ok(run(path({ kind: 'segment-prefix', value: '/authors/' }), ctx({ path: '/authors' })));
  assert.ok(run(path({ kind: 'segment-prefix', value: '/' }), ctx({ path: '/anything' })));
});

test('string forms and absent attributes', () => {
  const present: Matcher = { type: 'request.header', name: 'X-Token', match: { kind: 'present' } };
  assert.ok(!run(present, ctx()));
  assert.ok(run({ type: 'not', of: present }, ctx()));
  assert.ok(!run(present, ctx({ headers: { 'x-token': '' } })));
  assert.ok(run(present, ctx({ headers: { 'x-token': 'v' } })));
  const principal: Matcher = { type: 'peer.principal', match: { kind: 'present' } };
  assert.ok(!run(principal, ctx()), 'plaintext never matches principals: ["*"]');
  assert.ok(run({ type: 'not', of: principal }, ctx()), 'notPrincipals matches plaintext');
  assert.ok(run(principal, ctx({ peer: peer('spiffe://cluster.local/ns/a/sa/b') })));
  const host: Matcher = { type: 'request.host', match: { kind: 'exact', value: 'Api.Example' } };
  assert.ok(run(host, ctx()));
  assert.ok(!run(host, ctx({ authority: 'api.example:8000' })));
  const method: Matcher = { type: 'request.method', match: { kind: 'exact', value: 'GET' } };
  assert.ok(!run(method, ctx({ protocol: 'tcp', method: '' })));
  assert.ok(run({ type: 'request.method', match: { kind: 'exact', value: 'get', ignoreCase: true } }, ctx()));
  assert.ok(run({ type: 'request.header', name: ':path', match: { kind: 'exact', value: '/a?b=1' } }, ctx({ path: '/a', query: 'b=1' })));
  assert.ok(!run({ type: 'unsupported', key: 'experimental.envoy.filters.x[y]' }, ctx()));
});

test('regex uses RE2 with whole-value semantics', () => {
  const m: Matcher = { type: 'request.header', name: 'x', match: { kind: 'regex', pattern: 'a|ab' } };
  assert.ok(run(m, ctx({ headers: { x: 'ab' } })));
  assert.ok(!run(m, ctx({ headers: { x: 'abc' } })));
  assert.notEqual(checkRegex('(a'), null);
  assert.notEqual(checkRegex('(a)\\1'), null, 'backreferences are not RE2');
  assert.notEqual(checkRegex('a'.repeat(5000)), null);
  assert.throws(() => compileMatcher({ type: 'request.header', name: 'x', match: { kind: 'regex', pattern: '(' } }, env));
});

test('CIDR: IPv4, IPv6 and IPv4-mapped peers', () => {
  const v4: Matcher = { type: 'source.ip', cidrs: ['10.0.0.0/8', '192.168.1.7'] };
  assert.ok(run(v4, ctx({ sourceIp: '10.200.0.1' })));
  assert.ok(run(v4, ctx({ sourceIp: '::ffff:10.200.0.1' })));
  assert.ok(run(v4, ctx({ sourceIp: '192.168.1.7' })));
  assert.ok(!run(v4, ctx({ sourceIp: '192.168.1.8' })));
  assert.ok(!run(v4, ctx({ sourceIp: 'not-an-ip' })));
  const v6: Matcher = { type: 'remote.ip', cidrs: ['2001:db8::/32', '::1'] };
  assert.ok(run(v6, ctx({ remoteIp: '2001:db8:ffff::1' })));
  assert.ok(run(v6, ctx({ remoteIp: '::1' })));
  assert.ok(!run(v6, ctx({ remoteIp: '2001:db9::1' })));
  assert.ok(!run({ type: 'destination.ip', cidrs: ['0.0.0.0/0'] }, ctx()), 'absent destination ip');
  assert.ok(run({ type: 'destination.ip', cidrs: ['0.0.0.0/0'] }, ctx({ destinationIp: '1.2.3.4' })));
  assert.throws(() => compileMatcher({ type: 'source.ip', cidrs: ['10.0.0.0/33'] }, env));
});

test('JWT principal and claims', () => {
  const jwt: VerifiedJwt = { issuer: 'https://iss', subject: 'alice', claims: { groups: ['dev', 1, 'ops'], scope: 'read write', org: { team: 'blue' }, admin: true, permission: 'a b' } };
  const p: Matcher = { type: 'jwt.principal', issuer: { kind: 'exact', value: 'https://iss' }, subject: { kind: 'present' } };
  assert.ok(run(p, ctx({ jwt })));
  assert.ok(!run(p, ctx({ jwt: { ...jwt, subject: '' } })), 'requestPrincipals * needs a sub');
  assert.ok(!run(p, ctx()));
  const claim = (path: string[], value: string): Matcher => ({ type: 'jwt.claim', path, match: { kind: 'exact', value } });
  assert.ok(run(claim(['groups'], 'ops'), ctx({ jwt })));
  assert.ok(!run(claim(['groups'], '1'), ctx({ jwt })));
  assert.ok(run(claim(['scope'], 'write'), ctx({ jwt })));
  assert.ok(run(claim(['permission'], 'b'), ctx({ jwt })));
  assert.ok(run(claim(['org', 'team'], 'blue'), ctx({ jwt })));
  assert.ok(!run(claim(['admin'], 'true'), ctx({ jwt })));
  assert.ok(!run(claim(['org'], 'blue'), ctx({ jwt })));
  assert.ok(!run(claim(['toString'], 'x'), ctx({ jwt })));
});

test('peer names (Linkerd identity names through a template)', () => {
  const bar = peer('spiffe://cluster.local/ns/foo/sa/bar');
  const id = (exact: string[], suffixes: string[]): Matcher => ({ type: 'peer.name', template: '{sa}.{ns}.serviceaccount.identity.linkerd.{td}', exact, suffixes });
  assert.ok(run(id(['bar.foo.serviceaccount.identity.linkerd.cluster.local'], []), ctx({ peer: bar })));
  assert.ok(run(id(['spiffe://cluster.local/ns/foo/sa/bar'], []), ctx({ peer: bar })));
  assert.ok(run(id([], ['foo.serviceaccount.identity.linkerd.cluster.local']), ctx({ peer: bar })));
  assert.ok(run(id([], ['']), ctx({ peer: bar })));
  assert.ok(!run(id([], ['']), ctx()));
  assert.ok(!run(id([], ['other.serviceaccount.identity.linkerd.cluster.local']), ctx({ peer: bar })));
  const odd = peer('spiffe://cluster.local/workload/x');
  assert.ok(!run(id([], ['']), ctx({ peer: odd })), 'non /ns/*/sa/* peers only match exact spiffe:// entries');
  assert.ok(run(id(['spiffe://cluster.local/workload/x'], []), ctx({ peer: odd })));
});

test('query parameters: any occurrence, form-decoded', () => {
  const q: Matcher = { type: 'request.query', name: 'a b', match: { kind: 'exact', value: 'x+y' } };
  assert.ok(run(q, ctx({ query: 'z=1&a+b=1&a%20b=x%2By' })));
  assert.ok(!run(q, ctx({ query: 'a+b=1' })));
});

// ---- property: compiled matchers agree with a naive reference interpretation ----

function refString(m: StringMatcher, v: string, forceIgnoreCase = false): boolean {
  if (m.kind === 'present') return v !== '';
  if (m.kind === 'regex') return new RegExp(`^(?:${m.pattern})$`, forceIgnoreCase ? 'i' : '').test(v);
  const ic = forceIgnoreCase || m.ignoreCase === true;
  const a = ic ? v.toLowerCase() : v;
  const b = ic ? m.value.toLowerCase() : m.value;
  return m.kind === 'exact' ? a === b : m.kind === 'prefix' ? a.slice(0, b.length) === b : a.length >= b.length && a.slice(a.length - b.length) === b;
}

function refPath(m: PathMatcher, p: string): boolean {
  if (m.kind === 'template') {
    const re = m.segments.map((s) => (s.kind === 'one' ? '[^/]+' : s.kind === 'many' ? '.*' : s.value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/');
    return new RegExp(`^/${re}$`).test(p);
  }
  if (m.kind === 'segment-prefix') {
    const pre = m.value.replace(/\/+$/, '');
    const q = p.replace(/\/+$/, '');
    return pre === '' ? p.startsWith('/') : q === pre || q.startsWith(pre + '/');
  }
  return refString(m, p);
}

function ref(m: Matcher, c: RequestContext): boolean {
  switch (m.type) {
    case 'any': return true;
    case 'none': return false;
    case 'and': return m.of.every((x) => ref(x, c));
    case 'or': return m.of.some((x) => ref(x, c));
    case 'not': return !ref(m.of, c);
    case 'peer.principal': return c.peer !== null && refString(m.match, c.peer.principal);
    case 'peer.authenticated': return c.peer !== null;
    case 'request.method': return c.method !== '' && refString(m.match, c.method);
    case 'request.host': return c.authority !== '' && refString(m.match, c.authority, true);
    case 'request.path': return c.path !== '' && refPath(m.match, c.path);
    case 'request.header': { const v = c.headers[m.name]; return v !== undefined && refString(m.match, v); }
    case 'destination.port': return m.ports.includes(c.port);
    case 'jwt.principal': return c.jwt !== null && refString(m.issuer, c.jwt.issuer) && refString(m.subject, c.jwt.subject);
    case 'jwt.claim': {
      if (c.jwt === null) return false;
      const v = (c.jwt.claims as Record<string, unknown>)[m.path[0] as string];
      const vals = typeof v === 'string' ? [v] : Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
      return vals.some((s) => refString(m.match, s));
    }
    case 'source.ip': {
      const toNum = (ip: string) => ip.split('.').reduce((a, o) => a * 256 + Number(o), 0);
      return m.cidrs.some((cidr) => {
        const [net, len] = cidr.split('/');
        const bits = Number(len ?? 32);
        const div = 2 ** (32 - bits);
        return Math.floor(toNum(c.sourceIp) / div) === Math.floor(toNum(net as string) / div);
      });
    }
    default: throw new Error(`reference lacks ${m.type}`);
  }
}

const word = fc.constantFrom('', 'a', 'ab', 'GET', 'POST', '/api', '/api/v1', '/api/v1/x', 'x.y', 'Api', 'b/c');
const strM: fc.Arbitrary<StringMatcher> = fc.oneof(
  fc.record({ kind: fc.constantFrom('exact' as const, 'prefix' as const, 'suffix' as const), value: word, ignoreCase: fc.boolean() }),
  fc.constant({ kind: 'present' as const }),
  fc.record({ kind: fc.constant('regex' as const), pattern: fc.constantFrom('a.*', '[A-Z]+', '/api/.+', 'x|x\\.y') }),
);
const pathM: fc.Arbitrary<PathMatcher> = fc.oneof(
  strM,
  fc.record({ kind: fc.constant('segment-prefix' as const), value: fc.constantFrom('/', '/api', '/api/', '/api/v1') }),
  fc.record({ kind: fc.constant('template' as const), segments: fc.array(fc.oneof(fc.constant({ kind: 'one' as const }), fc.constantFrom('api', 'v1', 'x').map((value) => ({ kind: 'literal' as const, value }))), { maxLength: 3 })
    .chain((segs) => fc.boolean().map((many) => (many ? [...segs, { kind: 'many' as const }] : segs))) }),
);
const leaf: fc.Arbitrary<Matcher> = fc.oneof(
  fc.constant({ type: 'any' as const }), fc.constant({ type: 'none' as const }), fc.constant({ type: 'peer.authenticated' as const }),
  strM.map((match) => ({ type: 'peer.principal' as const, match })),
  strM.map((match) => ({ type: 'request.method' as const, match })),
  strM.map((match) => ({ type: 'request.host' as const, match })),
  pathM.map((match) => ({ type: 'request.path' as const, match })),
  fc.tuple(fc.constantFrom('x-a', 'x-b'), strM).map(([name, match]) => ({ type: 'request.header' as const, name, match })),
  fc.array(fc.constantFrom(80, 8080, 9000), { minLength: 1, maxLength: 2 }).map((ports) => ({ type: 'destination.port' as const, ports })),
  fc.tuple(strM, strM).map(([issuer, subject]) => ({ type: 'jwt.principal' as const, issuer, subject })),
  fc.tuple(fc.constantFrom('groups', 'aud'), strM).map(([c, match]) => ({ type: 'jwt.claim' as const, path: [c], match })),
  fc.array(fc.constantFrom('10.0.0.0/8', '10.1.2.0/24', '192.168.0.1', '0.0.0.0/0'), { minLength: 1, maxLength: 2 }).map((cidrs) => ({ type: 'source.ip' as const, cidrs })),
);
// `methods: [GET, HEAD]`-like ORs of exact leaves on one attribute, which compile to one membership test.
const exactOr: fc.Arbitrary<Matcher> = fc.tuple(
  fc.constantFrom('peer.principal' as const, 'request.method' as const, 'request.path' as const),
  fc.array(fc.record({ value: word, ignoreCase: fc.boolean() }), { minLength: 2, maxLength: 4 }),
).map(([type, values]) => ({ type: 'or' as const, of: values.map(({ value, ignoreCase }) => ({ type, match: { kind: 'exact' as const, value, ...(ignoreCase && value === 'ab' ? { ignoreCase } : {}) } }) as Matcher) }));
const matcherArb = matcherTrees([leaf, exactOr], { withCrossShrink: true });

const contextArb: fc.Arbitrary<RequestContext> = fc.record({
  protocol: fc.constantFrom('http' as const, 'grpc' as const),
  method: fc.constantFrom('GET', 'POST', 'get'),
  path: fc.constantFrom('/', '/api', '/api/', '/api/v1', '/api/v1/x', '/apix', '/x', '/api/x/v1', '/a', '//api'),
  query: fc.constant(''),
  authority: fc.constantFrom('api', 'a', 'x.y', 'api:80'),
  host: fc.constant('api'),
  headers: fc.dictionary(fc.constantFrom('x-a', 'x-b'), word, { maxKeys: 2 }),
  peer: fc.option(fc.constantFrom('spiffe://a', 'spiffe://ab', 'spiffe://cluster.local/ns/a/sa/b').map(peer), { nil: null }),
  sourceIp: fc.constantFrom('10.1.2.3', '10.9.9.9', '192.168.0.1', '172.16.0.1'),
  remoteIp: fc.constant('10.1.2.3'),
  destinationIp: fc.constant(undefined),
  port: fc.constantFrom(80, 8080, 9000),
  sni: fc.constant(undefined),
  jwt: fc.option(fc.record({ issuer: word, subject: word, claims: fc.record({ groups: fc.oneof(word, fc.array(fc.oneof(word, fc.integer()), { maxLength: 3 }), fc.integer()) }) }), { nil: null }),
});

test('property: compiled matchers agree with the reference interpretation', () => {
  fc.assert(fc.property(matcherArb, fc.array(contextArb, { minLength: 1, maxLength: 5 }), (m, contexts) => {
    const compiled = compileMatcher(m, env);
    for (const c of contexts) assert.equal(compiled(c), ref(m, c), JSON.stringify({ m, c }));
  }), { numRuns: 3000 });
});

test('property: the literal fast path for regexes agrees with RE2', async () => {
  const { default: RE2 } = await import('re2');
  const { compileFullMatch } = await import('./regex.js');
  const lit = fc.array(fc.constantFrom('a', '/', 'ns', '\\.', '-', 'x', '\\*', ':'), { maxLength: 5 }).map((p) => p.join(''));
  const pattern = fc.tuple(fc.boolean(), lit, fc.boolean()).map(([l, m, t]) => `${l ? '.*' : ''}${m}${t ? '.*' : ''}`);
  const value = fc.array(fc.constantFrom('a', '/', 'ns', '.', '-', 'x', '*', '\n', ':', 'é'), { maxLength: 8 }).map((p) => p.join(''));
  fc.assert(fc.property(pattern, fc.array(value, { maxLength: 5 }), (p, values) => {
    const fast = compileFullMatch(p);
    const slow = new RE2(`^(?:${p})$`, 'u');
    for (const v of values) assert.equal(fast(v), slow.test(v), JSON.stringify({ p, v }));
  }), { numRuns: 3000 });
});

test('destination.portRange is inclusive at both ends', () => {
  const m: Matcher = { type: 'destination.portRange', from: 32000, to: 32768 };
  for (const port of [32000, 32500, 32768]) assert.ok(run(m, ctx({ port })), String(port));
  for (const port of [31999, 32769, 80]) assert.ok(!run(m, ctx({ port })), String(port));
});

test('peer.namespace: pod identities of the listed trust domains, by namespace', () => {
  const m: Matcher = { type: 'peer.namespace', trustDomains: ['cluster.local', 'old.local'], namespaces: ['web'] };
  assert.ok(run(m, ctx({ peer: peer('spiffe://cluster.local/ns/web/sa/fe') })));
  assert.ok(run(m, ctx({ peer: peer('spiffe://old.local/ns/web/sa/fe') })));
  for (const id of ['spiffe://cluster.local/ns/webx/sa/fe', 'spiffe://other.example/ns/web/sa/fe', 'spiffe://cluster.local/ns/web/sa/fe/extra', 'spiffe://cluster.local/web']) {
    assert.ok(!run(m, ctx({ peer: peer(id) })), id);
  }
  assert.ok(!run(m, ctx({ peer: null })));
  const any: Matcher = { type: 'peer.namespace', trustDomains: ['cluster.local'] };
  assert.ok(run(any, ctx({ peer: peer('spiffe://cluster.local/ns/zzz/sa/a') })));
  assert.ok(!run(any, ctx({ peer: peer('spiffe://cluster.local/gateway') })));
});
