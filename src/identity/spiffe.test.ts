import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSpiffeId, toPeerIdentity } from './spiffe.js';

// Mirrors go-spiffe spiffeid.FromString invalid forms (plus the workload-ID requirement of X509-SVID).
const invalid: Array<[string, RegExp]> = [
  ['', /empty/],
  ['spiffe://', /trust domain is missing/],
  ['spiffe:///ns/foo', /trust domain is missing/],
  ['spiffe:/td/path', /scheme/],
  ['spiffe:td/path', /scheme/],
  ['td/path', /scheme/],
  ['https://cluster.local/ns/foo/sa/bar', /scheme/],
  ['SPIFFE://cluster.local/ns/foo/sa/bar', /lowercase/],
  ['Spiffe://cluster.local/ns/foo', /lowercase/],
  ['spiffe://Cluster.Local/ns/foo', /lowercase/],
  ['spiffe://cluster.local:8080/ns/foo', /port/],
  ['spiffe://user@cluster.local/ns/foo', /userinfo/],
  ['spiffe://user:pw@cluster.local/ns/foo', /port|userinfo/],
  ['spiffe://clu$ter.local/ns/foo', /invalid character/],
  ['spiffe://clüster.local/ns/foo', /invalid character/],
  ['spiffe://cluster.local/', /end with/],
  ['spiffe://cluster.local/ns/foo/', /end with/],
  ['spiffe://cluster.local//ns/foo', /empty segment/],
  ['spiffe://cluster.local/ns//foo', /empty segment/],
  ['spiffe://cluster.local/./ns', /'\.'/],
  ['spiffe://cluster.local/ns/..', /'\.\.'/],
  ['spiffe://cluster.local/ns/../sa', /'\.\.'/],
  ['spiffe://cluster.local/ns/f%6Fo', /percent/],
  ['spiffe://cluster.local/ns/foo?x=1', /query/],
  ['spiffe://cluster.local/ns/foo#frag', /fragment/],
  ['spiffe://cluster.local?x', /invalid character/],
  ['spiffe://cluster.local#x', /invalid character/],
  ['spiffe://cluster.local/ns/fo o', /invalid character/],
  ['spiffe://cluster.local/ns/föo', /invalid character/],
  ['spiffe://cluster.local/ns/foo\u0000', /invalid character/],
  ['spiffe://cluster.local/ns/foo, URI:spiffe://cluster.local/ns/foo/sa/frontend', /invalid character/],
  ['spiffe://cluster.local/ns/a\\b', /invalid character/],
  ['spiffe://cluster.local', /no path/],
  [`spiffe://cluster.local/${'a'.repeat(2040)}`, /longer than 2048/],
  [`spiffe://${'a'.repeat(256)}/x`, /longer than 255/],
];

for (const [text, message] of invalid) {
  test(`rejects ${JSON.stringify(text.slice(0, 60))}`, () => {
    const r = parseSpiffeId(text);
    assert.equal(r.ok, false);
    if (!r.ok) assert.match(r.error, message);
  });
}

const valid = [
  'spiffe://cluster.local/ns/foo/sa/bar',
  'spiffe://a-b_c.0/P_a-t.h/...',
  'spiffe://td/x',
  'spiffe://td/.x/x./A.B-C_D',
  `spiffe://cluster.local/${'a'.repeat(2048 - 'spiffe://cluster.local/'.length)}`,
];
for (const text of valid) {
  test(`accepts ${text.slice(0, 60)}`, () => {
    const r = parseSpiffeId(text);
    assert.ok(r.ok, r.ok ? '' : r.error);
    if (r.ok) assert.equal(r.id.text, text);
  });
}

test('trust-domain-only IDs only when asked', () => {
  const r = parseSpiffeId('spiffe://cluster.local', { allowTrustDomainOnly: true });
  assert.deepEqual(r, { ok: true, id: { trustDomain: 'cluster.local', path: '', text: 'spiffe://cluster.local' } });
});

test('toPeerIdentity derives namespace and service account only from /ns/<ns>/sa/<sa>', () => {
  const r = parseSpiffeId('spiffe://cluster.local/ns/foo/sa/bar');
  assert.ok(r.ok);
  assert.deepEqual(toPeerIdentity(r.id), {
    spiffeId: 'spiffe://cluster.local/ns/foo/sa/bar',
    principal: 'cluster.local/ns/foo/sa/bar',
    trustDomain: 'cluster.local',
    namespace: 'foo',
    serviceAccount: 'bar',
  });
  for (const text of ['spiffe://td/ns/foo', 'spiffe://td/ns/foo/sa/bar/extra', 'spiffe://td/x/foo/sa/bar', 'spiffe://td/ns/foo/xx/bar']) {
    const p = parseSpiffeId(text);
    assert.ok(p.ok);
    const peer = toPeerIdentity(p.id);
    assert.equal(peer.namespace, undefined, text);
    assert.equal(peer.serviceAccount, undefined, text);
  }
});
