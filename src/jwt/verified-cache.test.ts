import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createJwtAuthenticator } from './authenticator.js';
import { VerifiedSignatureCache } from './verified-cache.js';
import { authOptions, jwksJson, makeKey, mint, provider, startJwksServer } from './testing.js';

test('the cache answers only for the same token, provider and key-set object, and stays bounded', () => {
  const cache = new VerifiedSignatureCache<object, string, string>(2);
  const keysA = {};
  const keysB = {};
  cache.add('t1', 'p', keysA, 'parse of t1');
  assert.equal(cache.has('t1', 'p', keysA), true);
  assert.equal(cache.parsedOf('t1'), 'parse of t1');
  assert.equal(cache.parsedOf('t2'), undefined);
  assert.equal(cache.has('t1', 'other-provider', keysA), false, 'another provider never reuses a verification');
  cache.add('t1', 'p', keysA, 'parse of t1');
  assert.equal(cache.has('t1', 'p', keysB), false, 'a refreshed key set drops the entry');
  assert.equal(cache.has('t1', 'p', keysA), false, 'and it stays dropped');
  cache.add('a', 'p', keysA, 'a');
  cache.add('b', 'p', keysA, 'b');
  assert.equal(cache.has('a', 'p', keysA), true); // a is now the most recently used
  cache.add('c', 'p', keysA, 'c');
  assert.equal(cache.size, 2);
  assert.equal(cache.has('b', 'p', keysA), false, 'the least recently used entry was evicted');
  assert.equal(cache.parsedOf('b'), undefined, 'with its parse');
  assert.equal(cache.has('a', 'p', keysA), true);
});

test('a cached token is still refused once it expires: time claims are checked on every request', async () => {
  const key = await makeKey('ES256', 'k1');
  let now = 1_800_000_000_000;
  const authn = createJwtAuthenticator(
    [provider({ issuer: 'https://iss', jwks: { kind: 'inline', json: jwksJson(key) } })],
    authOptions({ now: () => now }),
  );
  try {
    const token = await mint(key, { iss: 'https://iss', sub: 'alice', exp: now / 1000 + 120 });
    const request = { method: 'GET', target: '/', headers: { authorization: `Bearer ${token}` } };
    assert.equal((await authn.authenticate(request)).kind, 'verified');
    assert.equal((await authn.authenticate(request)).kind, 'verified');
    now += 300_000; // past exp + 60 s skew
    const expired = await authn.authenticate(request);
    assert.equal(expired.kind, 'failed');
    assert.equal(expired.kind === 'failed' && expired.reason, 'jwt_expired');
  } finally {
    authn.close();
  }
});

test('a key removed from the JWKS stops a cached token: rotation is never outlived by the cache', async () => {
  const oldKey = await makeKey('ES256', 'old');
  const newKey = await makeKey('ES256', 'new');
  const server = await startJwksServer(jwksJson(oldKey));
  let now = 1_800_000_000_000;
  const { createJwksFetcher } = await import('./fetch-jwks.js');
  const fetcher = createJwksFetcher({ allowHttps: true, ca: server.ca });
  const authn = createJwtAuthenticator(
    [provider({ issuer: 'https://iss', jwks: { kind: 'uri', uri: server.url } })],
    authOptions({ now: () => now, fetchJwks: fetcher, cacheTtlMs: 1000, refreshIntervalMs: 0, staleGraceMs: 0, unknownKidMinIntervalMs: 0 }),
  );
  try {
    const token = await mint(oldKey, { iss: 'https://iss', sub: 'alice', exp: now / 1000 + 3600 });
    const request = { method: 'GET', target: '/', headers: { authorization: `Bearer ${token}` } };
    assert.equal((await authn.authenticate(request)).kind, 'verified');
    assert.equal((await authn.authenticate(request)).kind, 'verified', 'served from the verified cache');
    server.serve(200, jwksJson(newKey)); // the issuer rotated: the old key is gone
    now += 5_000; // past the key set's TTL
    const afterRotation = await authn.authenticate(request);
    assert.equal(afterRotation.kind, 'failed', JSON.stringify(afterRotation));
    assert.ok(server.hits() >= 2, 'the key set was fetched again');
  } finally {
    authn.close();
    fetcher.close?.();
    await server.close();
  }
});
