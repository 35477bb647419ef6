// Integration: CRL files given with --crl refuse revoked client SVIDs (leaf or intermediate) at the
// handshake, before any byte reaches the workload; a changed CRL applies to new handshakes, and a CRL
// that stops parsing keeps the last good lists.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALLOW_FRONTEND_POLICY, getText, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
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
