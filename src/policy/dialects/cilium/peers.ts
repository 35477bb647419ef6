// Owns what a Cilium selector means at a sidecar: the subject (endpointSelector against the workload's own
// labels) and the peers of a rule (fromEndpoints, fromEntities, fromCIDR[Set], fromNodes, fromGroups) as matchers
// over the verified SPIFFE ID, the peer registry and the source IP (cni-dialects.md §1.1-1.3, §5).

import type { JsonValue } from '../../documents-types.js';
import type { Matcher, PeerRegistry, WorkloadIdentity } from '../../ir.js';
import { peersWhere } from '../../peers.js';
import { isObject } from '../../schema.js';
import { selectorMatches } from '../../selector.js';
import { LABEL_NAMESPACE, LABEL_SERVICE_ACCOUNT, NAMESPACE_LABELS_PREFIX, type Entity, type Obj } from './types.js';

type Op = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

/** One requirement of a selector with its label source: `k8s:`/`any:` (pod labels), `reserved:` (entities), or another source. */
interface Requirement { key: string; source: 'k8s' | 'reserved' | 'other'; op: Op; values: string[] }

const OPS: readonly string[] = ['In', 'NotIn', 'Exists', 'DoesNotExist'];

function requirementsOf(sel: JsonValue | undefined): Requirement[] {
  if (!isObject(sel)) return [];
  const out: Requirement[] = [];
  const push = (rawKey: string, op: Op, values: string[]) => {
    const m = /^([A-Za-z0-9-]+):(.*)$/.exec(rawKey);
    if (!m) { out.push({ key: rawKey, source: 'k8s', op, values }); return; }
    const prefix = m[1] as string;
    const rest = m[2] as string;
    if (prefix === 'k8s' || prefix === 'any') out.push({ key: rest, source: 'k8s', op, values });
    else if (prefix === 'reserved') out.push({ key: rest, source: 'reserved', op, values });
    else out.push({ key: rawKey, source: 'other', op, values });
  };
  if (isObject(sel.matchLabels)) for (const [k, v] of Object.entries(sel.matchLabels)) push(k, 'In', [String(v)]);
  if (Array.isArray(sel.matchExpressions)) {
    for (const e of sel.matchExpressions) {
      if (!isObject(e) || typeof e.key !== 'string' || typeof e.operator !== 'string' || !OPS.includes(e.operator)) continue;
      const values = Array.isArray(e.values) ? e.values.filter((x): x is string => typeof x === 'string') : [];
      push(e.key, e.operator as Op, values);
    }
  }
  return out;
}

const asSelector = (reqs: readonly Requirement[]) => ({
  matchExpressions: reqs.map((r) => ({ key: r.source === 'reserved' ? `reserved:${r.key}` : r.key, operator: r.op, values: r.values })),
});

/** The labels Cilium gives a pod, keyed without source prefix: its own, namespace, service account, namespace labels. */
function podLabelView(labels: Record<string, string>, namespace: string, serviceAccount: string, namespaceLabels: Record<string, string>): Record<string, string> {
  const view: Record<string, string> = { ...labels, [LABEL_NAMESPACE]: namespace, [LABEL_SERVICE_ACCOUNT]: serviceAccount };
  for (const [k, v] of Object.entries(namespaceLabels)) view[NAMESPACE_LABELS_PREFIX + k] = v;
  return view;
}

/**
 * Whether a rule's endpointSelector selects this workload. In a CNP the namespace part is replaced by the
 * policy's own namespace (the agent does so), so it is dropped here and the caller compares namespaces.
 */
export function selectsWorkload(sel: JsonValue | undefined, workload: WorkloadIdentity, clusterwide: boolean): boolean {
  if (!isObject(sel)) return false;
  let reqs = requirementsOf(sel);
  if (!clusterwide) reqs = reqs.filter((r) => !(r.source === 'k8s' && r.key === LABEL_NAMESPACE));
  const view = podLabelView(workload.labels, workload.namespace, workload.serviceAccount, workload.namespaceLabels ?? {});
  return selectorMatches(asSelector(reqs) as unknown as JsonValue, view);
}

/** What lowering a peer needs: whose rule it is (allow or deny), the policy's namespace, the registry. */
export interface PeerScope {
  use: 'allow' | 'deny';
  /** The CNP's namespace, or null in a CCNP. */
  namespace: string | null;
  trustDomains: readonly string[];
  registry: PeerRegistry;
  /** Every pod IP the registry knows: such a peer is a pod, never `world` or a CIDR peer. */
  podIps: readonly string[];
}

const ANY: Matcher = { type: 'any' };
const NONE: Matcher = { type: 'none' };
const and = (...of: Matcher[]): Matcher => {
  const parts = of.flatMap((m) => (m.type === 'and' ? m.of : [m])).filter((m) => m.type !== 'any');
  if (parts.some((m) => m.type === 'none')) return NONE;
  return parts.length === 0 ? ANY : parts.length === 1 ? (parts[0] as Matcher) : { type: 'and', of: parts };
};
const or = (...of: Matcher[]): Matcher => {
  const parts = of.flatMap((m) => (m.type === 'or' ? m.of : [m])).filter((m) => m.type !== 'none');
  if (parts.some((m) => m.type === 'any')) return ANY;
  return parts.length === 0 ? NONE : parts.length === 1 ? (parts[0] as Matcher) : { type: 'or', of: parts };
};
const not = (m: Matcher): Matcher => (m.type === 'any' ? NONE : m.type === 'none' ? ANY : { type: 'not', of: m });
export const matchers = { and, or, not, ANY, NONE };

/**
 * A peer whose SPIFFE ID `spiffe://<local trust domain>/ns/<ns>/sa/<sa>` makes it a pod of this cluster, optionally
 * in one of `namespaces` with one of `serviceAccounts`: answered from the parsed ID, filed by namespace in the index.
 */
function pod(scope: PeerScope, namespaces?: readonly string[], serviceAccounts?: readonly string[]): Matcher {
  if (namespaces?.length === 0 || serviceAccounts?.length === 0) return NONE;
  return {
    type: 'peer.namespace', trustDomains: [...scope.trustDomains],
    ...(namespaces === undefined ? {} : { namespaces: [...namespaces] }),
    ...(serviceAccounts === undefined ? {} : { serviceAccounts: [...serviceAccounts] }),
  };
}
const localPod = (scope: PeerScope): Matcher => pod(scope);
const podByIp = (scope: PeerScope): Matcher => (scope.podIps.length > 0 ? { type: 'source.ip', cidrs: [...scope.podIps] } : NONE);
/** Not a pod this cluster knows: no local workload identity and not a registered pod IP (Cilium's world, nodes, CIDR peers). */
export const notPod = (scope: PeerScope): Matcher => not(or(localPod(scope), podByIp(scope)));

/**
 * A peer kind the sidecar cannot resolve (nodes, cloud groups, CIDR groups, entities only Cilium knows): an
 * allow matches nothing; a deny matches every peer it might be, i.e. every peer that is not a known pod.
 */
export const unresolvable = (scope: PeerScope): Matcher => (scope.use === 'allow' ? NONE : notPod(scope));

const IPV4: Matcher = { type: 'source.ip', cidrs: ['0.0.0.0/0'] };

/** fromEntities (pkg/policy/api/entity.go) as far as SPIFFE ID, registry and source IP can tell. */
export function entityMatcher(entity: Entity, scope: PeerScope): Matcher {
  switch (entity) {
    case 'all': return ANY;
    case 'none': return NONE;
    case 'world': return notPod(scope);
    case 'world-ipv4': return and(notPod(scope), IPV4);
    case 'world-ipv6': return and(notPod(scope), not(IPV4));
    // Pods are certain; nodes are not known, so an allow counts pods only and a deny every peer.
    case 'cluster': return scope.use === 'allow' ? or(localPod(scope), podByIp(scope)) : ANY;
    default: return unresolvable(scope);
  }
}

/** fromCIDR / fromCIDRSet: only peers Cilium cannot map to a pod identity are CIDR peers (cni-dialects.md §1.3). */
export function cidrMatcher(cidrs: readonly string[], excepts: readonly string[], scope: PeerScope): Matcher {
  if (cidrs.length === 0) return NONE;
  const inside: Matcher = { type: 'source.ip', cidrs: [...cidrs] };
  return and(notPod(scope), inside, excepts.length > 0 ? not({ type: 'source.ip', cidrs: [...excepts] }) : ANY);
}

function describe(reqs: readonly Requirement[]): string {
  const text = reqs.map((r) => {
    switch (r.op) {
      case 'In': return r.values.length === 1 ? `${r.key}=${r.values[0]}` : `${r.key} in (${r.values.join(',')})`;
      case 'NotIn': return `${r.key} notin (${r.values.join(',')})`;
      case 'Exists': return r.key;
      case 'DoesNotExist': return `!${r.key}`;
    }
  });
  return `labels ${text.join(',')} (registry)`;
}

/**
 * One fromEndpoints (or fromRequires) selector. Namespace and service account come from the SPIFFE ID, so they
 * hold for identities the registry does not know; other labels go through the registry (allow: every pod of
 * the identity, deny: any pod; unknown identities fail closed for an allow and match a deny).
 */
export function endpointMatcher(sel: JsonValue | undefined, scope: PeerScope): Matcher {
  const reqs = requirementsOf(sel);
  const reserved = reqs.filter((r) => r.source === 'reserved');
  if (reserved.length > 0) {
    // `reserved:<entity>` selects that entity (and is never namespace-scoped, as in getEndpointSelector).
    const only = reserved[0] as Requirement;
    if (reqs.length === 1 && (only.op === 'Exists' || only.op === 'In')) {
      const entity = only.key as Entity;
      return ['host', 'remote-node', 'world', 'world-ipv4', 'world-ipv6', 'health', 'init', 'ingress', 'kube-apiserver', 'unmanaged'].includes(entity)
        ? entityMatcher(entity, scope) : unresolvable(scope);
    }
    return unresolvable(scope);
  }
  const scoped = [...reqs];
  const namesNamespace = reqs.some((r) => r.source === 'k8s' && r.key === LABEL_NAMESPACE);
  const namesNamespaceLabels = reqs.some((r) => r.source === 'k8s' && r.key.startsWith(NAMESPACE_LABELS_PREFIX));
  // Implicit scoping (pkg/k8s/apis/cilium.io/utils getEndpointSelector): a CNP's peer selector is confined to the
  // policy's namespace unless it names a namespace or namespace labels; a CCNP's to real pods (localPod below).
  if (!namesNamespace && !namesNamespaceLabels && scope.namespace !== null) scoped.push({ key: LABEL_NAMESPACE, source: 'k8s', op: 'In', values: [scope.namespace] });
  // Namespace and service account come from the SPIFFE ID: the `In` values of each key are intersected into one
  // pod leaf; `NotIn` excludes pods of those names; every pod has both, so `DoesNotExist` selects no pod.
  const inValues: Record<string, string[] | undefined> = {};
  const parts: Matcher[] = [];
  const registryReqs: Requirement[] = [];
  for (const r of scoped) {
    if (r.source === 'k8s' && (r.key === LABEL_NAMESPACE || r.key === LABEL_SERVICE_ACCOUNT)) {
      const isNs = r.key === LABEL_NAMESPACE;
      if (r.op === 'In') inValues[r.key] = inValues[r.key]?.filter((v) => r.values.includes(v)) ?? [...new Set(r.values)];
      else if (r.op === 'NotIn') parts.push(not(isNs ? pod(scope, r.values) : pod(scope, undefined, r.values)));
      else if (r.op === 'DoesNotExist') parts.push(unresolvable(scope));
    } else if (r.source === 'other' && scope.use === 'deny') continue; // cannot be checked: a deny reads it as satisfied
    else registryReqs.push(r);
  }
  parts.unshift(pod(scope, inValues[LABEL_NAMESPACE], inValues[LABEL_SERVICE_ACCOUNT]));
  if (registryReqs.length > 0) {
    const selector = asSelector(registryReqs) as unknown as JsonValue;
    parts.push(peersWhere(scope.registry, (pod) => selectorMatches(selector, podLabelView(pod.labels, pod.namespace, pod.serviceAccount, pod.namespaceLabels)), scope.use, describe(registryReqs)));
  }
  return and(...parts);
}

/** The label keys of a selector that name a source Cilium has but a sidecar cannot see (for warnings). */
export function unknownSourceKeys(sel: JsonValue | undefined): string[] {
  return requirementsOf(sel).filter((r) => r.source === 'other').map((r) => r.key);
}

/** The keys of a rule's L3 peer fields that are present (even empty: an explicit empty list selects nothing). */
export const L3_PEER_FIELDS = ['fromEndpoints', 'fromCIDR', 'fromCIDRSet', 'fromEntities', 'fromNodes', 'fromGroups'] as const;

/**
 * A rule's L3 part: the OR of its peers. No peer field at all = every source (a toPorts-only rule).
 * `requires` (fromRequires of every rule selecting the workload) narrows each fromEndpoints selector.
 */
export function l3Matcher(r: Obj, scope: PeerScope, requires: Matcher): Matcher {
  const present = L3_PEER_FIELDS.filter((f) => r[f] !== undefined && r[f] !== null);
  if (present.length === 0) return ANY;
  const list = (v: JsonValue | undefined): JsonValue[] => (Array.isArray(v) ? v : []);
  const peers: Matcher[] = [];
  for (const sel of list(r.fromEndpoints)) peers.push(and(endpointMatcher(sel, scope), requires));
  for (const e of list(r.fromEntities)) if (typeof e === 'string') peers.push(entityMatcher(e as Entity, scope));
  const cidrs = list(r.fromCIDR).filter((c): c is string => typeof c === 'string');
  if (cidrs.length > 0) peers.push(cidrMatcher(cidrs, [], scope));
  for (const set of list(r.fromCIDRSet)) {
    if (!isObject(set)) continue;
    if (typeof set.cidr === 'string' && set.cidr !== '') peers.push(cidrMatcher([set.cidr], list(set.except).filter((c): c is string => typeof c === 'string'), scope));
    else peers.push(unresolvable(scope)); // cidrGroupRef / cidrGroupSelector: CiliumCIDRGroups are not loaded
  }
  if (list(r.fromNodes).length > 0 || list(r.fromGroups).length > 0) peers.push(unresolvable(scope));
  return or(...peers);
}
