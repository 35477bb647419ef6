// Integration: real node:tls handshakes against a server that verifies each client's X509-SVID with
// Portcullis' verifier; then rotation of the server's own files while connections are open.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { PeerVerifier } from '../../src/identity/peer.js';
import { CredentialStore, clientTlsOptions, type IdentityLogger } from '../../src/identity/credentials.js';
import { createTestPki, issueStandardSvids, REJECTED_SVIDS, TEST_IDS, type IssuedCert, type SvidSet } from '../helpers/pki.js';

const pki = createTestPki();
const svids = issueStandardSvids(pki);
const silent: IdentityLogger = { info: () => {}, warn: () => {}, error: () => {} };
const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A TLS server that answers each connection with its verification verdict as one JSON line. */
async function verdictServer(opts: { rejectUnauthorized: boolean }): Promise<{ port: number; close: () => Promise<void>; clientErrors: string[] }> {
  const verifier = new PeerVerifier();
  const bundle = [pki.caCert];
  const clientErrors: string[] = [];
  const server = tls.createServer(
    { cert: svids.server.chainPem, key: svids.server.keyPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: opts.rejectUnauthorized, minVersion: 'TLSv1.2' },
    (socket) => {
      const r = verifier.verify(socket, bundle, { now: Date.now(), trustDomains: ['cluster.local'] });
      socket.end(JSON.stringify(r.ok ? { ok: true, id: r.peer.spiffeId } : { ok: false, reason: r.reason }) + '\n');
    },
  );
  server.on('tlsClientError', (err) => clientErrors.push(err.message));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return { port, clientErrors, close: () => new Promise((r) => server.close(() => r())) };
}

async function connectAndRead(port: number, client: IssuedCert | null): Promise<{ verdict?: { ok: boolean; id?: string; reason?: string }; error?: string }> {
  return new Promise((resolve) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port,
      ca: pki.caCertPem,
      ...(client ? { cert: client.chainPem, key: client.keyPem } : {}),
      checkServerIdentity: () => undefined,
    });
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (data += d));
    socket.on('error', (err) => resolve({ error: err.message }));
    socket.on('end', () => resolve(data ? { verdict: JSON.parse(data) as { ok: boolean } } : { error: 'closed without verdict' }));
    socket.setTimeout(5000, () => {
      socket.destroy();
      resolve({ error: 'timeout' });
    });
  });
}

const expectations: Array<readonly [keyof SvidSet | 'none', string]> = [
  ['frontend', TEST_IDS.frontend],
  ['admin', TEST_IDS.admin],
  ['viaIntermediate', TEST_IDS.frontend],
  ['none', 'no_certificate'],
  ...REJECTED_SVIDS,
];

test('every client certificate variant gets the right verdict over a real handshake', async () => {
  const server = await verdictServer({ rejectUnauthorized: false });
  try {
    for (const [name, expected] of expectations) {
      const got = await connectAndRead(server.port, name === 'none' ? null : svids[name]);
      assert.ok(got.verdict, `${name}: ${got.error}`);
      if (expected.startsWith('spiffe://')) assert.deepEqual(got.verdict, { ok: true, id: expected }, name);
      else assert.deepEqual(got.verdict, { ok: false, reason: expected }, name);
    }
  } finally {
    await server.close();
  }
});

test('with rejectUnauthorized, Node refuses chain/time failures at the handshake and Portcullis the rest', async () => {
  const server = await verdictServer({ rejectUnauthorized: true });
  try {
    for (const name of ['expired', 'otherCa', 'serverAuthOnly'] as const) {
      const got = await connectAndRead(server.port, svids[name]);
      assert.equal(got.verdict, undefined, `${name} must not complete a handshake`);
    }
    for (const [name, reason] of [['caAsLeaf', 'leaf_is_ca'], ['sanInjection', 'bad_spiffe_id'], ['twoUriSans', 'not_one_uri_san']] as const) {
      const got = await connectAndRead(server.port, svids[name]);
      assert.deepEqual(got.verdict, { ok: false, reason }, name);
    }
    assert.ok(server.clientErrors.length >= 3);
  } finally {
    await server.close();
  }
});

// ---- rotation ------------------------------------------------------------------------------------

function writeAtomically(path: string, text: string): void {
  writeFileSync(path + '.tmp', text, { mode: 0o600 });
  renameSync(path + '.tmp', path);
}

async function startRotatingServer(dir: string, first: IssuedCert, bundlePem: string) {
  const files = { certFile: join(dir, 'svid.crt'), keyFile: join(dir, 'svid.key'), trustBundleFile: join(dir, 'bundle.crt') };
  writeFileSync(files.certFile, first.chainPem);
  writeFileSync(files.keyFile, first.keyPem, { mode: 0o600 });
  writeFileSync(files.trustBundleFile, bundlePem);
  const store = await CredentialStore.load({ ...files, logger: silent, debounceMs: 50, pollIntervalMs: 100 });
  const verifier = new PeerVerifier();
  const server = tls.createServer({ ...store.serverOptions(), requestCert: true, rejectUnauthorized: true }, (socket) => {
    const r = verifier.verify(socket, store.current().bundle, { now: Date.now(), trustDomains: ['cluster.local'] });
    if (!r.ok) {
      socket.destroy();
      return;
    }
    socket.write(`hello ${r.peer.spiffeId}\n`);
    socket.on('data', (d) => socket.write(d)); // echo keeps the connection useful after rotation
  });
  store.bindServer(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { store, server, files, port: (server.address() as AddressInfo).port };
}

function openClient(port: number, client: IssuedCert, caPem: string): Promise<{ socket: tls.TLSSocket; serverCert: X509Certificate; firstLine: string }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: caPem, cert: client.chainPem, key: client.keyPem, checkServerIdentity: () => undefined }, () => {
      const serverCert = socket.getPeerX509Certificate();
      if (!serverCert) return reject(new Error('no server certificate'));
      socket.once('data', (d: Buffer) => resolve({ socket, serverCert, firstLine: d.toString().trim() }));
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before greeting')));
    socket.setTimeout(5000, () => socket.destroy(new Error('timeout')));
  });
}

async function echo(socket: tls.TLSSocket, text: string): Promise<string> {
  const reply = once(socket, 'data');
  socket.write(text);
  const [chunk] = (await reply) as [Buffer];
  return chunk.toString();
}

function waitForReload(store: CredentialStore): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    const off = store.onReload((r) => {
      off();
      resolve(r);
    });
  });
}

test('rotation: new handshakes see the new SVID, established connections keep working, bad changes are refused', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-rotation-'));
  dirs.push(dir);
  const first = pki.issue({ spiffeId: TEST_IDS.httpbin, dns: ['localhost'] });
  const { store, server, files, port } = await startRotatingServer(dir, first, pki.caCertPem);
  try {
    const a = await openClient(port, svids.frontend, pki.caCertPem);
    assert.equal(a.firstLine, `hello ${TEST_IDS.frontend}`);
    assert.equal(a.serverCert.fingerprint256, first.cert.fingerprint256);

    // Rotate the SVID (new key, same ID), as `portcullis certs issue --renew` does.
    const second = pki.issue({ spiffeId: TEST_IDS.httpbin, dns: ['localhost'] });
    const reloaded = waitForReload(store);
    writeAtomically(files.keyFile, second.keyPem);
    writeAtomically(files.certFile, second.chainPem);
    assert.deepEqual(await reloaded, { ok: true, changed: true });
    assert.equal(store.current().generation, 2);

    const b = await openClient(port, svids.admin, pki.caCertPem);
    assert.equal(b.serverCert.fingerprint256, second.cert.fingerprint256);
    assert.equal(await echo(a.socket, 'still here'), 'still here', 'the connection from before the rotation still works');

    // A broken change (key of another cert) is refused; the last good pair keeps serving.
    const mismatched = waitForReload(store);
    writeAtomically(files.keyFile, svids.other.keyPem);
    const refused = await mismatched;
    assert.equal(refused.ok, false);
    assert.match(refused.error ?? '', /does not match/);
    assert.equal(store.stats.failures, 1);
    const c = await openClient(port, svids.frontend, pki.caCertPem);
    assert.equal(c.serverCert.fingerprint256, second.cert.fingerprint256);

    // An expired certificate is refused too.
    const expired = pki.issue({ spiffeId: TEST_IDS.httpbin, notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) });
    const expiredReload = waitForReload(store);
    writeAtomically(files.certFile, expired.chainPem);
    writeAtomically(files.keyFile, expired.keyPem);
    const r = await expiredReload;
    // The two writes may be seen as one change or as two (mismatch first); the end state must be refused.
    if (r.ok === false && !/expired/.test(r.error ?? '')) assert.equal((await waitForReload(store)).ok, false);
    assert.equal(store.current().generation, 2);
    assert.match(store.stats.lastError ?? '', /expired/);

    for (const s of [a, b, c]) s.socket.destroy();
  } finally {
    store.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('rotation: a new CA in the bundle is trusted for new handshakes; removing the old CA refuses its clients', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bundle-'));
  dirs.push(dir);
  const next = pki.otherCa();
  const nextClient = next.issue({ spiffeId: TEST_IDS.frontend });
  const { store, server, files, port } = await startRotatingServer(dir, svids.server, pki.caCertPem);
  try {
    await assert.rejects(openClient(port, nextClient, pki.caCertPem), 'a client of the new CA is refused before the bundle change');
    const old = await openClient(port, svids.frontend, pki.caCertPem);

    let reloaded = waitForReload(store);
    writeAtomically(files.trustBundleFile, pki.caCertPem + next.caCertPem);
    assert.equal((await reloaded).ok, true);
    const fresh = await openClient(port, nextClient, pki.caCertPem);
    assert.equal(fresh.firstLine, `hello ${TEST_IDS.frontend}`);

    // Server moves to an SVID from the new CA and drops the old CA.
    const serverNext = next.issue({ spiffeId: TEST_IDS.httpbin });
    reloaded = waitForReload(store);
    writeAtomically(files.keyFile, serverNext.keyPem);
    writeAtomically(files.certFile, serverNext.chainPem);
    writeAtomically(files.trustBundleFile, next.caCertPem);
    let result = await reloaded;
    for (let i = 0; i < 5 && store.current().bundle.length !== 1; i++) result = await waitForReload(store);
    assert.equal(result.ok, true);
    await assert.rejects(openClient(port, svids.frontend, next.caCertPem), 'a client of the removed CA is refused');
    assert.equal(await echo(old.socket, 'ping'), 'ping', 'an established connection is not cut by the bundle change');
    old.socket.destroy();
    fresh.socket.destroy();
  } finally {
    store.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('outbound client options: exact SPIFFE ID match against the server SVID, no DNS name needed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-outbound-'));
  dirs.push(dir);
  const serverNoDns = pki.issue({ spiffeId: TEST_IDS.httpbin });
  const { store, server, port } = await startRotatingServer(dir, serverNoDns, pki.caCertPem);
  const clientDir = mkdtempSync(join(tmpdir(), 'portcullis-outbound-client-'));
  dirs.push(clientDir);
  writeFileSync(join(clientDir, 'svid.crt'), svids.frontend.chainPem);
  writeFileSync(join(clientDir, 'svid.key'), svids.frontend.keyPem);
  writeFileSync(join(clientDir, 'bundle.crt'), pki.caCertPem);
  const clientStore = await CredentialStore.load({ certFile: join(clientDir, 'svid.crt'), keyFile: join(clientDir, 'svid.key'), trustBundleFile: join(clientDir, 'bundle.crt'), logger: silent, watch: false });
  const connect = (expectIdentity: string) =>
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ...clientTlsOptions(clientStore.current(), { expectIdentity, trustDomains: ['cluster.local'] }) });
      s.once('data', (d: Buffer) => {
        s.destroy();
        resolve(d.toString().trim());
      });
      s.once('error', reject);
    });
  try {
    assert.equal(await connect(TEST_IDS.httpbin), `hello ${TEST_IDS.frontend}`);
    await assert.rejects(connect('spiffe://cluster.local/ns/foo/sa/httpbin2'), /not the expected/);
    await assert.rejects(connect('spiffe://cluster.local/ns/foo/sa/httpbi'), /not the expected/);
  } finally {
    clientStore.close();
    store.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('no TLS session resumption: a saved session is never reused (TLS 1.2 and 1.3)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-resume-'));
  dirs.push(dir);
  const { store, server, port } = await startRotatingServer(dir, svids.server, pki.caCertPem);
  try {
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const base = { host: '127.0.0.1', port, ca: pki.caCertPem, cert: svids.frontend.chainPem, key: svids.frontend.keyPem, maxVersion, checkServerIdentity: () => undefined };
      let session: Buffer | undefined;
      const first = tls.connect(base);
      first.on('session', (s: Buffer) => (session = s));
      await once(first, 'data');
      await new Promise((r) => setTimeout(r, 50)); // TLS 1.3 tickets arrive after the handshake, if at all
      first.destroy();
      const second = tls.connect({ ...base, ...(session ? { session } : {}) });
      await once(second, 'data');
      assert.equal(second.isSessionReused(), false, `${maxVersion}: session must not be resumed`);
      second.destroy();
    }
  } finally {
    store.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
