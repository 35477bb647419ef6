import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect } from 'node:http2';
import { connect, createServer } from 'node:net';
import { request } from 'undici';
import { createTestPki, TEST_IDS } from '../../test/helpers/pki.js';
import { buildCredentials } from '../identity/credentials.js';
import type { DecisionEventV1 } from '../observe/types.js';
import { startOutboundListener } from './outbound.js';

const pki = createTestPki();
const client = pki.issue({ spiffeId: TEST_IDS.frontend });
const { credentials } = buildCredentials(client.chainPem, client.keyPem, pki.caCertPem, Date.now());

async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function deps(events: DecisionEventV1[]) {
  return { credentials: { current: () => credentials }, trustDomains: ['cluster.local'], decisionSink: { publish: (e: DecisionEventV1) => events.push(e) } };
}

test('a target that is not https:// is refused at start (never plaintext upstream)', async () => {
  await assert.rejects(
    startOutboundListener({ name: 'o', listen: { host: '127.0.0.1', port: 0 }, target: 'http://127.0.0.1:1', expectIdentity: TEST_IDS.httpbin }, deps([])),
    /must be https/,
  );
});

test('unreachable destination: HTTP/1.1 (also a P-method like POST) and h2c both get 503 with a logged reason', async () => {
  const events: DecisionEventV1[] = [];
  const port = await closedPort();
  const out = await startOutboundListener({ name: 'o', listen: { host: '127.0.0.1', port: 0 }, target: `https://127.0.0.1:${port}`, expectIdentity: TEST_IDS.httpbin }, deps(events));
  try {
    assert.equal(out.address.host, '127.0.0.1');
    // POST starts with the same byte as the h2 preface ("PRI * HTTP/2.0"): still HTTP/1.1.
    const r1 = await request(`http://127.0.0.1:${out.address.port}/x`, { method: 'POST', body: 'data' });
    assert.equal(r1.statusCode, 503);
    assert.equal(r1.headers['x-portcullis-reason'], 'upstream_refused');
    await r1.body.dump();

    const session = h2connect(`http://127.0.0.1:${out.address.port}`);
    const status = await new Promise<number>((resolve, reject) => {
      const s = session.request({ ':path': '/y', ':method': 'GET' });
      s.on('response', (h) => resolve(Number(h[':status'])));
      s.on('error', reject);
      s.resume();
      s.end();
    });
    session.close();
    assert.equal(status, 503);
    assert.deepEqual(events.map((e) => [e.request.path, e.status, e.reason, e.request.listener]), [['/x', 503, 'upstream_refused', 'o'], ['/y', 503, 'upstream_refused', 'o']]);
  } finally {
    await out.close();
  }
});

test('an app that never finishes its request head gets 408 (the HTTP/1.1 server behind the sniffer enforces its headersTimeout)', async () => {
  const port = await closedPort();
  const out = await startOutboundListener(
    { name: 'o', listen: { host: '127.0.0.1', port: 0 }, target: `https://127.0.0.1:${port}`, expectIdentity: TEST_IDS.httpbin },
    { ...deps([]), timeouts: { requestHeadersMs: 300 } },
  );
  try {
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(out.address.port, '127.0.0.1');
      let seen = '';
      const guard = setTimeout(() => { socket.destroy(); reject(new Error(`no answer within 5 s (saw ${JSON.stringify(seen)})`)); }, 5_000);
      socket.on('data', (d: Buffer) => { seen += d.toString('latin1'); });
      socket.on('error', () => { /* a reset after the answer; what was seen counts */ });
      socket.on('close', () => { clearTimeout(guard); resolve(seen); });
      socket.write('GET /slow HTTP/1.1\r\nhost: x\r\n');
    });
    assert.match(answer, /^HTTP\/1\.1 408 /);
  } finally {
    await out.close();
  }
});
