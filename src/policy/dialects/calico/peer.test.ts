// Calico peer matchers against the registry semantics (docs/cni.md, cni-dialects.md §5.3), as properties over random
// registries, selectors and callers: an Allow never admits an identity unless every pod matches, a Deny never misses
// an identity one of whose pods matches, and identity labels are answered from the SPIFFE ID for unknown callers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { PeerIdentity, RequestContext } from '../../context-types.js';
import type { PeerFacts } from '../../ir.js';
import { compileMatcher } from '../../match/compile.js';
import { buildRegistry } from '../../peers.js';
import { peerMatcher, podMatches, type PeerPart, type Use } from './peer.js';
import { evaluateSelector, labelsOf, type SelectorNode } from './selector.js';

const NAMESPACES = ['shop', 'ops'];
const ACCOUNTS = ['web', 'batch', 'probe'];
const idOf = (ns: string, sa: string) => `spiffe://cluster.local/ns/${ns}/sa/${sa}`;

function peer(spiffeId: string): PeerIdentity {
  const m = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(spiffeId);
  return { spiffeId, principal: spiffeId.slice('spiffe://'.length), trustDomain: m?.[1] ?? 'cluster.local', namespace: m?.[2], serviceAccount: m?.[3] };
}

function ctx(p: PeerIdentity | null): RequestContext {
  return {
    protocol: 'http', method: 'GET', path: '/', query: '', authority: 'api', host: 'api', headers: {}, peer: p,
    sourceIp: '10.0.0.1', remoteIp: '10.0.0.1', destinationIp: undefined, port: 8080, sni: undefined, jwt: null,
  };
}

const leaf: fc.Arbitrary<SelectorNode> = fc.oneof(
  fc.record({ op: fc.constant('==' as const), key: fc.constantFrom('role', 'projectcalico.org/namespace', 'projectcalico.org/serviceaccount'), value: fc.constantFrom('web', 'shop', 'frontend', 'worker') }),
  fc.record({ op: fc.constant('!=' as const), key: fc.constantFrom('role', 'projectcalico.org/serviceaccount'), value: fc.constantFrom('web', 'worker') }),
  fc.record({ op: fc.constant('has' as const), key: fc.constantFrom('role', 'tier') }),
  fc.record({ op: fc.constant('starts with' as const), key: fc.constantFrom('projectcalico.org/serviceaccount', 'role'), value: fc.constantFrom('w', 'b') }),
);
const selector: fc.Arbitrary<SelectorNode> = fc.letrec<{ n: SelectorNode }>((tie) => ({
  n: fc.oneof({ maxDepth: 3, depthIdentifier: 'n' }, leaf, leaf,
    tie('n').map((of): SelectorNode => ({ op: 'not', of })),
    fc.tuple(tie('n'), tie('n')).map(([a, b]): SelectorNode => ({ op: 'and', of: [a, b] })),
    fc.tuple(tie('n'), tie('n')).map(([a, b]): SelectorNode => ({ op: 'or', of: [a, b] }))),
})).n;

const pod = fc.record({
  ns: fc.constantFrom(...NAMESPACES), sa: fc.constantFrom(...ACCOUNTS),
  labels: fc.dictionary(fc.constantFrom('role', 'tier'), fc.constantFrom('frontend', 'worker')),
});

function registryOf(pods: { ns: string; sa: string; labels: Record<string, string> }[]): PeerFacts[] {
  return pods.map((p) => ({ spiffeId: idOf(p.ns, p.sa), namespace: p.ns, serviceAccount: p.sa, labels: p.labels, namespaceLabels: {}, serviceAccountLabels: {}, ips: [] }));
}

test('property: an Allow admits a registered identity only when every pod matches, a Deny whenever any pod does', () => {
  fc.assert(fc.property(selector, fc.array(pod, { maxLength: 6 }), fc.constantFrom<Use>('allow', 'deny'), (sel, pods, use) => {
    const facts = registryOf(pods);
    const registry = buildRegistry(facts);
    const parts: PeerPart[] = [{ view: 'pod', node: sel }];
    const m = compileMatcher(peerMatcher(parts, use, { registry, trustDomains: ['cluster.local'] }), { peers: registry });
    for (const [id, group] of registry.byId) {
      const matched = m(ctx(peer(id)));
      const every = group.every((p) => podMatches(parts, p));
      const any = group.some((p) => podMatches(parts, p));
      if (use === 'allow' && matched && !every) throw new Error(`allow admitted ${id} though not every pod matches`);
      if (use === 'deny' && any && !matched) throw new Error(`deny missed ${id} though a pod matches`);
      // Exact when the identity's pods agree.
      if (every === any && matched !== every) throw new Error(`${id}: expected ${every}`);
    }
    if (m(ctx(null))) throw new Error('a plaintext caller matched a selector');
  }), { numRuns: 1500 });
});

test('property: for an unknown caller, identity labels come from the SPIFFE ID and the rest count by use', () => {
  fc.assert(fc.property(selector, fc.constantFrom(...NAMESPACES), fc.constantFrom(...ACCOUNTS), fc.constantFrom<Use>('allow', 'deny'), fc.dictionary(fc.constantFrom('role', 'tier'), fc.constantFrom('frontend', 'worker')), (sel, ns, sa, use, hidden) => {
    const registry = buildRegistry([]);
    const parts: PeerPart[] = [{ view: 'pod', node: sel }];
    const m = compileMatcher(peerMatcher(parts, use, { registry, trustDomains: ['cluster.local'] }), { peers: registry });
    const matched = m(ctx(peer(idOf(ns, sa))));
    // Whatever labels the unknown pod really has, an Allow must not admit it unless the selector holds for them,
    // and a Deny must match it if the selector holds for them.
    const truth = evaluateSelector(sel, labelsOf({ ...hidden, 'projectcalico.org/namespace': ns, 'projectcalico.org/serviceaccount': sa, 'projectcalico.org/orchestrator': 'k8s' }));
    if (use === 'allow' && matched && !truth) throw new Error(`allow admitted unknown ${ns}/${sa} with labels ${JSON.stringify(hidden)}`);
    if (use === 'deny' && truth && !matched) throw new Error(`deny missed unknown ${ns}/${sa} with labels ${JSON.stringify(hidden)}`);
  }), { numRuns: 1500 });
});

test('an identity-only selector decides unknown callers exactly; another trust domain never passes an Allow', () => {
  const registry = buildRegistry([]);
  const parts: PeerPart[] = [{ view: 'pod', node: { op: '==', key: 'projectcalico.org/serviceaccount', value: 'web' } }];
  const allow = compileMatcher(peerMatcher(parts, 'allow', { registry, trustDomains: ['cluster.local'] }), { peers: registry });
  assert.equal(allow(ctx(peer(idOf('shop', 'web')))), true);
  assert.equal(allow(ctx(peer(idOf('shop', 'batch')))), false);
  assert.equal(allow(ctx(peer('spiffe://other.example/ns/shop/sa/web'))), false);
  const deny = compileMatcher(peerMatcher(parts, 'deny', { registry, trustDomains: ['cluster.local'] }), { peers: registry });
  assert.equal(deny(ctx(peer('spiffe://other.example/ns/shop/sa/web'))), true);
  // A verified caller whose SPIFFE ID has no namespace and service account cannot be told apart: a Deny matches it.
  assert.equal(deny(ctx(peer('spiffe://cluster.local/workload/x'))), true);
  assert.equal(allow(ctx(peer('spiffe://cluster.local/workload/x'))), false);
});
