import { test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { PeerVerifier, verifyPeerCertificate } from './peer.js';
import { REJECTED_SVIDS, sharedTestPki, TEST_IDS, type IssuedCert } from '../../test/helpers/pki.js';

const { pki, svids } = sharedTestPki();
const bundle = [pki.caCert];
const opts = { now: Date.now(), trustDomains: ['cluster.local'] };

function chainOf(c: IssuedCert): X509Certificate[] {
  const pems = c.chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return pems.map((p) => new X509Certificate(p));
}


for (const [name, reason] of REJECTED_SVIDS) {
  test(`rejects ${name} with ${reason}`, () => {
    const r = new PeerVerifier().verify(chainOf(svids[name]), bundle, opts);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.reason, reason, r.detail);
  });
}

test('accepts a good SVID and derives the identity', () => {
  const r = verifyPeerCertificate(chainOf(svids.frontend), bundle, opts);
  assert.ok(r.ok);
  assert.deepEqual(r.peer, {
    spiffeId: TEST_IDS.frontend,
    principal: 'cluster.local/ns/foo/sa/frontend',
    trustDomain: 'cluster.local',
    namespace: 'foo',
    serviceAccount: 'frontend',
  });
});

test('accepts raw DER and a chain through an intermediate; refuses the intermediate alone missing', () => {
  const chain = chainOf(svids.viaIntermediate);
  assert.equal(chain.length, 2);
  const ok = new PeerVerifier().verify(chain.map((c) => c.raw), bundle, opts);
  assert.ok(ok.ok);
  const missing = new PeerVerifier().verify([chain[0]!.raw], bundle, opts);
  assert.equal(missing.ok ? 'ok' : missing.reason, 'untrusted_chain');
});

test('no certificate and garbage DER are refused', () => {
  const v = new PeerVerifier();
  const none = v.verify([], bundle, opts);
  assert.equal(none.ok ? 'ok' : none.reason, 'no_certificate');
  const junk = v.verify([Buffer.from('30030201', 'hex')], bundle, opts);
  assert.equal(junk.ok ? 'ok' : junk.reason, 'untrusted_chain');
});

test('server role requires serverAuth, client role clientAuth', () => {
  const clientOnly = pki.issue({ spiffeId: TEST_IDS.httpbin, extKeyUsage: ['clientAuth'] });
  const v = new PeerVerifier();
  const asServer = v.verify(chainOf(clientOnly), bundle, { ...opts, role: 'server' });
  assert.equal(asServer.ok ? 'ok' : asServer.reason, 'bad_key_usage');
  assert.ok(v.verify(chainOf(svids.serverAuthOnly), bundle, { ...opts, role: 'server' }).ok);
  const noEku = pki.issue({ spiffeId: TEST_IDS.frontend, extKeyUsage: null });
  assert.ok(v.verify(chainOf(noEku), bundle, opts).ok);
});

test('keyUsage must be present, critical, with digitalSignature', () => {
  const v = new PeerVerifier();
  const cases: Array<[IssuedCert, RegExp]> = [
    [pki.issue({ spiffeId: TEST_IDS.frontend, keyUsage: null }), /no keyUsage/],
    [pki.issue({ spiffeId: TEST_IDS.frontend, keyUsageCritical: false }), /not critical/],
    [pki.issue({ spiffeId: TEST_IDS.frontend, keyUsage: ['keyEncipherment'] }), /digitalSignature/],
    [pki.issue({ spiffeId: TEST_IDS.frontend, keyUsage: ['digitalSignature', 'cRLSign'] }), /cRLSign/],
  ];
  for (const [cert, detail] of cases) {
    const r = v.verify(chainOf(cert), bundle, opts);
    assert.equal(r.ok ? 'ok' : r.reason, 'bad_key_usage');
    if (!r.ok) assert.match(r.detail, detail);
  }
});

test('the SAN injection value is never read as two identities', () => {
  const r = new PeerVerifier().verify(chainOf(svids.sanInjection), bundle, opts);
  assert.equal(r.ok, false);
  if (!r.ok) assert.match(r.detail, /URI:spiffe/);
});

test('trust domains are matched exactly', () => {
  const r = new PeerVerifier().verify(chainOf(svids.frontend), bundle, { ...opts, trustDomains: ['local', 'cluster.loca'] });
  assert.equal(r.ok ? 'ok' : r.reason, 'trust_domain_rejected');
});

test('cache: hits for a repeated certificate, re-checks time, separates bundles and options', () => {
  const v = new PeerVerifier({ maxEntries: 2 });
  const chain = chainOf(svids.frontend);
  assert.ok(v.verify(chain, bundle, opts).ok);
  assert.ok(v.verify(chain, bundle, opts).ok);
  assert.equal(v.hits, 1);
  // Past notAfter the cached success must not be served.
  const late = v.verify(chain, bundle, { ...opts, now: svids.frontend.cert.validTo ? Date.parse(svids.frontend.cert.validTo) + 1000 : 0 });
  assert.equal(late.ok ? 'ok' : late.reason, 'expired');
  // Another bundle (e.g. after rotation to an unrelated CA) is a different cache.
  const other = v.verify(chain, [pki.otherCa().caCert], opts);
  assert.equal(other.ok ? 'ok' : other.reason, 'untrusted_chain');
  const td = v.verify(chain, bundle, { ...opts, trustDomains: ['example.org'] });
  assert.equal(td.ok ? 'ok' : td.reason, 'trust_domain_rejected');
  // Bounded: three distinct certs through a 2-entry cache still verify correctly.
  for (const c of [svids.other, svids.admin, svids.frontend]) assert.ok(v.verify(chainOf(c), bundle, opts).ok);
});

test('pathLenConstraint and unknown critical extensions are enforced', async () => {
  const { buildCertificate, generateKeyPair } = await import('./x509-build.js');
  const { der } = await import('./der.js');
  const now = Date.now();
  const window = { notBefore: new Date(now - 60_000), notAfter: new Date(now + 3600_000) };
  const rootKeys = generateKeyPair();
  const root = buildCertificate({ publicKey: rootKeys.publicKey, signingKey: rootKeys.privateKey, subject: { commonName: 'root pathlen 0' }, ...window, isCA: true, pathLen: 0, keyUsage: ['keyCertSign'] });
  const midKeys = generateKeyPair();
  const mid = buildCertificate({ publicKey: midKeys.publicKey, signingKey: rootKeys.privateKey, issuer: root, subject: { commonName: 'mid' }, ...window, isCA: true, keyUsage: ['keyCertSign'] });
  const leafKeys = generateKeyPair();
  const leafSpec = { publicKey: leafKeys.publicKey, signingKey: midKeys.privateKey, issuer: mid, ...window, uris: [TEST_IDS.frontend], isCA: false, keyUsage: ['digitalSignature' as const] };
  const leaf = buildCertificate(leafSpec);
  const tooDeep = new PeerVerifier().verify([leaf, mid], [root], opts);
  assert.equal(tooDeep.ok ? 'ok' : tooDeep.detail, 'peer chain exceeds a CA pathLenConstraint');
  // Directly under the pathLen-0 root is fine.
  const direct = buildCertificate({ ...leafSpec, signingKey: rootKeys.privateKey, issuer: root });
  assert.ok(new PeerVerifier().verify([direct], [root], opts).ok);
  const odd = buildCertificate({ ...leafSpec, signingKey: rootKeys.privateKey, issuer: root, extraExtensions: [{ oid: '1.2.3.4.5', critical: true, value: der.null() }] });
  const r = new PeerVerifier().verify([odd], [root], opts);
  assert.equal(r.ok ? 'ok' : r.reason, 'untrusted_chain');
  const benign = buildCertificate({ ...leafSpec, signingKey: rootKeys.privateKey, issuer: root, extraExtensions: [{ oid: '1.2.3.4.5', critical: false, value: der.null() }] });
  assert.ok(new PeerVerifier().verify([benign], [root], opts).ok);
});

// Real TLS: a client SVID issued by an intermediate, the intermediate sent in the client's chain, only the
// root in the bundle. Each case gets a fresh verifier so no cached result hides how the chain was read.
async function withServerSocket(run: (socket: tls.TLSSocket) => void): Promise<void> {
  const intermediate = pki.intermediate();
  const client = intermediate.issue({ spiffeId: TEST_IDS.frontend });
  let failure: unknown;
  const server = tls.createServer({ cert: svids.server.chainPem, key: svids.server.keyPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: true });
  server.on('secureConnection', (socket) => {
    try { run(socket); } catch (err) { failure = err; }
    socket.end();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const conn = tls.connect({ host: '127.0.0.1', port, ca: pki.caCertPem, cert: client.chainPem, key: client.keyPem, servername: 'localhost' });
  conn.on('error', () => {});
  conn.resume();
  await once(conn, 'close');
  await new Promise<void>((r) => server.close(() => r()));
  if (failure) throw failure;
}

test('TLS: verifyPeerCertificate(socket) leaves the presented intermediate readable afterwards', async () => {
  let ran = false;
  await withServerSocket((socket) => {
    const first = new PeerVerifier().verify(socket, bundle, opts);
    assert.ok(first.ok, JSON.stringify(first));
    const issuer = socket.getPeerCertificate(true).issuerCertificate;
    assert.ok(issuer?.raw, 'the intermediate is still there');
    const chain = [socket.getPeerCertificate(false).raw, issuer.raw];
    const viaChain = new PeerVerifier().verify(chain, bundle, opts);
    assert.ok(viaChain.ok && viaChain.peer.spiffeId === TEST_IDS.frontend);
    ran = true;
  });
  assert.ok(ran);
});

test('TLS: the inbound order (the leaf alone, then verifyPeerCertificate(socket)), repeatedly, with the chain read once', async () => {
  let ran = false;
  await withServerSocket((socket) => {
    const verifier = new PeerVerifier();
    for (let i = 0; i < 3; i++) {
      assert.ok(socket.getPeerCertificate(false).raw);
      const r = verifier.verify(socket, bundle, opts);
      assert.ok(r.ok && r.peer.spiffeId === TEST_IDS.frontend, JSON.stringify(r));
    }
    // A repeated peer is a fingerprint lookup: only the first verification parsed the chain.
    assert.equal(verifier.misses, 1);
    assert.equal(verifier.hits, 2);
    ran = true;
  });
  assert.ok(ran);
});

test('TLS (Node 20 fact behind the design): getPeerX509Certificate() consumes the presented intermediates', async () => {
  let ran = false;
  await withServerSocket((socket) => {
    assert.ok(socket.getPeerX509Certificate()?.issuerCertificate, 'first call sees the intermediate');
    assert.equal(socket.getPeerX509Certificate()?.issuerCertificate, undefined, 'second call no longer does');
    // Without the intermediate the chain cannot reach the bundle: refused, never accepted (fail closed).
    const r = new PeerVerifier().verify(socket, bundle, opts);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.reason, 'untrusted_chain');
    ran = true;
  });
  assert.ok(ran);
});
