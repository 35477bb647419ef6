// Integration: the compiled binary (`node dist/src/main.js run ...`) drains on SIGTERM: the in-flight request
// completes, new connections are refused, and the process exits 0 within the drain timeout.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { repoRoot } from '../helpers/paths.js';
import { sharedTestPki, writePkiFiles } from '../helpers/pki.js';
import { ALLOW_FRONTEND_POLICY, getText, mtlsAgent, startH1Upstream, type RecordingUpstream } from './harness.js';

const mainJs = process.env['PORTCULLIS_MAIN'] ?? join(repoRoot(), 'dist/src/main.js');

describe('SIGTERM drain (compiled binary)', () => {
  let upstream: RecordingUpstream;
  let dir: string;
  let child: ChildProcess;
  let port = 0;
  let stderr = '';
  before(async () => {
    assert.ok(existsSync(mainJs), `${mainJs} must exist (build first)`);
    upstream = await startH1Upstream((req, res) => {
      const delay = req.url === '/slow' ? 1000 : 0;
      setTimeout(() => { res.writeHead(200); res.end('upstream ok'); }, delay);
    });
    dir = mkdtempSync(join(tmpdir(), 'portcullis-drain-'));
    const { pki, svids } = sharedTestPki();
    const files = writePkiFiles(join(dir, 'pki'), pki, { server: svids.server });
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'p.yaml'), ALLOW_FRONTEND_POLICY);
    child = spawn(process.execPath, [mainJs, 'run',
      '--listener', `name=inbound,listen=127.0.0.1:0,upstream=${upstream.url},mode=strict,workloadPort=8080`,
      '--policies', join(dir, 'policies'),
      '--cert', (files.files['server'] as { cert: string }).cert, '--key', (files.files['server'] as { key: string }).key, '--trust-bundle', files.bundle,
      '--namespace', 'foo', '--service-account', 'httpbin', '--admin', '127.0.0.1:0', '--decision-log', join(dir, 'decisions.ndjson'),
      '--drain-timeout', '5s',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
    for (let i = 0; i < 200 && port === 0; i++) {
      const m = /"address":"127\.0\.0\.1:(\d+)"/.exec(stderr);
      if (m) port = Number(m[1]);
      else await new Promise((r) => setTimeout(r, 50));
      if (child.exitCode !== null) break;
    }
    assert.ok(port > 0, `the sidecar reported its port; stderr: ${stderr}`);
  });
  after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finishes the in-flight request, refuses new connections, exits 0', async () => {
    const { pki, svids } = sharedTestPki();
    const target = { caPem: pki.caCertPem };
    const origin = `https://127.0.0.1:${port}`;
    const warm = await getText(`${origin}/public/a`, mtlsAgent(target, svids.frontend));
    assert.equal(warm.status, 200);
    const started = Date.now();
    const inFlight = getText(`${origin}/slow`, mtlsAgent(target, svids.frontend));
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    await assert.rejects(getText(`${origin}/public/a`, mtlsAgent(target, svids.frontend)), 'new connections are refused while draining');
    const res = await inFlight;
    assert.equal(res.status, 200);
    assert.equal(res.body, 'upstream ok');
    const [code] = (child.exitCode !== null ? [child.exitCode] : await once(child, 'exit')) as [number];
    assert.equal(code, 0);
    assert.ok(Date.now() - started < 5000 + 3000, 'exited within the drain timeout');
  });
});
