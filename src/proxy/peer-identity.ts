// Owns deciding who is on the other end of an inbound TLS connection, once per connection: the peer leaf and
// chain as presented, validated as an X509-SVID from DER (security.md PC-24/PC-25, SPIFFE X509-SVID §5).

import { createHash, type X509Certificate } from 'node:crypto';
import type * as tls from 'node:tls';
import { peerCertificateChain } from '../identity/peer.js';
import type { ConnectionInfo, PeerVerifier } from './types.js';

export type PeerCheck =
  | { ok: true; peer: ConnectionInfo['peer']; peerCertHash: string | null }
  /** `reason` is the handshake-rejection label counted in metrics. */
  | { ok: false; reason: string };

/**
 * The identity of a TLS peer: a verified SVID, or none (a permissive listener's caller without a certificate).
 * A certificate that fails chain or SVID validation is refused on every listener, strict or not.
 */
export function identifyTlsPeer(socket: tls.TLSSocket, strict: boolean, verifyPeer: PeerVerifier): PeerCheck {
  // The one chain read (identity/peer.ts explains why never getPeerX509Certificate()).
  let presented: X509Certificate[];
  // An unreadable certificate is never treated as "no certificate" (that would pass permissive mode).
  try { presented = peerCertificateChain(socket); } catch { return { ok: false, reason: 'untrusted_chain' }; }
  const leaf = presented[0];
  if (!leaf) return strict ? { ok: false, reason: 'no_certificate' } : { ok: true, peer: null, peerCertHash: null };
  if (!socket.authorized) return { ok: false, reason: 'untrusted_chain' };
  let verified: ReturnType<PeerVerifier>;
  try { verified = verifyPeer(leaf, presented.slice(1)); } catch { verified = { ok: false, reason: 'untrusted_chain', detail: 'verifier failed' }; }
  if (!verified.ok) return { ok: false, reason: verified.reason };
  return { ok: true, peer: verified.peer, peerCertHash: createHash('sha256').update(leaf.raw).digest('hex') };
}
