import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestPki } from '../../test/helpers/pki.js';
import { makeCrl, opensslAvailable } from '../../test/helpers/crl.js';
import { CrlStore } from './crl-store.js';
import { CrlParseError } from './crl.js';

const skip = opensslAvailable() ? false : 'openssl is not installed';

test('CrlStore: a bad file refuses to start; on reload it keeps the last good lists and says so', { skip }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-crlstore-'));
  const warnings: string[] = [];
  const logger = { info() {}, warn(obj: object) { warnings.push(JSON.stringify(obj)); }, error() {} };
  try {
    const pki = createTestPki();
    const a = pki.issue({ spiffeId: 'spiffe://cluster.local/ns/foo/sa/a' });
    const file = join(dir, 'ca.crl');
    writeFileSync(file, 'garbage');
    await assert.rejects(CrlStore.load({ files: [file], logger, watch: false }), (e: Error) => e instanceof CrlParseError && e.message.includes(file));
    writeFileSync(file, makeCrl(pki, [a.certPem], 'der'));
    const store = await CrlStore.load({ files: [file], logger, watch: false });
    const first = store.current();
    assert.equal(first.size, 1);
    assert.deepEqual(await store.reload(), { changed: false, errors: [] });
    writeFileSync(file, '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
    const bad = await store.reload();
    assert.equal(bad.changed, false);
    assert.equal(bad.errors.length, 1);
    assert.equal(store.current(), first, 'last good lists stay in force');
    assert.ok(warnings.some((w) => w.includes('crl_reload_failed')));
    writeFileSync(file, makeCrl(pki, [], 'pem'));
    const good = await store.reload();
    assert.equal(good.changed, true);
    assert.equal(store.current().generation, first.generation + 1);
    assert.equal(store.current().crls[0]?.revoked.size, 0);
    store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
