// Owns the narrow interfaces the data plane needs from its neighbours (policy store, credentials, JWT,
// decision sink), so src/proxy depends on contracts and app.ts adapts the concrete modules to them.

import type { SecureContextOptions, TLSSocket } from 'node:tls';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { PeerIdentity } from '../policy/context-types.js';
import type { PeerVerification } from '../identity/types.js';
import type { JwtAuthenticator } from '../jwt/types.js';
import type { DecisionSink } from '../observe/types.js';
import type { CaptureSettings } from '../observe/capture.js';
import type { DecisionEffects } from '../policy/decision.js';
import type { LimitsConfig, InboundListenerConfig } from '../config/types.js';

/** The one mutable cell holding the compiled policies; read once per request. */
export interface SnapshotSource {
  current(): PolicySnapshot;
}

/** What TLS needs from the credential store: options for new handshakes, rotation events, our own SPIFFE ID. */
export interface ServerCredentials {
  serverOptions(): SecureContextOptions;
  /** Called after each successful rotation; returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
  ownSpiffeId(): string;
}

/**
 * Validates the peer of a TLS connection (its leaf and the chain it sent) as an X509-SVID from its DER. A peer
 * seen before costs a fingerprint lookup: the chain is read and parsed only for a new one (identity/peer.ts).
 */
export type PeerVerifier = (socket: TLSSocket) => PeerVerification;

/** A JWT authenticator for the snapshot in force (providers come from its RequestAuthentications). */
export type JwtAuthenticatorFor = (snapshot: PolicySnapshot) => JwtAuthenticator;

/** Applies a Linkerd local rate limit; true = admitted. */
export type RateLimiter = (limit: NonNullable<DecisionEffects['rateLimit']>, peer: PeerIdentity | null, nowMs: number) => boolean;

/** Data-plane counters beyond the per-request decision event (which the metrics module also receives). */
export interface ProxyMetrics {
  connectionOpened?(listener: string, tls: boolean): void;
  connectionClosed?(listener: string): void;
  handshakeRejected?(listener: string, reason: string): void;
  upstreamDuration?(outcome: string, seconds: number): void;
  /** A connection passed TLS and identity checks (or was a permissive plaintext caller). */
  connectionAccepted?(listener: string): void;
  /** A connection was refused because the listener is at maxConnections. */
  connectionDropped?(listener: string): void;
  h2StreamOpened?(): void;
  h2StreamClosed?(): void;
  /** JWT outcome per request that had providers: `none`, `verified` or the failure reason code. */
  jwtResult?(result: string): void;
}

export interface ProxyDeps {
  mode: 'enforce' | 'audit';
  limits: LimitsConfig;
  pathNormalization: import('../policy/ir.js').PathNormalization;
  rejectEncodedSlashes: boolean;
  policies: SnapshotSource;
  credentials: ServerCredentials;
  verifyPeer: PeerVerifier;
  jwtFor: JwtAuthenticatorFor;
  sink: DecisionSink;
  /** false: no decision event is built or published (check and replay want the decision, not the event). */
  decisionEvents?: boolean;
  /** What decision events record for replay (default: replayable, no extra redacted headers). */
  capture?: CaptureSettings;
  rateLimiter?: RateLimiter;
  metrics?: ProxyMetrics;
  /** Injected clock (ms since epoch) so the pure parts stay testable. */
  now?: () => number;
}

/** Facts about one downstream connection, computed once when it is accepted. */
export interface ConnectionInfo {
  listener: InboundListenerConfig;
  /** True when the caller spoke TLS (false for a permissive-port plaintext caller). */
  tls: boolean;
  peer: PeerIdentity | null;
  /** Hex SHA-256 of the peer leaf DER (for x-forwarded-client-cert). */
  peerCertHash: string | null;
  sourceIp: string;
  /** The original client address when it differs from the peer's (Istio remoteIpBlocks); `check` sets it, the listener never. */
  remoteIp?: string;
  sourcePort: number;
  destinationIp: string | undefined;
  /** Local port the caller connected to (Linkerd's `server: <ip:port>` in l5d-proxy-error). Optional for compatibility. */
  destinationPort?: number | undefined;
  sni: string | undefined;
}
