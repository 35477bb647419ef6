// Owns reading the X.509 fields identity decisions depend on, straight from the certificate DER
// (RFC 5280 §4.1/§4.2); never from Node's flattened `subjectaltname` string (Node CVE-2021-44532).

import { children, decodeOid, decodeTime, DerError, readTlv, type Tlv } from './der.js';

export const OID = {
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  anyExtendedKeyUsage: '2.5.29.37.0',
} as const;

export interface Extension {
  critical: boolean;
  /** The extnValue OCTET STRING contents. */
  value: Buffer;
}

export interface ParsedCertificate {
  /** Raw DER of the subject Name (used as the issuer of certificates this one signs). */
  subjectDer: Buffer;
  issuerDer: Buffer;
  notBeforeMs: number;
  notAfterMs: number;
  /** Raw DER of SubjectPublicKeyInfo. */
  spkiDer: Buffer;
  extensions: Map<string, Extension>;
}

export interface SubjectAltNames {
  /** Each URI SAN as its raw IA5String text (byte-for-byte latin1; see `uriBytesAscii`). */
  uris: string[];
  /** False when some URI SAN carries a byte outside 7-bit ASCII (not a valid IA5String). */
  uriBytesAscii: boolean;
  dns: string[];
  ips: string[];
  /** rfc822Name, directoryName, otherName, registeredID, ... (counted, not used). */
  otherCount: number;
}

export interface BasicConstraints {
  ca: boolean;
  pathLen: number | undefined;
}

export const KEY_USAGE_BITS = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
} as const;
export type KeyUsageName = keyof typeof KEY_USAGE_BITS;

export { DerError as CertificateParseError };

/** Throws `DerError` on anything that is not a well-formed v3 certificate with unique extensions. */
export function parseCertificate(der: Uint8Array): ParsedCertificate {
  const cert = readTlv(der, 0);
  if (cert.tag !== 0x30 || cert.next !== der.length) throw new DerError('not a single certificate');
  const [tbs] = children(der, cert);
  if (!tbs || tbs.tag !== 0x30) throw new DerError('missing tbsCertificate');
  const fields = children(der, tbs);
  let i = 0;
  if (fields[0]?.tag === 0xa0) i++; // version
  const take = (): Tlv => {
    const f = fields[i++];
    if (!f) throw new DerError('truncated tbsCertificate');
    return f;
  };
  take(); // serialNumber
  take(); // signature AlgorithmIdentifier
  const issuer = take();
  const validity = take();
  const subject = take();
  const spki = take();
  if (issuer.tag !== 0x30 || subject.tag !== 0x30 || validity.tag !== 0x30 || spki.tag !== 0x30) throw new DerError('malformed tbsCertificate');
  const [nb, na] = children(der, validity);
  if (!nb || !na) throw new DerError('malformed validity');
  const extensions = new Map<string, Extension>();
  for (; i < fields.length; i++) {
    const f = fields[i]!;
    if (f.tag !== 0xa3) continue; // issuerUniqueID [1] / subjectUniqueID [2]
    const [extSeq] = children(der, f);
    if (!extSeq || extSeq.tag !== 0x30) throw new DerError('malformed extensions');
    for (const ext of children(der, extSeq)) {
      const parts = children(der, ext);
      const oid = decodeOid(der, parts[0] ?? { tag: 0, offset: 0, start: 0, end: 0, next: 0 });
      let critical = false;
      let valueTlv = parts[1];
      if (valueTlv?.tag === 0x01) {
        critical = valueTlv.end - valueTlv.start === 1 && der[valueTlv.start] !== 0;
        valueTlv = parts[2];
      }
      if (!valueTlv || valueTlv.tag !== 0x04) throw new DerError('malformed extension value');
      // RFC 5280 §4.2: an extension appears at most once; two SAN extensions are an identity ambiguity.
      if (extensions.has(oid)) throw new DerError(`duplicate extension ${oid}`);
      extensions.set(oid, { critical, value: Buffer.from(der.subarray(valueTlv.start, valueTlv.end)) });
    }
  }
  const slice = (t: Tlv): Buffer => Buffer.from(der.subarray(t.offset, t.end));
  return {
    subjectDer: slice(subject),
    issuerDer: slice(issuer),
    notBeforeMs: decodeTime(der, nb),
    notAfterMs: decodeTime(der, na),
    spkiDer: slice(spki),
    extensions,
  };
}

export function decodeSubjectAltNames(value: Buffer): SubjectAltNames {
  const seq = readTlv(value, 0);
  if (seq.tag !== 0x30 || seq.next !== value.length) throw new DerError('malformed subjectAltName');
  const out: SubjectAltNames = { uris: [], uriBytesAscii: true, dns: [], ips: [], otherCount: 0 };
  for (const name of children(value, seq)) {
    const bytes = value.subarray(name.start, name.end);
    switch (name.tag) {
      case 0x86: // [6] uniformResourceIdentifier IA5String
        if (bytes.some((b) => b > 0x7f)) out.uriBytesAscii = false;
        out.uris.push(bytes.toString('latin1'));
        break;
      case 0x82: // [2] dNSName
        out.dns.push(bytes.toString('latin1'));
        break;
      case 0x87: // [7] iPAddress
        out.ips.push(formatIp(bytes));
        break;
      default:
        out.otherCount++;
    }
  }
  return out;
}

function formatIp(bytes: Buffer): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
    return groups.join(':');
  }
  return `<${bytes.length}-byte address>`;
}

export function decodeBasicConstraints(value: Buffer): BasicConstraints {
  const seq = readTlv(value, 0);
  if (seq.tag !== 0x30) throw new DerError('malformed basicConstraints');
  let ca = false;
  let pathLen: number | undefined;
  for (const item of children(value, seq)) {
    if (item.tag === 0x01) ca = item.end - item.start === 1 && value[item.start] !== 0;
    else if (item.tag === 0x02) pathLen = item.end - item.start <= 4 ? value.subarray(item.start, item.end).readUIntBE(0, item.end - item.start) : Infinity;
    else throw new DerError('malformed basicConstraints');
  }
  return { ca, pathLen };
}

/** The set of key-usage bit numbers that are on. */
export function decodeKeyUsage(value: Buffer): Set<number> {
  const bits = readTlv(value, 0);
  if (bits.tag !== 0x03 || bits.end === bits.start) throw new DerError('malformed keyUsage');
  const on = new Set<number>();
  for (let i = bits.start + 1; i < bits.end; i++) {
    const byte = value[i]!;
    for (let b = 0; b < 8; b++) if (byte & (0x80 >> b)) on.add((i - bits.start - 1) * 8 + b);
  }
  return on;
}

export function decodeExtKeyUsage(value: Buffer): string[] {
  const seq = readTlv(value, 0);
  if (seq.tag !== 0x30) throw new DerError('malformed extKeyUsage');
  return children(value, seq).map((t) => decodeOid(value, t));
}

export function decodeSubjectKeyIdentifier(value: Buffer): Buffer {
  const octets = readTlv(value, 0);
  if (octets.tag !== 0x04) throw new DerError('malformed subjectKeyIdentifier');
  return Buffer.from(value.subarray(octets.start, octets.end));
}

/** The subjectPublicKey BIT STRING contents (without the unused-bits byte) of an SPKI. */
export function subjectPublicKeyBits(spkiDer: Uint8Array): Buffer {
  const spki = readTlv(spkiDer, 0);
  const [, bits] = children(spkiDer, spki);
  if (!bits || bits.tag !== 0x03) throw new DerError('malformed SubjectPublicKeyInfo');
  return Buffer.from(spkiDer.subarray(bits.start + 1, bits.end));
}
