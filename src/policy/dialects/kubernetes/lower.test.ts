import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicySources } from '../../documents.js';
import type { CompileOptions, Matcher } from '../../ir.js';
import { kubernetesDialect } from './index.js';
import { testCompileOptions } from '../../../../test/helpers/compile-options.js';

const options: CompileOptions = testCompileOptions({ namespace: 'shop', labels: { app: 'api' }, serviceAccount: 'api', trustDomainAliases: ['old.local'] }, {
  linkerd: { portNames: { http: 8080 } },
});

function lower(yaml: string) {
  const docs = parsePolicySources([{ file: 'p.yaml', text: yaml }]).documents;
  for (const d of docs) assert.deepEqual(kubernetesDialect.validate(d).filter((x) => x.severity === 'error'), []);
  return kubernetesDialect.lower(docs, options);
}

test('dispatches on apiVersion and kind together', () => {
  assert.equal(kubernetesDialect.accepts('networking.k8s.io/v1', 'NetworkPolicy'), true);
  assert.equal(kubernetesDialect.accepts('projectcalico.org/v3', 'NetworkPolicy'), false);
  assert.equal(kubernetesDialect.accepts('networking.k8s.io/v1', 'Ingress'), false);
  assert.equal(kubernetesDialect.accepts('policy.networking.k8s.io/v1alpha2', 'ClusterNetworkPolicy'), true);
  assert.equal(kubernetesDialect.accepts('crd.antrea.io/v1beta1', 'ClusterNetworkPolicy'), false);
  assert.equal(kubernetesDialect.accepts('networking.k8s.aws/v1alpha1', 'ClusterNetworkPolicy'), false);
  assert.equal(kubernetesDialect.accepts('cilium.io/v2', 'CiliumNetworkPolicy'), false);
});

test('no document that selects the workload: no tiers, so the dialect has no say', () => {
  const out = lower('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: n, namespace: other}\nspec: {podSelector: {}}\n');
  assert.deepEqual(out.output.tiers, []);
  assert.equal(out.output.applied.size, 0);
});

test('tiers come in the order Admin, NetworkPolicy, Baseline, default allow, as one group', () => {
  const out = lower([
    'apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: b}\nspec: {tier: Baseline, priority: 1, subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}',
    'apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: n, namespace: shop}\nspec: {podSelector: {}}',
    'apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: a}\nspec: {tier: Admin, priority: 1, subject: {namespaces: {}}, ingress: [{action: Pass, from: [{namespaces: {}}]}]}',
  ].join('\n---\n'));
  const tiers = out.output.tiers;
  assert.deepEqual(tiers.map((t) => [t.name, t.group, t.anyPort.otherwise.verdict]), [
    ['admin', 'kubernetes', 'pass'], ['networkpolicy', 'kubernetes', 'deny'], ['baseline', 'kubernetes', 'pass'], ['default', 'kubernetes', 'allow'],
  ]);
  assert.deepEqual(tiers.map((t) => t.protocols), tiers.map(() => ['http', 'grpc', 'tcp']));
  assert.equal(out.output.applied.size, 3);
});

test('namespace names are matched on the SPIFFE ID of every trust domain of the workload', () => {
  const out = lower('apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: n, namespace: shop}\nspec:\n  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: web}}}], ports: [{port: http}, {port: 9000, endPort: 9010}]}]\n');
  const match = out.output.tiers[0]?.anyPort.rules[0]?.match as Matcher;
  assert.deepEqual(match, {
    type: 'and',
    of: [
      { type: 'peer.namespace', trustDomains: ['cluster.local', 'old.local'], namespaces: ['web'] },
      { type: 'or', of: [{ type: 'destination.port', ports: [8080] }, { type: 'destination.portRange', from: 9000, to: 9010 }] },
    ],
  });
});

test('a Deny on pod labels matches verified peers pessimistically when the registry does not know them; an Accept does not', () => {
  const out = lower('apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: c}\nspec:\n  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n  ingress:\n  - {action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: bad}}}}]}\n  - {action: Accept, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {app: good}}}}]}\n');
  const [deny, accept] = out.output.tiers[0]?.anyPort.rules ?? [];
  const registered = (m: Matcher | undefined): Matcher[] => (m === undefined ? [] : m.type === 'and' || m.type === 'or' ? m.of.flatMap(registered) : m.type === 'peer.registered' ? [m] : []);
  assert.deepEqual(registered(deny?.match), [{ type: 'peer.registered', spiffeIds: [], unknown: true, describe: 'pods app=bad in namespaces (all) (registry)' }]);
  assert.deepEqual(registered(accept?.match), [{ type: 'peer.registered', spiffeIds: [], unknown: false, describe: 'pods app=good in namespaces (all) (registry)' }]);
});
