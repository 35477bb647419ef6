import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http2 from 'node:http2';
import { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { createH2Forwarder, type H2Sessions } from './forward-h2.js';
import { h2Exchange } from './exchange.js';
import type { ForwardOutcome } from './upstream.js';
import type { Permit } from '../policy/decision.js';

/** Two Duplex ends joined in memory: what one writes, the other reads. */
function duplexPair(): [Duplex, Duplex] {
  const ends: Duplex[] = [];
  const make = (peer: () => Duplex): Duplex => new Duplex({ read() { /* pushed by the peer */ }, write(chunk, _enc, cb) { peer().push(chunk); cb(); } });
  ends.push(make(() => ends[1] as Duplex), make(() => ends[0] as Duplex));
  return [ends[0] as Duplex, ends[1] as Duplex];
}

describe('h2 forwarder: the response body whatever the order node:http2 emits it in', () => {
  const cleanups: (() => void)[] = [];
  after(() => { for (const c of cleanups.reverse()) c(); });

  it("relays DATA that node:http2 emits before 'response' (frames parsed in one pass), byte for byte", async () => {
    // The workload answers HEADERS and DATA in one write. Over a socket that is a JS stream (and, under load, over
    // TLS) node:http2 parses them in one pass and emits the DATA before its deferred 'response': the probe below
    // shows that happens here, so the relay is tested against that order, not against the usual one.
    const BODY = 'the whole body, 30 bytes long.';
    const workload = http2.createServer();
    workload.on('stream', (stream) => {
      stream.respond({ ':status': 200, 'content-length': String(Buffer.byteLength(BODY)) });
      stream.end(BODY);
    });
    const [clientEnd, serverEnd] = duplexPair();
    workload.emit('connection', serverEnd);
    const session = http2.connect('http://workload.test', { createConnection: () => clientEnd });
    session.on('error', () => { /* reported per stream */ });
    cleanups.push(() => session.destroy());

    // The hazard, with node:http2 alone.
    const order = await new Promise<string[]>((resolve) => {
      const seen: string[] = [];
      const probe = session.request({ ':path': '/probe' }, { endStream: true });
      probe.on('data', () => seen.push('data'));
      probe.on('response', () => seen.push('response'));
      probe.on('end', () => resolve(seen));
    });
    assert.deepEqual(order, ['data', 'response'], 'node:http2 emitted DATA before the response here');

    const sessions: H2Sessions = { acquire: () => Promise.resolve({ session, release: () => undefined }), close: () => Promise.resolve() };
    const forwarder = createH2Forwarder({ sessions, scheme: 'https' });
    const outcomes: ForwardOutcome[] = [];
    const front = http2.createServer();
    front.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
      const ex = h2Exchange({}, stream, headers, rawHeaders, true);
      const request = { method: 'GET', path: String(headers[':path']), authority: 'workload.test', headers: {}, grpc: false, headersTimeoutMs: 5000, deadlineMs: undefined, bodyTimeoutMs: 5000 };
      void forwarder.forward({} as Permit, request, ex).then((o) => outcomes.push(o));
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => front.close());
    const caller = http2.connect(`http://127.0.0.1:${(front.address() as AddressInfo).port}`);
    cleanups.push(() => caller.destroy());

    for (let i = 0; i < 5; i++) {
      const reply = await new Promise<{ status: number; body: string; error: string | undefined }>((resolve) => {
        const req = caller.request({ ':path': `/r${i}` }, { endStream: true });
        let status = 0;
        let body = '';
        req.setEncoding('utf8');
        req.on('response', (h) => { status = Number(h[':status']); });
        req.on('data', (d: string) => { body += d; });
        req.on('end', () => resolve({ status, body, error: undefined }));
        req.on('error', (err: Error) => resolve({ status, body, error: err.message }));
      });
      assert.deepEqual(reply, { status: 200, body: BODY, error: undefined });
    }
    assert.deepEqual(outcomes.map((o) => o.ok && o.outcome), ['ok', 'ok', 'ok', 'ok', 'ok']);
    await forwarder.close();
  });
});
