import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerIdentity, RequestContext } from '../../context-types.js';
import type { Decision } from '../../decision.js';
import { evaluate } from '../../evaluate.js';
import type { CompileOptions, PolicyProgram } from '../../ir.js';
import type { PolicySnapshot } from '../../snapshot.js';
import { compileProgram } from '../../program.js';
import { explain } from '../../explain.js';
import { linkerdTier } from './tiers.js';
import type { LinkerdAuthorization, LinkerdProgram, LinkerdRoute, LinkerdServer } from './types.js';
import { testCompileOptions } from '../../../../test/helpers/compile-options.js';

/** A hand-built Linkerd program written as its tier and compiled, as compile.ts would. */
function prepareLinkerd(lp: LinkerdProgram, o: CompileOptions): PolicySnapshot {
  const program: PolicyProgram = { tiers: [linkerdTier(lp, o.workload.namespace, o.linkerd.controlPlaneNamespace)] };
  return { revision: 'r', options: o, program, compiled: compileProgram(program, {}), jwtProviders: [], jwtOutputHeaders: new Set(), documents: [], diagnostics: [] };
}
const evaluateLinkerd = (s: PolicySnapshot, c: RequestContext): Decision => evaluate(s, c);

const options: CompileOptions = testCompileOptions({ namespace: 'ns', serviceAccount: 'api' }, { linkerd: { defaultPolicy: 'deny' } });

function peer(ns: string, sa: string): PeerIdentity {
  return { spiffeId: `spiffe://cluster.local/ns/${ns}/sa/${sa}`, principal: `cluster.local/ns/${ns}/sa/${sa}`, trustDomain: 'cluster.local', namespace: ns, serviceAccount: sa };
}

function ctx(over: Partial<RequestContext> = {}): RequestContext {
  return {
    protocol: 'http', method: 'GET', path: '/', query: '', authority: 'api:8080', host: 'api', headers: {},
    peer: null, sourceIp: '10.0.0.1', remoteIp: '10.0.0.1', destinationIp: undefined, port: 8080, sni: undefined, jwt: null,
    ...over,
  };
}

const ref = (kind: string, name: string) => ({ dialect: 'linkerd' as const, kind, namespace: 'ns', name });
const sa = (name: string): LinkerdAuthorization => ({ ref: ref('AuthorizationPolicy', `allow-${name}`), match: { type: 'peer.name', template: '{sa}.{ns}.serviceaccount.identity.linkerd.{td}', exact: [`${name}.ns.serviceaccount.identity.linkerd.cluster.local`], suffixes: [] }, audit: false });
const audit: LinkerdAuthorization = { ref: ref('default', 'audit'), match: { type: 'any' }, audit: true };

function httpRoute(name: string, prefix: string, authorizations: LinkerdAuthorization[] = [], filters: LinkerdRoute['rules'][number]['filters'] = []): LinkerdRoute {
  return { ref: ref('HTTPRoute', name), hostnames: [], order: 0, authorizations, rules: [{ matches: [{ path: { kind: 'segment-prefix', value: prefix }, headers: [], queryParams: [] }], filters }] };
}

function program(server: Partial<LinkerdServer>, port = 8080): LinkerdProgram {
  const s: LinkerdServer = { ref: ref('Server', 's'), protocol: 'unknown', routes: [], authorizations: [], ...server };
  return { servers: { [port]: s }, defaultServer: { ref: ref('default', 'deny'), protocol: 'unknown', routes: [httpRoute('default', '/')], authorizations: [] } };
}

test('no matching route is 404 (grpc 5) before authorization, even for localhost', () => {
  const p = prepareLinkerd(program({ routes: [httpRoute('api', '/api')], authorizations: [audit] }), options);
  const d = evaluateLinkerd(p, ctx({ path: '/other', sourceIp: '127.0.0.1' }));
  assert.deepEqual([d.verdict, d.reason], ['not_found', 'route_not_found']);
  assert.equal(evaluateLinkerd(p, ctx({ path: '/other', protocol: 'grpc', method: 'POST' })).verdict, 'not_found');
});

test('route authorizations, then Server authorizations, then localhost; audit only as the fallback', () => {
  const p = prepareLinkerd(program({ routes: [httpRoute('api', '/', [sa('web')])], authorizations: [audit, sa('admin')] }), options);
  const web = evaluateLinkerd(p, ctx({ peer: peer('ns', 'web') }));
  assert.deepEqual([web.verdict, web.authorization, web.rule, web.audit, web.reason], ['allow', 'authorizationpolicy/allow-web', 'httproute/api', null, 'authorized']);
  const admin = evaluateLinkerd(p, ctx({ peer: peer('ns', 'admin') }));
  assert.equal(admin.authorization, 'authorizationpolicy/allow-admin');
  assert.equal(admin.audit, null);
  const local = evaluateLinkerd(p, ctx({ sourceIp: '::1' }));
  assert.equal(local.authorization, 'default/localhost');
  const stranger = evaluateLinkerd(p, ctx({ peer: peer('ns', 'stranger') }));
  assert.deepEqual([stranger.verdict, stranger.reason, stranger.authorization], ['allow', 'audit_would_deny', 'default/audit']);
  assert.deepEqual(stranger.audit, { policy: ref('Server', 's'), rule: 'httproute/api' });
});

test('deny names the Server and the route, for HTTP and gRPC alike', () => {
  const p = prepareLinkerd(program({ routes: [httpRoute('api', '/')] }), options);
  const http = evaluateLinkerd(p, ctx());
  assert.deepEqual([http.verdict, http.reason, http.policy?.name, http.rule, http.dialect], ['deny', 'unauthorized', 's', 'httproute/api', 'linkerd']);
  const grpc = evaluateLinkerd(p, ctx({ protocol: 'grpc', method: 'POST', path: '/a.B/C' }));
  assert.deepEqual([grpc.verdict, grpc.reason], ['deny', 'unauthorized']);
});

test('opaque servers and TCP connections are authorized at connection level with no route', () => {
  const p = prepareLinkerd(program({ protocol: 'opaque', routes: [httpRoute('api', '/api')], authorizations: [sa('web')] }), options);
  const d = evaluateLinkerd(p, ctx({ protocol: 'tcp', method: '', path: '', peer: peer('ns', 'web') }));
  assert.deepEqual([d.verdict, d.rule, d.authorization, d.effects], ['allow', null, 'authorizationpolicy/allow-web', null]);
  const http = evaluateLinkerd(p, ctx({ path: '/not-routed', peer: peer('ns', 'web') }));
  assert.equal(http.verdict, 'allow');
  const tcpOnHttp = prepareLinkerd(program({ protocol: 'HTTP/1', authorizations: [sa('web')] }), options);
  assert.equal(evaluateLinkerd(tcpOnHttp, ctx({ protocol: 'tcp', peer: peer('ns', 'web') })).reason, 'protocol_mismatch');
});

test('filters become effects; a redirect carries its status and location', () => {
  const allowAll: LinkerdAuthorization = { ref: ref('default', 'all-unauthenticated'), match: { type: 'any' }, audit: false };
  const p = prepareLinkerd(program({
    authorizations: [allowAll],
    routes: [
      httpRoute('hdr', '/h', [], [{ type: 'RequestHeaderModifier', set: [{ name: 'a', value: '1' }], add: [], remove: ['b'] }]),
      httpRoute('redir', '/old', [], [{ type: 'RequestRedirect', path: { type: 'ReplacePrefixMatch', value: '/new/' }, port: 9443, scheme: 'https', statusCode: 308 }]),
    ],
  }), options);
  const h = evaluateLinkerd(p, ctx({ path: '/h/x' }));
  assert.deepEqual(h.effects, { setHeaders: [{ name: 'a', value: '1' }], addHeaders: [], removeHeaders: ['b'], redirect: null, rateLimit: null });
  const r = evaluateLinkerd(p, ctx({ path: '/old/a/b', query: 'q=1' }));
  assert.deepEqual([r.verdict, r.reason, r.effects?.redirect], ['allow', 'redirect', { status: 308, location: 'https://api:9443/new/a/b?q=1' }]);
});

test('rate limit effects resolve the override for the peer identity', () => {
  const allowAll: LinkerdAuthorization = { ref: ref('default', 'all-unauthenticated'), match: { type: 'any' }, audit: false };
  const p = prepareLinkerd(program({
    authorizations: [allowAll], routes: [httpRoute('all', '/')],
    rateLimit: { ref: ref('HTTPLocalRateLimitPolicy', 'rl'), totalRps: 100, identityRps: 10, overrides: [{ rps: 50, identities: ['vip.ns.serviceaccount.identity.linkerd.cluster.local'] }] },
  }), options);
  assert.deepEqual(evaluateLinkerd(p, ctx({ peer: peer('ns', 'vip') })).effects?.rateLimit, { key: 'ns/rl', ref: ref('HTTPLocalRateLimitPolicy', 'rl'), totalRps: 100, overrideRps: 50 });
  assert.deepEqual(evaluateLinkerd(p, ctx()).effects?.rateLimit, { key: 'ns/rl', ref: ref('HTTPLocalRateLimitPolicy', 'rl'), totalRps: 100, identityRps: 10 });
});

test('explain reports the server, the route and each authorization tried, as for every dialect', () => {
  const p = prepareLinkerd(program({ routes: [httpRoute('api', '/', [sa('web')])] }), options);
  const r = explain(p, ctx({ peer: peer('ns', 'other') }));
  assert.equal(r.decision.verdict, 'deny');
  const tier = r.tiers[0];
  assert.equal(tier?.scope, 'Server ns/s');
  assert.deepEqual(tier?.route, { label: 'httproute/api', score: [0, 1, 0, 0, 0] });
  assert.deepEqual(tier?.rules.map((x) => [x.id, x.matched]), [['authorizationpolicy/allow-web', false], ['default/localhost', false]]);
  assert.match(r.because.join('\n'), /authorizationpolicy\/allow-web did not match: peer.name wants/);
});
