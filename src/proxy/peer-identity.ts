// Owns deciding who is on the other end of an inbound TLS connection, once per connection: the peer leaf and
// chain as presented, validated as an X509-SVID from DER (security.md PC-24/PC-25, SPIFFE X509-SVID §5).

import { createHash } from 'node:crypto';
import type * as tls from 'node:tls';
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
  // The leaf alone is cheap to read (no chain, no X509Certificate: about 125 µs each to build), and all that a
  // peer seen before needs: the verifier reads and parses the chain only for a certificate it has not verified.
  let leaf: { raw?: Buffer } | null | undefined;
  // An unreadable certificate is never treated as "no certificate" (that would pass permissive mode).
  try { leaf = socket.getPeerCertificate(false); } catch { return { ok: false, reason: 'untrusted_chain' }; }
  if (!leaf?.raw) return strict ? { ok: false, reason: 'no_certificate' } : { ok: true, peer: null, peerCertHash: null };
  if (!socket.authorized) return { ok: false, reason: 'untrusted_chain' };
  let verified: ReturnType<PeerVerifier>;
  try { verified = verifyPeer(socket); } catch { verified = { ok: false, reason: 'untrusted_chain', detail: 'verifier failed' }; }
  if (!verified.ok) return { ok: false, reason: verified.reason };
  return { ok: true, peer: verified.peer, peerCertHash: createHash('sha256').update(leaf.raw).digest('hex') };
}
