import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { readTlv, der, DerError, decodeTime } from './der.js';
import { buildCertificate, generateKeyPair } from './x509-build.js';
import { decodeKeyUsage, decodeSubjectAltNames, KEY_USAGE_BITS, OID, parseCertificate } from './x509-parse.js';
import { PeerVerifier } from './peer.js';
import { sharedTestPki, TEST_IDS } from '../../test/helpers/pki.js';

test('DER reader refuses indefinite, non-minimal and overrunning lengths', () => {
  assert.throws(() => readTlv(Buffer.from('3080', 'hex'), 0), DerError);
  assert.throws(() => readTlv(Buffer.from('30810100', 'hex'), 0), /non-minimal/);
  assert.throws(() => readTlv(Buffer.from('3005020100', 'hex'), 0), /overruns/);
  assert.throws(() => readTlv(Buffer.from('1f01', 'hex'), 0), /high tag/);
  const long = der.octetString(Buffer.alloc(300));
  const t = readTlv(long, 0);
  assert.equal(t.end - t.start, 300);
});

test('times: UTCTime before 2050, GeneralizedTime from 2050, both round-trip', () => {
  for (const iso of ['1999-12-31T23:59:59Z', '2049-06-01T00:00:00Z', '2050-01-01T00:00:00Z', '2101-03-04T05:06:07Z']) {
    const encoded = der.time(new Date(iso));
    assert.equal(encoded[0], Date.parse(iso) < Date.parse('2050-01-01T00:00:00Z') ? 0x17 : 0x18);
    assert.equal(decodeTime(encoded, readTlv(encoded, 0)), Date.parse(iso));
  }
});

test('built certificates parse back with the requested extensions', () => {
  const keys = generateKeyPair('ec');
  const cert = buildCertificate({
    publicKey: keys.publicKey,
    signingKey: keys.privateKey,
    notBefore: new Date('2026-01-01T00:00:00Z'),
    notAfter: new Date('2060-01-01T00:00:00Z'),
    uris: ['spiffe://td/x'],
    dns: ['a.example'],
    ips: ['127.0.0.1', '::1', 'fe80::1:2'],
    isCA: false,
    keyUsage: ['digitalSignature', 'keyEncipherment'],
  });
  assert.equal(cert.subjectAltName, 'URI:spiffe://td/x, DNS:a.example, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:FE80:0:0:0:0:0:1:2');
  const parsed = parseCertificate(cert.raw);
  assert.equal(parsed.notAfterMs, Date.parse('2060-01-01T00:00:00Z'));
  const san = decodeSubjectAltNames(parsed.extensions.get(OID.subjectAltName)!.value);
  assert.deepEqual(san.uris, ['spiffe://td/x']);
  assert.deepEqual(san.ips, ['127.0.0.1', '0:0:0:0:0:0:0:1', 'fe80:0:0:0:0:0:1:2']);
  const ku = parsed.extensions.get(OID.keyUsage)!;
  assert.equal(ku.critical, true);
  assert.deepEqual([...decodeKeyUsage(ku.value)].sort(), [KEY_USAGE_BITS.digitalSignature, KEY_USAGE_BITS.keyEncipherment]);
});

test('property: a corrupted SVID never throws and is never accepted as someone else', () => {
  const { pki, svids } = sharedTestPki();
  const original = svids.frontend.cert.raw;
  const bundle = [pki.caCert];
  const verifier = new PeerVerifier({ maxEntries: 16 });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: original.length - 1 }), fc.integer({ min: 1, max: 255 }), (index, xor) => {
      const mutated = Buffer.from(original);
      mutated[index]! ^= xor;
      const r = verifier.verify([mutated], bundle, { now: Date.now(), trustDomains: ['cluster.local'] });
      if (r.ok) assert.equal(r.peer.spiffeId, TEST_IDS.frontend);
    }),
    { numRuns: 300 },
  );
});
