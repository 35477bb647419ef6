// Owns minting a demo CA and X509-SVIDs as PEM (what `portcullis certs` writes); no file I/O here.
// Follows the SPIFFE X509-SVID profile: one URI SAN, cA=false, critical keyUsage, EKU server+client.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { checkTrustDomain, parseSpiffeId } from './spiffe.js';
import { buildCertificate, generateKeyPair, privateKeyPem, publicKeyOf, type KeyType } from './x509-build.js';
import { decodeSubjectAltNames, OID, parseCertificate } from './x509-parse.js';

export class IssueError extends Error {}

/** Backdating absorbs small clock differences between the issuer and the peers that check the SVID. */
const BACKDATE_MS = 60_000;
const MAX_TTL_MS = 100 * 365 * 24 * 3600_000;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3600_000, d: 86_400_000 };

/** Parses `90s`, `5m`, `24h`, `30d`, `1h30m` (Go-style duration, plus `d`) into milliseconds. */
export function parseTtl(text: string): { ok: true; ms: number } | { ok: false; error: string } {
  const trimmed = text.trim();
  if (!/^(\d+(ms|s|m|h|d))+$/.test(trimmed)) return { ok: false, error: `invalid TTL '${text}': use a number with a unit, e.g. 5m, 24h, 30d, 1h30m` };
  let ms = 0;
  for (const m of trimmed.matchAll(/(\d+)(ms|s|m|h|d)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  if (ms < 1000) return { ok: false, error: `TTL '${text}' is shorter than one second` };
  if (ms > MAX_TTL_MS) return { ok: false, error: `TTL '${text}' is longer than 100 years` };
  return { ok: true, ms };
}

export function checkDnsName(name: string): string | undefined {
  if (name.length === 0 || name.length > 253) return `invalid DNS name '${name}'`;
  const labels = name.split('.');
  for (const [i, label] of labels.entries()) {
    const wildcard = i === 0 && label === '*' && labels.length > 2;
    if (!wildcard && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(label)) return `invalid DNS name '${name}'`;
  }
  return undefined;
}

export interface CaMaterial {
  certPem: string;
  keyPem: string;
}

export function createCa(opts: { trustDomain: string; ttlMs: number; keyType?: KeyType; now: number }): CaMaterial {
  const tdError = checkTrustDomain(opts.trustDomain);
  if (tdError) throw new IssueError(`invalid trust domain '${opts.trustDomain}': ${tdError}`);
  const keys = generateKeyPair(opts.keyType ?? 'ec');
  const cert = buildCertificate({
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    subject: { organization: 'Portcullis demo', commonName: `Portcullis demo CA ${opts.trustDomain}`.slice(0, 64) },
    notBefore: new Date(opts.now - BACKDATE_MS),
    notAfter: new Date(opts.now + opts.ttlMs),
    isCA: true,
    pathLen: 0,
    keyUsage: ['keyCertSign', 'cRLSign'],
    // X509-SVID §3: a signing certificate may carry the trust domain's own ID.
    uris: [`spiffe://${opts.trustDomain}`],
  });
  return { certPem: cert.toString(), keyPem: privateKeyPem(keys.privateKey) };
}

export interface SvidRequest {
  caCertPem: string;
  caKeyPem: string;
  spiffeId: string;
  ttlMs: number;
  dns?: string[];
  ips?: string[];
  keyType?: KeyType;
  now: number;
}

export interface SvidMaterial {
  /** Leaf followed by the issuing CA when that CA is itself an intermediate. */
  certPem: string;
  keyPem: string;
  /** Every CA certificate of the CA file: what peers must trust. */
  bundlePem: string;
  spiffeId: string;
  notAfter: Date;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function readCa(certPem: string, keyPem: string, now: number): { cert: X509Certificate; all: X509Certificate[]; trustDomain: string | undefined; signingKey: ReturnType<typeof createPrivateKey> } {
  const blocks = certPem.match(PEM_CERT) ?? [];
  if (blocks.length === 0) throw new IssueError('CA certificate file holds no PEM certificate');
  let all: X509Certificate[];
  try {
    all = blocks.map((b) => new X509Certificate(b));
  } catch (err) {
    throw new IssueError(`CA certificate is not parseable: ${(err as Error).message}`);
  }
  const cert = all[0]!;
  let signingKey;
  try {
    signingKey = createPrivateKey(keyPem);
  } catch (err) {
    throw new IssueError(`CA key is not parseable: ${(err as Error).message}`);
  }
  if (!cert.checkPrivateKey(signingKey)) throw new IssueError('CA key does not match the CA certificate');
  if (!cert.ca) throw new IssueError('CA certificate is not a CA (basicConstraints cA=false)');
  if (Date.parse(cert.validTo) < now) throw new IssueError(`CA certificate expired at ${new Date(cert.validTo).toISOString()}`);
  const san = parseCertificate(cert.raw).extensions.get(OID.subjectAltName);
  const caUris = san ? decodeSubjectAltNames(san.value).uris : [];
  const caId = caUris.length === 1 ? parseSpiffeId(caUris[0]!, { allowTrustDomainOnly: true }) : undefined;
  return { cert, all, trustDomain: caId?.ok ? caId.id.trustDomain : undefined, signingKey };
}

export function issueSvid(req: SvidRequest): SvidMaterial {
  const id = parseSpiffeId(req.spiffeId);
  if (!id.ok) throw new IssueError(`invalid SPIFFE ID '${req.spiffeId}': ${id.error}`);
  const ca = readCa(req.caCertPem, req.caKeyPem, req.now);
  if (ca.trustDomain !== undefined && ca.trustDomain !== id.id.trustDomain) {
    throw new IssueError(`SPIFFE ID trust domain '${id.id.trustDomain}' differs from the CA's trust domain '${ca.trustDomain}'`);
  }
  const notAfter = new Date(req.now + req.ttlMs);
  if (notAfter.getTime() > Date.parse(ca.cert.validTo)) {
    throw new IssueError(`an SVID valid until ${notAfter.toISOString()} would outlive its CA (valid until ${new Date(ca.cert.validTo).toISOString()}); use a shorter --ttl`);
  }
  for (const name of req.dns ?? []) {
    const err = checkDnsName(name);
    if (err) throw new IssueError(err);
  }
  for (const ip of req.ips ?? []) if (isIP(ip) === 0) throw new IssueError(`invalid IP address '${ip}'`);

  const keyType = req.keyType ?? 'ec';
  const keys = generateKeyPair(keyType);
  const leaf = buildCertificate({
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    issuer: ca.cert,
    subject: { organization: 'Portcullis demo' },
    notBefore: new Date(req.now - BACKDATE_MS),
    notAfter,
    uris: [id.id.text],
    dns: req.dns ?? [],
    ips: req.ips ?? [],
    isCA: false,
    keyUsage: keyType === 'rsa' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'],
    keyUsageCritical: true,
    extKeyUsage: ['serverAuth', 'clientAuth'],
  });
  // Sanity: the SVID must verify under its own CA before anything is written.
  if (!leaf.checkIssued(ca.cert) || !leaf.verify(publicKeyOf(ca.signingKey))) throw new IssueError('internal error: issued certificate does not verify');
  const selfSigned = ca.cert.checkIssued(ca.cert);
  const certPem = leaf.toString() + (selfSigned ? '' : ca.cert.toString());
  const bundlePem = ca.all.filter((c) => c.ca && c.checkIssued(c)).map((c) => c.toString()).join('') || ca.all.map((c) => c.toString()).join('');
  return { certPem, keyPem: privateKeyPem(keys.privateKey), bundlePem, spiffeId: id.id.text, notAfter };
}

/** The SPIFFE ID and SAN names of an existing SVID (for `--renew`). */
export function describeSvid(certPem: string): { spiffeId: string; dns: string[]; ips: string[]; lifetimeMs: number } {
  const first = (certPem.match(PEM_CERT) ?? [])[0];
  if (!first) throw new IssueError('existing SVID file holds no PEM certificate');
  const cert = new X509Certificate(first);
  const parsed = parseCertificate(cert.raw);
  const san = parsed.extensions.get(OID.subjectAltName);
  const names = san ? decodeSubjectAltNames(san.value) : { uris: [], dns: [], ips: [] };
  if (names.uris.length !== 1) throw new IssueError(`existing SVID has ${names.uris.length} URI SANs; cannot renew it`);
  return { spiffeId: names.uris[0]!, dns: names.dns, ips: names.ips, lifetimeMs: parsed.notAfterMs - parsed.notBeforeMs - BACKDATE_MS };
}
