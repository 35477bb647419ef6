// Owns certificate revocation lists: parsing X.509 CRLs (PEM or DER), checking their signatures against
// the issuing CA, and answering "is this certificate revoked?" per handshake. Follows RFC 5280 §5.

import { verify as verifySignature, type KeyObject, type X509Certificate } from 'node:crypto';
import { children, decodeOid, decodeTime, DerError, readTlv, type Tlv } from './der.js';

export class CrlParseError extends Error {}

export interface ParsedCrl {
  /** DER of the issuer Name, compared byte for byte with the issuing CA's subject. */
  issuerDer: Buffer;
  thisUpdateMs: number;
  nextUpdateMs: number | undefined;
  /** Serial numbers of revoked certificates, upper-case hex without leading zeros (X509Certificate form). */
  revoked: Set<string>;
  /** The signed part and its signature, checked against the issuer's key before the list is trusted. */
  tbsDer: Buffer;
  signatureAlgorithm: string;
  signature: Buffer;
}

const PEM_BLOCK = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/g;

/** Digest per signature algorithm OID (RFC 4055, RFC 5758, RFC 8410); null = the key type decides. */
const DIGESTS: Record<string, string | null> = {
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.3.101.112': null, // Ed25519
};

/** Serial as X509Certificate.serialNumber writes it: upper-case hex, no leading zero bytes. */
export function normalizeSerial(hex: string): string {
  const upper = hex.toUpperCase().replace(/^(?:00)+(?=[0-9A-F])/, '');
  return upper === '' ? '0' : upper;
}

/** One file's CRLs: PEM text with one or more `X509 CRL` blocks, or a single DER CRL. */
export function parseCrlFile(bytes: Buffer): ParsedCrl[] {
  const text = bytes.toString('latin1');
  if (text.includes('-----BEGIN')) {
    const out: ParsedCrl[] = [];
    for (const m of text.matchAll(PEM_BLOCK)) out.push(parseCrlDer(Buffer.from((m[1] as string).replace(/\s+/g, ''), 'base64')));
    if (out.length === 0) throw new CrlParseError('no "-----BEGIN X509 CRL-----" block in the PEM file');
    return out;
  }
  return [parseCrlDer(bytes)];
}

export function parseCrlDer(der: Buffer): ParsedCrl {
  try {
    const top = readTlv(der, 0);
    if (top.tag !== 0x30 || top.next !== der.length) throw new CrlParseError('not a single DER CertificateList');
    const [tbs, algId, sig] = children(der, top);
    if (!tbs || tbs.tag !== 0x30 || !algId || algId.tag !== 0x30 || !sig || sig.tag !== 0x03) throw new CrlParseError('malformed CertificateList');
    const fields = children(der, tbs);
    let i = 0;
    if (fields[0]?.tag === 0x02) i++; // version v2
    const take = (): Tlv => {
      const f = fields[i++];
      if (!f) throw new CrlParseError('truncated tbsCertList');
      return f;
    };
    take(); // signature AlgorithmIdentifier (repeated outside, where it is used)
    const issuer = take();
    if (issuer.tag !== 0x30) throw new CrlParseError('malformed issuer');
    const thisUpdate = take();
    let nextUpdateMs: number | undefined;
    const revoked = new Set<string>();
    for (; i < fields.length; i++) {
      const f = fields[i]!;
      if ((f.tag === 0x17 || f.tag === 0x18) && nextUpdateMs === undefined && revoked.size === 0) { nextUpdateMs = decodeTime(der, f); continue; }
      if (f.tag === 0x30) {
        for (const entry of children(der, f)) {
          const [serial] = children(der, entry);
          if (!serial || serial.tag !== 0x02) throw new CrlParseError('malformed revoked entry');
          revoked.add(normalizeSerial(der.subarray(serial.start, serial.end).toString('hex')));
        }
      }
      // [0] crlExtensions: nothing in them changes which serials are revoked for a full CRL.
    }
    const [algOid] = children(der, algId);
    if (!algOid) throw new CrlParseError('malformed signature algorithm');
    const bits = der.subarray(sig.start, sig.end);
    if (bits[0] !== 0) throw new CrlParseError('signature has unused bits');
    return {
      issuerDer: Buffer.from(der.subarray(issuer.offset, issuer.end)),
      thisUpdateMs: decodeTime(der, thisUpdate),
      nextUpdateMs,
      revoked,
      tbsDer: Buffer.from(der.subarray(tbs.offset, tbs.end)),
      signatureAlgorithm: decodeOid(der, algOid),
      signature: Buffer.from(bits.subarray(1)),
    };
  } catch (err) {
    if (err instanceof CrlParseError) throw err;
    if (err instanceof DerError) throw new CrlParseError(`malformed DER: ${err.message}`);
    throw err;
  }
}

/** True when `crl` is signed by the holder of `issuerKey`. */
export function crlSignedBy(crl: ParsedCrl, issuerKey: KeyObject): boolean {
  const digest = DIGESTS[crl.signatureAlgorithm];
  if (digest === undefined) return false;
  try {
    return verifySignature(digest, crl.tbsDer, issuerKey, crl.signature);
  } catch {
    return false;
  }
}

/**
 * The CRLs in force, immutable; a reload builds a new one. `generation` changes with every swap so
 * cached peer verifications never outlive the lists they were checked against.
 */
export class RevocationList {
  private readonly byIssuer = new Map<string, ParsedCrl[]>();
  /** (CRL, issuer certificate) pairs whose signature was checked, so each is verified once. */
  private readonly verified = new WeakMap<ParsedCrl, Map<string, boolean>>();

  constructor(readonly crls: readonly ParsedCrl[], readonly generation: number) {
    for (const crl of crls) {
      const key = crl.issuerDer.toString('base64');
      const list = this.byIssuer.get(key) ?? [];
      list.push(crl);
      this.byIssuer.set(key, list);
    }
  }

  static readonly EMPTY = new RevocationList([], 0);

  get size(): number {
    return this.crls.length;
  }

  /**
   * Whether `cert` (whose issuer Name DER is `issuerDer`) is revoked by a CRL that `issuer` signed.
   * A CRL naming the issuer but not verifying with its key is ignored (it is not that CA's list).
   */
  isRevoked(cert: X509Certificate, issuerDer: Buffer, issuer: X509Certificate, issuerKey: KeyObject): boolean {
    const candidates = this.byIssuer.get(issuerDer.toString('base64'));
    if (!candidates) return false;
    const serial = normalizeSerial(cert.serialNumber);
    for (const crl of candidates) {
      if (!crl.revoked.has(serial)) continue;
      let checks = this.verified.get(crl);
      if (!checks) {
        checks = new Map();
        this.verified.set(crl, checks);
      }
      let ok = checks.get(issuer.fingerprint256);
      if (ok === undefined) {
        ok = crlSignedBy(crl, issuerKey);
        checks.set(issuer.fingerprint256, ok);
      }
      if (ok) return true;
    }
    return false;
  }
}
