// Integration: label-based peer selectors through the real proxy (real mTLS, HTTP/1.1) with the peer registry
// file: an allow needs every pod of the caller's identity, an unknown identity fails closed, a registry change
// changes decisions without a restart, and a refused registry keeps the last good one deciding.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sharedTestPki } from '../helpers/pki.js';
import { repoRoot } from '../helpers/paths.js';
import { getText, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';

// The workload is foo/httpbin (app=api). Pods labelled role=client in its namespace may call it.
const POLICY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: clients-only, namespace: foo}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - podSelector: {matchLabels: {role: client}}
`;

const FRONTEND = 'spiffe://cluster.local/ns/foo/sa/frontend';
const OTHER = 'spiffe://cluster.local/ns/foo/sa/other';
const pod = (id: string, role: string, ip: string) => `- spiffeId: ${id}\n  labels: {role: ${role}}\n  ips: [${ip}]\n`;
// frontend: two pods, both clients. other: one client pod and one batch pod (a heterogeneous identity).
// admin: not registered.
const REGISTRY = `peers:\n${pod(FRONTEND, 'client', '10.1.0.1')}${pod(FRONTEND, 'client', '10.1.0.2')}${pod(OTHER, 'client', '10.1.0.3')}${pod(OTHER, 'batch', '10.1.0.4')}`;
const RELABELLED = `peers:\n${pod(FRONTEND, 'client', '10.1.0.1')}${pod(FRONTEND, 'client', '10.1.0.2')}${pod(OTHER, 'client', '10.1.0.3')}${pod(OTHER, 'client', '10.1.0.4')}`;

const { svids } = sharedTestPki();

describe('label-based peer selectors through the real proxy, with the peer registry', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  let dir: string;
  let registry: string;
  const replace = (text: string) => {
    writeFileSync(join(dir, 'next.tmp'), text);
    renameSync(join(dir, 'next.tmp'), registry);
  };
  const status = async (path: string, who: typeof svids.frontend) => (await getText(`${proxy.origin}${path}`, mtlsAgent(proxy, who))).status;
  const peersOnPolicy = async () => ((await (await fetch(`http://127.0.0.1:${proxy.adminPort}/policy`)).json()) as { peers: { pods: number; lastReload: { result: string } } }).peers;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-registry-it-'));
    registry = join(dir, 'peers.yaml');
    writeFileSync(registry, REGISTRY);
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: POLICY, upstream: upstream.url, flags: ['--labels', 'app=api', '--peers', registry] });
  });
  after(async () => { await proxy.stop(); await upstream.close(); rmSync(dir, { recursive: true, force: true }); });

  it('an identity all of whose pods match is admitted; the decision names dialect, tier, policy and rule', async () => {
    assert.equal(await status('/a', svids.frontend), 200);
    assert.equal(upstream.requests.at(-1)?.url, '/a');
    const ev = await proxy.event((e) => e.request.path === '/a');
    assert.equal(ev?.dialect, 'kubernetes');
    assert.equal(ev?.tier, 'networkpolicy');
    assert.deepEqual(ev?.policy, { kind: 'NetworkPolicy', namespace: 'foo', name: 'clients-only' });
    assert.match(ev?.rule ?? '', /policy\[clients-only\]-ingress\[0\]/);
  });

  it('an identity with one pod outside the selector is refused (an allow never over-grants), and so is an unknown one', async () => {
    const before = upstream.requests.length;
    assert.equal(await status('/b', svids.other), 403);
    assert.equal(await status('/c', svids.admin), 403);
    assert.equal(upstream.requests.length, before, 'the workload saw neither request');
    const ev = await proxy.event((e) => e.request.path === '/c');
    assert.equal(ev?.verdict, 'deny');
    assert.equal(ev?.dialect, 'kubernetes');
  });

  it('a new registry changes the decision without a restart; a refused one keeps the last good registry deciding', async () => {
    replace(RELABELLED);
    let code = 0;
    for (let i = 0; i < 200 && code !== 200; i++) {
      await new Promise((r) => setTimeout(r, 25));
      code = await status('/d', svids.other);
    }
    assert.equal(code, 200, 'other is admitted once both of its pods are clients');
    replace('peers:\n- spiffeId: spiffe://cluster.local/ns/foo/sa/other\n  namespace: bar\n');
    let peers = await peersOnPolicy();
    for (let i = 0; i < 200 && peers.lastReload.result !== 'failure'; i++) {
      await new Promise((r) => setTimeout(r, 25));
      peers = await peersOnPolicy();
    }
    assert.equal(peers.lastReload.result, 'failure');
    assert.equal(peers.pods, 4, 'the last good registry is in force');
    assert.equal(await status('/e', svids.other), 200);
    assert.equal(await status('/f', svids.admin), 403);
  });

  it('explain names the selector, the identities it stands for and an unregistered caller', () => {
    const policyFile = join(dir, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    writeFileSync(join(dir, 'registry.yaml'), REGISTRY);
    const r = spawnSync(process.execPath, [join(repoRoot(), 'dist/src/main.js'), 'explain', '--policies', policyFile, '--peers', join(dir, 'registry.yaml'),
      '--namespace', 'foo', '--labels', 'app=api', '--request', '-'], {
      encoding: 'utf8', timeout: 30_000,
      input: JSON.stringify({ method: 'GET', path: '/', host: 'api', peer: 'spiffe://cluster.local/ns/foo/sa/admin', sourceIp: '10.1.0.9', port: 8080 }),
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /Decision: DENY 403/);
    assert.match(r.stdout, new RegExp(`peer\\.registered +wants .*${FRONTEND.replace(/[/.]/g, '\\$&')}.*, saw "spiffe://cluster\\.local/ns/foo/sa/admin \\(not in the registry\\)"`));
    assert.doesNotMatch(r.stdout, new RegExp(`wants [^\\n]*${OTHER.replace(/[/.]/g, '\\$&')}`), 'the heterogeneous identity is not among the allowed ones');
  });
});
