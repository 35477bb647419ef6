import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { runCerts } from './certs.js';
import { PeerVerifier } from '../identity/peer.js';
import { buildCredentials } from '../identity/credentials.js';

const root = mkdtempSync(join(tmpdir(), 'portcullis-certs-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** Runs the command with its output captured. */
async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCerts(argv, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

const ca = join(root, 'ca');
const a = join(root, 'a');
const ID = 'spiffe://cluster.local/ns/demo/sa/service-a';

test('init makes a CA with a 0600 key and refuses to overwrite it', async () => {
  const r = await run('init', '--trust-domain', 'cluster.local', '--out', ca);
  assert.equal(r.code, 0, r.err);
  const cert = new X509Certificate(readFileSync(join(ca, 'ca.crt')));
  assert.equal(cert.ca, true);
  assert.equal(statSync(join(ca, 'ca.key')).mode & 0o777, 0o600);
  const again = await run('init', '--trust-domain', 'cluster.local', '--out', ca);
  assert.equal(again.code, 2);
  assert.match(again.err, /refusing to overwrite.*--force/);
  assert.equal(readFileSync(join(ca, 'ca.crt'), 'utf8'), cert.toString(), 'the CA is untouched');
});

test('issue writes an SVID that Portcullis accepts as a peer and as its own credentials', async () => {
  const r = await run('issue', '--ca', ca, '--spiffe-id', ID, '--ttl', '5m', '--out', a, '--dns', 'localhost,service-a');
  assert.equal(r.code, 0, r.err);
  const certPem = readFileSync(join(a, 'svid.crt'), 'utf8');
  const keyPem = readFileSync(join(a, 'svid.key'), 'utf8');
  const bundlePem = readFileSync(join(a, 'bundle.crt'), 'utf8');
  assert.equal(statSync(join(a, 'svid.key')).mode & 0o777, 0o600);
  const leaf = new X509Certificate(certPem);
  assert.equal(leaf.subjectAltName, `URI:${ID}, DNS:localhost, DNS:service-a`);
  const lifetime = Date.parse(leaf.validTo) - Date.now();
  assert.ok(lifetime > 4 * 60_000 && lifetime <= 5 * 60_000, `lifetime ${lifetime}`);
  const v = new PeerVerifier().verify([leaf], [new X509Certificate(bundlePem)], { now: Date.now(), trustDomains: ['cluster.local'] });
  assert.ok(v.ok && v.peer.spiffeId === ID && v.peer.serviceAccount === 'service-a');
  const { credentials } = buildCredentials(certPem, keyPem, bundlePem, Date.now());
  assert.equal(credentials.ownSpiffeId, ID);
});

test('issue refuses to overwrite; --renew rotates key and certificate, same ID', async () => {
  const before = readFileSync(join(a, 'svid.crt'), 'utf8');
  const beforeKey = readFileSync(join(a, 'svid.key'), 'utf8');
  const refused = await run('issue', '--ca', ca, '--spiffe-id', ID, '--out', a);
  assert.equal(refused.code, 2);
  assert.match(refused.err, /--renew/);
  assert.equal(readFileSync(join(a, 'svid.crt'), 'utf8'), before);
  const renewed = await run('issue', '--ca', ca, '--out', a, '--renew');
  assert.equal(renewed.code, 0, renewed.err);
  const after1 = new X509Certificate(readFileSync(join(a, 'svid.crt')));
  assert.notEqual(after1.toString(), new X509Certificate(before).toString());
  assert.notEqual(readFileSync(join(a, 'svid.key'), 'utf8'), beforeKey);
  assert.equal(after1.subjectAltName, `URI:${ID}, DNS:localhost, DNS:service-a`);
  const other = await run('issue', '--ca', ca, '--out', a, '--renew', '--spiffe-id', 'spiffe://cluster.local/ns/demo/sa/other');
  assert.equal(other.code, 2);
  assert.match(other.err, /keeps the SPIFFE ID/);
});

const bad: Array<[string[], RegExp]> = [
  [['issue', '--spiffe-id', ID, '--out', 'x'], /--ca is required/],
  [['issue', '--ca', 'CA', '--spiffe-id', 'SPIFFE://cluster.local/ns/x', '--out', 'OUT'], /lowercase/],
  [['issue', '--ca', 'CA', '--spiffe-id', 'spiffe://cluster.local/ns/x/', '--out', 'OUT'], /end with/],
  [['issue', '--ca', 'CA', '--spiffe-id', 'spiffe://cluster.local', '--out', 'OUT'], /no path/],
  [['issue', '--ca', 'CA', '--spiffe-id', 'spiffe://example.org/ns/x', '--out', 'OUT'], /differs from the CA's trust domain/],
  [['issue', '--ca', 'CA', '--spiffe-id', ID, '--ttl', '10', '--out', 'OUT'], /invalid TTL/],
  [['issue', '--ca', 'CA', '--spiffe-id', ID, '--ttl', '3650d', '--out', 'OUT'], /outlive its CA/],
  [['issue', '--ca', 'CA', '--spiffe-id', ID, '--dns', 'bad_name', '--out', 'OUT'], /invalid DNS name/],
  [['issue', '--ca', 'CA', '--spiffe-id', ID, '--ip', '1.2.3', '--out', 'OUT'], /invalid IP/],
  [['issue', '--ca', 'CA', '--spiffe-id', ID, '--key-type', 'dsa', '--out', 'OUT'], /ec or rsa/],
  [['issue', '--ca', 'NOPE', '--spiffe-id', ID, '--out', 'OUT'], /cannot read the CA/],
  [['issue', '--what'], /Unknown option/],
  [['init', '--trust-domain', 'Cluster.Local', '--out', 'OUT'], /lowercase/],
  [['init', '--trust-domain', 'td:8080', '--out', 'OUT'], /port/],
  [['frobnicate'], /unknown subcommand/],
];
for (const [argv, message] of bad) {
  test(`exit 2 with a clear error: ${argv.join(' ')}`, async () => {
    const args = argv.map((x) => (x === 'CA' ? ca : x === 'OUT' ? join(root, 'never') : x === 'NOPE' ? join(root, 'nope') : x));
    const r = await run(...args);
    assert.equal(r.code, 2);
    assert.match(r.err, message);
  });
}

test('--help for each level exits 0', async () => {
  for (const argv of [['--help'], ['init', '--help'], ['issue', '-h']]) {
    const r = await run(...argv);
    assert.equal(r.code, 0);
    assert.match(r.out, /usage: portcullis certs/);
  }
});

test('an RSA SVID carries keyEncipherment and still verifies', async () => {
  const dir = join(root, 'rsa');
  const r = await run('issue', '--ca', ca, '--spiffe-id', ID, '--out', dir, '--key-type', 'rsa');
  assert.equal(r.code, 0, r.err);
  const leaf = new X509Certificate(readFileSync(join(dir, 'svid.crt')));
  assert.equal(leaf.publicKey.asymmetricKeyType, 'rsa');
  const v = new PeerVerifier().verify([leaf], [new X509Certificate(readFileSync(join(ca, 'ca.crt')))], { now: Date.now(), trustDomains: ['cluster.local'] });
  assert.ok(v.ok);
  writeFileSync(join(root, 'marker'), 'ok');
});
