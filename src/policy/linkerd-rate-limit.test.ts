import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalRateLimiter } from './linkerd-rate-limit.js';

const ref = { dialect: 'linkerd' as const, kind: 'HTTPLocalRateLimitPolicy', namespace: 'ns', name: 'rl' };

test('a bucket holds one second of quota and refills continuously', () => {
  const rl = new LocalRateLimiter();
  const limit = { key: 'ns/rl', ref, identityRps: 10 };
  let admitted = 0;
  for (let i = 0; i < 15; i++) if (rl.admit(limit, 'a', 0)) admitted++;
  assert.equal(admitted, 10);
  assert.equal(rl.admit(limit, 'a', 50), false, 'half a token after 50 ms');
  assert.equal(rl.admit(limit, 'a', 100), true, 'one token after 100 ms');
  assert.equal(rl.admit(limit, 'a', 100), false);
  assert.equal(rl.admit(limit, 'b', 100), true, 'another identity has its own bucket');
});

test('total is checked first and shared; override replaces the identity limit', () => {
  const rl = new LocalRateLimiter();
  assert.equal(rl.admit({ key: 'k', ref, totalRps: 2, identityRps: 5 }, 'a', 0), true);
  assert.equal(rl.admit({ key: 'k', ref, totalRps: 2, identityRps: 5 }, 'b', 0), true);
  assert.equal(rl.admit({ key: 'k', ref, totalRps: 2, overrideRps: 5 }, 'c', 0), false);
  const o = new LocalRateLimiter();
  const vip = { key: 'k', ref, identityRps: 1, overrideRps: 3 };
  assert.deepEqual([o.admit(vip, 'v', 0), o.admit(vip, 'v', 0), o.admit(vip, 'v', 0), o.admit(vip, 'v', 0)], [true, true, true, false]);
});

test('no limit admits; zero rps refuses; time going backwards never adds tokens', () => {
  const rl = new LocalRateLimiter();
  assert.equal(rl.admit(null, 'a', 0), true);
  assert.equal(rl.admit({ key: 'k', ref }, 'a', 0), true);
  assert.equal(rl.admit({ key: 'k', ref, totalRps: 0 }, 'a', 0), false);
  const one = { key: 'one', ref, totalRps: 1 };
  assert.equal(rl.admit(one, '', 1000), true);
  assert.equal(rl.admit(one, '', 0), false);
  assert.equal(rl.admit(one, '', 1500), false);
  assert.equal(rl.admit(one, '', 2000), true);
});

test('per-identity buckets are bounded (least recently used forgotten)', () => {
  const rl = new LocalRateLimiter({ maxBuckets: 2 });
  const limit = { key: 'k', ref, identityRps: 1 };
  assert.equal(rl.admit(limit, 'a', 0), true);
  assert.equal(rl.admit(limit, 'b', 0), true);
  assert.equal(rl.admit(limit, 'c', 0), true);
  assert.equal(rl.admit(limit, 'a', 0), true, 'a was evicted and starts full again');
});

test('property: over any window of t ms a bucket admits at most rps + rps*t/1000 requests', async () => {
  const fc = (await import('fast-check')).default;
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 50 }),
    fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 200 }),
    (rps, gaps) => {
      const rl = new LocalRateLimiter();
      const limit = { key: 'k', ref, totalRps: rps };
      let now = 0;
      let admitted = 0;
      for (const g of gaps) { now += g; if (rl.admit(limit, '', now)) admitted++; }
      return admitted <= rps + (rps * now) / 1000 + 1e-6;
    },
  ), { numRuns: 300 });
});
