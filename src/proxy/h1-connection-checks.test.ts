import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { connectionChecks } from './h1-connection-checks.js';

/** The server's checker timer, looked up the way a reader of Node's source would. */
function checker(server: http.Server): NodeJS.Timeout | undefined {
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === 'http.server.connectionsCheckingInterval');
  return key === undefined ? undefined : (server as unknown as Record<symbol, NodeJS.Timeout | undefined>)[key];
}
const stopped = (t: NodeJS.Timeout | undefined): boolean => t === undefined || (t as unknown as { _destroyed: boolean })._destroyed;

/** Sends half a request head and resolves with what the server answered before closing. */
function slowHead(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let seen = '';
    socket.on('data', (d: Buffer) => { seen += d.toString('latin1'); });
    socket.on('error', () => { /* a reset after the answer; what was seen counts */ });
    socket.on('close', () => resolve(seen));
    socket.write('GET / HTTP/1.1\r\nhost: x\r\n');
  });
}

test('the HTTP/1.1 connection checker runs only while connections exist, and still times out slow heads each time', async (t) => {
  const h1 = http.createServer({ headersTimeout: 200, requestTimeout: 400, connectionsCheckingInterval: 50 }, (_req, res) => res.end('ok'));
  const checks = connectionChecks(h1);
  let accepted: () => void = () => {};
  let closed: () => void = () => {};
  const front = net.createServer((socket) => {
    checks.adopt(socket);
    h1.emit('connection', socket);
    socket.once('close', () => setImmediate(closed));
    accepted();
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  t.after(() => { front.close(); h1.close(() => {}); });
  const port = (front.address() as net.AddressInfo).port;

  assert.ok(stopped(checker(h1)), 'no checker before the first connection');
  for (let round = 0; round < 2; round++) {
    const serverSide = new Promise<void>((resolve) => { accepted = resolve; });
    const gone = new Promise<void>((resolve) => { closed = resolve; });
    const answer = slowHead(port);
    await serverSide;
    assert.ok(!stopped(checker(h1)), `checker running while a connection is open (round ${round})`);
    assert.match(await answer, /^HTTP\/1\.1 408 /, `slow head answered 408 (round ${round})`);
    await gone;
    assert.ok(stopped(checker(h1)), `checker stopped once the last connection closed (round ${round})`);
  }
});
