// Integration, compiled binary, real sockets: what an injected sidecar relies on in a pod.
// - `--workload-from`: a Downward API directory laid out as the kubelet does (timestamped dir, `..data`
//   symlink, swapped atomically); relabelling the pod changes which policy applies, with no restart.
// - `--drain-delay`: after SIGTERM /ready fails at once, new connections are still served for the delay,
//   then refused; the process exits 0.
// - `--status-listen`: /ready, /live, /metrics on the pod IP, never /policy.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { repoRoot } from '../helpers/paths.js';
import { sharedTestPki, writePkiFiles } from '../helpers/pki.js';
import { getText, mtlsAgent, startH1Upstream, type RecordingUpstream } from './harness.js';

const mainJs = process.env['PORTCULLIS_MAIN'] ?? join(repoRoot(), 'dist/src/main.js');

const DENY_ADMIN_FOR_ORDERS = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: orders-deny-admin, namespace: shop}
spec:
  selector:
    matchLabels: {app: orders}
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin/*"]}}]
`;

/** Writes a Downward API volume the way the kubelet's atomic writer does: new dir, then swap `..data`. */
let generation = 0;
function writeDownwardApi(dir: string, files: Record<string, string>): void {
  const stamp = `..2026_12_06_17_00_00.${++generation}`;
  mkdirSync(join(dir, stamp));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, stamp, name), text);
  symlinkSync(stamp, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  for (const name of Object.keys(files)) if (!existsSync(join(dir, name))) symlinkSync(join('..data', name), join(dir, name));
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.text() };
}

describe('an injected sidecar: Downward API facts, status listener, drain delay', () => {
  let upstream: RecordingUpstream;
  let dir: string;
  let podinfo: string;
  let child: ChildProcess;
  let port = 0;
  let statusPort = 0;
  let stderr = '';
  const { pki, svids } = sharedTestPki();
  const target = { caPem: pki.caCertPem };
  const call = (path: string) => getText(`https://127.0.0.1:${port}${path}`, mtlsAgent(target, svids.frontend));

  before(async () => {
    assert.ok(existsSync(mainJs), `${mainJs} must exist (build first)`);
    upstream = await startH1Upstream();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-pod-'));
    const files = writePkiFiles(join(dir, 'pki'), pki, { server: svids.server });
    mkdirSync(join(dir, 'policies'));
    writeFileSync(join(dir, 'policies', 'p.yaml'), DENY_ADMIN_FOR_ORDERS);
    podinfo = join(dir, 'podinfo');
    mkdirSync(podinfo);
    writeDownwardApi(podinfo, {
      namespace: 'shop',
      name: 'orders-7d4b9c5f6-x2x7q',
      labels: 'app="billing"\npod-template-hash="7d4b9c5f6"',
      annotations: 'kubernetes.io/config.seen="2026-12-06T17:00:00.000000000Z"\nportcullis.dev/injected="0.1.0"',
    });
    child = spawn(process.execPath, [mainJs, 'run',
      '--listener', `name=inbound-8443,listen=127.0.0.1:0,upstream=${upstream.url}`,
      '--policies', join(dir, 'policies'),
      '--cert', (files.files['server'] as { cert: string }).cert, '--key', (files.files['server'] as { key: string }).key, '--trust-bundle', files.bundle,
      '--workload-from', podinfo, '--service-account', 'orders',
      '--admin', '127.0.0.1:0', '--status-listen', '127.0.0.1:0',
      '--decision-log', join(dir, 'decisions.ndjson'),
      '--drain-delay', '1500ms', '--drain-timeout', '2s',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (c: Buffer) => { stderr += c.toString(); });
    // Every listener binds port 0 and the sidecar logs the address it got: no port is picked first and raced for.
    for (let i = 0; i < 200 && statusPort === 0; i++) {
      const m = /"listener":"inbound-8443","address":"127\.0\.0\.1:(\d+)"/.exec(stderr);
      const s = /"listener":"status","address":"127\.0\.0\.1:(\d+)"/.exec(stderr);
      if (m && s) { port = Number(m[1]); statusPort = Number(s[1]); }
      else await new Promise((r) => setTimeout(r, 50));
      if (child.exitCode !== null) break;
    }
    assert.ok(port > 0 && statusPort > 0, `the sidecar reported its ports; stderr: ${stderr}`);
  });
  after(async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('decides with the current labels: relabelling the pod brings a policy into force without a restart', async () => {
    assert.equal((await call('/admin/config')).status, 200, 'app=billing: the orders policy does not apply');
    writeDownwardApi(podinfo, {
      namespace: 'shop',
      name: 'orders-7d4b9c5f6-x2x7q',
      labels: 'app="orders"\npod-template-hash="7d4b9c5f6"\nteam="a \\"quoted\\" name"',
      annotations: 'kubernetes.io/config.seen="2026-12-06T17:00:00.000000000Z"\nportcullis.dev/injected="0.1.0"',
    });
    let status = 0;
    for (let i = 0; i < 100 && status !== 403; i++) {
      await new Promise((r) => setTimeout(r, 100));
      status = (await call('/admin/config')).status;
    }
    assert.equal(status, 403, `app=orders: orders-deny-admin applies; stderr: ${stderr}`);
    assert.equal((await call('/public/a')).status, 200);
    assert.match(stderr, /"msg":"workload labels or annotations changed; policies recompiled"/);
  });

  it('keeps the last good facts when the labels file is malformed', async () => {
    writeDownwardApi(podinfo, { namespace: 'shop', name: 'orders-7d4b9c5f6-x2x7q', labels: 'app=orders-without-quotes', annotations: '' });
    for (let i = 0; i < 50 && !/workload_facts_invalid/.test(stderr); i++) await new Promise((r) => setTimeout(r, 100));
    assert.match(stderr, /"event":"workload_facts_invalid"/);
    assert.equal((await call('/admin/config')).status, 403, 'still decided as app=orders');
  });

  it('serves /ready, /live and /metrics on the status listener, never /policy', async () => {
    const base = `http://127.0.0.1:${statusPort}`;
    assert.equal((await get(`${base}/ready`)).status, 200);
    assert.equal((await get(`${base}/live`)).status, 200);
    assert.match((await get(`${base}/metrics`)).body, /portcullis_/);
    assert.equal((await get(`${base}/policy`)).status, 404);
  });

  it('on SIGTERM fails /ready at once, keeps accepting for the drain delay, then refuses and exits 0', async () => {
    const started = Date.now();
    child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    const ready = await get(`http://127.0.0.1:${statusPort}/ready`);
    assert.equal(ready.status, 503);
    assert.deepEqual(JSON.parse(ready.body).reasons, ['draining']);
    const during = await call('/public/during-delay');
    assert.equal(during.status, 200, 'a new connection during the delay is still served');
    assert.ok(Date.now() - started < 1500, 'that request was inside the delay');
    await new Promise((r) => setTimeout(r, Math.max(0, 1500 + 400 - (Date.now() - started))));
    await assert.rejects(call('/public/after-delay'), 'after the delay new connections are refused');
    const [code] = (child.exitCode !== null ? [child.exitCode] : await once(child, 'exit')) as [number];
    assert.equal(code, 0);
    assert.ok(upstream.requests.some((r) => r.url === '/public/during-delay'));
    assert.ok(!upstream.requests.some((r) => r.url === '/public/after-delay'));
  });
});
