import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createJwtAuthenticator } from './authenticator.js';
import { createJwksFetcher, type JwksFetcher } from './fetch-jwks.js';
import { JwksCache } from './jwks-cache.js';
import type { AuthnResult, JwtAuthenticator, JwtRequestView } from './types.js';
import { authOptions, jwksJson, makeKey, mint, provider, startJwksServer, type JwksTestServer, type TestKey } from './testing.js';

const ISS = 'https://issuer.example';
const T0 = 1_800_000_000_000;
const TTL = 60_000;
const GRACE = 120_000;
const KID_INTERVAL = 10_000;
const RETRY = 1_000;

let key1: TestKey;
let key2: TestKey;
let server: JwksTestServer;
let fetcher: JwksFetcher;

before(async () => {
  key1 = await makeKey('RS256', 'k1');
  key2 = await makeKey('ES256', 'k2');
  server = await startJwksServer(jwksJson(key1));
  fetcher = createJwksFetcher({ allowHttps: true, ca: server.ca });
});

after(async () => {
  await fetcher.close();
  await server.close();
});

function bearer(token: string): JwtRequestView {
  return { method: 'GET', target: '/', headers: { authorization: `Bearer ${token}` } };
}

function token(key: TestKey, kid = key.kid): Promise<string> {
  return mint({ ...key, kid }, { iss: ISS, sub: 'alice', exp: Math.floor(T0 / 1000) + 10 * 3600 });
}

/** An authenticator on the test server with a hand-driven clock. */
async function setup(): Promise<{ authn: JwtAuthenticator; clock: { now: number } }> {
  const clock = { now: T0 };
  const authn = createJwtAuthenticator(
    [provider({ issuer: ISS, jwks: { kind: 'uri', uri: server.url }, timeoutMs: 2000 })],
    authOptions({
      now: () => clock.now,
      fetchJwks: fetcher,
      cacheTtlMs: TTL,
      staleGraceMs: GRACE,
      unknownKidMinIntervalMs: KID_INTERVAL,
      retryAfterFailureMs: RETRY,
      refreshIntervalMs: 0,
    }),
  );
  await authn.ready?.();
  return { authn, clock };
}

function kindOf(result: AuthnResult): string {
  return result.kind === 'failed' ? `failed:${result.status}:${result.reason}:${result.message}` : result.kind;
}

describe('JWKS cache over real HTTPS', () => {
  it('picks up a rotated key through an unknown kid, with one refetch', async () => {
    server.serve(200, jwksJson(key1));
    const { authn } = await setup();
    try {
      assert.equal(kindOf(await authn.authenticate(bearer(await token(key1)))), 'verified');
      const hitsBefore = server.hits();
      server.serve(200, jwksJson(key2));
      assert.equal(kindOf(await authn.authenticate(bearer(await token(key2)))), 'verified');
      assert.equal(server.hits() - hitsBefore, 1);
      // key1 left the set with the rotation.
      assert.equal(kindOf(await authn.authenticate(bearer(await token(key1)))), "failed:401:jwt_no_matching_key:Jwks doesn't have key to match kid or alg from Jwt");
    } finally {
      authn.close();
    }
  });

  it('bounds refetches caused by unknown kids to one per interval per URI', async () => {
    server.serve(200, jwksJson(key1));
    const { authn, clock } = await setup();
    try {
      const hitsBefore = server.hits();
      const forged = await Promise.all(Array.from({ length: 20 }, (_, i) => token(key1, `forged-${i}`)));
      const results = await Promise.all(forged.map((t) => authn.authenticate(bearer(t))));
      for (const r of results) assert.equal(kindOf(r), "failed:401:jwt_no_matching_key:Jwks doesn't have key to match kid or alg from Jwt");
      for (const t of forged) await authn.authenticate(bearer(t));
      assert.equal(server.hits() - hitsBefore, 1);
      clock.now += KID_INTERVAL;
      await authn.authenticate(bearer(forged[0]!));
      await authn.authenticate(bearer(forged[1]!));
      assert.equal(server.hits() - hitsBefore, 2);
    } finally {
      authn.close();
    }
  });

  it('serves stale keys while the server fails, then fails closed after the grace, then recovers', async () => {
    server.serve(200, jwksJson(key1));
    const { authn, clock } = await setup();
    try {
      const good = await token(key1);
      assert.equal(kindOf(await authn.authenticate(bearer(good))), 'verified');
      server.serve(500, 'oops');
      const hitsBefore = server.hits();

      clock.now = T0 + TTL + 1_000; // expired, within grace
      assert.equal(kindOf(await authn.authenticate(bearer(good))), 'verified');
      await authn.ready?.();
      assert.equal(server.hits() - hitsBefore, 1, 'one background refresh attempt');
      assert.equal(kindOf(await authn.authenticate(bearer(good))), 'verified');
      assert.equal(server.hits() - hitsBefore, 1, 'no retry within retryAfterFailureMs');

      clock.now = T0 + TTL + GRACE + 1; // beyond the grace
      assert.equal(kindOf(await authn.authenticate(bearer(good))), 'failed:401:jwks_unavailable:Jwks remote fetch is failed');
      assert.equal(kindOf(await authn.authenticate({ method: 'GET', target: '/', headers: {} })), 'none');

      server.serve(200, jwksJson(key1));
      clock.now += RETRY;
      assert.equal(kindOf(await authn.authenticate(bearer(good))), 'verified');
    } finally {
      authn.close();
    }
  });

  it('fails closed from a cold start when the server never answers 200, without a fetch storm', async () => {
    server.serve(503, 'down');
    const { authn } = await setup();
    try {
      const hitsBefore = server.hits();
      const results = await Promise.all(Array.from({ length: 10 }, async () => authn.authenticate(bearer(await token(key1)))));
      for (const r of results) assert.equal(kindOf(r), 'failed:401:jwks_unavailable:Jwks remote fetch is failed');
      assert.ok(server.hits() - hitsBefore <= 1, `hits ${server.hits() - hitsBefore}`);
    } finally {
      authn.close();
    }
  });

  it('a malformed key set is a failed fetch: the last good set is kept', async () => {
    server.serve(200, jwksJson(key1));
    const { authn, clock } = await setup();
    try {
      server.serve(200, '{"keys": "nope"}');
      clock.now = T0 + TTL + 1;
      assert.equal(kindOf(await authn.authenticate(bearer(await token(key1)))), 'verified');
    } finally {
      authn.close();
    }
  });

  it('refreshes in the background on refreshIntervalMs and close() stops it', async () => {
    server.serve(200, jwksJson(key1));
    const authn = createJwtAuthenticator(
      [provider({ issuer: ISS, jwks: { kind: 'uri', uri: server.url } })],
      authOptions({ fetchJwks: fetcher, refreshIntervalMs: 20 }),
    );
    await authn.ready?.();
    const start = server.hits();
    for (let i = 0; i < 200 && server.hits() - start < 2; i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(server.hits() - start >= 2, 'timer refreshed');
    authn.close();
    await new Promise((r) => setTimeout(r, 30));
    const stopped = server.hits();
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(server.hits(), stopped);
  });
});

it('each register is undone by one release: the URI stays registered until the last release', async () => {
  let fetches = 0;
  const cache = new JwksCache({
    now: () => 0, fetchJwks: () => { fetches++; return Promise.resolve('{"keys":[]}'); },
    cacheTtlMs: 60_000, refreshIntervalMs: 60_000, staleGraceMs: 0, unknownKidMinIntervalMs: 0, retryAfterFailureMs: 0,
  });
  cache.register('u', 1000);
  cache.register('u', 2000);
  await cache.settle();
  assert.equal(fetches, 1, 'the second registration reuses the entry');
  cache.release('u');
  assert.equal(cache.stats('u')?.fetches, 1, 'still registered once');
  cache.release('u');
  assert.equal(cache.stats('u'), undefined);
  assert.deepEqual(await cache.get('u'), { kind: 'unavailable', error: 'JWKS URI not registered' });
  cache.close();
});
