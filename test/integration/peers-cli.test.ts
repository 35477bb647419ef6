// The peer registry at the command line: `check`, `explain` and `validate` take --peers and refuse a bad
// registry with file:line, `run` refuses to start on one, and a running sidecar shows the registry on /policy
// and reloads it when the file is replaced.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { sharedTestPki, writePkiFiles } from '../helpers/pki.js';
import { startProxy } from './harness.js';

const main = join(repoRoot(), 'dist/src/main.js');

function run(args: string[], input?: string): { code: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 30_000, ...(input !== undefined ? { input } : {}) });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

const POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-web, namespace: shop}
spec:
  rules:
  - from: [{source: {principals: [cluster.local/ns/shop/sa/web]}}]
`;
const GOOD = `peers:
- spiffeId: spiffe://cluster.local/ns/shop/sa/web
  labels: {app: web}
  ips: [10.1.0.7]
`;
const BAD = `peers:
- spiffeId: spiffe://cluster.local/ns/shop/sa/web
  namespace: billing
`;

function files(): { dir: string; policy: string; good: string; bad: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-peers-cli-'));
  const policy = join(dir, 'policy.yaml');
  const good = join(dir, 'peers.yaml');
  const bad = join(dir, 'bad-peers.yaml');
  writeFileSync(policy, POLICY);
  writeFileSync(good, GOOD);
  writeFileSync(bad, BAD);
  return { dir, policy, good, bad, done: () => rmSync(dir, { recursive: true, force: true }) };
}

const request = JSON.stringify({ method: 'GET', path: '/', host: 'api', peer: 'spiffe://cluster.local/ns/shop/sa/web', sourceIp: '10.1.0.7', port: 8080 });

describe('--peers on check, explain and validate', () => {
  it('check decides with a good registry and refuses a bad one with file, line and field, exit 2', () => {
    const f = files();
    try {
      const ok = run(['check', '--policies', f.policy, '--peers', f.good, '--namespace', 'shop', '--namespace-labels', 'team=shop', '--request', '-'], request);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((JSON.parse(ok.stdout) as { verdict: string }).verdict, 'allow');
      const bad = run(['check', '--policies', f.policy, '--peers', f.bad, '--namespace', 'shop', '--request', '-'], request);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, new RegExp(`${f.bad.replace(/[/.]/g, '\\$&')}:3:14 error PRT_PEERS_IDENTITY_MISMATCH namespace 'billing' disagrees with the SPIFFE ID .* \\(peers\\[0\\]\\.namespace\\)`));
      assert.match(bad.stderr, /the peer registry has errors; nothing was decided/);
      assert.equal(bad.stdout, '');
      const missing = run(['explain', '--policies', f.policy, '--peers', join(f.dir, 'nope.yaml'), '--request', '-'], request);
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /nope\.yaml:1:1 error PRT_PEERS_READ cannot read the peer registry: no such file or directory/);
    } finally { f.done(); }
  });

  it('validate checks a registry alone or with policies', () => {
    const f = files();
    try {
      const alone = run(['validate', '--peers', f.good]);
      assert.equal(alone.code, 0, alone.stderr);
      const both = run(['validate', '--peers', f.bad, f.policy]);
      assert.equal(both.code, 1);
      assert.match(both.stdout, /bad-peers\.yaml:3:14 error PRT_PEERS_IDENTITY_MISMATCH/);
      const unreadable = run(['validate', '--peers', join(f.dir, 'nope.yaml')]);
      assert.equal(unreadable.code, 2);
    } finally { f.done(); }
  });
});

describe('peers in portcullis run', () => {
  it('a bad registry refuses the start, exit 2, naming the file and line', () => {
    const f = files();
    try {
      const { pki, svids } = sharedTestPki();
      const pkiFiles = writePkiFiles(join(f.dir, 'pki'), pki, { server: svids.server });
      const server = pkiFiles.files.server as { cert: string; key: string };
      const r = run(['run', '--listener', 'listen=127.0.0.1:0,upstream=http://127.0.0.1:1', '--admin', '127.0.0.1:0', '--policies', f.policy,
        '--peers', f.bad, '--cert', server.cert, '--key', server.key, '--trust-bundle', pkiFiles.bundle, '--namespace', 'shop']);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /peer registry refused, nothing started/);
      assert.match(r.stderr, /bad-peers\.yaml:3: PRT_PEERS_IDENTITY_MISMATCH|bad-peers\.yaml:3:14 error PRT_PEERS_IDENTITY_MISMATCH/);
    } finally { f.done(); }
  });

  it('/policy shows the registry in force and the last read; replacing the file reloads it, a bad file keeps the last good', async () => {
    const f = files();
    const proxy = await startProxy({ policy: POLICY.replace(/shop/g, 'foo'), upstream: 'http://127.0.0.1:1', flags: ['--peers', f.good] });
    try {
      const policyJson = async () => (await (await fetch(`http://127.0.0.1:${proxy.adminPort}/policy`)).json()) as { revision: string; peers?: { identities: number; pods: number; source: string; lastReload: { result: string; diagnostics: { code: string }[] } } };
      const first = await policyJson();
      assert.equal(first.peers?.identities, 1);
      assert.equal(first.peers?.source, `file ${f.good}`);
      writeFileSync(join(f.dir, 'next.tmp'), `${GOOD}- spiffeId: spiffe://cluster.local/ns/shop/sa/api\n- spiffeId: spiffe://cluster.local/ns/shop/sa/api\n`);
      renameSync(join(f.dir, 'next.tmp'), f.good);
      let now = first;
      for (let i = 0; i < 200 && now.peers?.identities !== 2; i++) { await new Promise((r) => setTimeout(r, 25)); now = await policyJson(); }
      assert.equal(now.peers?.pods, 3);
      assert.notEqual(now.revision, first.revision, 'a registry change recompiles the snapshot');
      writeFileSync(f.good, BAD);
      for (let i = 0; i < 200 && now.peers?.lastReload.result !== 'failure'; i++) { await new Promise((r) => setTimeout(r, 25)); now = await policyJson(); }
      assert.equal(now.peers?.lastReload.diagnostics[0]?.code, 'PRT_PEERS_IDENTITY_MISMATCH');
      assert.equal(now.peers?.identities, 2, 'the last good registry stays in force');
      const metrics = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/metrics`)).text();
      assert.match(metrics, /^portcullis_peer_registry_refused 1$/m);
      assert.match(metrics, /^portcullis_peer_registry_reload_total\{result="failure"\} [1-9]/m);
    } finally {
      await proxy.stop();
      f.done();
    }
  });
});
