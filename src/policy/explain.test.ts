import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { RequestContext } from './context-types.js';
import { compilePolicies } from './compile.js';
import { explain } from './explain.js';
import type { CompileOptions } from './ir.js';

const options: CompileOptions = {
  workload: { namespace: 'foo', labels: { app: 'x' }, annotations: {}, serviceAccount: 'sa', trustDomain: 'cluster.local', trustDomainAliases: [] },
  rootNamespace: 'istio-system', pathNormalization: 'BASE', customProviders: [],
  linkerd: { defaultPolicy: 'all-unauthenticated', clusterNetworks: [], probeNetworks: [], probePaths: {}, portNames: {}, controlPlaneNamespace: 'linkerd' },
};

const ctx = (over: Partial<RequestContext> = {}): RequestContext => ({
  protocol: 'http', method: 'POST', path: '/x', query: '', authority: 'api', host: 'api', headers: {}, peer: null,
  sourceIp: '10.0.0.1', remoteIp: '10.0.0.1', destinationIp: undefined, port: 8080, sni: undefined, jwt: null, ...over,
});

test('explain names the decision, every rule, the values seen, and the failing conditions', () => {
  const r0 = compilePolicies([{ file: 'a.yaml', text: `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-get, namespace: foo}
spec:
  rules:
  - from: [{source: {principals: [cluster.local/ns/foo/sa/client]}}]
    to: [{operation: {methods: [GET]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: elsewhere, namespace: bar}
spec: {}
` }], options);
  assert.ok(r0.snapshot);
  const r = explain(r0.snapshot, ctx());
  assert.equal(r.decision.reason, 'no_allow_policy_matched');
  const http = r.tiers.find((t) => t.dialect === 'istio' && t.tier === 'http');
  assert.ok(http);
  assert.equal(http.rules.length, 1);
  const rule = http.rules[0];
  assert.equal(rule?.matched, false);
  const [from, to] = rule?.trace.children ?? [];
  assert.equal(from?.actual, null, 'plaintext peer shows as absent');
  assert.equal(to?.actual, 'POST');
  assert.equal(to?.expected, 'exact "GET"');
  assert.deepEqual(rule?.failed, ['peer.principal wants exact "cluster.local/ns/foo/sa/client", saw (absent)', 'request.method wants exact "GET", saw "POST"']);
  assert.match(r.because.join('\n'), /ns\[foo\]-policy\[allow-get\]-rule\[0\] did not match: .*request.method wants exact "GET", saw "POST"/);
  assert.equal(r.documents[0]?.why, undefined);
  assert.match(r.documents[1]?.why ?? '', /neither the workload/);
});

test('explain traces Linkerd like every dialect: server, route, each authorization, and why a deny happened', () => {
  const r0 = compilePolicies([{ file: 'l.yaml', text: `apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: api, namespace: foo}
spec: {podSelector: {matchLabels: {app: x}}, port: 8080, proxyProtocol: HTTP/1}
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {name: items, namespace: foo}
spec:
  parentRefs: [{name: api, kind: Server, group: policy.linkerd.io}]
  rules: [{matches: [{path: {type: PathPrefix, value: /items}}]}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: items-web, namespace: foo}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: items}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: web}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {name: web, namespace: foo}
spec: {identities: [web.foo.serviceaccount.identity.linkerd.cluster.local]}
` }], options);
  assert.ok(r0.snapshot);
  const denied = explain(r0.snapshot, ctx({ method: 'GET', path: '/items/1' }));
  assert.deepEqual([denied.decision.verdict, denied.decision.reason], ['deny', 'unauthorized']);
  const tier = denied.tiers[0];
  assert.equal(tier?.dialect, 'linkerd');
  assert.equal(tier?.scope, 'Server foo/api');
  assert.deepEqual(tier?.route, { label: 'httproute/items', score: [0, 6, 0, 0, 0] });
  assert.deepEqual(tier?.rules.map((x) => [x.id, x.matched]), [['authorizationpolicy/items-web', false], ['default/localhost', false]]);
  assert.match(denied.because[0] ?? '', /^authorizationpolicy\/items-web did not match: peer.name wants .*saw \(absent\)/);
  const missing = explain(r0.snapshot, ctx({ method: 'GET', path: '/other' }));
  assert.equal(missing.tiers[0]?.route, 'none');
  assert.deepEqual(missing.because, ['no route of the scope matches the request']);
});
