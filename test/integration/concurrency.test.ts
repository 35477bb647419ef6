// Integration: `portcullis run --concurrency 2` (compiled binary): two worker processes share the listener;
// policy reload and certificate rotation reach every worker, /metrics sums them, SIGTERM drains both, and
// the decision log stays one well-formed NDJSON stream. A connection stays with the worker that accepted it
// and node:cluster hands out connections round robin, so N connections cover both workers; the process
// prefix of decision_id tells which worker decided.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import type { Agent } from 'undici';
import { repoRoot } from '../helpers/paths.js';
import { sharedTestPki, TEST_IDS, writePkiFiles } from '../helpers/pki.js';
import { ALLOW_FRONTEND_POLICY, getText, mtlsAgent, startH1Upstream, type RecordingUpstream } from './harness.js';

const mainJs = process.env['PORTCULLIS_MAIN'] ?? join(repoRoot(), 'dist/src/main.js');
const CONNECTIONS = 6;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('concurrency: 2 workers behind one listener (compiled binary)', () => {
  let upstream: RecordingUpstream;
  let dir: string;
  let child: ChildProcess;
  let port = 0;
  let adminPort = 0;
  let stderr = '';
  let logFile: string;
  let serverFiles: { cert: string; key: string };
  const { pki, svids } = sharedTestPki();
  const target = { caPem: pki.caCertPem };
  let agents: Agent[] = [];

  const origin = () => `https://127.0.0.1:${port}`;
  const events = (): { decision_id: string; status: number; request: { path: string } }[] => {
    const text = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
    // One well-formed NDJSON stream: every line parses on its own, nothing is interleaved.
    return text.split('\n').filter((l) => l.length > 0).map((l) => JSON.parse(l) as { decision_id: string; status: number; request: { path: string } });
  };
  const workersOf = (ids: string[]) => new Set(ids.map((id) => id.split('-')[0]));
  /** Decision lines reach the file in batches (up to 100 ms, then the primary's write): wait for them. */
  async function waitForEvents(path: string, count: number, status?: number): Promise<{ decision_id: string; status: number }[]> {
    const matching = () => events().filter((e) => e.request.path === path && (status === undefined || e.status === status));
    for (let i = 0; i < 100; i++) {
      const found = matching();
      if (found.length >= count) return found;
      await sleep(50);
    }
    return matching();
  }

  before(async () => {
    assert.ok(existsSync(mainJs), `${mainJs} must exist (build first)`);
    upstream = await startH1Upstream((req, res) => {
      const delay = req.url === '/slow' ? 1000 : 0;
      setTimeout(() => { res.writeHead(200); res.end('upstream ok'); }, delay);
    });
    dir = mkdtempSync(join(tmpdir(), 'portcullis-concurrency-'));
    const files = writePkiFiles(join(dir, 'pki'), pki, { server: svids.server });
    serverFiles = files.files['server'] as { cert: string; key: string };
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'p.yaml'), ALLOW_FRONTEND_POLICY);
    logFile = join(dir, 'decisions.ndjson');
    child = spawn(process.execPath, [mainJs, 'run', '--concurrency', '2',
      '--listener', `name=inbound,listen=127.0.0.1:0,upstream=${upstream.url},mode=strict,workloadPort=8080`,
      '--policies', join(dir, 'policies'),
      '--cert', serverFiles.cert, '--key', serverFiles.key, '--trust-bundle', files.bundle,
      '--namespace', 'foo', '--service-account', 'httpbin', '--admin', '127.0.0.1:0', '--decision-log', logFile,
      '--drain-timeout', '5s',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
    for (let i = 0; i < 400 && adminPort === 0; i++) {
      const m = /"admin":"127\.0\.0\.1:(\d+)"/.exec(stderr);
      if (m) adminPort = Number(m[1]);
      else await sleep(50);
      if (child.exitCode !== null) break;
    }
    port = Number(/"address":"127\.0\.0\.1:(\d+)"/.exec(stderr)?.[1] ?? 0);
    assert.ok(port > 0 && adminPort > 0, `the sidecar reported its ports; stderr: ${stderr}`);
    const listening = [...stderr.matchAll(/"event":"listening"[^\n]*"address":"127\.0\.0\.1:(\d+)"/g)].map((m) => Number(m[1]));
    assert.deepEqual(listening, [port, port], 'both workers listen on the same port');
    agents = Array.from({ length: CONNECTIONS }, () => mtlsAgent(target, svids.frontend));
  });
  after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    for (const a of agents) await a.close().catch(() => undefined);
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('spreads connections over both workers; /metrics sums them', async () => {
    for (const a of agents) assert.equal((await getText(`${origin()}/public/spread`, a)).status, 200);
    const decided = await waitForEvents('/public/spread', CONNECTIONS);
    assert.equal(decided.length, CONNECTIONS);
    assert.equal(workersOf(decided.map((e) => e.decision_id)).size, 2, 'both workers decided requests');
    const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
    const allowed = [...metrics.matchAll(/^portcullis_requests_total\{[^}]*verdict="allow"[^}]*\} (\d+)$/gm)].reduce((a, m) => a + Number(m[1]), 0);
    assert.equal(allowed, CONNECTIONS, 'the admin listener adds up both workers');
    assert.match(metrics, /^portcullis_policy_revision_info\{revision="[^"]+"\} 1$/m, 'an info gauge stays 1, not one per worker');
    const ready = await fetch(`http://127.0.0.1:${adminPort}/ready`);
    assert.equal(ready.status, 200);
  });

  it('reloads the policy in every worker', async () => {
    writeFileSync(join(dir, 'policies', 'p.yaml'), ALLOW_FRONTEND_POLICY.replace('"/public/*", ', ''));
    // Every pre-existing connection (on either worker) must see the new policy; a worker that missed the
    // change keeps answering 200 on its connections.
    const flipped = new Set<number>();
    for (let round = 0; round < 100 && flipped.size < agents.length; round++) {
      for (const [i, a] of agents.entries()) {
        if (flipped.has(i)) continue;
        if ((await getText(`${origin()}/public/reload`, a)).status === 403) flipped.add(i);
      }
      if (flipped.size < agents.length) await sleep(100);
    }
    assert.equal(flipped.size, agents.length, 'every connection answers with the new policy');
    const denied = await waitForEvents('/public/reload', agents.length, 403);
    assert.equal(workersOf(denied.map((e) => e.decision_id)).size, 2, 'both workers denied with the new policy');
    writeFileSync(join(dir, 'policies', 'p.yaml'), ALLOW_FRONTEND_POLICY);
    for (let round = 0; round < 100; round++) {
      const statuses = await Promise.all(agents.map(async (a) => (await getText(`${origin()}/public/back`, a)).status));
      if (statuses.every((s) => s === 200)) break;
      await sleep(100);
    }
  });

  it('rotates the certificate in every worker', async () => {
    const next = pki.issue({ spiffeId: TEST_IDS.httpbin, dns: ['localhost'], ips: ['127.0.0.1'] });
    writeFileSync(serverFiles.key, next.keyPem);
    writeFileSync(serverFiles.cert, next.chainPem);
    const handshake = () => new Promise<string | undefined>((resolve) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: pki.caCertPem, cert: svids.frontend.chainPem, key: svids.frontend.keyPem }, () => { resolve(s.getPeerX509Certificate()?.fingerprint256); s.destroy(); });
      s.on('error', () => resolve(undefined));
    });
    // Consecutive handshakes alternate between the workers: four in a row with the new certificate
    // means both present it.
    let streak = 0;
    for (let i = 0; i < 100 && streak < 4; i++) {
      streak = (await handshake()) === next.cert.fingerprint256 ? streak + 1 : 0;
      if (streak === 0) await sleep(100);
    }
    assert.equal(streak, 4, 'new handshakes on both workers present the rotated certificate');
  });

  it('drains both workers on SIGTERM: in-flight requests complete, the process exits 0', async () => {
    const slow = agents.map((a) => getText(`${origin()}/slow`, a));
    await sleep(300);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const results = await Promise.all(slow);
    assert.deepEqual(results.map((r) => r.status), agents.map(() => 200));
    const [code] = await Promise.race([exited, sleep(15_000).then(() => [null])]);
    assert.equal(code, 0, `exit code; stderr: ${stderr.slice(-2000)}`);
    const drained = events().filter((e) => e.request.path === '/slow');
    assert.equal(drained.length, agents.length, 'every drained request has its decision line');
    assert.equal(workersOf(drained.map((e) => e.decision_id)).size, 2, 'both workers drained in-flight requests');
  });
});
