// Integration: the wait for the workload's response headers (limits.upstreamTimeout) is restarted by each request
// body chunk sent, to HTTP/1.1 and h2c workloads alike, so an upload that keeps going is never cut; a gRPC caller's
// `grpc-timeout` is a deadline of its own, counted from the forward and never restarted.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { ALLOW_FRONTEND_POLICY, h2Client, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';

const UPSTREAM_TIMEOUT_MS = 400;
/** A body chunk this often: each gap is well inside the limit, the whole upload well past it. */
const CHUNK_EVERY_MS = 120;
const CHUNKS = 8;

/** An h2c workload that answers only once the whole body arrived (or, with `answer` false, never). */
async function h2cWorkload(answer: boolean): Promise<{ server: http2.Http2Server; url: string }> {
  const server = http2.createServer();
  server.on('stream', (stream) => {
    let bytes = 0;
    stream.on('data', (c: Buffer) => { bytes += c.length; });
    stream.on('end', () => {
      if (!answer) return;
      stream.respond({ ':status': 200 });
      stream.end(`got ${bytes}`);
    });
    stream.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `h2c://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** An HTTP/1.1 workload that answers only once the whole body arrived (or, with `answer` false, never). */
async function h1Workload(answer: boolean): Promise<RecordingUpstream> {
  return startH1Upstream(undefined, {
    streamBody: (req: http.IncomingMessage, res: http.ServerResponse) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => { bytes += c.length; });
      req.on('end', () => { if (answer) res.end(`got ${bytes}`); });
      req.on('error', () => undefined);
    },
  });
}

interface Upload { status: number; grpcStatus: string | undefined; answer: string; lastChunkAt: number; answeredAt: number; startedAt: number }

/** POSTs CHUNKS chunks over HTTP/2, one every CHUNK_EVERY_MS (stopping early once answered), then ends the body. */
async function upload(proxy: ProxyUnderTest, headers: http2.OutgoingHttpHeaders, chunks = CHUNKS): Promise<Upload> {
  const session = h2Client(proxy, proxy.svids.frontend);
  try {
    const startedAt = performance.now();
    const req = session.request({ ':method': 'POST', ':path': '/upload', ...headers }, { endStream: false });
    const result: Upload = { status: 0, grpcStatus: undefined, answer: '', lastChunkAt: 0, answeredAt: 0, startedAt };
    req.on('response', (h) => { result.status = Number(h[':status']); result.grpcStatus = h['grpc-status'] as string | undefined; result.answeredAt = performance.now(); });
    req.on('trailers', (t) => { result.grpcStatus ??= t['grpc-status'] as string | undefined; });
    req.on('data', (c: Buffer) => { result.answer += c.toString(); });
    req.on('error', () => undefined);
    const closed = new Promise<void>((r) => req.on('close', r));
    for (let i = 0; i < chunks && result.status === 0 && !req.closed; i++) {
      req.write('0123456789');
      result.lastChunkAt = performance.now();
      await new Promise((r) => setTimeout(r, CHUNK_EVERY_MS));
    }
    if (!req.closed) req.end();
    await Promise.race([closed, new Promise((r) => setTimeout(r, UPSTREAM_TIMEOUT_MS * 20))]);
    return result;
  } finally {
    session.destroy();
  }
}

for (const kind of ['HTTP/1.1', 'h2c'] as const) {
  describe(`limits.upstreamTimeout to an ${kind} workload`, () => {
    let proxies: ProxyUnderTest[] = [];
    const closers: (() => Promise<void>)[] = [];
    async function setUp(answer: boolean): Promise<{ proxy: ProxyUnderTest }> {
      let url: string;
      if (kind === 'h2c') {
        const w = await h2cWorkload(answer);
        closers.push(() => new Promise<void>((r) => w.server.close(() => r())));
        url = w.url;
      } else {
        const w = await h1Workload(answer);
        closers.push(() => w.close());
        url = w.url;
      }
      const proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: url, flags: ['--upstream-timeout', `${UPSTREAM_TIMEOUT_MS}ms`, '--body-timeout', '5s'] });
      proxies.push(proxy);
      return { proxy };
    }
    before(() => { proxies = []; });
    after(async () => {
      for (const p of proxies) await p.stop();
      for (const close of closers) await close();
    });

    it('an upload that keeps going longer than the limit is forwarded whole and answered', async () => {
      const { proxy } = await setUp(true);
      const result = await upload(proxy, {});
      assert.ok(result.lastChunkAt - result.startedAt > UPSTREAM_TIMEOUT_MS * 1.5, 'the upload outlasted the limit');
      assert.equal(result.status, 200, `answered ${result.status} after ${(result.answeredAt - result.startedAt).toFixed(0)} ms`);
      assert.equal(result.answer, `got ${CHUNKS * 10}`);
      const event = await proxy.event((e) => e.request.path === '/upload' && e.status === 200);
      assert.equal(event?.upstream?.outcome, 'ok');
    });

    it('the limit still runs from the last chunk: a workload that never answers gets 504 a limit after it', async () => {
      const { proxy } = await setUp(false);
      const result = await upload(proxy, {}, 4);
      assert.equal(result.status, 504);
      const afterLast = result.answeredAt - result.lastChunkAt;
      // Never early (the body's end, sent right after the last chunk's wait, restarts it too); the upper bound only
      // catches a limit that did not fire.
      assert.ok(afterLast >= UPSTREAM_TIMEOUT_MS - 5, `504 ${afterLast.toFixed(0)} ms after the last chunk`);
      assert.ok(afterLast < UPSTREAM_TIMEOUT_MS * 5, `504 ${afterLast.toFixed(0)} ms after the last chunk`);
      const event = await proxy.event((e) => e.request.path === '/upload' && e.status === 504);
      assert.equal(event?.upstream?.outcome, 'upstream_timeout');
    });
  });
}

describe("a gRPC caller's grpc-timeout to an h2c workload", () => {
  it('is a deadline from the forward that body chunks never restart: DEADLINE_EXCEEDED while the stream still sends', async () => {
    const workload = await h2cWorkload(true);
    const proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: workload.url, flags: ['--upstream-timeout', '5s', '--body-timeout', '5s'] });
    try {
      const deadlineMs = 500;
      const result = await upload(proxy, { 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': `${deadlineMs}m` }, 20);
      const answeredAfter = result.answeredAt - result.startedAt;
      assert.equal(result.grpcStatus, '4', `grpc-status ${result.grpcStatus} (HTTP ${result.status}) after ${answeredAfter.toFixed(0)} ms`);
      assert.ok(answeredAfter >= deadlineMs - 5, `answered ${answeredAfter.toFixed(0)} ms after the start`);
      // Well before the 20 chunks (2.4 s) were sent: the chunks did not move it.
      assert.ok(answeredAfter < deadlineMs * 3, `answered ${answeredAfter.toFixed(0)} ms after the start`);
      const event = await proxy.event((e) => e.request.path === '/upload' && e.request.protocol === 'grpc');
      assert.equal(event?.upstream?.outcome, 'upstream_timeout');
    } finally {
      await proxy.stop();
      await new Promise<void>((r) => workload.server.close(() => r()));
    }
  });
});
