import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connectionsCheckingIntervalMs } from './h1-connection-checks.js';

test('Node checks headersTimeout/requestTimeout every 1/50 of the shorter one: a timeout fires within 2% of its target', () => {
  assert.equal(connectionsCheckingIntervalMs({ headersTimeoutMs: 10_000, requestTimeoutMs: 300_000 }), 200);
  assert.equal(connectionsCheckingIntervalMs({ headersTimeoutMs: 1000, requestTimeoutMs: 300_000 }), 20);
  assert.equal(connectionsCheckingIntervalMs({ headersTimeoutMs: 60_000, requestTimeoutMs: 20_000 }), 400);
  // Bounded both ways: never busier than every 10 ms, never coarser than every second.
  assert.equal(connectionsCheckingIntervalMs({ headersTimeoutMs: 300, requestTimeoutMs: 300_000 }), 10);
  assert.equal(connectionsCheckingIntervalMs({ headersTimeoutMs: 3_600_000, requestTimeoutMs: 3_600_000 }), 1000);
});
