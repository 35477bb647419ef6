// Integration: each timeout fires at its configured value, never early and not a check interval late.
// Limits of 1 s. The lower bound is strict (5% allows for where the client starts its clock). The upper
// bound is relative and generous: the proxy runs in this process, so a plain timer armed at the same moment
// is late by the same event-loop lag; a timeout may fire at most 500 ms after it (request handling before a
// timer starts also counts on a busy machine). The precise figures are printed (`# timeout precision: …`).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { ALLOW_FRONTEND_POLICY, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';

const LIMIT_MS = 1000;

describe('timeouts fire at their configured value', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  const figures: string[] = [];
  const arrivals: number[] = [];
  before(async () => {
    // A workload that reads requests and never answers (the upstream timeout case); it notes when each arrives.
    upstream = await startH1Upstream(undefined, { streamBody: (req) => { arrivals.push(performance.now()); req.resume(); } });
    const limit = `${LIMIT_MS}ms`;
    proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url, flags: ['--headers-timeout', limit, '--body-timeout', limit, '--upstream-timeout', limit, '--tls-handshake-timeout', limit] });
  });
  after(async () => {
    process.stdout.write(`# timeout precision (limit ${LIMIT_MS} ms): ${figures.join('; ')}\n`);
    await proxy.stop();
    await upstream.close();
  });

  /** A plain timer of LIMIT_MS armed now: how late it fires is the event-loop lag the proxy's timers share. */
  function referenceLag(): Promise<number> {
    const armed = performance.now();
    return new Promise((resolve) => setTimeout(() => resolve(performance.now() - armed - LIMIT_MS), LIMIT_MS));
  }

  /** Connects with mTLS, writes `bytes`, and resolves with the first answer, the ms since the write completed and the reference lag. */
  function answerAfter(bytes: string): Promise<{ ms: number; lag: number; answer: string; at: number }> {
    return new Promise((resolve, reject) => {
      const c = proxy.svids.frontend;
      let start = 0;
      let lag: Promise<number> = Promise.resolve(0);
      const s = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, cert: c.chainPem, key: c.keyPem, ALPNProtocols: ['http/1.1'] }, () => {
        start = performance.now();
        s.write(bytes, () => { start = performance.now(); lag = referenceLag(); });
      });
      s.once('data', (d: Buffer) => { const at = performance.now(); void lag.then((l) => resolve({ ms: at - start, lag: l, answer: d.toString('latin1'), at })); s.destroy(); });
      s.on('error', reject);
      setTimeout(() => reject(new Error('no answer in 10 s')), 10_000).unref();
    });
  }

  /**
   * `ms` counts from the client's last byte: never below the limit. `late` is the lateness bound's basis: the
   * same, or for timers that start when the request is forwarded, the time since the workload saw it (on a busy
   * machine the proxy may take a few hundred ms to get there, which is not the timer's lateness).
   */
  function check(name: string, ms: number, lag: number, late = ms): void {
    figures.push(`${name} ${ms.toFixed(0)} ms${late === ms ? '' : ` (${late.toFixed(0)} ms after the workload saw the request)`} (plain timer lag ${lag.toFixed(0)} ms)`);
    assert.ok(ms >= LIMIT_MS * 0.95, `${name} fired early: ${ms.toFixed(0)} ms for ${LIMIT_MS} ms`);
    assert.ok(late <= LIMIT_MS + Math.max(0, lag) + 500, `${name} fired late: ${late.toFixed(0)} ms for ${LIMIT_MS} ms (a plain timer was ${lag.toFixed(0)} ms late)`);
  }

  it('slow request head (headersTimeout): 408', async () => {
    const { ms, lag, answer } = await answerAfter('GET /public/a HTTP/1.1\r\nHost: api\r\nX-Slow: ');
    assert.match(answer, /^HTTP\/1\.1 408 /);
    check('headers', ms, lag);
  });

  it('slow request body (bodyTimeout): 408', async () => {
    const seen = arrivals.length;
    const { ms, lag, answer, at } = await answerAfter('POST /upload HTTP/1.1\r\nHost: api\r\ncontent-length: 10\r\n\r\nabc');
    assert.match(answer, /^HTTP\/1\.1 408 /);
    assert.equal(arrivals.length, seen + 1, 'the workload saw the request');
    check('body', ms, lag, at - (arrivals[seen] as number));
  });

  it('workload that never answers (upstreamTimeout): 504', async () => {
    const seen = arrivals.length;
    const { ms, lag, answer, at } = await answerAfter('GET /public/a HTTP/1.1\r\nHost: api\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 504 /);
    assert.equal(arrivals.length, seen + 1, 'the workload saw the request');
    check('upstream', ms, lag, at - (arrivals[seen] as number));
  });

  it('TLS handshake that never completes (tlsHandshakeTimeout): connection closed', async () => {
    let lag: Promise<number> = Promise.resolve(0);
    const ms = await new Promise<number>((resolve, reject) => {
      const s = net.connect(proxy.port, '127.0.0.1', () => {
        const start = performance.now();
        lag = referenceLag();
        s.write(Buffer.from([0x16, 0x03, 0x01]));
        s.on('close', () => resolve(performance.now() - start));
      });
      s.on('error', () => undefined);
      setTimeout(() => reject(new Error('not closed in 10 s')), 10_000).unref();
    });
    check('TLS handshake', ms, await lag);
  });
});
