// Owns the identity contract: a parsed SPIFFE ID, the outcome of validating a peer's X509-SVID,
// and the credential store that serves the current certificate/key/bundle to TLS.

import type { PeerIdentity } from '../policy/context-types.js';

export interface SpiffeId {
  trustDomain: string;
  /** Path with leading `/`, never empty for a workload ID. */
  path: string;
  /** `spiffe://<td><path>` */
  text: string;
}

export type PeerVerification =
  | { ok: true; peer: PeerIdentity }
  | { ok: false; reason: PeerRejectReason; detail: string };

export type PeerRejectReason =
  | 'no_certificate'
  | 'untrusted_chain'
  | 'expired'
  | 'not_yet_valid'
  | 'not_one_uri_san'
  | 'bad_spiffe_id'
  | 'trust_domain_rejected'
  | 'leaf_is_ca'
  | 'bad_key_usage'
  /** The leaf or an intermediate is listed in a configured CRL signed by its issuer. */
  | 'revoked';
