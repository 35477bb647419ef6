// Owns minting X.509 certificates (CAs and X509-SVIDs) from node:crypto keys: DER built here, signed
// by node:crypto. Follows RFC 5280 and the SPIFFE X509-SVID profile (standards/X509-SVID.md).

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';
import { der } from './der.js';
import { decodeSubjectKeyIdentifier, KEY_USAGE_BITS, OID, parseCertificate, subjectPublicKeyBits, type KeyUsageName } from './x509-parse.js';

export type KeyType = 'ec' | 'rsa';
export type ExtKeyUsageName = 'serverAuth' | 'clientAuth' | 'anyExtendedKeyUsage';

export interface CertificateSpec {
  /** Public key of the certificate being made. */
  publicKey: KeyObject;
  /** Key that signs (the issuer's, or the subject's own for a self-signed CA). */
  signingKey: KeyObject;
  /** The issuing CA certificate; absent for a self-signed certificate. */
  issuer?: X509Certificate;
  subject?: { commonName?: string; organization?: string };
  notBefore: Date;
  notAfter: Date;
  /** URI SANs, written byte-for-byte as given (tests use this to craft hostile values). */
  uris?: string[];
  dns?: string[];
  ips?: string[];
  /** basicConstraints: omitted when undefined. */
  isCA?: boolean;
  pathLen?: number;
  /** keyUsage bits; null omits the extension. */
  keyUsage?: KeyUsageName[] | null;
  keyUsageCritical?: boolean;
  /** extKeyUsage; null or empty omits the extension. */
  extKeyUsage?: ExtKeyUsageName[] | null;
  /** Further extensions, DER value as given (tests use this for unknown critical extensions). */
  extraExtensions?: { oid: string; critical: boolean; value: Buffer }[];
}

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function generateKeyPair(type: KeyType = 'ec'): KeyPair {
  return type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

const EKU_OIDS: Record<ExtKeyUsageName, string> = {
  serverAuth: OID.serverAuth,
  clientAuth: OID.clientAuth,
  anyExtendedKeyUsage: OID.anyExtendedKeyUsage,
};

function name(subject: CertificateSpec['subject']): Buffer {
  const rdns: Buffer[] = [];
  if (subject?.organization) rdns.push(der.set(der.sequence(der.oid('2.5.4.10'), der.utf8(subject.organization))));
  if (subject?.commonName) rdns.push(der.set(der.sequence(der.oid('2.5.4.3'), der.utf8(subject.commonName))));
  return der.sequence(...rdns);
}

function extension(oid: string, critical: boolean, value: Buffer): Buffer {
  return critical ? der.sequence(der.oid(oid), der.boolean(true), der.octetString(value)) : der.sequence(der.oid(oid), der.octetString(value));
}

function keyUsageBits(names: KeyUsageName[]): Buffer {
  const bitNumbers = names.map((n) => KEY_USAGE_BITS[n]);
  const highest = Math.max(...bitNumbers);
  const bytes = Buffer.alloc(Math.floor(highest / 8) + 1);
  for (const bit of bitNumbers) bytes[bit >> 3]! |= 0x80 >> (bit & 7);
  const last = bytes[bytes.length - 1]!;
  let unused = 0;
  while (unused < 7 && (last & (1 << unused)) === 0) unused++;
  return der.bitString(bytes, unused);
}

function ipBytes(ip: string): Buffer {
  const family = isIP(ip);
  if (family === 4) return Buffer.from(ip.split('.').map(Number));
  if (family === 6) {
    const [head = '', tail = ''] = ip.includes('::') ? ip.split('::') : [ip, ''];
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    const out = Buffer.alloc(16);
    groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
    return out;
  }
  throw new Error(`not an IP address: ${ip}`);
}

function signatureAlgorithm(key: KeyObject): { algorithm: Buffer; hash: string } {
  if (key.asymmetricKeyType === 'ec') return { algorithm: der.sequence(der.oid('1.2.840.10045.4.3.2')), hash: 'sha256' };
  if (key.asymmetricKeyType === 'rsa') return { algorithm: der.sequence(der.oid('1.2.840.113549.1.1.11'), der.null()), hash: 'sha256' };
  throw new Error(`unsupported signing key type ${String(key.asymmetricKeyType)}`);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits. */
export function keyIdentifier(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha1').update(subjectPublicKeyBits(spki)).digest();
}

export function buildCertificate(spec: CertificateSpec): X509Certificate {
  const spki = spec.publicKey.export({ type: 'spki', format: 'der' });
  const { algorithm, hash } = signatureAlgorithm(spec.signingKey);
  const subjectName = name(spec.subject);
  let issuerName = subjectName;
  let authorityKeyId = keyIdentifier(spec.publicKey);
  if (spec.issuer) {
    const parsed = parseCertificate(spec.issuer.raw);
    issuerName = parsed.subjectDer;
    const ski = parsed.extensions.get(OID.subjectKeyIdentifier);
    authorityKeyId = ski ? decodeSubjectKeyIdentifier(ski.value) : keyIdentifier(spec.issuer.publicKey);
  }

  const extensions: Buffer[] = [];
  if (spec.isCA !== undefined) {
    const fields = [spec.isCA ? der.boolean(true) : Buffer.alloc(0)];
    if (spec.isCA && spec.pathLen !== undefined) fields.push(der.smallInteger(spec.pathLen));
    extensions.push(extension(OID.basicConstraints, true, der.sequence(...fields)));
  }
  if (spec.keyUsage) extensions.push(extension(OID.keyUsage, spec.keyUsageCritical ?? true, keyUsageBits(spec.keyUsage)));
  if (spec.extKeyUsage && spec.extKeyUsage.length > 0) {
    extensions.push(extension(OID.extKeyUsage, false, der.sequence(...spec.extKeyUsage.map((e) => der.oid(EKU_OIDS[e])))));
  }
  extensions.push(extension(OID.subjectKeyIdentifier, false, der.octetString(keyIdentifier(spec.publicKey))));
  extensions.push(extension(OID.authorityKeyIdentifier, false, der.sequence(der.context(0, authorityKeyId, false))));
  for (const e of spec.extraExtensions ?? []) extensions.push(extension(e.oid, e.critical, e.value));
  const altNames = [
    ...(spec.uris ?? []).map((u) => der.context(6, Buffer.from(u, 'latin1'), false)),
    ...(spec.dns ?? []).map((d) => der.context(2, Buffer.from(d, 'latin1'), false)),
    ...(spec.ips ?? []).map((ip) => der.context(7, ipBytes(ip), false)),
  ];
  if (altNames.length > 0) {
    // RFC 5280 §4.2.1.6: SAN is critical when the subject name is empty.
    const emptySubject = !spec.subject?.commonName && !spec.subject?.organization;
    extensions.push(extension(OID.subjectAltName, emptySubject, der.sequence(...altNames)));
  }

  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  serial[0]! |= 0x01; // positive, non-zero, full length
  const tbs = der.sequence(
    der.context(0, der.smallInteger(2), true),
    der.integer(serial),
    algorithm,
    issuerName,
    der.sequence(der.time(spec.notBefore), der.time(spec.notAfter)),
    subjectName,
    spki,
    der.context(3, der.sequence(...extensions), true),
  );
  const signature = sign(hash, tbs, spec.signingKey);
  return new X509Certificate(der.sequence(tbs, algorithm, der.bitString(signature)));
}

export function privateKeyPem(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

export function loadPrivateKey(pem: string): KeyObject {
  return createPrivateKey(pem);
}

export function publicKeyOf(privateKey: KeyObject): KeyObject {
  return createPublicKey(privateKey);
}
