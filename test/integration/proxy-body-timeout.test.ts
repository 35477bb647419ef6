// Integration: the request body progress timeout (limits.bodyTimeout). A caller that stops sending its body
// before the workload answered gets 408, the workload's request is aborted (HTTP/1.1: reset connection; h2c:
// RST_STREAM without END_STREAM), and the decision line says `body_timeout`. A slow but steady body is not
// cut, nor is a bidirectional stream the workload already answered.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { ALLOW_FRONTEND_POLICY, h2Client, h2Request, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { rawH2cUpstream } from '../helpers/h2-raw.js';

const BODY_TIMEOUT_MS = 400;

interface Seen { complete: boolean; aborted: boolean; bytes: number }

/** An HTTP/1.1 workload that answers only once the whole body arrived, and records how each request ended. */
async function recordingWorkload(): Promise<{ upstream: RecordingUpstream; seen: Seen[] }> {
  const seen: Seen[] = [];
  const upstream = await startH1Upstream(undefined, {
    streamBody: (req: http.IncomingMessage, res: http.ServerResponse) => {
      const rec: Seen = { complete: false, aborted: false, bytes: 0 };
      seen.push(rec);
      req.on('data', (c: Buffer) => { rec.bytes += c.length; });
      req.on('end', () => { rec.complete = req.complete; res.end(`got ${rec.bytes}`); });
      req.on('aborted', () => { rec.aborted = true; });
      req.on('error', () => undefined);
    },
  });
  return { upstream, seen };
}

/** Opens an mTLS HTTP/1.1 connection, writes `head` + `first`, and resolves with what came back and when. */
function stalledPost(proxy: ProxyUnderTest, head: string, first: string): Promise<{ answer: string; afterLastByteMs: number }> {
  return new Promise((resolve, reject) => {
    const c = proxy.svids.frontend;
    let lastByteAt = 0;
    let answer = '';
    let answeredAt = 0;
    const s = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, cert: c.chainPem, key: c.keyPem, ALPNProtocols: ['http/1.1'] }, () => {
      s.write(head + first, () => { lastByteAt = performance.now(); });
    });
    const guard = setTimeout(() => { s.destroy(); resolve({ answer, afterLastByteMs: -1 }); }, BODY_TIMEOUT_MS * 20);
    s.on('data', (d: Buffer) => { if (answer === '') answeredAt = performance.now(); answer += d.toString('latin1'); });
    s.on('close', () => { clearTimeout(guard); resolve({ answer, afterLastByteMs: answeredAt ? answeredAt - lastByteAt : -1 }); });
    s.on('error', (err) => { if (answer === '') reject(err); });
  });
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  for (let waited = 0; waited < ms && !check(); waited += 20) await new Promise((r) => setTimeout(r, 20));
}

describe('slow request body (limits.bodyTimeout)', () => {
  let workload: { upstream: RecordingUpstream; seen: Seen[] };
  let proxy: ProxyUnderTest;
  before(async () => {
    workload = await recordingWorkload();
    proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: workload.upstream.url, flags: ['--body-timeout', `${BODY_TIMEOUT_MS}ms`] });
  });
  after(async () => { await proxy.stop(); await workload.upstream.close(); });

  for (const framing of ['content-length: 100', 'transfer-encoding: chunked'] as const) {
    it(`HTTP/1.1 (${framing.split(':')[0]}): a stalled body gets 408, the workload's request is aborted, the log says body_timeout`, async () => {
      const before = workload.seen.length;
      const first = framing.startsWith('content') ? 'abcdef' : '6\r\nabcdef\r\n';
      const { answer, afterLastByteMs } = await stalledPost(proxy, `POST /upload HTTP/1.1\r\nHost: api\r\n${framing}\r\n\r\n`, first);
      assert.match(answer, /^HTTP\/1\.1 408 /, JSON.stringify(answer.slice(0, 120)));
      assert.match(answer, /connection: close/i);
      // Never early; the upper bound only catches a timer that did not fire (precise figures: closing note).
      assert.ok(afterLastByteMs >= BODY_TIMEOUT_MS - 5, `408 after ${afterLastByteMs.toFixed(0)} ms, limit ${BODY_TIMEOUT_MS} ms`);
      assert.ok(afterLastByteMs < BODY_TIMEOUT_MS * 5, `408 after ${afterLastByteMs.toFixed(0)} ms`);
      await until(() => workload.seen[before]?.aborted === true);
      assert.deepEqual(workload.seen[before], { complete: false, aborted: true, bytes: 6 }, 'the workload saw an aborted request, never a complete one');
      const event = await proxy.event((e) => e.status === 408 && e.upstream?.outcome === 'body_timeout' && e.request.path === '/upload');
      assert.ok(event, 'a decision line with status 408 and upstream outcome body_timeout');
      assert.equal(event.verdict, 'allow', 'the policy allowed it; the caller then stalled');
    });
  }

  it('HTTP/1.1: a slow but steady body (a byte every quarter of the limit) is forwarded whole', async () => {
    const before = workload.seen.length;
    const c = proxy.svids.frontend;
    const answer = await new Promise<string>((resolve, reject) => {
      let got = '';
      const s = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, cert: c.chainPem, key: c.keyPem, ALPNProtocols: ['http/1.1'] }, async () => {
        s.write('POST /upload HTTP/1.1\r\nHost: api\r\ncontent-length: 8\r\nconnection: close\r\n\r\n');
        for (let i = 0; i < 8; i++) { await new Promise((r) => setTimeout(r, BODY_TIMEOUT_MS / 4)); s.write('x'); }
      });
      s.on('data', (d: Buffer) => { got += d.toString('latin1'); });
      s.on('close', () => resolve(got));
      s.on('error', reject);
    });
    assert.match(answer, /^HTTP\/1\.1 200 /, JSON.stringify(answer.slice(0, 120)));
    assert.match(answer, /got 8$/);
    assert.deepEqual(workload.seen[before], { complete: true, aborted: false, bytes: 8 });
  });

  it('HTTP/2: a stalled request stream gets 408 and the workload\'s request is aborted', async () => {
    const before = workload.seen.length;
    const session = h2Client(proxy, proxy.svids.frontend);
    try {
      const result = await new Promise<{ status: number; rst: number | undefined }>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/upload', 'content-length': '100' }, { endStream: false });
        let status = 0;
        req.on('response', (h) => { status = Number(h[':status']); });
        req.on('data', () => undefined);
        req.on('close', () => resolve({ status, rst: req.rstCode }));
        req.on('error', (err) => { if (status === 0) reject(err); });
        req.write('abcdef');
        setTimeout(() => reject(new Error('no answer')), BODY_TIMEOUT_MS * 20).unref();
      });
      assert.equal(result.status, 408);
      await until(() => workload.seen[before]?.aborted === true);
      assert.deepEqual(workload.seen[before], { complete: false, aborted: true, bytes: 6 });
      const event = await proxy.event((e) => e.status === 408 && e.upstream?.outcome === 'body_timeout' && e.request.protocol === 'http2');
      assert.ok(event, 'a decision line for the HTTP/2 stream');
    } finally {
      session.destroy();
    }
  });
});

describe('slow request body to an h2c workload', () => {
  it('the workload\'s stream is reset (RST_STREAM CANCEL) without END_STREAM; the caller gets 408', async () => {
    const upstream = await rawH2cUpstream();
    const proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url, flags: ['--body-timeout', `${BODY_TIMEOUT_MS}ms`] });
    try {
      const { answer } = await stalledPost(proxy, 'POST /upload HTTP/1.1\r\nHost: api\r\ncontent-length: 100\r\n\r\n', 'abcdef');
      assert.match(answer, /^HTTP\/1\.1 408 /, JSON.stringify(answer.slice(0, 120)));
      let stream: { endStream: boolean; rst: number | null; dataBytes: number } | undefined;
      await until(() => { stream = [...upstream.streams.values()].at(-1); return stream?.rst !== null && stream?.rst !== undefined; });
      assert.ok(stream, 'the workload saw the stream');
      assert.deepEqual(stream, { endStream: false, rst: 8, dataBytes: 6 });
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});

describe('a bidirectional stream the workload already answered', () => {
  it('idles longer than bodyTimeout without being cut (gRPC-style streaming)', async () => {
    const received: { bytes: number; ended: boolean }[] = [];
    // An h2c workload that answers at once and echoes every chunk, like a bidirectional gRPC handler.
    const workload = http2.createServer();
    workload.on('stream', (stream) => {
      const rec = { bytes: 0, ended: false };
      received.push(rec);
      stream.respond({ ':status': 200 });
      stream.on('data', (c: Buffer) => { rec.bytes += c.length; stream.write(c); });
      stream.on('end', () => { rec.ended = true; stream.end(); });
    });
    await new Promise<void>((r) => workload.listen(0, '127.0.0.1', r));
    const proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: `h2c://127.0.0.1:${(workload.address() as AddressInfo).port}`, flags: ['--body-timeout', `${BODY_TIMEOUT_MS}ms`] });
    const session = h2Client(proxy, proxy.svids.frontend);
    try {
      const req = session.request({ ':method': 'POST', ':path': '/echo' }, { endStream: false });
      let status = 0;
      let echoed = '';
      req.on('response', (h) => { status = Number(h[':status']); });
      req.on('data', (c: Buffer) => { echoed += c.toString(); });
      let closed = false;
      req.on('close', () => { closed = true; });
      req.write('a');
      await until(() => echoed === 'a');
      await new Promise((r) => setTimeout(r, BODY_TIMEOUT_MS * 3));
      req.end('b');
      await until(() => closed, 5000);
      assert.ok(closed, 'the stream completed');
      assert.equal(status, 200);
      assert.equal(echoed, 'ab');
      assert.equal(req.rstCode, http2.constants.NGHTTP2_NO_ERROR);
      assert.deepEqual(received, [{ bytes: 2, ended: true }]);
    } finally {
      session.destroy();
      await proxy.stop();
      await new Promise<void>((r) => workload.close(() => r()));
    }
  });
});

describe('request bodies to an h2c workload that are not slow', () => {
  interface Received { bytes: number; hash: string; ended: boolean }
  /** An h2c workload that hashes each request body, reading it only after `holdMs` (backpressure meanwhile), and answers at its end. */
  async function hashingWorkload(holdMs: number): Promise<{ server: http2.Http2Server; url: string; received: Received[] }> {
    const received: Received[] = [];
    const server = http2.createServer();
    server.on('stream', (stream) => {
      const rec: Received = { bytes: 0, hash: '', ended: false };
      received.push(rec);
      const h = createHash('sha256');
      stream.pause();
      setTimeout(() => {
        stream.on('data', (c: Buffer) => { rec.bytes += c.length; h.update(c); });
        stream.on('end', () => { rec.ended = true; rec.hash = h.digest('hex'); stream.respond({ ':status': 200 }); stream.end(`got ${rec.bytes}`); });
        stream.resume();
      }, holdMs);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, url: `h2c://127.0.0.1:${(server.address() as AddressInfo).port}`, received };
  }

  it('a slow but steady HTTP/2 body (a chunk every quarter of the limit) is forwarded whole and ended', async () => {
    const workload = await hashingWorkload(0);
    const proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: workload.url, flags: ['--body-timeout', `${BODY_TIMEOUT_MS}ms`] });
    const session = h2Client(proxy, proxy.svids.frontend);
    try {
      const req = session.request({ ':method': 'POST', ':path': '/upload' }, { endStream: false });
      let status = 0;
      let answer = '';
      req.on('response', (h) => { status = Number(h[':status']); });
      req.on('data', (c: Buffer) => { answer += c.toString(); });
      const closed = new Promise<void>((r) => req.on('close', r));
      for (let i = 0; i < 6; i++) {
        req.write('0123456789');
        await new Promise((r) => setTimeout(r, BODY_TIMEOUT_MS / 4));
      }
      req.end();
      await closed;
      assert.equal(status, 200);
      assert.equal(answer, 'got 60');
      assert.deepEqual(workload.received.map((r) => [r.bytes, r.ended]), [[60, true]]);
    } finally {
      session.destroy();
      await proxy.stop();
      await new Promise<void>((r) => workload.server.close(() => r()));
    }
  });

  it('an 8 MiB body held back by a workload that reads late (longer than the limit) is not idle: it arrives whole', async () => {
    const workload = await hashingWorkload(BODY_TIMEOUT_MS * 3);
    const proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: workload.url, flags: ['--body-timeout', `${BODY_TIMEOUT_MS}ms`] });
    const body = randomBytes(8 * 1024 * 1024);
    const session = h2Client(proxy, proxy.svids.frontend);
    try {
      const result = await h2Request(session, { ':method': 'POST', ':path': '/upload' }, body);
      assert.equal(result.status, 200);
      assert.equal(result.body.toString(), `got ${body.length}`);
      assert.deepEqual(workload.received, [{ bytes: body.length, hash: createHash('sha256').update(body).digest('hex'), ended: true }]);
      const event = await proxy.event((e) => e.request.path === '/upload' && e.status === 200);
      assert.equal(event?.upstream?.outcome, 'ok');
    } finally {
      session.destroy();
      await proxy.stop();
      await new Promise<void>((r) => workload.server.close(() => r()));
    }
  });
});
