// Owns the outbound listener's side of the wire to its destination sidecar: mTLS with our current SVID, the
// destination's X509-SVID checked for the exact SPIFFE ID and the CRLs, as the connector of the shared forwarders.
// Follows SPIFFE X509-SVID §5 (verify the URI SAN from DER, never DNS names) and security.md PC-24/PC-25.

import type { ConnectionOptions } from 'node:tls';
import { buildConnector } from './undici-parts.js';
import type { OutboundListenerConfig } from '../config/types.js';
import { PeerVerifier } from '../identity/peer.js';
import type { RevocationList } from '../identity/crl.js';
import { clientTlsOptions, PeerIdentityError, type Credentials } from '../identity/credentials.js';
import type { Exchange } from './exchange.js';
import { createH1Forwarder } from './forward-h1.js';
import { createH2Forwarder } from './forward-h2.js';
import { UpstreamH2Sessions } from './outbound-h2-sessions.js';
import { classifyUpstreamError, type Refusal } from './respond.js';
import type { Forwarder, UpstreamErrorClassifier } from './upstream.js';

export interface Destination { host: string; port: number; authority: string }

export interface DestinationDeps {
  /** Our own SVID + trust bundle, current generation (a CredentialStore). */
  credentials: { current(): Credentials };
  /** Trust domains a destination's SVID may belong to (Config.tls.trustDomains). */
  trustDomains: readonly string[];
  /** The CRLs in force (the same store as inbound), checked for the destination's leaf and intermediates. */
  revocation?: () => RevocationList;
  now: () => number;
  log?: { warn(obj: object, msg?: string): void };
}

export interface DestinationTimeouts { connectMs: number; idleMs: number }

/** `https://host:port` only: an outbound listener never sends a request in plaintext. */
export function parseTarget(target: string): Destination {
  const url = new URL(target);
  if (url.protocol !== 'https:') throw new Error(`outbound target must be https://host:port, got ${target}`);
  const port = url.port === '' ? 443 : Number(url.port);
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port, authority: url.port === '' ? url.hostname : `${url.hostname}:${url.port}` };
}

/** OpenSSL verify codes (X509_V_ERR_* names as Node reports them) and Node's TLS error codes. */
function isTlsFailure(code: string): boolean {
  return code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || code === 'EPROTO'
    || /CERT|SELF_SIGNED|UNABLE_TO|INVALID_PURPOSE|INVALID_CA|PATH_LENGTH|HOSTNAME_MISMATCH|CRL/.test(code);
}

function findIdentityError(err: unknown): PeerIdentityError | undefined {
  for (let e: unknown = err, i = 0; e && i < 5; i++) {
    if (e instanceof PeerIdentityError) return e;
    e = typeof e === 'object' && 'cause' in e ? (e as { cause: unknown }).cause : undefined;
  }
  return undefined;
}

/**
 * The forwarders' error classifier for a destination: a refused identity (`server_<why>`) or a failed TLS
 * handshake is `upstream_identity` (503, never a plaintext retry), anything else what inbound says.
 */
export function destinationRefusal(config: OutboundListenerConfig, log?: DestinationDeps['log']): UpstreamErrorClassifier {
  return (err: unknown): Refusal => {
    const identity = findIdentityError(err);
    const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
    if (identity) {
      log?.warn({ listener: config.name, target: config.target, reason: identity.reason, expected: config.expectIdentity, detail: identity.message }, 'outbound destination identity rejected');
      return { kind: 'upstream_identity', reason: `server_${identity.reason}` };
    }
    if (isTlsFailure(code)) {
      log?.warn({ listener: config.name, target: config.target, code }, 'outbound TLS handshake failed');
      return { kind: 'upstream_identity', reason: 'server_tls_failed' };
    }
    log?.warn({ listener: config.name, target: config.target, code, err: err instanceof Error ? err.message : String(err) }, 'outbound upstream failure');
    return classifyUpstreamError(err);
  };
}

/**
 * The shared forwarders pointed at the destination: HTTP/1.1 callers go out over HTTP/1.1 (undici, ALPN
 * http/1.1), HTTP/2 and gRPC callers as h2 streams; every connection is a fresh mTLS handshake.
 */
export function destinationForwarder(config: OutboundListenerConfig, target: Destination, deps: DestinationDeps, timeouts: DestinationTimeouts): Forwarder {
  const serverName = config.serverName ?? target.host;
  // Fresh TLS options per connection: a rotated SVID or bundle applies to the next handshake, and no
  // session is resumed across a change of validation settings (Envoy CVE-2022-21654).
  // checkServerIdentity (src/identity) replaces hostname checks: X509-SVID rules + exact SPIFFE ID.
  const verifier = new PeerVerifier({ maxEntries: 64 });
  const tlsOptions = (alpn: string[]): ConnectionOptions => ({
    ...clientTlsOptions(deps.credentials.current(), { expectIdentity: config.expectIdentity, trustDomains: deps.trustDomains, verifier, now: deps.now, ...(deps.revocation ? { revocation: deps.revocation } : {}) }),
    servername: /^[\d.]+$|:/.test(serverName) ? undefined : serverName,
    ALPNProtocols: alpn,
  });
  const classifyError = destinationRefusal(config, deps.log);
  const h1 = createH1Forwarder({
    origin: `https://${target.authority}`,
    connectTimeoutMs: timeouts.connectMs,
    // Responses stream as long as the destination sends them (long polls, event streams).
    bodyTimeoutMs: 0,
    connect: (opts, callback) => { buildConnector({ ...tlsOptions(['http/1.1']), timeout: timeouts.connectMs })(opts, callback); },
    classifyError,
  });
  const h2 = createH2Forwarder({
    sessions: new UpstreamH2Sessions({ target, tlsOptions, connectMs: timeouts.connectMs, idleMs: timeouts.idleMs, listener: config.name, ...(deps.log ? { log: deps.log } : {}) }),
    scheme: 'https',
    allTrailers: true,
    classifyError,
  });
  return {
    forward: (permit, request, ex: Exchange<unknown>) => (ex.httpVersion === '2' ? h2 : h1).forward(permit, request, ex),
    async close() { await Promise.all([h1.close(), h2.close()]); },
  };
}
