import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies } from '../policy/compile.js';
import type { CompileOptions } from '../policy/ir.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { LocalRateLimiter } from '../policy/linkerd-rate-limit.js';
import { jwksJson, makeKey, mint } from '../jwt/testing.js';
import { parseWorkloadFlags } from '../config/workload.js';
import { createCheckAuthenticator, decideRequest, type CheckRequest } from './decide.js';
import { testCompileOptions } from '../../test/helpers/compile-options.js';

const options: CompileOptions = testCompileOptions({ namespace: 'shop', labels: { app: 'api' }, serviceAccount: 'api' }, {
  pathNormalization: 'BASE', linkerd: { clusterNetworks: ['10.0.0.0/8'] },
});

function compile(yaml: string): PolicySnapshot {
  const r = compilePolicies([{ file: 'p.yaml', text: yaml }], options);
  assert.ok(r.snapshot, JSON.stringify(r.diagnostics));
  return r.snapshot;
}

async function decide(snapshot: PolicySnapshot, request: CheckRequest, limiter?: LocalRateLimiter) {
  const authenticator = createCheckAuthenticator(snapshot, { now: () => Date.now() });
  try {
    return await decideRequest(snapshot, request, { authenticator, ...(limiter ? { rateLimiter: limiter } : {}) });
  } finally {
    authenticator.close();
  }
}

const grpc = (path: string, extra: Partial<CheckRequest> = {}): CheckRequest =>
  ({ protocol: 'grpc', method: 'POST', path, host: 'api:8080', headers: { 'content-type': 'application/grpc' }, sourceIp: '10.0.0.1', port: 8080, ...extra });
const http = (path: string, extra: Partial<CheckRequest> = {}): CheckRequest =>
  ({ protocol: 'http', method: 'GET', path, host: 'api:8080', sourceIp: '10.0.0.1', port: 8080, ...extra });

test('check reports what the data plane sends: gRPC refusals are HTTP 200 with grpc-status 7 and 16', async () => {
  const key = await makeKey('ES256', 'k1');
  const snapshot = compile(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: only-get, namespace: shop}
spec:
  rules:
  - to: [{operation: {paths: ["/ok.Svc/*"]}}]
---
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: shop}
spec:
  jwtRules:
  - issuer: https://issuer.example
    jwks: '${jwksJson(key)}'
`);
  const denied = await decide(snapshot, grpc('/other.Svc/Call'));
  assert.deepEqual([denied.verdict, denied.status, denied.grpcStatus], ['deny', 200, 7]);
  assert.deepEqual([(await decide(snapshot, http('/other'))).status, (await decide(snapshot, http('/other'))).grpcStatus], [403, null]);
  const allowed = await decide(snapshot, grpc('/ok.Svc/Call'));
  assert.deepEqual([allowed.verdict, allowed.status, allowed.grpcStatus], ['allow', 200, 0]);
  assert.deepEqual([allowed.policy?.dialect, allowed.tier], ['istio', 'http'], 'check names the dialect and tier that decided');

  const expired = await mint(key, { iss: 'https://issuer.example', sub: 'a', exp: Math.floor(Date.now() / 1000) - 3600 });
  const unauth = await decide(snapshot, grpc('/ok.Svc/Call', { headers: { 'content-type': 'application/grpc', authorization: `Bearer ${expired}` } }));
  assert.deepEqual([unauth.verdict, unauth.status, unauth.grpcStatus], ['unauthenticated', 200, 16]);
  const unauthHttp = await decide(snapshot, http('/ok.Svc/Call', { headers: { authorization: `Bearer ${expired}` } }));
  assert.deepEqual([unauthHttp.status, unauthHttp.grpcStatus], [401, null]);
});

test('check reports gRPC NOT_FOUND (5) and RESOURCE_EXHAUSTED (8) for Linkerd, as linkerd2-proxy sends them', async () => {
  const snapshot = compile(`apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {name: api, namespace: shop}
spec: {podSelector: {matchLabels: {app: api}}, port: 8080, proxyProtocol: gRPC}
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: svc, namespace: shop}
spec:
  parentRefs: [{name: api, kind: Server, group: policy.linkerd.io}]
  rules: [{matches: [{method: {service: ok.Svc}}]}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: all, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: api}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: NetworkAuthentication, name: everyone}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {name: everyone, namespace: shop}
spec: {networks: [{cidr: 0.0.0.0/0}]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: HTTPLocalRateLimitPolicy
metadata: {name: rl, namespace: shop}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: api}
  total: {requestsPerSecond: 1}
`);
  const missing = await decide(snapshot, grpc('/nope.Svc/Call'));
  assert.deepEqual([missing.verdict, missing.status, missing.grpcStatus], ['not_found', 200, 5]);
  const limiter = new LocalRateLimiter();
  const first = await decide(snapshot, grpc('/ok.Svc/Call', { time: 0 }), limiter);
  assert.deepEqual([first.verdict, first.status, first.grpcStatus], ['allow', 200, 0]);
  const second = await decide(snapshot, grpc('/ok.Svc/Call', { time: 0 }), limiter);
  assert.deepEqual([second.verdict, second.status, second.grpcStatus], ['rate_limited', 200, 8]);
});

test('an explicit Linkerd default policy applies with no Linkerd resource loaded: deny denies (linkerd2-proxy), unset keeps Istio alone', async () => {
  const istioOnly = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: default}
spec:
  rules: [{}]
`;
  const decideWith = async (argv: string[]) => {
    const { options: o, diagnostics } = parseWorkloadFlags(argv, '/');
    assert.deepEqual(diagnostics, []);
    const r = compilePolicies([{ file: 'p.yaml', text: istioOnly }], o);
    assert.ok(r.snapshot);
    return decide(r.snapshot, http('/x', { peer: 'spiffe://cluster.local/ns/default/sa/web' }));
  };
  const flag = await decideWith(['--default-policy', 'deny']);
  assert.deepEqual([flag.verdict, flag.status, flag.reason, flag.policy], ['deny', 403, 'unauthorized', { dialect: 'linkerd', kind: 'default', namespace: 'default', name: 'deny' }]);
  const annotation = await decideWith(['--annotations', 'config.linkerd.io/default-inbound-policy=deny']);
  assert.deepEqual([annotation.verdict, annotation.reason], ['deny', 'unauthorized']);
  const authenticated = await decideWith(['--default-policy', 'all-authenticated']);
  assert.deepEqual([authenticated.verdict, authenticated.policy?.dialect], ['allow', 'istio']);
  const unset = await decideWith([]);
  assert.deepEqual([unset.verdict, unset.reason, unset.policy?.dialect], ['allow', 'allow_policy_matched', 'istio']);
  // With no policy at all and nothing set, nothing changes either.
  const none = compilePolicies([{ file: 'p.yaml', text: '' }], parseWorkloadFlags([], '/').options);
  if (none.snapshot) assert.equal((await decide(none.snapshot, http('/x'))).reason, 'no_policies');
});

test('check prints "log": true when a log rule marked the decision (Istio AUDIT), never for a Linkerd audit would-deny', async () => {
  const audited = compile(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-admin, namespace: shop}
spec:
  action: AUDIT
  rules: [{to: [{operation: {paths: ["/admin"]}}]}]
`);
  const marked = await decide(audited, http('/admin'));
  assert.equal(marked.verdict, 'allow');
  assert.equal(marked.log, true);
  assert.equal(marked.audit?.policy.name, 'audit-admin');
  assert.equal((await decide(audited, http('/other'))).log, undefined);
  const linkerd = compile(`apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: shop, name: api}
spec: {podSelector: {matchLabels: {app: api}}, port: 8080, accessPolicy: audit}
`);
  const wouldDeny = await decide(linkerd, http('/x'));
  assert.notEqual(wouldDeny.audit, null);
  assert.equal(wouldDeny.log, undefined);
});
