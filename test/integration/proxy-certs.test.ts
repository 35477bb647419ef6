// Integration: every rejected client-certificate variant fails the handshake or is closed before any
// request reaches the workload; certificate rotation applies to new handshakes and keeps open connections.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { writeFileSync } from 'node:fs';
import { ALLOW_FRONTEND_POLICY, getText, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { REJECTED_SVIDS, TEST_IDS, sharedTestPki, type IssuedCert, type SvidSet } from '../helpers/pki.js';

const rejected: (keyof SvidSet)[] = REJECTED_SVIDS.map(([name]) => name);

/** One keep-alive TLS connection; `get` sends a request and resolves with the response head+body seen so far. */
function keepAlive(proxy: ProxyUnderTest, cert: IssuedCert): Promise<{ socket: tls.TLSSocket; get(path: string): Promise<string> }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, cert: cert.chainPem, key: cert.keyPem, ALPNProtocols: ['http/1.1'] }, () => {
      resolve({
        socket,
        get(path) {
          return new Promise((res, rej) => {
            let buf = '';
            const onData = (c: Buffer): void => {
              buf += c.toString('latin1');
              if (buf.includes('upstream ok') || /\r\n\r\n[\s\S]*RBAC/.test(buf)) { socket.off('data', onData); res(buf); }
            };
            socket.on('data', onData);
            socket.once('close', () => rej(new Error('connection closed')));
            socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
          });
        },
      });
    });
    socket.on('error', reject);
  });
}

describe('client certificates', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  for (const name of rejected) {
    it(`rejects ${name}: handshake fails or the connection closes, the workload sees nothing`, async () => {
      const before = upstream.bytes;
      const cert = proxy.svids[name];
      let outcome: string;
      try {
        const res = await getText(`${proxy.origin}/public/a`, mtlsAgent(proxy, cert));
        outcome = String(res.status);
      } catch (err) {
        outcome = 'failed';
        void err;
      }
      assert.ok(outcome === 'failed' || outcome === '403', `${name}: ${outcome}`);
      assert.equal(upstream.bytes, before);
    });
  }

  it('rejects a caller without a certificate on a strict listener', async () => {
    const before = upstream.bytes;
    await assert.rejects(getText(`${proxy.origin}/public/a`, mtlsAgent(proxy, null)));
    assert.equal(upstream.bytes, before);
  });

  it('accepts an SVID issued by an intermediate that the peer presents', async () => {
    const res = await getText(`${proxy.origin}/public/a`, mtlsAgent(proxy, proxy.svids.viaIntermediate));
    assert.equal(res.status, 200);
  });

  it('rotation: new handshakes get the new SVID, an open connection keeps working', async () => {
    const conn = await keepAlive(proxy, proxy.svids.frontend);
    const oldFingerprint = conn.socket.getPeerX509Certificate()?.fingerprint256;
    assert.match(await conn.get('/public/1'), /^HTTP\/1\.1 200/);
    const { pki } = sharedTestPki();
    const next = pki.issue({ spiffeId: TEST_IDS.httpbin, dns: ['localhost'], ips: ['127.0.0.1'] });
    const files = proxy.files.files['server'] as { cert: string; key: string };
    writeFileSync(files.key, next.keyPem);
    writeFileSync(files.cert, next.chainPem);
    let rotated = false;
    for (let i = 0; i < 60 && !rotated; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const fp = await new Promise<string | undefined>((resolve) => {
        const s = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, cert: proxy.svids.frontend.chainPem, key: proxy.svids.frontend.keyPem }, () => { resolve(s.getPeerX509Certificate()?.fingerprint256); s.destroy(); });
        s.on('error', () => resolve(undefined));
      });
      rotated = fp !== undefined && fp === next.cert.fingerprint256;
    }
    assert.ok(rotated, 'new handshakes present the rotated certificate');
    assert.notEqual(oldFingerprint, next.cert.fingerprint256);
    assert.match(await conn.get('/public/2'), /^HTTP\/1\.1 200/);
    conn.socket.destroy();
  });
});
