// Owns turning Kubernetes peer selectors (namespaceSelector, podSelector, ClusterNetworkPolicy namespaces/pods)
// into matchers: namespace names come from the peer's SPIFFE ID, every other label from the peer registry (cni-dialects.md §5).

import type { JsonValue } from '../../documents-types.js';
import type { CompileOptions, Matcher } from '../../ir.js';
import { emptyRegistry, peersWhere } from '../../peers.js';
import { selectorMatches } from '../../selector.js';
import { isObject } from './schema.js';

/** The label Kubernetes sets on every namespace to its own name (since 1.21). */
export const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

/** One pod of a peer identity as the registry knows it (the fields of PeerFacts read here). */
export interface PodFacts {
  namespace: string;
  labels: Record<string, string>;
  namespaceLabels: Record<string, string>;
}

/**
 * How a rule reads an identity whose pods disagree: `allow` needs every pod to match and never matches an
 * identity the registry does not know; `deny` needs one pod and does match unknown identities.
 */
export type PeerUse = 'allow' | 'deny';

/** The peer-registry leaf for a label test (no registry configured: the empty one, so allows fail closed). */
export function registryPeers(options: CompileOptions, test: (pod: PodFacts) => boolean, use: PeerUse, describe: string): Matcher {
  return peersWhere(options.peers ?? emptyRegistry, test, use, describe);
}

type Requirement = { key: string; op: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values: string[] };

function requirements(sel: JsonValue | undefined): Requirement[] {
  if (!isObject(sel)) return [];
  const out: Requirement[] = [];
  if (isObject(sel.matchLabels)) for (const [k, v] of Object.entries(sel.matchLabels)) out.push({ key: k, op: 'In', values: [String(v)] });
  if (Array.isArray(sel.matchExpressions)) {
    for (const e of sel.matchExpressions) {
      if (!isObject(e)) continue;
      const values = Array.isArray(e.values) ? e.values.map(String) : [];
      out.push({ key: String(e.key), op: e.operator as Requirement['op'], values });
    }
  }
  return out;
}

/** `app=web,tier in (a,b),!debug`, as kubectl prints selectors; `(all)` for an empty one. */
export function describeSelector(sel: JsonValue | undefined): string {
  const parts = requirements(sel).map((r) => {
    switch (r.op) {
      case 'In': return r.values.length === 1 ? `${r.key}=${r.values[0] as string}` : `${r.key} in (${r.values.join(',')})`;
      case 'NotIn': return `${r.key} notin (${r.values.join(',')})`;
      case 'Exists': return r.key;
      case 'DoesNotExist': return `!${r.key}`;
    }
    return r.key;
  });
  return parts.length ? parts.join(',') : '(all)';
}

export const isEmptySelector = (sel: JsonValue | undefined): boolean => requirements(sel).length === 0;


/** What the dialect knows about the workload and its mesh. */
export interface PeerEnv {
  options: CompileOptions;
  /** The workload's trust domain and its aliases: a pod of this cluster has `spiffe://<td>/ns/<ns>/sa/<sa>`. */
  trustDomains: string[];
}

export function peerEnv(options: CompileOptions): PeerEnv {
  return { options, trustDomains: [options.workload.trustDomain, ...options.workload.trustDomainAliases] };
}

/** A verified peer whose SPIFFE ID names a namespace of this cluster: `<td>/ns/<ns>/sa/<sa>` (ns in `namespaces`, or any). */
function podOfNamespaces(env: PeerEnv, namespaces: readonly string[] | 'any'): Matcher {
  return namespaces === 'any' ? { type: 'peer.namespace', trustDomains: env.trustDomains } : { type: 'peer.namespace', trustDomains: env.trustDomains, namespaces: [...namespaces] };
}

/** Which namespaces a selector allows, read from the SPIFFE ID: only requirements on the namespace-name label. */
function namespaceNameMatcher(env: PeerEnv, reqs: readonly Requirement[]): Matcher {
  const of: Matcher[] = [];
  // An In requirement already pins the ID's shape; otherwise require a pod identity of this cluster.
  if (!reqs.some((r) => r.op === 'In')) of.push(podOfNamespaces(env, 'any'));
  for (const r of reqs) {
    switch (r.op) {
      case 'In': of.push(podOfNamespaces(env, r.values)); break;
      case 'NotIn': of.push({ type: 'not', of: podOfNamespaces(env, r.values) }); break;
      case 'Exists': break;
      case 'DoesNotExist': return { type: 'none' };
    }
  }
  return of.length === 1 ? (of[0] as Matcher) : { type: 'and', of };
}

/** Where a pod peer may live: the policy's own namespace (a NetworkPolicy podSelector alone), or a namespace selector. */
export type NamespaceScope = { own: string } | { selector: JsonValue | undefined };

/** The registry test for a pod peer, or null when the SPIFFE ID alone answers it (namespace names only). */
function labelTest(scope: NamespaceScope, podSelector: JsonValue | undefined): ((pod: PodFacts) => boolean) | null {
  const nsReqs = 'own' in scope ? [] : requirements(scope.selector);
  if (isEmptySelector(podSelector) && nsReqs.every((r) => r.key === NAMESPACE_NAME_LABEL)) return null;
  const nsTest = 'own' in scope
    ? (pod: PodFacts) => pod.namespace === scope.own
    : (pod: PodFacts) => selectorMatches(scope.selector, { ...pod.namespaceLabels, [NAMESPACE_NAME_LABEL]: pod.namespace });
  return (pod) => nsTest(pod) && selectorMatches(podSelector, pod.labels);
}

/**
 * Pods matching `podSelector` (absent or empty: every pod) in the namespaces of `scope`. Namespace names
 * are checked on the SPIFFE ID, so they work for identities the registry does not know; any other
 * namespace label and every pod label needs the registry. Plaintext peers never match.
 */
export function podPeer(env: PeerEnv, scope: NamespaceScope, podSelector: JsonValue | undefined, use: PeerUse): Matcher {
  const byName = 'own' in scope
    ? podOfNamespaces(env, [scope.own])
    : namespaceNameMatcher(env, requirements(scope.selector).filter((r) => r.key === NAMESPACE_NAME_LABEL));
  const test = labelTest(scope, podSelector);
  let m: Matcher = byName;
  if (test !== null) {
    const describe = `${isEmptySelector(podSelector) ? 'pods' : `pods ${describeSelector(podSelector)}`} in ${'own' in scope ? `namespace ${scope.own}` : `namespaces ${describeSelector(scope.selector)}`} (registry)`;
    m = { type: 'and', of: [byName, registryPeers(env.options, test, use, describe)] };
  }
  if (use === 'allow') return m;
  // A verified identity that is not `<td>/ns/<ns>/sa/<sa>` of this cluster (another trust domain, another
  // path shape) cannot be placed in a namespace; a deny reads it pessimistically, as an unknown identity.
  const unplaced: Matcher = { type: 'and', of: [{ type: 'peer.authenticated' }, { type: 'not', of: podOfNamespaces(env, 'any') }] };
  return { type: 'or', of: [m, unplaced] };
}

/**
 * Registered identities some but not all of whose pods the peer selects: a rule with no safe direction
 * (Pass) cannot read them soundly, so the dialect warns about them.
 */
export function mixedIdentities(env: PeerEnv, scope: NamespaceScope, podSelector: JsonValue | undefined): string[] {
  const test = labelTest(scope, podSelector);
  if (test === null || env.options.peers === undefined) return [];
  const out: string[] = [];
  for (const [id, pods] of env.options.peers.byId) {
    const hits = pods.filter(test).length;
    if (hits > 0 && hits < pods.length) out.push(id);
  }
  return out.sort();
}

/** The workload's own namespace labels (configured), with the name label Kubernetes always sets. */
export function workloadNamespaceLabels(options: CompileOptions): Record<string, string> {
  return { ...options.workload.namespaceLabels, [NAMESPACE_NAME_LABEL]: options.workload.namespace };
}

/** Keys other than the namespace name that a selector reads (a subject that needs configured namespace labels). */
export function labelKeysBeyondName(sel: JsonValue | undefined): string[] {
  return requirements(sel).map((r) => r.key).filter((k) => k !== NAMESPACE_NAME_LABEL);
}
