import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as undici from 'undici';
import { Pool, buildConnector, headerNameToString } from './undici-parts.js';

describe('undici-parts', () => {
  it('are the very objects undici exports', () => {
    assert.equal(Pool, undici.Pool);
    assert.equal(buildConnector, undici.buildConnector);
    assert.equal(headerNameToString, undici.util.headerNameToString);
    assert.equal(headerNameToString(Buffer.from('Content-Type')), 'content-type');
  });

  it('the data plane runs without loading undici\'s index (fetch, WebSocket, caches)', () => {
    const inbound = fileURLToPath(new URL('./inbound.js', import.meta.url));
    const outbound = fileURLToPath(new URL('./outbound.js', import.meta.url));
    const script = `
      import { createRequire } from 'node:module';
      await import(${JSON.stringify(inbound)});
      await import(${JSON.stringify(outbound)});
      const loaded = Object.keys(createRequire(import.meta.url).cache);
      console.log(JSON.stringify({ index: loaded.some((f) => /undici[\\\\/]index\\.js$/.test(f)), pool: loaded.some((f) => /undici[\\\\/]lib[\\\\/]dispatcher[\\\\/]pool\\.js$/.test(f)) }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(out), { index: false, pool: true });
  });
});
