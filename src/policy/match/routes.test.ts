import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestContext } from '../context-types.js';
import type { Route, RouteMatch } from '../ir.js';
import { compileRoute, parseQuery, segmentPrefixMatches, selectRoute, wholeMatch } from './routes.js';

function ctx(over: Partial<RequestContext> = {}): RequestContext {
  return {
    protocol: 'http', method: 'GET', path: '/', query: '', authority: 'api', host: 'api', headers: {},
    peer: null, sourceIp: '10.0.0.1', remoteIp: '10.0.0.1', destinationIp: undefined, port: 8080, sni: undefined, jwt: null,
    ...over,
  };
}

function route(name: string, order: number, matches: Partial<RouteMatch>[], hostnames: string[] = [], kind = 'HTTPRoute'): Route {
  return {
    ref: { dialect: 'linkerd', kind, namespace: 'ns', name }, label: name, hostnames, order, authorizations: [],
    rules: [{ matches: matches.map((m) => ({ headers: [], queryParams: [], ...m })), filters: [] }],
  };
}

const pick = (routes: Route[], c: RequestContext) => selectRoute(routes.map(compileRoute), c)?.route.ref.name;

test('PathPrefix is segment-wise and trims trailing slashes on both sides', () => {
  assert.equal(segmentPrefixMatches('/api', '/api'), true);
  assert.equal(segmentPrefixMatches('/api', '/api/'), true);
  assert.equal(segmentPrefixMatches('/api', '/api/x'), true);
  assert.equal(segmentPrefixMatches('/api', '/apix'), false);
  assert.equal(segmentPrefixMatches('/authors/', '/authors'), true);
  assert.equal(segmentPrefixMatches('/', '/anything'), true);
});

test('regex must span the whole value with leftmost-first semantics (a|ab fails on ab)', () => {
  assert.equal(wholeMatch('/users/[0-9]+')('/users/12'), true);
  assert.equal(wholeMatch('/users/[0-9]+')('/users/12/x'), false);
  assert.equal(wholeMatch('a|ab')('ab'), false);
  assert.equal(wholeMatch('ab|a')('ab'), true);
});

test('query strings are parsed as form-urlencoded', () => {
  assert.deepEqual(parseQuery('a=1&b=x+y&c=%2F&d&a=2'), [['a', '1'], ['b', 'x y'], ['c', '/'], ['d', ''], ['a', '2']]);
  assert.deepEqual(parseQuery('bad=%E0%A4%A'), [['bad', '%E0%A4%A']]);
});

test('score order: host, path length, headers, query params, method; ties keep the earlier route', () => {
  const prefix = route('prefix', 0, [{ path: { kind: 'segment-prefix', value: '/api' } }]);
  const exactSameLen = route('exact', 1, [{ path: { kind: 'exact', value: '/api' } }]);
  assert.equal(pick([prefix, exactSameLen], ctx({ path: '/api' })), 'prefix', 'Exact and Prefix of equal length tie');
  const header = route('header', 2, [{ path: { kind: 'segment-prefix', value: '/api' }, headers: [{ name: 'x-a', match: { kind: 'exact', value: '1' } }] }]);
  const query = route('query', 3, [{ path: { kind: 'segment-prefix', value: '/api' }, queryParams: [{ name: 'q', match: { kind: 'exact', value: '1' } }] }]);
  const method = route('method', 4, [{ path: { kind: 'segment-prefix', value: '/api' }, method: 'GET' }]);
  const all = [prefix, header, query, method];
  assert.equal(pick(all, ctx({ path: '/api/x' })), 'method');
  assert.equal(pick(all, ctx({ path: '/api/x', query: 'q=1' })), 'query');
  assert.equal(pick(all, ctx({ path: '/api/x', query: 'q=1', headers: { 'x-a': '1' } })), 'header');
  const longer = route('longer', 5, [{ path: { kind: 'segment-prefix', value: '/api/x' } }]);
  assert.equal(pick([...all, longer], ctx({ path: '/api/x', headers: { 'x-a': '1' } })), 'longer');
  const hosted = route('hosted', 6, [{ path: { kind: 'segment-prefix', value: '/' } }], ['api']);
  assert.equal(pick([...all, longer, hosted], ctx({ path: '/api/x' })), 'hosted');
  assert.equal(pick([...all, longer, hosted], ctx({ path: '/api/x', host: 'other' })), 'longer');
});

test('exact hostnames beat wildcards, longer wildcards beat shorter ones', () => {
  const star = route('star', 0, [{}], ['*.example.com']);
  const deeper = route('deeper', 1, [{}], ['*.a.example.com']);
  const exact = route('exact', 2, [{}], ['x.a.example.com']);
  assert.equal(pick([star, deeper, exact], ctx({ host: 'x.a.example.com' })), 'exact');
  assert.equal(pick([star, deeper, exact], ctx({ host: 'y.a.example.com' })), 'deeper');
  assert.equal(pick([star, deeper, exact], ctx({ host: 'b.example.com' })), 'star');
  assert.equal(pick([star, deeper, exact], ctx({ host: 'example.com' })), undefined);
});

test('repeated headers: the joined value or any comma-separated piece may match', () => {
  const r = route('h', 0, [{ headers: [{ name: 'x-env', match: { kind: 'exact', value: 'canary' } }] }]);
  assert.equal(pick([r], ctx({ headers: { 'x-env': 'stable,canary' } })), 'h');
  assert.equal(pick([r], ctx({ headers: { 'x-env': 'stable' } })), undefined);
});

test('gRPC matches need POST /service/method and score service then method length', () => {
  const svc = route('svc', 0, [{ grpc: { service: 'pkg.Svc' } }], [], 'GRPCRoute');
  const both = route('both', 1, [{ grpc: { service: 'pkg.Svc', method: 'Get' } }], [], 'GRPCRoute');
  const any = route('any', 2, [], [], 'GRPCRoute');
  const grpc = (path: string, method = 'POST') => ctx({ protocol: 'grpc', method, path });
  assert.equal(pick([svc, both, any], grpc('/pkg.Svc/Get')), 'both');
  assert.equal(pick([svc, both, any], grpc('/pkg.Svc/Put')), 'svc');
  assert.equal(pick([svc, both, any], grpc('/other.Svc/Put')), 'any');
  assert.equal(pick([svc, both, any], grpc('/pkg.Svc/Get', 'GET')), undefined);
  assert.equal(pick([svc, both, any], grpc('/pkg.Svc/Get/extra')), undefined);
});

test('property: segment-wise PathPrefix equals the spec definition (trim both, rest empty or starts with /)', async () => {
  const fc = (await import('fast-check')).default;
  const reference = (prefix: string, path: string) => {
    if (prefix === '/') return true;
    const p = prefix.replace(/\/+$/, '');
    const q = path.replace(/\/+$/, '');
    return q.startsWith(p) && (q.length === p.length || q[p.length] === '/');
  };
  const segment = fc.constantFrom('a', 'ab', 'b', '', 'api', 'x');
  const pathArb = fc.array(segment, { maxLength: 4 }).chain((segs) => fc.boolean().map((slash) => `/${segs.join('/')}${slash ? '/' : ''}`));
  fc.assert(fc.property(pathArb, pathArb, (prefix, path) => segmentPrefixMatches(prefix, path) === reference(prefix, path)), { numRuns: 2000 });
});
