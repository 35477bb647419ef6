import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { buildCredentials, CredentialError, CredentialStore, serverSecureOptions, type IdentityLogger } from './credentials.js';
import { sharedTestPki, TEST_IDS } from '../../test/helpers/pki.js';

const { pki, svids } = sharedTestPki();
const now = Date.now();
const root = mkdtempSync(join(tmpdir(), 'portcullis-creds-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The store's timers are unref'd (they must never keep a process alive); hold the loop open while waiting. */
function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no result within ${ms} ms`)), ms)));
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

function recordingLogger(): IdentityLogger & { lines: string[] } {
  const lines: string[] = [];
  return { lines, info: (_o, m) => lines.push(`info ${m}`), warn: (_o, m) => lines.push(`warn ${m}`), error: (o, m) => lines.push(`error ${m} ${JSON.stringify(o)}`) };
}

test('buildCredentials accepts a valid SVID and exposes ID, expiry, bundle', () => {
  const { credentials, warnings } = buildCredentials(svids.server.chainPem, svids.server.keyPem, pki.caCertPem + pki.otherCa().caCertPem, now);
  assert.equal(credentials.ownSpiffeId, TEST_IDS.httpbin);
  assert.equal(credentials.bundle.length, 2);
  assert.equal(credentials.notAfter.getTime(), Date.parse(svids.server.cert.validTo));
  assert.deepEqual(warnings, []);
});

const refusals: Array<[string, () => [string, string, string], RegExp]> = [
  ['key of another cert', () => [svids.server.chainPem, svids.other.keyPem, pki.caCertPem], /does not match/],
  ['expired cert', () => [svids.expired.chainPem, svids.expired.keyPem, pki.caCertPem], /expired/],
  ['not yet valid cert', () => [svids.notYetValid.chainPem, svids.notYetValid.keyPem, pki.caCertPem], /not valid before/],
  ['CA as own cert', () => [pki.caCertPem, pki.caKeyPem, pki.caCertPem], /CA certificate/],
  ['no URI SAN', () => [svids.noUriSan.chainPem, svids.noUriSan.keyPem, pki.caCertPem], /0 URI SANs/],
  ['bad SPIFFE ID', () => [svids.uppercaseScheme.chainPem, svids.uppercaseScheme.keyPem, pki.caCertPem], /not a SPIFFE ID/],
  ['leaf in the bundle', () => [svids.server.chainPem, svids.server.keyPem, svids.frontend.certPem], /not a CA/],
  ['empty bundle', () => [svids.server.chainPem, svids.server.keyPem, ''], /no PEM certificate/],
  ['garbage key', () => [svids.server.chainPem, 'not a key', pki.caCertPem], /not a parseable private key/],
  ['truncated cert', () => [svids.server.certPem.slice(0, 200) + '\n-----END CERTIFICATE-----\n', svids.server.keyPem, pki.caCertPem], /not parseable/],
];
for (const [name, input, message] of refusals) {
  test(`buildCredentials refuses: ${name}`, () => {
    assert.throws(() => buildCredentials(...input(), now), (err: unknown) => err instanceof CredentialError && message.test(err.message));
  });
}

test('an own SVID from another CA loads with a warning (peers will refuse it)', () => {
  const { warnings } = buildCredentials(svids.otherCa.chainPem, svids.otherCa.keyPem, pki.caCertPem, now);
  assert.match(warnings.join('\n'), /does not end at a CA in the trust bundle/);
});

test('server options disable session tickets and carry fresh ticket keys per call', () => {
  const { credentials } = buildCredentials(svids.server.chainPem, svids.server.keyPem, pki.caCertPem, now);
  const a = serverSecureOptions(credentials);
  const b = serverSecureOptions(credentials);
  assert.equal((a.secureOptions ?? 0) & constants.SSL_OP_NO_TICKET, constants.SSL_OP_NO_TICKET);
  assert.equal(a.minVersion, 'TLSv1.2');
  assert.notDeepEqual(a.ticketKeys, b.ticketKeys);
});

test('CredentialStore.load fails closed on unusable files and names the problem', async () => {
  const dir = join(root, 'bad');
  const files = { certFile: join(dir, 'c.pem'), keyFile: join(dir, 'k.pem'), trustBundleFile: join(dir, 'b.pem') };
  await assert.rejects(CredentialStore.load({ ...files, watch: false, logger: recordingLogger() }), /ENOENT/);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  writeFileSync(files.certFile, svids.server.chainPem);
  writeFileSync(files.keyFile, svids.admin.keyPem);
  writeFileSync(files.trustBundleFile, pki.caCertPem);
  await assert.rejects(CredentialStore.load({ ...files, watch: false, logger: recordingLogger() }), /does not match/);
});

test('polling alone picks up a rotation; the same broken files are reported once', async () => {
  const dir = join(root, 'poll');
  mkdirSync(dir, { recursive: true });
  const files = { certFile: join(dir, 'svid.crt'), keyFile: join(dir, 'svid.key'), trustBundleFile: join(dir, 'bundle.crt') };
  writeFileSync(files.certFile, svids.server.chainPem);
  writeFileSync(files.keyFile, svids.server.keyPem);
  writeFileSync(files.trustBundleFile, pki.caCertPem);
  const logger = recordingLogger();
  const store = await CredentialStore.load({ ...files, logger, fsWatch: false, pollIntervalMs: 30 });
  try {
    const changes: number[] = [];
    store.onChange((c) => changes.push(c.generation));
    assert.ok(store.secondsToExpiry() > 0);
    const next = pki.issue({ spiffeId: TEST_IDS.httpbin });
    const swapped = new Promise<void>((resolve) => store.onChange(() => resolve()));
    writeFileSync(files.keyFile, next.keyPem);
    writeFileSync(files.certFile, next.chainPem);
    await within(swapped);
    assert.equal(store.current().notAfter.getTime(), Date.parse(next.cert.validTo));
    // Broken: a key that matches nothing. Many polls pass; it is counted and logged once.
    const failed = new Promise<void>((resolve) => store.onReload((r) => !r.ok && resolve()));
    writeFileSync(files.keyFile, svids.admin.keyPem);
    await within(failed);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(store.stats.failures, 1);
    assert.equal(logger.lines.filter((l) => l.startsWith('error')).length, 1);
    assert.equal(store.current().generation, changes[changes.length - 1]);
    // Reload on demand with unchanged files is a no-op.
    assert.deepEqual(await store.reload(), { ok: true, changed: false });
  } finally {
    store.close();
  }
});
