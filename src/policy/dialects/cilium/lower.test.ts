// Unit tests of the Cilium lowering beyond the conformance cases: values with regex metacharacters, the
// order of the tier's rules (denies, marks, allows, L7 restrictions) and the peer registry's IPs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicies } from '../../compile.js';
import { evaluate } from '../../evaluate.js';
import type { CompileOptions } from '../../ir.js';
import type { PolicySnapshot } from '../../snapshot.js';
import { buildRegistry } from '../../peers.js';
import type { RequestContext } from '../../context-types.js';
import { testCompileOptions } from '../../../../test/helpers/compile-options.js';

const options: CompileOptions = testCompileOptions({ namespace: 'shop', labels: { app: 'api' }, serviceAccount: 'api' });

function compile(yaml: string, extra: Partial<CompileOptions> = {}): PolicySnapshot {
  const r = compilePolicies([{ file: 'p.yaml', text: yaml }], { ...options, ...extra });
  assert.ok(r.snapshot, JSON.stringify(r.diagnostics));
  return r.snapshot;
}

function ctx(over: Partial<RequestContext>): RequestContext {
  return {
    protocol: 'http', method: 'GET', path: '/', query: '', authority: 'api', host: 'api', headers: {}, peer: null,
    sourceIp: '198.51.100.1', remoteIp: '198.51.100.1', destinationIp: undefined, port: 80, sni: undefined, jwt: null, ...over,
  };
}

const peer = (ns: string, sa: string, td = 'cluster.local') =>
  ({ spiffeId: `spiffe://${td}/ns/${ns}/sa/${sa}`, principal: `${td}/ns/${ns}/sa/${sa}`, trustDomain: td, namespace: ns, serviceAccount: sa }) as unknown as RequestContext['peer'];

test('namespace and service-account values are literals, not regular expressions', () => {
  const s = compile(`apiVersion: cilium.io/v2
kind: CiliumClusterwideNetworkPolicy
metadata: {name: dotted}
spec:
  endpointSelector: {}
  ingress:
  - fromEndpoints:
    - matchLabels: {k8s:io.kubernetes.pod.namespace: "team.a", io.cilium.k8s.policy.serviceaccount: "web+1"}
`);
  assert.equal(evaluate(s, ctx({ peer: peer('team.a', 'web+1') })).verdict, 'allow');
  assert.equal(evaluate(s, ctx({ peer: peer('teamxa', 'web+1') })).verdict, 'deny');
  assert.equal(evaluate(s, ctx({ peer: peer('team.a', 'webb1') })).verdict, 'deny');
});

test('the tier lists deny rules, then LOG marks, then allows, then the L7 restrictions', () => {
  const s = compile(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: ordered, namespace: shop}
spec:
  endpointSelector: {}
  ingress:
  - toPorts:
    - ports: [{port: "80", protocol: TCP}]
      rules:
        http:
        - headerMatches: [{name: x-a, value: "1", mismatch: LOG}]
  ingressDeny:
  - fromCIDR: [192.0.2.0/24]
`);
  const tier = s.program.tiers.find((t) => t.dialect === 'cilium');
  assert.deepEqual(tier?.anyPort.rules.map((r) => [r.action, r.id]), [
    ['deny', 'spec.ingressDeny[0]'],
    ['log', 'spec.ingress[0].toPorts[0].rules.http[0].headerMatches[0]'],
    ['allow', 'spec.ingress[0].toPorts[0].rules.http[0]'],
    ['deny', 'spec.ingress[0].toPorts[0].rules'],
  ]);
});

test('a plaintext caller from a registered pod address is a pod: not world, not a CIDR peer', () => {
  const yaml = `apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: outside, namespace: shop}
spec:
  endpointSelector: {}
  ingress:
  - fromEntities: [world]
  - fromCIDR: [10.0.0.0/8]
`;
  const empty = compile(yaml);
  assert.equal(evaluate(empty, ctx({ sourceIp: '10.1.0.5', remoteIp: '10.1.0.5' })).verdict, 'allow');
  const known = compile(yaml, { peers: buildRegistry([{ spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', namespace: 'shop', serviceAccount: 'web', labels: {}, namespaceLabels: {}, serviceAccountLabels: {}, ips: ['10.1.0.5'] }]) });
  assert.equal(evaluate(known, ctx({ sourceIp: '10.1.0.5', remoteIp: '10.1.0.5' })).verdict, 'deny');
  assert.equal(evaluate(known, ctx({ sourceIp: '10.1.0.6', remoteIp: '10.1.0.6' })).verdict, 'allow');
});

test('an endPort range is one matcher, however wide', () => {
  const s = compile(`apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: wide, namespace: shop}
spec:
  endpointSelector: {}
  ingress:
  - toPorts:
    - ports: [{port: "1024", endPort: 65535, protocol: TCP}]
`);
  assert.equal(evaluate(s, ctx({ port: 65535 })).verdict, 'allow');
  assert.equal(evaluate(s, ctx({ port: 1023 })).verdict, 'deny');
  assert.match(JSON.stringify(s.program.tiers[0]?.anyPort.rules[0]?.match), /"destination.portRange","from":1024,"to":65535/);
});
