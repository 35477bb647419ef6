import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicySources } from '../../documents.js';
import type { CompileOptions, Matcher } from '../../ir.js';
import type { LinkerdProgram } from './types.js';
import { lowerLinkerdDocuments } from './lower.js';
import { linkerdDialect } from './index.js';

function options(over: Partial<CompileOptions['linkerd']> = {}, annotations: Record<string, string> = {}): CompileOptions {
  return {
    workload: { namespace: 'ns', labels: { app: 'api' }, annotations, serviceAccount: 'api', trustDomain: 'td.example', trustDomainAliases: [] },
    rootNamespace: 'istio-system', pathNormalization: 'NONE', customProviders: [],
    linkerd: { defaultPolicy: 'all-unauthenticated', clusterNetworks: ['10.0.0.0/8'], probeNetworks: ['0.0.0.0/0', '::/0'], probePaths: {}, portNames: {}, controlPlaneNamespace: 'linkerd-cp', ...over },
  };
}

function lower(yaml: string, opts = options()) {
  const parsed = parsePolicySources([{ file: 'p.yaml', text: yaml }]);
  assert.deepEqual(parsed.diagnostics, []);
  const errors = parsed.documents.flatMap((d) => linkerdDialect.validate(d));
  assert.deepEqual(errors, []);
  return programOf(parsed.documents, opts);
}

const server = (name: string, port: number | string, extra = '') => `apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: ns, name: ${name}}
spec: {podSelector: {matchLabels: {app: api}}, port: ${port}${extra}}
---
`;

function serverAuthz(program: LinkerdProgram | undefined, port: number): Matcher[] {
  assert.ok(program);
  return (program.servers[port]?.authorizations ?? []).map((a) => a.match);
}

test('no Linkerd documents: no program; gateway routes without a Server parent do not bring Linkerd in', () => {
  assert.equal(programOf([], options()).linkerd, undefined);
  const out = lower(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {namespace: ns, name: r}
spec: {parentRefs: [{name: gw}], rules: [{}]}
`);
  assert.equal(out.linkerd, undefined);
});

test('identities lower to peer.linkerd-identity with label suffixes (no leading dot) and the configured control plane', () => {
  const out = lower(server('s', 80) + `apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {namespace: ns, name: m}
spec: {identityRefs: [{kind: ServiceAccount, name: web}, {kind: Namespace, name: front}, {kind: ServiceAccount, name: "*"}]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {namespace: ns, name: ids}
spec: {identities: ["*", "*.foo.bar", "a.b", "spiffe://td.example/x"]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: ns, name: ap}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: s}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: m}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: ns, name: ap2}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: s}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: MeshTLSAuthentication, name: ids}]
`);
  assert.deepEqual(serverAuthz(out.linkerd, 80), [
    {
      type: 'peer.name', template: '{sa}.{ns}.serviceaccount.identity.linkerd-cp.{td}',
      exact: ['web.ns.serviceaccount.identity.linkerd-cp.td.example', '*.ns.serviceaccount.identity.linkerd-cp.td.example'],
      suffixes: ['front.serviceaccount.identity.linkerd-cp.td.example'],
    },
    { type: 'peer.name', template: '{sa}.{ns}.serviceaccount.identity.linkerd-cp.{td}', exact: ['a.b', 'spiffe://td.example/x'], suffixes: ['', 'foo.bar'] },
  ]);
});

test('network and identity authentications are ANDed; except becomes not(source.ip)', () => {
  const out = lower(server('s', 80) + `apiVersion: policy.linkerd.io/v1alpha1
kind: NetworkAuthentication
metadata: {namespace: ns, name: n}
spec: {networks: [{cidr: 10.0.0.0/8, except: [10.1.0.0/16]}, {cidr: 192.0.2.1}]}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: ns, name: ap}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: s}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: NetworkAuthentication, name: n}, {kind: ServiceAccount, name: web, namespace: other}]
`);
  assert.deepEqual(serverAuthz(out.linkerd, 80), [{
    type: 'and', of: [
      { type: 'or', of: [{ type: 'source.ip', cidrs: ['192.0.2.1'] }, { type: 'and', of: [{ type: 'source.ip', cidrs: ['10.0.0.0/8'] }, { type: 'not', of: { type: 'source.ip', cidrs: ['10.1.0.0/16'] } }] }] },
      { type: 'peer.name', template: '{sa}.{ns}.serviceaccount.identity.linkerd-cp.{td}', exact: ['web.other.serviceaccount.identity.linkerd-cp.td.example'], suffixes: [] },
    ],
  }]);
});

test('default policies: annotation beats the option; accessPolicy adds its default authorization to a Server', () => {
  const out = lower(server('s', 80, ', accessPolicy: cluster-authenticated'), options({ defaultPolicy: 'all-unauthenticated' }, { 'config.linkerd.io/default-inbound-policy': 'deny' }));
  const program = out.linkerd;
  assert.ok(program);
  assert.equal(program.defaultServer.ref.name, 'deny');
  assert.deepEqual(program.defaultServer.authorizations, []);
  assert.deepEqual(program.servers[80]?.authorizations.map((a) => a.ref.name), ['cluster-authenticated']);
  assert.deepEqual(serverAuthz(program, 80), [{ type: 'and', of: [{ type: 'source.ip', cidrs: ['10.0.0.0/8'] }, { type: 'peer.name', template: '{sa}.{ns}.serviceaccount.identity.linkerd-cp.{td}', exact: [], suffixes: [''] }] }]);
});

test('probe routes: per probed port on default servers and route-less Servers, gone once a Server has routes', () => {
  const yaml = server('with-route', 80) + server('no-route', 81) + `apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {namespace: ns, name: r}
spec:
  parentRefs: [{group: policy.linkerd.io, kind: Server, name: with-route}]
  rules: [{matches: [{path: {value: /api}}]}]
`;
  const program = lower(yaml, options({ probePaths: { 80: ['/live'], 81: ['/live'], 82: ['/ready'] } })).linkerd;
  assert.ok(program);
  assert.deepEqual(program.servers[80]?.routes.map((r) => r.ref.name), ['r']);
  assert.deepEqual(program.servers[81]?.routes.map((r) => r.ref.name), ['probe', 'default']);
  assert.deepEqual(program.servers[82]?.routes.map((r) => r.ref.name), ['probe', 'default']);
  assert.equal(program.servers[82]?.ref.kind, 'default');
  assert.deepEqual(program.defaultServer.routes.map((r) => r.ref.name), ['default']);
});

test('route order: creationTimestamp, then name; routes without a timestamp last', () => {
  const r = (name: string, ts?: string) => `apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {namespace: ns, name: ${name}${ts ? `, creationTimestamp: "${ts}"` : ''}}
spec: {parentRefs: [{group: policy.linkerd.io, kind: Server, name: s}], rules: [{}]}
---
`;
  const program = lower(server('s', 80) + r('z-none') + r('b', '2024-01-02T00:00:00Z') + r('a-none') + r('c', '2024-01-01T00:00:00Z') + r('a', '2024-01-02T00:00:00Z')).linkerd;
  const routes = [...(program?.servers[80]?.routes ?? [])].sort((x, y) => x.order - y.order).map((x) => x.ref.name);
  assert.deepEqual(routes, ['c', 'a', 'b', 'a-none', 'z-none']);
});

test('broken references are warnings and the policy is dropped', () => {
  const out = lower(server('s', 80) + `apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: ns, name: ap}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: s}
  requiredAuthenticationRefs: [{group: policy.linkerd.io, kind: NetworkAuthentication, name: missing}]
`);
  assert.deepEqual(out.diagnostics.map((d) => `${d.severity}:${d.code}:${d.fieldPath}`), ['warning:PRT_LINKERD_REF_MISSING:spec.requiredAuthenticationRefs[0]']);
  assert.deepEqual(serverAuthz(out.linkerd, 80), []);
});

test('opaque-ports and require-identity annotations shape per-port default servers', () => {
  const program = lower(server('s', 80), options({}, { 'config.linkerd.io/opaque-ports': '3306, 5000-5001', 'config.linkerd.io/proxy-require-identity-inbound-ports': '9000' })).linkerd;
  assert.ok(program);
  assert.equal(program.servers[3306]?.protocol, 'opaque');
  assert.equal(program.servers[5001]?.protocol, 'opaque');
  assert.equal(program.servers[9000]?.ref.name, 'all-authenticated');
  assert.equal(program.defaultServer.ref.name, 'all-unauthenticated');
});

test('a whole-range opaque-ports annotation shares one default server object', () => {
  const program = lower(server('s', 80), options({}, { 'config.linkerd.io/opaque-ports': '1-65535' })).linkerd;
  assert.ok(program);
  assert.equal(program.servers[80]?.ref.kind, 'Server');
  assert.equal(program.servers[1], program.servers[65535]);
  assert.equal(program.servers[443]?.protocol, 'opaque');
});

test('applied marks the documents that select this workload', () => {
  const parsed = parsePolicySources([{ file: 'p.yaml', text: server('mine', 80) + `apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: ns, name: theirs}
spec: {podSelector: {matchLabels: {app: other}}, port: 80}
` }]);
  const out = programOf(parsed.documents, options());
  assert.deepEqual([...out.applied].map((d) => d.metadata.name), ['mine']);
});

const programOf = lowerLinkerdDocuments;
