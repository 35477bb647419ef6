// Owns peer-name matching: a SPIFFE peer `spiffe://<td>/ns/<ns>/sa/<sa>` rendered as a DNS-style name by a
// dialect's template (Linkerd: `{sa}.{ns}.serviceaccount.identity.<cp-ns>.{td}`, linkerd.md §6), then
// matched exactly or by label-bounded suffix.
import type { PeerIdentity } from '../context-types.js';

const NS_SA_PATH = /^\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** The peer's name under `template`, or null when its SPIFFE path is not /ns/<ns>/sa/<sa>. */
export function peerName(peer: PeerIdentity, template: string): string | null {
  const prefix = `spiffe://${peer.trustDomain}`;
  if (!peer.spiffeId.startsWith(prefix)) return null;
  const m = NS_SA_PATH.exec(peer.spiffeId.slice(prefix.length));
  if (!m) return null;
  const values: Record<string, string> = { sa: m[2] as string, ns: m[1] as string, td: peer.trustDomain };
  return template.replace(/\{(sa|ns|td)\}/g, (_, key: string) => values[key] as string);
}

export function compilePeerName(template: string, exact: readonly string[], suffixes: readonly string[]): (peer: PeerIdentity | null) => boolean {
  const spiffeExact = new Set(exact.filter((e) => e.startsWith('spiffe://')));
  const nameExact = new Set(exact.filter((e) => !e.startsWith('spiffe://')));
  const anyName = suffixes.includes('');
  const dotted = suffixes.filter((s) => s.length > 0).map((s) => '.' + s);
  // A one-placeholder template is a field of the parsed ID: no rendering, no cache (network-policy dialects
  // test many such leaves per request). namespace/serviceAccount are set exactly for /ns/<ns>/sa/<sa> IDs.
  const field = template === '{ns}' ? 'namespace' : template === '{sa}' ? 'serviceAccount' : template === '{td}' ? 'trustDomain' : null;
  // Other names are computed per peer object; the same peer is shared by every request on a connection.
  const names = new WeakMap<PeerIdentity, string | null>();
  return (peer) => {
    if (peer === null) return false;
    if (spiffeExact.size > 0 && spiffeExact.has(peer.spiffeId)) return true;
    let name: string | null | undefined = field !== null && peer.namespace !== undefined && peer.serviceAccount !== undefined ? peer[field] : undefined;
    if (name === undefined) name = names.get(peer);
    if (name === undefined) {
      name = peerName(peer, template);
      names.set(peer, name);
    }
    if (name === null) return false;
    if (anyName || nameExact.has(name)) return true;
    for (const s of dotted) if (name.endsWith(s)) return true;
    return false;
  };
}
