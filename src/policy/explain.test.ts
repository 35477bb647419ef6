import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestContext } from './context-types.js';
import { explain } from './explain.js';
import type { CompileOptions, IstioRule, PolicySnapshot } from './ir.js';

const options: CompileOptions = {
  workload: { namespace: 'foo', labels: { app: 'x' }, annotations: {}, serviceAccount: 'sa', trustDomain: 'cluster.local', trustDomainAliases: [] },
  rootNamespace: 'istio-system', pathNormalization: 'BASE', customProviders: [],
  linkerd: { defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {}, portNames: {}, controlPlaneNamespace: 'linkerd' },
};
const policy = { dialect: 'istio' as const, kind: 'AuthorizationPolicy', namespace: 'foo', name: 'allow-get' };
const allow: IstioRule = {
  id: 'ns[foo]-policy[allow-get]-rule[0]', policy, index: 0, action: 'ALLOW', dryRun: false,
  match: { type: 'and', of: [
    { type: 'or', of: [{ type: 'peer.principal', match: { kind: 'exact', value: 'cluster.local/ns/foo/sa/client' } }] },
    { type: 'or', of: [{ type: 'request.method', match: { kind: 'exact', value: 'GET' } }] },
  ] },
};
const snapshot: PolicySnapshot = {
  revision: 'abc', options, linkerd: undefined, jwtProviders: [], diagnostics: [],
  istio: { http: { custom: [], deny: [], allow: [allow], audit: [], hasEnforcedAllow: true, hasShadowAllow: false }, tcp: { custom: [], deny: [], allow: [], audit: [], hasEnforcedAllow: true, hasShadowAllow: false } },
  documents: [
    { file: 'a.yaml', line: 1, apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', namespace: 'foo', name: 'allow-get', applies: true },
    { file: 'a.yaml', line: 20, apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', namespace: 'bar', name: 'elsewhere', applies: false },
  ],
};
const ctx: RequestContext = {
  protocol: 'http', method: 'POST', path: '/x', query: '', authority: 'api', host: 'api', headers: {}, peer: null,
  sourceIp: '10.0.0.1', remoteIp: '10.0.0.1', destinationIp: undefined, port: 8080, sni: undefined, jwt: null,
};

test('explain names the decision, every rule and the values seen', () => {
  const r = explain(snapshot, ctx);
  assert.equal(r.decision.reason, 'no_allow_policy_matched');
  assert.equal(r.istio?.rules.length, 1);
  const rule = r.istio?.rules[0];
  assert.equal(rule?.matched, false);
  const [from, to] = rule?.trace.children ?? [];
  assert.equal(from?.children?.[0]?.actual, null, 'plaintext peer shows as absent');
  assert.equal(to?.children?.[0]?.actual, 'POST');
  assert.equal(to?.children?.[0]?.expected, 'exact "GET"');
  assert.equal(r.documents[0]?.why, undefined);
  assert.match(r.documents[1]?.why ?? '', /neither the workload/);
});
