// Test helper: a throwaway in-memory PKI (EC P-256 CA + X509-SVIDs, real certificates) for every
// test that needs mTLS, including the hostile variants of security.md §2.9; `writePkiFiles` puts it on disk.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject, X509Certificate } from 'node:crypto';
import { buildCertificate, generateKeyPair, privateKeyPem, type ExtKeyUsageName, type KeyType } from '../../src/identity/x509-build.js';
import type { KeyUsageName } from '../../src/identity/x509-parse.js';
import type { PeerRejectReason } from '../../src/identity/types.js';

export interface IssueOptions {
  /** Shorthand for `uris: [spiffeId]`. */
  spiffeId?: string;
  /** Exact URI SAN values (overrides spiffeId). */
  uris?: string[];
  dns?: string[];
  ips?: string[];
  notBefore?: Date;
  notAfter?: Date;
  /** basicConstraints cA; leaves default to false. */
  isCA?: boolean;
  /** Default ['digitalSignature'] (['keyCertSign','cRLSign'] when isCA); null omits the extension. */
  keyUsage?: KeyUsageName[] | null;
  keyUsageCritical?: boolean;
  /** Default ['serverAuth','clientAuth']; null omits the extension. */
  extKeyUsage?: ExtKeyUsageName[] | null;
  keyType?: KeyType;
  commonName?: string;
}

export interface IssuedCert {
  /** The leaf alone. */
  certPem: string;
  keyPem: string;
  /** The leaf followed by any intermediates (what a TLS peer presents). */
  chainPem: string;
  cert: X509Certificate;
  key: KeyObject;
}

export interface TestCa {
  trustDomain: string;
  caCertPem: string;
  caKeyPem: string;
  caCert: X509Certificate;
  issue(opts?: IssueOptions): IssuedCert;
  /** An intermediate CA signed by this one; its `issue` returns chains leaf + intermediate. */
  intermediate(): TestCa;
}

export interface TestPki extends TestCa {
  /** A completely separate CA (same trust domain name) for "signed by another CA" cases. */
  otherCa(): TestCa;
}

const HOUR = 3600_000;

function makeCa(trustDomain: string, parent?: { cert: X509Certificate; key: KeyObject; chainPem: string }, label = 'Portcullis test CA'): TestCa {
  const keys = generateKeyPair('ec');
  const now = Date.now();
  const caCert = buildCertificate({
    publicKey: keys.publicKey,
    signingKey: parent?.key ?? keys.privateKey,
    ...(parent ? { issuer: parent.cert } : {}),
    subject: { organization: 'Portcullis tests', commonName: `${label} ${Math.random().toString(36).slice(2, 8)}` },
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 24 * HOUR),
    isCA: true,
    keyUsage: ['keyCertSign', 'cRLSign'],
    uris: [`spiffe://${trustDomain}`],
  });
  const caCertPem = caCert.toString();
  const intermediatesPem = parent ? caCertPem + parent.chainPem : '';
  const ca: TestCa = {
    trustDomain,
    caCertPem,
    caKeyPem: privateKeyPem(keys.privateKey),
    caCert,
    issue(opts: IssueOptions = {}): IssuedCert {
      const leafKeys = generateKeyPair(opts.keyType ?? 'ec');
      const t = Date.now();
      const isCA = opts.isCA ?? false;
      const uris = opts.uris ?? (opts.spiffeId !== undefined ? [opts.spiffeId] : []);
      const cert = buildCertificate({
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        issuer: caCert,
        subject: { organization: 'Portcullis tests', ...(opts.commonName ? { commonName: opts.commonName } : {}) },
        notBefore: opts.notBefore ?? new Date(t - 5 * 60_000),
        notAfter: opts.notAfter ?? new Date(t + HOUR),
        uris,
        dns: opts.dns ?? [],
        ips: opts.ips ?? [],
        isCA,
        keyUsage: opts.keyUsage === undefined ? (isCA ? ['keyCertSign', 'cRLSign', 'digitalSignature'] : ['digitalSignature']) : opts.keyUsage,
        keyUsageCritical: opts.keyUsageCritical ?? true,
        extKeyUsage: opts.extKeyUsage === undefined ? ['serverAuth', 'clientAuth'] : opts.extKeyUsage,
      });
      const certPem = cert.toString();
      return { certPem, keyPem: privateKeyPem(leafKeys.privateKey), chainPem: certPem + intermediatesPem, cert, key: leafKeys.privateKey };
    },
    intermediate(): TestCa {
      return makeCa(trustDomain, { cert: caCert, key: keys.privateKey, chainPem: intermediatesPem }, 'Portcullis test intermediate');
    },
  };
  return ca;
}

export function createTestPki(opts: { trustDomain?: string } = {}): TestPki {
  const trustDomain = opts.trustDomain ?? 'cluster.local';
  const ca = makeCa(trustDomain);
  return { ...ca, otherCa: () => makeCa(trustDomain, undefined, 'Portcullis other CA') };
}

export const TEST_IDS = {
  frontend: 'spiffe://cluster.local/ns/foo/sa/frontend',
  other: 'spiffe://cluster.local/ns/foo/sa/other',
  admin: 'spiffe://cluster.local/ns/foo/sa/admin',
  httpbin: 'spiffe://cluster.local/ns/foo/sa/httpbin',
} as const;

/** Every certificate variant the identity and attack tests use, keyed by a stable name. */
export interface SvidSet {
  frontend: IssuedCert;
  other: IssuedCert;
  admin: IssuedCert;
  /** The sidecar's own server SVID: spiffe://cluster.local/ns/foo/sa/httpbin, DNS localhost, IP 127.0.0.1. */
  server: IssuedCert;
  expired: IssuedCert;
  notYetValid: IssuedCert;
  otherCa: IssuedCert;
  twoUriSans: IssuedCert;
  caAsLeaf: IssuedCert;
  noUriSan: IssuedCert;
  httpsUri: IssuedCert;
  uppercaseScheme: IssuedCert;
  wrongTrustDomain: IssuedCert;
  serverAuthOnly: IssuedCert;
  /** One URI SAN whose value is `spiffe://…/other, URI:spiffe://…/frontend`. */
  sanInjection: IssuedCert;
  /** keyUsage keyCertSign on a cA=false leaf. */
  keyCertSignLeaf: IssuedCert;
  /** Leaf signed by an intermediate of the test CA; chainPem carries the intermediate. */
  viaIntermediate: IssuedCert;
}

/** Every variant of SvidSet a peer must be refused for, with the reason the verifier gives, in a stable order. */
export const REJECTED_SVIDS: ReadonlyArray<readonly [keyof SvidSet, PeerRejectReason]> = [
  ['expired', 'expired'],
  ['notYetValid', 'not_yet_valid'],
  ['otherCa', 'untrusted_chain'],
  ['twoUriSans', 'not_one_uri_san'],
  ['caAsLeaf', 'leaf_is_ca'],
  ['noUriSan', 'not_one_uri_san'],
  ['httpsUri', 'bad_spiffe_id'],
  ['uppercaseScheme', 'bad_spiffe_id'],
  ['wrongTrustDomain', 'trust_domain_rejected'],
  ['serverAuthOnly', 'bad_key_usage'],
  ['sanInjection', 'bad_spiffe_id'],
  ['keyCertSignLeaf', 'bad_key_usage'],
];

export function issueStandardSvids(pki: TestPki): SvidSet {
  const now = Date.now();
  const other = pki.otherCa();
  const frontend = pki.issue({ spiffeId: TEST_IDS.frontend });
  return {
    frontend,
    other: pki.issue({ spiffeId: TEST_IDS.other }),
    admin: pki.issue({ spiffeId: TEST_IDS.admin }),
    server: pki.issue({ spiffeId: TEST_IDS.httpbin, dns: ['localhost'], ips: ['127.0.0.1'] }),
    expired: pki.issue({ spiffeId: TEST_IDS.frontend, notBefore: new Date(now - 2 * HOUR), notAfter: new Date(now - HOUR) }),
    notYetValid: pki.issue({ spiffeId: TEST_IDS.frontend, notBefore: new Date(now + HOUR), notAfter: new Date(now + 2 * HOUR) }),
    otherCa: other.issue({ spiffeId: TEST_IDS.frontend }),
    twoUriSans: pki.issue({ uris: [TEST_IDS.other, TEST_IDS.frontend] }),
    caAsLeaf: pki.issue({ spiffeId: TEST_IDS.frontend, isCA: true }),
    noUriSan: pki.issue({ dns: ['frontend.foo.svc.cluster.local'] }),
    httpsUri: pki.issue({ uris: ['https://cluster.local/ns/foo/sa/frontend'] }),
    uppercaseScheme: pki.issue({ uris: ['SPIFFE://Cluster.Local/ns/foo/sa/frontend'] }),
    wrongTrustDomain: pki.issue({ spiffeId: 'spiffe://evil.example/ns/foo/sa/frontend' }),
    serverAuthOnly: pki.issue({ spiffeId: TEST_IDS.frontend, extKeyUsage: ['serverAuth'] }),
    sanInjection: pki.issue({ uris: [`${TEST_IDS.other}, URI:${TEST_IDS.frontend}`] }),
    keyCertSignLeaf: pki.issue({ spiffeId: TEST_IDS.frontend, keyUsage: ['digitalSignature', 'keyCertSign'] }),
    viaIntermediate: pki.intermediate().issue({ spiffeId: TEST_IDS.frontend }),
  };
}

/** A PKI with the standard variants, created once per process (cheap enough, but tests share it). */
let shared: { pki: TestPki; svids: SvidSet } | undefined;
export function sharedTestPki(): { pki: TestPki; svids: SvidSet } {
  if (!shared) {
    const pki = createTestPki();
    shared = { pki, svids: issueStandardSvids(pki) };
  }
  return shared;
}

/**
 * Writes `ca.crt` (bundle), and for each named cert `<name>.crt` (chain) and `<name>.key` (0600) into
 * `dir`. Returns the paths by name.
 */
export function writePkiFiles(dir: string, pki: { caCertPem: string }, certs: Record<string, IssuedCert>): { bundle: string; files: Record<string, { cert: string; key: string }> } {
  mkdirSync(dir, { recursive: true });
  const bundle = join(dir, 'ca.crt');
  writeFileSync(bundle, pki.caCertPem);
  const files: Record<string, { cert: string; key: string }> = {};
  for (const [name, issued] of Object.entries(certs)) {
    const cert = join(dir, `${name}.crt`);
    const key = join(dir, `${name}.key`);
    writeFileSync(cert, issued.chainPem);
    writeFileSync(key, issued.keyPem, { mode: 0o600 });
    files[name] = { cert, key };
  }
  return { bundle, files };
}
