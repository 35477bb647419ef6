// Owns the public surface of src/identity: what the proxy, config and CLI import.
// SPIFFE-ID + X509-SVID rules live in spiffe.ts / peer.ts; rotation in credentials.ts.

export type { SpiffeId, PeerVerification, PeerRejectReason } from './types.js';
export { parseSpiffeId, toPeerIdentity, checkTrustDomain, type SpiffeIdResult } from './spiffe.js';
export { PeerVerifier, verifyPeerCertificate, type TrustBundle, type PeerCertificateInput, type PeerVerifyOptions } from './peer.js';
export {
  CredentialStore,
  CredentialError,
  PeerIdentityError,
  buildCredentials,
  serverSecureOptions,
  clientTlsOptions,
  type Credentials,
  type CredentialFiles,
  type CredentialStoreOptions,
  type IdentityLogger,
  type ReloadResult,
} from './credentials.js';
