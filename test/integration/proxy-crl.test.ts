// Integration: CRL files given with --crl refuse revoked client SVIDs (leaf or intermediate) at the
// handshake, before any byte reaches the workload; a changed CRL applies to new handshakes, and a CRL
// that stops parsing keeps the last good lists. The outbound listener checks destination certificates
// against the same lists (HTTP/1.1 and HTTP/2 from the app).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { request as undiciRequest } from 'undici';
import { ALLOW_FRONTEND_POLICY, closedPort, decisionLogLines, getText, mtlsAgent, parseDecisionLines, startApp, startH1Upstream, startProxy, type AppUnderTest, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { sharedTestPki, TEST_IDS, type IssuedCert } from '../helpers/pki.js';
import { makeCrl, opensslAvailable } from '../helpers/crl.js';

const skip = opensslAvailable() ? false : 'openssl is not installed';

async function outcome(proxy: ProxyUnderTest, cert: IssuedCert): Promise<string> {
  try {
    return String((await getText(`${proxy.origin}/public/a`, mtlsAgent(proxy, cert))).status);
  } catch {
    return 'refused';
  }
}

async function until(check: () => Promise<boolean>): Promise<boolean> {
  for (let i = 0; i < 80; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

describe('certificate revocation lists', { skip }, () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  const { pki } = sharedTestPki();
  const revoked = pki.issue({ spiffeId: TEST_IDS.frontend });
  const later = pki.issue({ spiffeId: TEST_IDS.frontend });
  const good = pki.issue({ spiffeId: TEST_IDS.frontend });
  const inter = pki.intermediate();
  const viaRevokedInter = inter.issue({ spiffeId: TEST_IDS.frontend });
  let rootCrl: string;
  let derCrl: string;

  before(async () => {
    upstream = await startH1Upstream();
    const dir = join(process.env.TMPDIR ?? '/tmp');
    rootCrl = join(dir, `portcullis-root-${process.pid}.crl.pem`);
    derCrl = join(dir, `portcullis-inter-${process.pid}.crl.der`);
    writeFileSync(rootCrl, makeCrl(pki, [revoked.certPem, inter.caCertPem]));
    writeFileSync(derCrl, makeCrl(inter, [], 'der'));
    proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url, flags: ['--crl', rootCrl, '--crl', derCrl] });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('a revoked leaf is refused at the handshake and the workload sees nothing; others pass', async () => {
    const bytes = upstream.bytes;
    assert.equal(await outcome(proxy, revoked), 'refused');
    assert.equal(await outcome(proxy, viaRevokedInter), 'refused', 'a leaf below a revoked intermediate');
    assert.equal(upstream.bytes, bytes);
    assert.equal(await outcome(proxy, good), '200');
    assert.match(await proxy.metrics(), /identity_rejected/);
  });

  it('a changed CRL applies to new handshakes; a CRL that fails to parse keeps the last good one', async () => {
    assert.equal(await outcome(proxy, later), '200');
    writeFileSync(rootCrl, makeCrl(pki, [revoked.certPem, later.certPem, inter.caCertPem]));
    assert.ok(await until(async () => (await outcome(proxy, later)) === 'refused'), 'the new CRL applies');
    const bytes = upstream.bytes;
    writeFileSync(rootCrl, '-----BEGIN X509 CRL-----\nnot base64 DER\n-----END X509 CRL-----\n');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(await outcome(proxy, later), 'refused', 'last good CRL still in force');
    assert.equal(await outcome(proxy, revoked), 'refused');
    assert.equal(upstream.bytes, bytes);
    assert.equal(await outcome(proxy, good), '200');
  });
});

describe('certificate revocation lists on the outbound listener', { skip }, () => {
  const { pki } = sharedTestPki();
  const revokedServer = pki.issue({ spiffeId: TEST_IDS.httpbin });
  const goodServer = pki.issue({ spiffeId: TEST_IDS.httpbin });
  const laterServer = pki.issue({ spiffeId: TEST_IDS.httpbin });
  const servers: HttpsServer[] = [];
  const seen: Record<string, number> = { revoked: 0, good: 0, later: 0 };
  const ports: Record<string, number> = {};
  let app: AppUnderTest;
  let crlFile: string;

  /** A destination sidecar stand-in (HTTP/1.1 and HTTP/2 over mTLS) that counts the requests it receives. */
  async function destination(name: string, cert: IssuedCert): Promise<number> {
    const server = http2.createSecureServer({ cert: cert.chainPem, key: cert.keyPem, ca: pki.caCertPem, requestCert: true, allowHTTP1: true }, (req, res) => {
      seen[name] = (seen[name] ?? 0) + 1;
      res.end(`hello from ${name}`);
    }) as unknown as HttpsServer;
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  }

  before(async () => {
    crlFile = join(process.env.TMPDIR ?? '/tmp', `portcullis-outbound-${process.pid}.crl.pem`);
    writeFileSync(crlFile, makeCrl(pki, [revokedServer.certPem]));
    const flags: string[] = ['--crl', crlFile];
    for (const [name, cert] of [['revoked', revokedServer], ['good', goodServer], ['later', laterServer]] as const) {
      const target = await destination(name, cert);
      ports[name] = await closedPort();
      flags.push('--outbound', `name=to-${name},listen=127.0.0.1:${ports[name]},target=https://127.0.0.1:${target},expectIdentity=${TEST_IDS.httpbin},serverName=localhost`);
    }
    app = await startApp({
      dirPrefix: 'portcullis-outbound-crl-',
      policy: ALLOW_FRONTEND_POLICY,
      listener: `name=unused,listen=127.0.0.1:0,upstream=http://127.0.0.1:${await closedPort()}`,
      workload: ['--service-account', 'frontend'],
      flags,
    });
  });
  after(async () => {
    await app.stop();
    for (const s of servers) { s.closeAllConnections?.(); s.close(); }
  });

  async function h1(name: string): Promise<number> {
    const res = await undiciRequest(`http://127.0.0.1:${ports[name]}/hello`);
    await res.body.dump();
    return res.statusCode;
  }
  async function h2(name: string): Promise<number> {
    const session = http2.connect(`http://127.0.0.1:${ports[name]}`);
    session.on('error', () => undefined);
    try {
      return await new Promise<number>((resolve, reject) => {
        const req = session.request({ ':method': 'GET', ':path': '/hello' });
        req.on('response', (h) => { resolve(Number(h[':status'])); req.resume(); });
        req.on('error', reject);
      });
    } finally {
      session.close();
    }
  }

  it('a destination presenting a revoked certificate gets nothing (503, HTTP/1.1 and HTTP/2), the decision line says server_revoked', async () => {
    assert.equal(await h1('revoked'), 503);
    assert.equal(await h2('revoked'), 503);
    assert.equal(seen.revoked, 0, 'no request reached the revoked destination');
    assert.equal(await h1('good'), 200);
    assert.equal(await h2('good'), 200);
    assert.equal(seen.good, 2);
    let reasons: string[] = [];
    for (let i = 0; i < 50 && reasons.filter((r) => r === 'server_revoked').length < 2; i++) {
      reasons = parseDecisionLines(decisionLogLines(app.logFile)).map((e) => e.reason);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(reasons.filter((r) => r === 'server_revoked').length, 2, JSON.stringify(reasons));
  });

  it('a reloaded CRL applies to the next outbound handshake', async () => {
    // The reload is observed on the inbound side (a client certificate revoked in the same change), so the
    // outbound request below is made once, after it: a pooled connection made earlier would skip the handshake.
    const probe = pki.issue({ spiffeId: TEST_IDS.frontend });
    const inbound = { origin: `https://127.0.0.1:${(app.app.listeners[0] as { address(): AddressInfo }).address().port}`, caPem: app.caPem } as ProxyUnderTest;
    assert.notEqual(await outcome(inbound, probe), 'refused');
    writeFileSync(crlFile, makeCrl(pki, [revokedServer.certPem, laterServer.certPem, probe.certPem]));
    assert.ok(await until(async () => (await outcome(inbound, probe)) === 'refused'), 'the new CRL was loaded');
    assert.equal(await h1('later'), 503);
    assert.equal(await h2('later'), 503);
    assert.equal(seen.later, 0);
  });
});
