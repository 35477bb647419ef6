// Integration: certs/make-demo-pki.sh builds the demo identities with the real CLI, and a re-run
// renews every SVID in place (new key, same SPIFFE ID) while keeping the CA.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { repoRoot } from '../helpers/paths.js';
import { buildCredentials } from '../../src/identity/credentials.js';
import { PeerVerifier } from '../../src/identity/peer.js';

const root = repoRoot();
const out = mkdtempSync(join(tmpdir(), 'portcullis-demo-pki-'));
after(() => rmSync(out, { recursive: true, force: true }));

// Compiled test run -> the compiled CLI beside it; source run (tsx) -> the source CLI.
const compiled = join(root, 'dist', 'src', 'main.js');
const cli = import.meta.url.includes('/dist/') && existsSync(compiled) ? `node ${compiled}` : `node --import tsx ${join(root, 'src', 'main.ts')}`;

function runScript(...args: string[]): string {
  return execFileSync('sh', [join(root, 'certs', 'make-demo-pki.sh'), ...args], { cwd: root, env: { ...process.env, PORTCULLIS: cli }, encoding: 'utf8', timeout: 60_000 });
}

test('make-demo-pki.sh creates the demo identities, and a re-run renews them', () => {
  runScript(join(out, 'pki'), '10m');
  const ca = new X509Certificate(readFileSync(join(out, 'pki', 'ca', 'ca.crt')));
  const first = new Map<string, string>();
  for (const name of ['service-a', 'service-b', 'intruder']) {
    const dir = join(out, 'pki', name);
    const certPem = readFileSync(join(dir, 'svid.crt'), 'utf8');
    const { credentials } = buildCredentials(certPem, readFileSync(join(dir, 'svid.key'), 'utf8'), readFileSync(join(dir, 'bundle.crt'), 'utf8'), Date.now());
    assert.equal(credentials.ownSpiffeId, `spiffe://cluster.local/ns/demo/sa/${name}`);
    assert.equal(statSync(join(dir, 'svid.key')).mode & 0o777, 0o600);
    const v = new PeerVerifier().verify([new X509Certificate(certPem)], [ca], { now: Date.now(), trustDomains: ['cluster.local'] });
    assert.ok(v.ok, v.ok ? '' : v.detail);
    first.set(name, certPem);
  }
  runScript(join(out, 'pki'));
  assert.equal(readFileSync(join(out, 'pki', 'ca', 'ca.crt'), 'utf8'), ca.toString(), 'the CA is kept');
  for (const [name, before] of first) {
    const after1 = readFileSync(join(out, 'pki', name, 'svid.crt'), 'utf8');
    assert.notEqual(after1, before, `${name} renewed`);
    assert.equal(new X509Certificate(after1).subjectAltName?.split(', ')[0], `URI:spiffe://cluster.local/ns/demo/sa/${name}`);
  }
});
