// Owns Linkerd identity matching: a SPIFFE peer `spiffe://<td>/ns/<ns>/sa/<sa>` is known to Linkerd as
// `<sa>.<ns>.serviceaccount.identity.<control-plane-ns>.<td>` (linkerd.md §6, MeshTLSAuthentication).
import type { PeerIdentity } from '../context-types.js';

const NS_SA_PATH = /^\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** The Linkerd identity name for a peer, or null when its SPIFFE path is not /ns/<ns>/sa/<sa>. */
export function linkerdIdentityName(peer: PeerIdentity, controlPlaneNamespace: string): string | null {
  const prefix = `spiffe://${peer.trustDomain}`;
  if (!peer.spiffeId.startsWith(prefix)) return null;
  const m = NS_SA_PATH.exec(peer.spiffeId.slice(prefix.length));
  if (!m) return null;
  return `${m[2] as string}.${m[1] as string}.serviceaccount.identity.${controlPlaneNamespace}.${peer.trustDomain}`;
}

export function compileLinkerdIdentity(exact: readonly string[], suffixes: readonly string[], controlPlaneNamespace: string): (peer: PeerIdentity | null) => boolean {
  const spiffeExact = new Set(exact.filter((e) => e.startsWith('spiffe://')));
  const nameExact = new Set(exact.filter((e) => !e.startsWith('spiffe://')));
  const anyIdentity = suffixes.includes('');
  const dotted = suffixes.filter((s) => s.length > 0).map((s) => '.' + s);
  // Names are computed per peer object; the same peer is shared by every request on a connection.
  const names = new WeakMap<PeerIdentity, string | null>();
  return (peer) => {
    if (peer === null) return false;
    if (spiffeExact.has(peer.spiffeId)) return true;
    let name = names.get(peer);
    if (name === undefined) {
      name = linkerdIdentityName(peer, controlPlaneNamespace);
      names.set(peer, name);
    }
    if (name === null) return false;
    if (anyIdentity || nameExact.has(name)) return true;
    for (const s of dotted) if (name.endsWith(s)) return true;
    return false;
  };
}
