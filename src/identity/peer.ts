// Owns turning a peer's certificate chain into a verified PeerIdentity (once per connection, cached by
// fingerprint). Follows the SPIFFE X509-SVID profile and RFC 5280 path validation; security.md PC-24/25.

import { createHash, X509Certificate, type KeyObject } from 'node:crypto';
import { TLSSocket } from 'node:tls';
import type { PeerIdentity } from '../policy/context-types.js';
import type { PeerRejectReason, PeerVerification } from './types.js';
import type { RevocationList } from './crl.js';
import { parseSpiffeId, toPeerIdentity } from './spiffe.js';
import {
  decodeBasicConstraints,
  decodeExtKeyUsage,
  decodeKeyUsage,
  decodeSubjectAltNames,
  KEY_USAGE_BITS,
  OID,
  parseCertificate,
  type ParsedCertificate,
} from './x509-parse.js';

/** The CA certificates a peer's chain must end at (every trust domain we accept, one list). */
export type TrustBundle = readonly X509Certificate[];

/** A live TLS socket, or the peer's chain as DER/X509Certificate, leaf first. */
export type PeerCertificateInput = TLSSocket | readonly (Uint8Array | X509Certificate)[];

export interface PeerVerifyOptions {
  /** Current time (ms since epoch or Date); the verifier never reads a clock itself. */
  now: number | Date;
  /** Accepted peer trust domains (exact, lowercase). */
  trustDomains: readonly string[];
  /**
   * What the peer authenticates as: `client` (inbound; EKU, if present, must hold clientAuth) or
   * `server` (outbound; EKU, if present, must hold serverAuth). Default `client`.
   */
  role?: 'client' | 'server';
  /** CRLs checked for the leaf and every intermediate on the path (the anchor is trusted as configured). */
  revocation?: RevocationList;
}

const MAX_CHAIN_DEPTH = 8;
const DEFAULT_CACHE_ENTRIES = 4096;

/** Rejections that depend only on the leaf itself, hence safe to cache whatever chain comes with it. */
const CACHEABLE_REJECTIONS = new Set<PeerRejectReason>(['leaf_is_ca', 'bad_key_usage', 'not_one_uri_san', 'bad_spiffe_id', 'trust_domain_rejected']);

const LEAF_CRITICAL_OK = new Set<string>([OID.basicConstraints, OID.keyUsage, OID.extKeyUsage, OID.subjectAltName]);

interface CacheEntry {
  result: PeerVerification;
  /** The window in which `result` holds: intersection of every certificate's validity on the path. */
  validFromMs: number;
  validToMs: number;
}

type Outcome = { result: PeerVerification; window?: { from: number; to: number } };

function reject(reason: PeerRejectReason, detail: string): PeerVerification {
  // Frozen: cached results are shared between connections.
  return Object.freeze({ ok: false, reason, detail });
}

function toX509(item: Uint8Array | X509Certificate): X509Certificate {
  return item instanceof X509Certificate ? item : new X509Certificate(item);
}

function isoOf(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Verifies peer certificates against a trust bundle; keeps a bounded LRU of recent results per
 * bundle so a repeated client costs one fingerprint lookup. Create one per listener (or share one).
 */
export class PeerVerifier {
  private readonly maxEntries: number;
  private readonly caches = new WeakMap<TrustBundle, Map<string, CacheEntry>>();
  hits = 0;
  misses = 0;

  constructor(opts: { maxEntries?: number } = {}) {
    this.maxEntries = Math.max(1, opts.maxEntries ?? DEFAULT_CACHE_ENTRIES);
  }

  private readonly anchors = new WeakMap<TrustBundle, Set<string>>();

  private bundleFingerprints(bundle: TrustBundle): Set<string> {
    let set = this.anchors.get(bundle);
    if (!set) {
      set = new Set(bundle.map((ca) => ca.fingerprint256));
      this.anchors.set(bundle, set);
    }
    return set;
  }

  verify(input: PeerCertificateInput, bundle: TrustBundle, opts: PeerVerifyOptions): PeerVerification {
    const nowMs = typeof opts.now === 'number' ? opts.now : opts.now.getTime();
    const role = opts.role ?? 'client';
    // Sockets: the cheap non-detailed certificate gives the fingerprint for the cache; the detailed
    // chain (≈15x dearer) is read only on a miss, through detailedPeerCertificate (see there why).
    let fingerprint: string;
    if (input instanceof TLSSocket) {
      const cert = input.getPeerCertificate(false) as SocketCert | undefined;
      if (!cert?.raw || !cert.fingerprint256) return reject('no_certificate', 'peer presented no certificate');
      fingerprint = cert.fingerprint256;
    } else {
      const first = input[0];
      if (first === undefined) return reject('no_certificate', 'peer presented no certificate');
      // Hash the DER ourselves: building an X509Certificate costs hundreds of µs (OpenSSL 3 key decoding).
      fingerprint = createHash('sha256').update(first instanceof X509Certificate ? first.raw : first).digest('base64');
    }

    const key = `${role}|${opts.revocation?.generation ?? 0}|${opts.trustDomains.join(',')}|${fingerprint}`;
    let cache = this.caches.get(bundle);
    if (!cache) {
      cache = new Map();
      this.caches.set(bundle, cache);
    }
    const hit = cache.get(key);
    if (hit && nowMs >= hit.validFromMs && nowMs <= hit.validToMs) {
      cache.delete(key);
      cache.set(key, hit);
      this.hits++;
      return hit.result;
    }
    this.misses++;

    let chain: X509Certificate[];
    try {
      chain = input instanceof TLSSocket ? chainFromSocketCert(detailedPeerCertificate(input), this.bundleFingerprints(bundle)) : input.map(toX509);
    } catch (err) {
      return reject('untrusted_chain', `peer chain is not parseable: ${(err as Error).message}`);
    }
    const outcome = verifyChainAndLeaf(chain, bundle, nowMs, opts.trustDomains, role, opts.revocation);
    const cacheable = outcome.window && (outcome.result.ok || CACHEABLE_REJECTIONS.has(outcome.result.reason));
    if (cacheable && outcome.window) {
      cache.delete(key);
      cache.set(key, { result: outcome.result, validFromMs: outcome.window.from, validToMs: outcome.window.to });
      while (cache.size > this.maxEntries) {
        const oldest = cache.keys().next().value;
        if (oldest === undefined) break;
        cache.delete(oldest);
      }
    }
    return outcome.result;
  }
}

const defaultVerifier = new PeerVerifier();

/** Verifies a peer X509-SVID; uses a process-wide cache (see PeerVerifier to own one). */
export function verifyPeerCertificate(input: PeerCertificateInput, bundle: TrustBundle, opts: PeerVerifyOptions): PeerVerification {
  return defaultVerifier.verify(input, bundle, opts);
}

interface SocketCert {
  raw?: Buffer;
  fingerprint256?: string;
  issuerCertificate?: SocketCert;
}

/** The detailed peer certificate per socket, read once: every chain read goes through here. */
const detailedBySocket = new WeakMap<TLSSocket, SocketCert>();

/**
 * Node 20 (server side): getPeerCertificate(true) may be called any number of times and carries the
 * presented intermediates, while the FIRST getPeerX509Certificate() takes them out of the session, so
 * every later read (either API) sees the leaf alone. Portcullis therefore reads chains only with
 * getPeerCertificate(true), once per socket, and never calls getPeerX509Certificate() on a peer.
 */
function detailedPeerCertificate(socket: TLSSocket): SocketCert {
  let cert = detailedBySocket.get(socket);
  if (!cert) {
    cert = (socket.getPeerCertificate(true) as SocketCert | undefined) ?? {};
    if (cert.raw) detailedBySocket.set(socket, cert);
  }
  return cert;
}

/**
 * Leaf then issuers, as Node reports them (presented chain, possibly completed from the CA store).
 * Stops before a certificate that is already in the bundle: the bundle's own copy is the anchor.
 */
function chainFromSocketCert(leaf: SocketCert, anchors: Set<string>): X509Certificate[] {
  const out: X509Certificate[] = [];
  let current: SocketCert | undefined = leaf;
  for (let i = 0; i <= MAX_CHAIN_DEPTH && current?.raw; i++) {
    if (i > 0 && current.fingerprint256 !== undefined && anchors.has(current.fingerprint256)) break;
    out.push(new X509Certificate(current.raw));
    const next: SocketCert | undefined = current.issuerCertificate;
    if (!next || next === current) break;
    current = next;
  }
  return out;
}

/** X509Certificate.publicKey decodes the key on every access (slow on OpenSSL 3); bundle CAs are reused. */
const publicKeys = new WeakMap<X509Certificate, KeyObject>();
function publicKeyOf(cert: X509Certificate): KeyObject {
  let key = publicKeys.get(cert);
  if (!key) {
    key = cert.publicKey;
    publicKeys.set(cert, key);
  }
  return key;
}

function parseOrNull(cert: X509Certificate): ParsedCertificate | string {
  try {
    return parseCertificate(cert.raw);
  } catch (err) {
    return (err as Error).message;
  }
}

function decodeBasicConstraintsSafe(value: Buffer): ReturnType<typeof decodeBasicConstraints> | undefined {
  try {
    return decodeBasicConstraints(value);
  } catch {
    return { ca: false, pathLen: 0 };
  }
}

/** Whether `cert` may sign other certificates: cA=true and, if keyUsage is present, keyCertSign. */
function isSigningCa(parsed: ParsedCertificate): boolean {
  const bc = parsed.extensions.get(OID.basicConstraints);
  if (!bc || !decodeBasicConstraints(bc.value).ca) return false;
  const ku = parsed.extensions.get(OID.keyUsage);
  return !ku || decodeKeyUsage(ku.value).has(KEY_USAGE_BITS.keyCertSign);
}

function verifyChainAndLeaf(chain: X509Certificate[], bundle: TrustBundle, nowMs: number, trustDomains: readonly string[], role: 'client' | 'server', revocation?: RevocationList): Outcome {
  const leaf = chain[0]!;
  const leafParsed = parseOrNull(leaf);
  if (typeof leafParsed === 'string') return { result: reject('untrusted_chain', `peer certificate is malformed: ${leafParsed}`) };

  // 1. RFC 5280 path: leaf -> presented intermediates -> a bundle CA. Signatures, names, CA flags.
  const path: ParsedCertificate[] = [leafParsed];
  const pathCerts: X509Certificate[] = [leaf];
  let current = leaf;
  const unused = chain.slice(1);
  let anchored = false;
  for (let depth = 0; depth < MAX_CHAIN_DEPTH && !anchored; depth++) {
    const anchor = bundle.find((ca) => ca.ca && current.checkIssued(ca) && current.verify(publicKeyOf(ca)));
    if (anchor) {
      const parsedAnchor = parseOrNull(anchor);
      if (typeof parsedAnchor !== 'string') path.push(parsedAnchor);
      pathCerts.push(anchor);
      anchored = true;
      break;
    }
    const index = unused.findIndex((c) => current.checkIssued(c) && current.verify(c.publicKey));
    if (index === -1) break;
    const issuer = unused.splice(index, 1)[0]!;
    const parsedIssuer = parseOrNull(issuer);
    if (typeof parsedIssuer === 'string' || !isSigningCa(parsedIssuer)) {
      return { result: reject('untrusted_chain', 'an intermediate in the peer chain is not a signing CA') };
    }
    path.push(parsedIssuer);
    pathCerts.push(issuer);
    current = issuer;
  }
  if (!anchored) return { result: reject('untrusted_chain', 'peer certificate does not chain to the trust bundle') };
  // RFC 5280 §4.2.1.9: a CA's pathLenConstraint caps the intermediates below it (path[0] is the leaf).
  for (let k = 2; k < path.length; k++) {
    const bc = path[k]!.extensions.get(OID.basicConstraints);
    const limit = bc ? decodeBasicConstraintsSafe(bc.value)?.pathLen : undefined;
    if (limit !== undefined && k - 1 > limit) return { result: reject('untrusted_chain', 'peer chain exceeds a CA pathLenConstraint') };
  }

  // 2. Validity of every certificate on the path (the leaf gets its own precise message).
  if (nowMs < leafParsed.notBeforeMs) return { result: reject('not_yet_valid', `peer certificate is valid from ${isoOf(leafParsed.notBeforeMs)}`) };
  if (nowMs > leafParsed.notAfterMs) return { result: reject('expired', `peer certificate expired at ${isoOf(leafParsed.notAfterMs)}`) };
  let from = -Infinity;
  let to = Infinity;
  for (const c of path) {
    if (nowMs < c.notBeforeMs) return { result: reject('not_yet_valid', `a CA in the peer chain is valid from ${isoOf(c.notBeforeMs)}`) };
    if (nowMs > c.notAfterMs) return { result: reject('expired', `a CA in the peer chain expired at ${isoOf(c.notAfterMs)}`) };
    from = Math.max(from, c.notBeforeMs);
    to = Math.min(to, c.notAfterMs);
  }
  const window = { from, to };

  // 3. Revocation (RFC 5280 §6.3): the leaf and each intermediate against the CRLs of their issuer.
  if (revocation && revocation.size > 0) {
    for (let k = 0; k + 1 < pathCerts.length; k++) {
      const issuer = pathCerts[k + 1]!;
      if (revocation.isRevoked(pathCerts[k]!, path[k]!.issuerDer, issuer, publicKeyOf(issuer))) {
        const what = k === 0 ? 'peer certificate' : 'an intermediate CA in the peer chain';
        return { result: reject('revoked', `${what} (serial ${pathCerts[k]!.serialNumber}) is revoked by a CRL of its issuer`), window };
      }
    }
  }

  try {
    return { result: checkLeafProfile(leaf, leafParsed, trustDomains, role), window };
  } catch (err) {
    // A malformed extension is as good as a missing one: refuse, never skip.
    return { result: reject('untrusted_chain', `peer certificate has a malformed extension: ${(err as Error).message}`) };
  }
}

/** The X509-SVID leaf rules (SPIFFE X509-SVID §4, §5) and the identity itself. */
function checkLeafProfile(leaf: X509Certificate, parsed: ParsedCertificate, trustDomains: readonly string[], role: 'client' | 'server'): PeerVerification {
  // RFC 5280 §4.2: a critical extension we do not understand makes the certificate unusable.
  for (const [oid, ext] of parsed.extensions) {
    if (ext.critical && !LEAF_CRITICAL_OK.has(oid)) return reject('untrusted_chain', `peer certificate has an unsupported critical extension ${oid}`);
  }
  const bc = parsed.extensions.get(OID.basicConstraints);
  if (leaf.ca || (bc && decodeBasicConstraints(bc.value).ca)) return reject('leaf_is_ca', 'peer certificate is a CA certificate (basicConstraints cA=true)');

  const ku = parsed.extensions.get(OID.keyUsage);
  if (!ku) return reject('bad_key_usage', 'peer certificate has no keyUsage extension');
  if (!ku.critical) return reject('bad_key_usage', 'peer certificate keyUsage extension is not critical');
  const usage = decodeKeyUsage(ku.value);
  if (!usage.has(KEY_USAGE_BITS.digitalSignature)) return reject('bad_key_usage', 'peer certificate keyUsage lacks digitalSignature');
  if (usage.has(KEY_USAGE_BITS.keyCertSign) || usage.has(KEY_USAGE_BITS.cRLSign)) return reject('bad_key_usage', 'peer certificate keyUsage has keyCertSign or cRLSign');
  const eku = parsed.extensions.get(OID.extKeyUsage);
  if (eku) {
    const wanted = role === 'client' ? OID.clientAuth : OID.serverAuth;
    if (!decodeExtKeyUsage(eku.value).includes(wanted)) return reject('bad_key_usage', `peer certificate extKeyUsage lacks ${role === 'client' ? 'clientAuth' : 'serverAuth'}`);
  }

  const sanExt = parsed.extensions.get(OID.subjectAltName);
  const san = sanExt ? decodeSubjectAltNames(sanExt.value) : undefined;
  const uriCount = san?.uris.length ?? 0;
  if (!san || uriCount !== 1) return reject('not_one_uri_san', `peer certificate has ${uriCount} URI SANs; an X509-SVID has exactly one`);
  const uri = san.uris[0]!;
  if (!san.uriBytesAscii) return reject('bad_spiffe_id', 'URI SAN is not ASCII');
  const parsedId = parseSpiffeId(uri);
  if (!parsedId.ok) return reject('bad_spiffe_id', `URI SAN ${JSON.stringify(uri.slice(0, 256))} is not a SPIFFE workload ID: ${parsedId.error}`);
  if (!trustDomains.includes(parsedId.id.trustDomain)) {
    return reject('trust_domain_rejected', `trust domain ${parsedId.id.trustDomain} is not accepted`);
  }
  const peer: PeerIdentity = Object.freeze(toPeerIdentity(parsedId.id));
  return Object.freeze({ ok: true, peer });
}
