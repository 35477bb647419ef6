// Integration: the upstream outcome logged and counted for a completed exchange is `ok`, whichever
// protocol pair carried it — an HTTP/2 client POSTing to an HTTP/1.1 workload must not look like a reset.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ALLOW_FRONTEND_POLICY, h2Client, h2Request, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';

function resetCount(metrics: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith('portcullis_upstream_duration_seconds_count{outcome="reset"}'));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

describe('upstream outcome of completed exchanges', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startH1Upstream((_req, res, body) => {
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ created: body.toString() }));
    });
    proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('HTTP/2 client POST to an HTTP/1.1 upstream: client gets 201 and the body, event says ok, no reset counted', async () => {
    const session = h2Client(proxy, proxy.svids.frontend);
    const results = [];
    for (let i = 0; i < 5; i++) {
      results.push(await h2Request(session, { ':method': 'POST', ':path': `/echo/${i}`, 'content-type': 'text/plain' }, `order-${i}`));
    }
    session.close();
    for (const [i, r] of results.entries()) {
      assert.equal(r.status, 201);
      assert.equal(r.body.toString(), JSON.stringify({ created: `order-${i}` }));
    }
    assert.equal(upstream.requests.length, 5);
    const events = (await proxy.events(5)).filter((e) => e.request.path.startsWith('/echo/'));
    assert.equal(events.length, 5);
    for (const e of events) {
      assert.equal(e.request.protocol, 'http2');
      assert.equal(e.status, 201);
      assert.deepEqual({ outcome: e.upstream?.outcome, status: e.upstream?.status }, { outcome: 'ok', status: 201 });
    }
    assert.equal(resetCount(await proxy.metrics()), 0);
  });

  it('HTTP/2 client GET and a streamed POST body behave the same', async () => {
    const session = h2Client(proxy, proxy.svids.frontend);
    const get = await h2Request(session, { ':method': 'GET', ':path': '/echo/get' });
    const big = await h2Request(session, { ':method': 'POST', ':path': '/upload' }, Buffer.alloc(256 * 1024, 97));
    session.close();
    assert.equal(get.status, 201);
    assert.equal(big.status, 201);
    const events = (await proxy.events(7)).filter((e) => e.request.path === '/echo/get' || e.request.path === '/upload');
    assert.deepEqual(events.map((e) => e.upstream?.outcome), ['ok', 'ok']);
    assert.equal(resetCount(await proxy.metrics()), 0);
  });

  it('a real mid-body upstream failure is still a reset: the h2 client sees the stream fail and the event says reset_after_headers', async () => {
    const broken = await startH1Upstream(undefined, {
      streamBody: (req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '100000' });
        res.write('partial');
        setTimeout(() => res.socket?.destroy(), 20);
      },
    });
    const p2 = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: broken.url });
    try {
      const session = h2Client(p2, p2.svids.frontend);
      const outcome = await h2Request(session, { ':method': 'POST', ':path': '/echo/broken' }, 'x').then(() => 'completed', () => 'failed');
      session.close();
      assert.equal(outcome, 'failed');
      const ev = await p2.event((e) => e.request.path === '/echo/broken');
      assert.equal(ev?.upstream?.outcome, 'reset_after_headers');
      assert.equal(resetCount(await p2.metrics()), 1);
    } finally {
      await p2.stop();
      await broken.close();
    }
  });
});
