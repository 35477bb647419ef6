import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicySources } from '../../documents.js';
import { linkerdDialect } from './index.js';

function codes(yaml: string): string[] {
  const parsed = parsePolicySources([{ file: 'p.yaml', text: yaml }]);
  return parsed.documents.flatMap((d) => linkerdDialect.validate(d)).map((d) => `${d.code}:${d.fieldPath}:${d.origin.line}`);
}

test('accepts Linkerd kinds and Gateway API routes, not other groups', () => {
  assert.equal(linkerdDialect.accepts('policy.linkerd.io/v1beta3', 'Server'), true);
  assert.equal(linkerdDialect.accepts('gateway.networking.k8s.io/v1', 'HTTPRoute'), true);
  assert.equal(linkerdDialect.accepts('gateway.networking.k8s.io/v1', 'GRPCRoute'), true);
  assert.equal(linkerdDialect.accepts('security.istio.io/v1', 'AuthorizationPolicy'), false);
  assert.equal(linkerdDialect.accepts('policy.linkerd.io/v1beta3', 'Frobnicator'), false);
});

test('unknown fields and versions are errors with the line of the field', () => {
  assert.deepEqual(codes('apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: s}\nspec:\n  podSelector: {}\n  port: 80\n  extra: 1\n'), ['PRT_LINKERD_UNKNOWN_FIELD:spec.extra:7']);
  assert.deepEqual(codes('apiVersion: policy.linkerd.io/v9\nkind: Server\nmetadata: {name: s}\nspec: {}\n'), ['PRT_LINKERD_UNSUPPORTED_VERSION:apiVersion:1']);
  assert.deepEqual(codes('apiVersion: policy.linkerd.io/v1beta3\nkind: Server\nmetadata: {name: s}\n'), ['PRT_LINKERD_MISSING_FIELD:spec:1']);
});

test('Server: selector, port and accessPolicy rules', () => {
  const s = (spec: string, v = 'v1beta3') => codes(`apiVersion: policy.linkerd.io/${v}\nkind: Server\nmetadata: {name: s}\nspec: ${spec}\n`).map((c) => c.split(':').slice(0, 2).join(':'));
  assert.deepEqual(s('{podSelector: {}, port: 70000}'), ['PRT_LINKERD_BAD_PORT:spec.port']);
  assert.deepEqual(s('{podSelector: {}, port: Not_A_Name}'), ['PRT_LINKERD_BAD_PORT:spec.port']);
  assert.deepEqual(s('{port: 80}'), ['PRT_LINKERD_SELECTOR:spec']);
  assert.deepEqual(s('{podSelector: {}, externalWorkloadSelector: {}, port: 80}'), ['PRT_LINKERD_SELECTOR:spec']);
  assert.deepEqual(s('{podSelector: {}, port: 80, proxyProtocol: HTTP/3}'), ['PRT_LINKERD_BAD_VALUE:spec.proxyProtocol']);
  assert.deepEqual(s('{podSelector: {matchExpressions: [{key: a, operator: In}]}, port: 80}'), ['PRT_LINKERD_SELECTOR:spec.podSelector.matchExpressions[0].values']);
  assert.deepEqual(s('{podSelector: {}, port: 80, accessPolicy: deny}', 'v1beta2'), ['PRT_LINKERD_UNKNOWN_FIELD:spec.accessPolicy']);
});

test('MeshTLSAuthentication identity syntax (webhook): * only as the first label, SPIFFE IDs allowed', () => {
  const m = (ids: string) => codes(`apiVersion: policy.linkerd.io/v1alpha1\nkind: MeshTLSAuthentication\nmetadata: {name: m}\nspec: {identities: ${ids}}\n`).map((c) => c.split(':')[0]);
  assert.deepEqual(m('["*", "*.ns.serviceaccount.identity.linkerd.cluster.local", "spiffe://td/ns/a/sa/b"]'), []);
  assert.deepEqual(m('["foo.*.bar"]'), ['PRT_LINKERD_BAD_IDENTITY']);
  assert.deepEqual(m('["**.x"]'), ['PRT_LINKERD_BAD_IDENTITY']);
  assert.deepEqual(m('[]'), ['PRT_LINKERD_TOO_FEW']);
});

test('AuthorizationPolicy: targets and authentication limits', () => {
  const ap = (target: string, refs: string) => codes(`apiVersion: policy.linkerd.io/v1alpha1\nkind: AuthorizationPolicy\nmetadata: {name: a, namespace: ns}\nspec:\n  targetRef: ${target}\n  requiredAuthenticationRefs: ${refs}\n`).map((c) => c.split(':')[0]);
  assert.deepEqual(ap('{group: policy.linkerd.io, kind: Server, name: s}', '[]'), []);
  assert.deepEqual(ap('{kind: Server, name: s}', '[]'), ['PRT_LINKERD_UNSUPPORTED_TARGET']);
  assert.deepEqual(ap('{group: gateway.networking.k8s.io, kind: HTTPRoute, name: r}', '[]'), []);
  assert.deepEqual(ap('{kind: Namespace, name: ns}', '[]'), []);
  assert.deepEqual(ap('{kind: Namespace, name: other}', '[]'), ['PRT_LINKERD_UNSUPPORTED_TARGET']);
  assert.deepEqual(ap('{kind: Namespace, name: ns}', '[{kind: ServiceAccount, name: a}, {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: m}]'), ['PRT_LINKERD_AUTHN_LIMIT']);
  assert.deepEqual(ap('{kind: Namespace, name: ns}', '[{kind: Secret, name: a}]'), ['PRT_LINKERD_UNSUPPORTED_AUTHN']);
});
