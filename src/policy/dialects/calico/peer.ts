// Owns how a Calico EntityRule's peer criteria (selector, namespaceSelector, serviceAccounts, namespace scope) become
// matchers: identity labels from the SPIFFE ID, other labels from the peer registry (cni-dialects.md §2.3, §2.6, §5.3).

import type { Matcher, PeerFacts, PeerRegistry } from '../../ir.js';
import { peersWhere } from '../../peers.js';
import { evaluateSelector, labelsOf, selectorText, type Labels, type SelectorNode } from './selector.js';

/** Which labels a selector reads: the peer pod's (with Calico's identity labels), its namespace's, its ServiceAccount's. */
export type View = 'pod' | 'namespace' | 'serviceAccount';

/** One criterion of a peer; all criteria of an entity rule must hold for the same pod. */
export interface PeerPart {
  view: View;
  node: SelectorNode;
}

/** How a peer criterion is read when an identity's pods disagree or the identity is unknown (§5.3). */
export type Use = 'allow' | 'deny';

const NAMESPACE_LABEL = 'projectcalico.org/namespace';
const SERVICE_ACCOUNT_LABEL = 'projectcalico.org/serviceaccount';
const ORCHESTRATOR_LABEL = 'projectcalico.org/orchestrator';
const NAME_LABEL = 'projectcalico.org/name';
const K8S_NAME_LABEL = 'kubernetes.io/metadata.name';

/** The labels a view shows for a key that the SPIFFE ID answers: `ns`, `sa`, or a constant. */
function identityField(view: View, key: string): 'ns' | 'sa' | { constant: string } | undefined {
  if (view === 'pod') {
    if (key === NAMESPACE_LABEL) return 'ns';
    if (key === SERVICE_ACCOUNT_LABEL) return 'sa';
    if (key === ORCHESTRATOR_LABEL) return { constant: 'k8s' };
    return undefined;
  }
  if (view === 'namespace') return key === NAME_LABEL || key === K8S_NAME_LABEL ? 'ns' : undefined;
  return key === NAME_LABEL ? 'sa' : undefined;
}

function identityOnly(node: SelectorNode, view: View): boolean {
  if ('key' in node) return identityField(view, node.key) !== undefined;
  if (node.op === 'not') return identityOnly(node.of, view);
  if (node.op === 'and' || node.op === 'or') return node.of.every((n) => identityOnly(n, view));
  return true;
}

/**
 * A pod's labels as a Calico selector of `view` sees them. Workload endpoints carry the identity labels and
 * inherit namespace and ServiceAccount labels through profiles as `pcns.<key>` / `pcsa.<key>` (§2.6).
 */
export function viewLabels(view: View, pod: Pick<PeerFacts, 'namespace' | 'serviceAccount' | 'labels' | 'namespaceLabels' | 'serviceAccountLabels'>): Record<string, string> {
  if (view === 'namespace') return { ...pod.namespaceLabels, [NAME_LABEL]: pod.namespace, [K8S_NAME_LABEL]: pod.namespace };
  if (view === 'serviceAccount') return { ...pod.serviceAccountLabels, [NAME_LABEL]: pod.serviceAccount };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(pod.namespaceLabels)) out[`pcns.${k}`] = v;
  for (const [k, v] of Object.entries(pod.serviceAccountLabels)) out[`pcsa.${k}`] = v;
  Object.assign(out, pod.labels);
  out[NAMESPACE_LABEL] = pod.namespace;
  out[SERVICE_ACCOUNT_LABEL] = pod.serviceAccount;
  out[ORCHESTRATOR_LABEL] = 'k8s';
  return out;
}

export function podMatches(parts: readonly PeerPart[], pod: PeerFacts): boolean {
  return parts.every((p) => evaluateSelector(p.node, labelsOf(viewLabels(p.view, pod))));
}

// The matcher algebra, with constant folding, so `none` rules are recognised as never matching.
export { ANY, NONE, and, not, or } from '../../matcher-algebra.js';
import { ANY, NONE, and, not, or } from '../../matcher-algebra.js';

const RE2_SPECIAL = /[\\^$.|?*+()[\]{}]/g;
const escapeRegex = (s: string): string => s.replace(RE2_SPECIAL, '\\$&');

/** A SPIFFE ID `spiffe://<td>/ns/<ns>/sa/<sa>` whose `field` satisfies the test; other ID shapes never do. */
function fieldIs(field: 'ns' | 'sa', values: string[]): Matcher {
  if (values.length === 0) return NONE;
  return { type: 'peer.name', template: `{${field}}`, exact: [...values].sort(), suffixes: [] };
}

function fieldPattern(field: 'ns' | 'sa', op: 'contains' | 'starts with' | 'ends with', value: string): Matcher {
  // Neither a namespace nor a service account name contains `/`.
  if (value.includes('/')) return NONE;
  const v = escapeRegex(value);
  const part = op === 'contains' ? `[^/]*${v}[^/]*` : op === 'starts with' ? `${v}[^/]*` : `[^/]*${v}`;
  const ns = field === 'ns' ? part : '[^/]+';
  const sa = field === 'sa' ? part : '[^/]+';
  return { type: 'peer.principal', match: { kind: 'regex', pattern: `[^/]+/ns/${ns}/sa/${sa}` } };
}

function constantTest(node: Extract<SelectorNode, { key: string }>, value: string): boolean {
  const labels: Labels = (k) => (k === node.key ? value : undefined);
  return evaluateSelector(node, labels);
}

/**
 * The selector read from the SPIFFE ID. Labels the ID cannot answer become constants by polarity: where a
 * true value would widen the rule's effect in the wrong direction they are false (an allow), else true (a deny).
 */
function fromIdentity(node: SelectorNode, view: View, positive: boolean, use: Use): Matcher {
  switch (node.op) {
    case 'all': case 'global': return ANY;
    case 'not': return not(fromIdentity(node.of, view, !positive, use));
    case 'and': return and(...node.of.map((n) => fromIdentity(n, view, positive, use)));
    case 'or': return or(...node.of.map((n) => fromIdentity(n, view, positive, use)));
  }
  const field = identityField(view, node.key);
  if (field === undefined) return (positive === (use === 'deny')) ? ANY : NONE;
  if (typeof field === 'object') return constantTest(node, field.constant) ? ANY : NONE;
  switch (node.op) {
    case 'has': return ANY;
    case '==': return fieldIs(field, [node.value]);
    case '!=': return not(fieldIs(field, [node.value]));
    case 'in': return fieldIs(field, node.values);
    case 'not in': return not(fieldIs(field, node.values));
    default: return fieldPattern(field, node.op, node.value);
  }
}

export interface PeerEnv {
  registry: PeerRegistry;
  trustDomains: string[];
}

/**
 * A peer matching all `parts`. Identity-only criteria compare the SPIFFE ID (every verified caller); the others need
 * the registry: for an allow every pod of the identity must match, for a deny any pod; a caller missing from the
 * registry is judged on what its SPIFFE ID answers, the rest read by `use`. Plaintext callers never match.
 */
export function peerMatcher(parts: readonly PeerPart[], use: Use, env: PeerEnv): Matcher {
  const fromId = and(...parts.map((p) => fromIdentity(p.node, p.view, true, use)));
  const kubernetesShaped: Matcher = { type: 'peer.name', template: '{ns}', exact: [], suffixes: [''] };
  const byIdentity = use === 'allow'
    // An allow also needs the caller's trust domain to be this mesh's.
    ? and({ type: 'peer.name', template: '{td}', exact: [...env.trustDomains].sort(), suffixes: [] }, fromId)
    // A deny also takes a verified caller whose SPIFFE ID carries no namespace and service account.
    : or(and(kubernetesShaped, fromId), and({ type: 'peer.authenticated' }, not(kubernetesShaped)));
  if (parts.every((p) => identityOnly(p.node, p.view))) return byIdentity;
  const describe = parts.map((p) => `${p.view === 'pod' ? 'selector' : p.view === 'namespace' ? 'namespaceSelector' : 'serviceAccounts'} ${selectorText(p.node)}`).join(' && ');
  const registered = peersWhere(env.registry, (pod) => podMatches(parts, pod), use, `${describe} (registry)`);
  const exact: Matcher = registered.type === 'peer.registered' ? { ...registered, unknown: false } : registered;
  const unregistered: Matcher = { type: 'peer.registered', spiffeIds: [], unknown: true, describe: 'not in the peer registry' };
  return or(exact, and(unregistered, byIdentity));
}

/** SPIFFE IDs whose pods disagree on `parts` (a Pass or Log rule has no sound reading for them). */
export function disagreeingIdentities(parts: readonly PeerPart[], registry: PeerRegistry): string[] {
  if (parts.every((p) => identityOnly(p.node, p.view))) return [];
  const out: string[] = [];
  for (const [id, pods] of registry.byId) {
    if (pods.length < 2) continue;
    const first = podMatches(parts, pods[0] as PeerFacts);
    if (pods.some((p) => podMatches(parts, p) !== first)) out.push(id);
  }
  return out.sort();
}
