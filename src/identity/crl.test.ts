import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { createTestPki } from '../../test/helpers/pki.js';
import { makeCrl, opensslAvailable } from '../../test/helpers/crl.js';
import { CrlParseError, parseCrlFile, RevocationList } from './crl.js';
import { verifyPeerCertificate } from './peer.js';

const skip = opensslAvailable() ? false : 'openssl is not installed';
const opts = { now: Date.now(), trustDomains: ['cluster.local'], role: 'client' as const };

test('parses openssl CRLs in PEM and DER: issuer, serials, signature', { skip }, () => {
  const pki = createTestPki();
  const a = pki.issue({ spiffeId: 'spiffe://cluster.local/ns/foo/sa/a' });
  const b = pki.issue({ spiffeId: 'spiffe://cluster.local/ns/foo/sa/b' });
  for (const format of ['pem', 'der'] as const) {
    const [crl] = parseCrlFile(makeCrl(pki, [a.certPem], format));
    assert.ok(crl);
    assert.ok(crl.revoked.has(a.cert.serialNumber.toUpperCase().replace(/^(?:00)+(?=.)/, '')));
    assert.equal(crl.revoked.size, 1);
    assert.ok(crl.nextUpdateMs !== undefined && crl.nextUpdateMs > Date.now());
    const list = new RevocationList([crl], 1);
    const ca = new X509Certificate(pki.caCertPem);
    assert.equal(verifyPeerCertificate([a.cert], [ca], { ...opts, revocation: list }).ok, false);
    assert.equal(verifyPeerCertificate([b.cert], [ca], { ...opts, revocation: list }).ok, true);
  }
  // Several CRLs in one PEM file.
  const two = Buffer.concat([makeCrl(pki, [a.certPem]), makeCrl(pki, [b.certPem])]);
  assert.equal(parseCrlFile(two).length, 2);
});

test('revocation: leaf and intermediates are checked; a CRL from another CA with the same name is ignored', { skip }, () => {
  const pki = createTestPki();
  const ca = new X509Certificate(pki.caCertPem);
  const inter = pki.intermediate();
  const viaInter = inter.issue({ spiffeId: 'spiffe://cluster.local/ns/foo/sa/c' });
  const chain = viaInter.chainPem.split(/(?=-----BEGIN CERTIFICATE-----)/).map((p) => new X509Certificate(p));
  const fresh = new RevocationList([], 1);
  assert.equal(verifyPeerCertificate(chain, [ca], { ...opts, revocation: fresh }).ok, true);
  // The root revokes the intermediate: every leaf below it is refused.
  const rootRevokesInter = new RevocationList(parseCrlFile(makeCrl(pki, [inter.caCertPem])), 2);
  const r = verifyPeerCertificate(chain, [ca], { ...opts, revocation: rootRevokesInter });
  assert.equal(r.ok, false);
  assert.equal(!r.ok && r.reason, 'revoked');
  assert.match(!r.ok ? r.detail : '', /intermediate/);
  // The intermediate revokes the leaf.
  const interRevokesLeaf = new RevocationList(parseCrlFile(makeCrl(inter, [viaInter.certPem])), 3);
  const r2 = verifyPeerCertificate(chain, [ca], { ...opts, revocation: interRevokesLeaf });
  assert.equal(!r2.ok && r2.reason, 'revoked');
  // A CRL signed by a different key that names the same issuer is not that CA's list.
  const impostor = { caCertPem: pki.caCertPem, caKeyPem: pki.otherCa().caKeyPem };
  const leaf = pki.issue({ spiffeId: 'spiffe://cluster.local/ns/foo/sa/d' });
  let forged: Buffer | undefined;
  try { forged = makeCrl(impostor, [leaf.certPem]); } catch { forged = undefined; }
  if (forged) assert.equal(verifyPeerCertificate([leaf.cert], [ca], { ...opts, revocation: new RevocationList(parseCrlFile(forged), 4) }).ok, true);
});

test('malformed CRL files are refused with a reason', () => {
  assert.throws(() => parseCrlFile(Buffer.from('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')), CrlParseError);
  assert.throws(() => parseCrlFile(Buffer.from([0x30, 0x03, 0x02, 0x01, 0x00])), CrlParseError);
  assert.throws(() => parseCrlFile(Buffer.from('not a crl')), CrlParseError);
});
