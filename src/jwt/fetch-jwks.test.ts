import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { createJwksFetcher } from './fetch-jwks.js';
import { selfSignedCert, startJwksServer, type JwksTestServer } from './testing.js';

let server: JwksTestServer;
let dir: string;

before(async () => {
  server = await startJwksServer('{"keys":[]}');
  dir = mkdtempSync(join(tmpdir(), 'portcullis-jwks-'));
});

after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('createJwksFetcher', () => {
  it('fetches over https with the given CA', async () => {
    const fetcher = createJwksFetcher({ allowHttps: true, ca: server.ca });
    try {
      server.serve(200, '{"keys":[{"kty":"EC"}]}');
      assert.equal(await fetcher(server.url, 2000), '{"keys":[{"kty":"EC"}]}');
    } finally {
      await fetcher.close();
    }
  });

  it('refuses a server whose certificate does not chain to the trust anchors', async () => {
    const fetcher = createJwksFetcher({ allowHttps: true });
    const wrongCa = createJwksFetcher({ allowHttps: true, ca: selfSignedCert().cert });
    try {
      await assert.rejects(fetcher(server.url, 2000));
      await assert.rejects(wrongCa(server.url, 2000));
    } finally {
      await fetcher.close();
      await wrongCa.close();
    }
  });

  it('refuses non-200 answers, oversized bodies, plain http and disabled https', async () => {
    const fetcher = createJwksFetcher({ allowHttps: true, ca: server.ca, maxBytes: 64 });
    const noHttps = createJwksFetcher({ allowHttps: false });
    try {
      server.serve(500, '{"keys":[]}');
      await assert.rejects(fetcher(server.url, 2000), /HTTP 500/);
      server.serve(200, JSON.stringify({ keys: [], pad: 'x'.repeat(100) }));
      await assert.rejects(fetcher(server.url, 2000), /cap/);
      await assert.rejects(fetcher('http://127.0.0.1:1/jwks', 2000), /only https/);
      await assert.rejects(noHttps(server.url, 2000), /disabled/);
      await assert.rejects(fetcher('not a url', 2000), /not a URL/);
    } finally {
      await fetcher.close();
      await noHttps.close();
    }
  });

  it('times out a server that never answers', async () => {
    const { cert, key } = selfSignedCert();
    const silent = createServer({ cert, key }, () => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    assert.ok(address !== null && typeof address === 'object');
    const fetcher = createJwksFetcher({ allowHttps: true, ca: cert });
    try {
      const started = process.hrtime.bigint();
      await assert.rejects(fetcher(`https://127.0.0.1:${address.port}/jwks`, 200));
      const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
      assert.ok(elapsedMs < 5000, `took ${elapsedMs} ms`);
    } finally {
      await fetcher.close();
      silent.closeAllConnections();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('reads file:// URIs (https disabled) and caps their size', async () => {
    const fetcher = createJwksFetcher({ allowHttps: false, maxBytes: 32 });
    const small = join(dir, 'small.json');
    const big = join(dir, 'big.json');
    writeFileSync(small, '{"keys":[]}');
    writeFileSync(big, `{"keys":[],"pad":"${'x'.repeat(64)}"}`);
    assert.equal(await fetcher(pathToFileURL(small).href, 1000), '{"keys":[]}');
    await assert.rejects(fetcher(pathToFileURL(big).href, 1000), /cap/);
    await assert.rejects(fetcher(pathToFileURL(join(dir, 'missing.json')).href, 1000));
  });
});
