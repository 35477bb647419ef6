import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { stallSweep } from './h1-stall-sweep.js';

/** A connected pair of loopback sockets: `server` is the one the sweep watches. */
async function pair(): Promise<{ server: net.Socket; client: net.Socket; close(): void }> {
  const listener = net.createServer();
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  const client = net.connect((listener.address() as net.AddressInfo).port, '127.0.0.1');
  const [server] = (await once(listener, 'connection')) as [net.Socket];
  server.on('data', () => { /* read whatever comes */ });
  return { server, client, close: () => { client.destroy(); server.destroy(); listener.close(); } };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('stallSweep (limits.idleTimeout while an HTTP/1.1 request is in flight)', () => {
  it('reports a busy connection on which nothing moved for the limit, once it is closed', async () => {
    const { server, close } = await pair();
    const stalled: net.Socket[] = [];
    // As the listener does: the stalled connection is destroyed.
    const sweep = stallSweep(100, () => [server], () => true, (s) => { stalled.push(s); s.destroy(); });
    try {
      const started = performance.now();
      sweep.wake();
      for (let i = 0; i < 100 && stalled.length === 0; i++) await sleep(10);
      assert.deepEqual(stalled, [server]);
      assert.ok(performance.now() - started >= 100, 'not before the limit');
      await sleep(150);
      assert.equal(stalled.length, 1);
    } finally { sweep.stop(); close(); }
  });

  it('leaves alone a busy connection whose bytes keep moving, and one with no request in flight', async () => {
    const moving = await pair();
    const quiet = await pair();
    const stalled: net.Socket[] = [];
    // A limit well above the writes' spacing: only a stall of the test's own event loop could look like one.
    const sweep = stallSweep(250, () => [moving.server, quiet.server], (s) => s === moving.server, (s) => stalled.push(s));
    try {
      sweep.wake();
      for (let i = 0; i < 15; i++) {
        moving.client.write('x');
        await sleep(20);
      }
      assert.deepEqual(stalled, []);
      // Once the bytes stop, the same connection is reported.
      for (let i = 0; i < 200 && stalled.length === 0; i++) await sleep(10);
      assert.deepEqual(stalled, [moving.server]);
    } finally { sweep.stop(); moving.close(); quiet.close(); }
  });
});
