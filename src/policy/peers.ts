// Owns the peer registry as the policy core sees it: SPIFFE ID -> the pods running as it (namespace, service
// account, labels, namespace and ServiceAccount labels, IPs), and the sound reading of label selectors over it
// (cni-dialects.md §5.3: an allow needs every pod of an identity, a deny any pod; unknown IDs fail closed).
import type { Matcher, PeerFacts, PeerRegistry } from './ir.js';

// The shapes live with the rest of the compile input in ir.ts; this module is their one entry point.
export type { PeerFacts, PeerRegistry } from './ir.js';

/** No peer is known: every label-based allow fails closed, every label-based deny matches. */
export const emptyRegistry: PeerRegistry = Object.freeze({ byId: new Map<string, readonly PeerFacts[]>() });

/** Groups pods by SPIFFE ID, keeping their order; the result is frozen. */
export function buildRegistry(facts: PeerFacts[]): PeerRegistry {
  const byId = new Map<string, PeerFacts[]>();
  for (const pod of facts) {
    const frozen = Object.freeze({
      ...pod,
      labels: Object.freeze({ ...pod.labels }),
      namespaceLabels: Object.freeze({ ...pod.namespaceLabels }),
      serviceAccountLabels: Object.freeze({ ...pod.serviceAccountLabels }),
      ips: Object.freeze([...pod.ips]) as string[],
    });
    const list = byId.get(pod.spiffeId);
    if (list === undefined) byId.set(pod.spiffeId, [frozen]);
    else list.push(frozen);
  }
  for (const list of byId.values()) Object.freeze(list);
  return Object.freeze({ byId });
}

const sortedJson = (r: Record<string, string>): string => JSON.stringify(Object.keys(r).sort().map((k) => [k, r[k]]));
const selectable = (p: PeerFacts): string => [p.namespace, p.serviceAccount, sortedJson(p.labels), sortedJson(p.namespaceLabels), sortedJson(p.serviceAccountLabels)].join('\0');

/**
 * True when the pods of `spiffeId` differ in a fact a selector can read (labels of pod, namespace or
 * ServiceAccount): then a selector may match some of them only, and Pass/Log rules have no sound reading.
 */
export function isHeterogeneous(registry: PeerRegistry, spiffeId: string): boolean {
  const pods = registry.byId.get(spiffeId);
  if (pods === undefined || pods.length < 2) return false;
  const first = selectable(pods[0] as PeerFacts);
  return pods.some((p) => selectable(p) !== first);
}

/**
 * The `peer.registered` leaf for a label-based peer selector. `allow`: identities all of whose pods pass
 * `test`; an identity missing from the registry does not match (fail closed). `deny`: identities with any
 * pod passing; an unknown identity matches (pessimistic). Plaintext peers never match either way.
 * `describe` is what explain prints (`labels app=web (registry)`).
 */
export function peersWhere(registry: PeerRegistry, test: (pod: PeerFacts) => boolean, use: 'allow' | 'deny', describe: string): Matcher {
  const spiffeIds: string[] = [];
  for (const [id, pods] of registry.byId) {
    if (pods.length === 0) continue;
    if (use === 'allow' ? pods.every(test) : pods.some(test)) spiffeIds.push(id);
  }
  spiffeIds.sort();
  return { type: 'peer.registered', spiffeIds, unknown: use === 'deny', describe };
}
