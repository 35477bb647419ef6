// Request integrity at the frame level: an HTTP/1.1 caller vanishing mid-body never makes an h2c workload
// see END_STREAM (it gets RST_STREAM(CANCEL)), and an HTTP/1.1 workload sees the request aborted. The attack
// cases themselves (bypasses, smuggling, identity, JWT, DoS) are data in test/attacks/attacks.yaml, run by
// attack-run.test.ts.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as tls from 'node:tls';
import { ALLOW_FRONTEND_POLICY as POLICY, startH1Upstream, startProxy, type ProxyUnderTest } from './harness.js';
import { rawH2cUpstream } from '../helpers/h2-raw.js';

/** Sends a POST head with a 100-byte length and 6 body bytes, then vanishes (TCP FIN or destroy). */
function truncatedPost(proxy: ProxyUnderTest, how: 'end' | 'destroy', framing: 'length' | 'chunked'): Promise<void> {
  return new Promise((resolve) => {
    const c = proxy.svids.frontend;
    const s = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, cert: c.chainPem, key: c.keyPem, ALPNProtocols: ['http/1.1'] }, () => {
      s.write(`POST /upload HTTP/1.1\r\nHost: api\r\n${framing === 'length' ? 'content-length: 100' : 'transfer-encoding: chunked'}\r\n\r\n`);
      s.write(framing === 'length' ? 'abcdef' : '6\r\nabcdef\r\n');
      setTimeout(() => { if (how === 'end') s.end(); else s.destroy(); resolve(); }, 150);
    });
    s.on('error', () => undefined);
  });
}

describe('request integrity: an HTTP/1.1 client vanishing mid-body', () => {
  it('h2c workload: RST_STREAM without END_STREAM, never a truncated body as complete', async () => {
    const upstream = await rawH2cUpstream();
    const proxy = await startProxy({ policy: POLICY, upstream: upstream.url });
    try {
      for (const how of ['end', 'destroy'] as const) {
        for (const framing of ['length', 'chunked'] as const) {
          const known = new Set(upstream.streams.keys());
          await truncatedPost(proxy, how, framing);
          let stream: { endStream: boolean; rst: number | null; dataBytes: number } | undefined;
          for (let i = 0; i < 50; i++) {
            stream = [...upstream.streams.entries()].find(([id]) => !known.has(id))?.[1];
            if (stream?.rst !== null && stream?.rst !== undefined) break;
            await new Promise((r) => setTimeout(r, 20));
          }
          assert.ok(stream, `${how}/${framing}: the workload saw the stream`);
          assert.equal(stream.endStream, false, `${how}/${framing}: END_STREAM must not arrive`);
          assert.equal(stream.rst, 8, `${how}/${framing}: RST_STREAM(CANCEL)`);
        }
      }
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });

  it('HTTP/1.1 workload: the request is aborted, never completed', async () => {
    const seen: { complete: boolean; aborted: boolean }[] = [];
    const upstream = await startH1Upstream(undefined, {
      streamBody: (req) => {
        const rec = { complete: false, aborted: false };
        seen.push(rec);
        req.on('data', () => undefined);
        req.on('end', () => { rec.complete = req.complete; });
        req.on('aborted', () => { rec.aborted = true; });
        req.on('error', () => undefined);
      },
    });
    const proxy = await startProxy({ policy: POLICY, upstream: upstream.url });
    try {
      for (const framing of ['length', 'chunked'] as const) {
        await truncatedPost(proxy, 'end', framing);
        for (let i = 0; i < 50 && !(seen.at(-1)?.aborted); i++) await new Promise((r) => setTimeout(r, 20));
        assert.deepEqual(seen.at(-1), { complete: false, aborted: true }, framing);
      }
    } finally {
      await proxy.stop();
      await upstream.close();
    }
  });
});
