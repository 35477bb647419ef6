// Outbound listener over real sockets: app (plaintext h1 / h2c gRPC) -> Portcullis outbound -> real mTLS
// servers presenting SVIDs from the test PKI. Wrong server identity must be a 503 with nothing sent.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { request as undiciRequest } from 'undici';
import * as grpc from '@grpc/grpc-js';
import { createTestPki, TEST_IDS, type IssuedCert, type TestPki } from '../helpers/pki.js';
import { startOutboundListener, type OutboundListener } from '../../src/proxy/outbound.js';
import { buildCredentials } from '../../src/identity/credentials.js';
import type { DecisionEventV1 } from '../../src/observe/types.js';

const json = {
  serialize: (v: unknown): Buffer => Buffer.from(JSON.stringify(v)),
  deserialize: (b: Buffer): unknown => JSON.parse(b.toString('utf8')),
};
const echoService: grpc.ServiceDefinition = {
  Echo: {
    path: '/portcullis.test.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
  },
};

interface Seen { method: string; url: string; headers: Record<string, unknown>; body: string; peerUri: string | undefined }

let pki: TestPki;
let client: IssuedCert;
const events: DecisionEventV1[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

function httpsEcho(cert: IssuedCert, seen: Seen[]): Promise<{ server: HttpsServer; port: number }> {
  const server = createHttpsServer({ cert: cert.chainPem, key: cert.keyPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const peer = (req.socket as import('node:tls').TLSSocket).getPeerX509Certificate();
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString(), peerUri: peer?.subjectAltName });
      res.writeHead(201, { 'content-type': 'application/json', 'x-upstream': 'b' });
      res.end(JSON.stringify({ ok: true, path: req.url }));
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })));
}

async function grpcServer(cert: IssuedCert, calls: string[]): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server();
  server.addService(echoService, {
    Echo: (call: grpc.ServerUnaryCall<{ text: string }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      calls.push(call.request.text);
      if (call.request.text === 'forbidden') {
        const md = new grpc.Metadata();
        md.set('x-detail', 'from-upstream');
        callback({ code: grpc.status.PERMISSION_DENIED, details: 'upstream says no', metadata: md });
        return;
      }
      const trailer = new grpc.Metadata();
      trailer.set('x-trailer', 'kept');
      callback(null, { echoed: call.request.text }, trailer);
    },
  });
  const creds = grpc.ServerCredentials.createSsl(Buffer.from(pki.caCertPem), [{ cert_chain: Buffer.from(cert.chainPem), private_key: Buffer.from(cert.keyPem) }], true);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  return { server, port };
}

async function outbound(port: number, expectIdentity: string, timeouts?: { headersMs?: number; connectMs?: number }): Promise<OutboundListener> {
  const { credentials } = buildCredentials(client.chainPem, client.keyPem, pki.caCertPem, Date.now());
  const listener = await startOutboundListener(
    { name: `outbound-test-${port}`, listen: { host: '127.0.0.1', port: 0 }, target: `https://127.0.0.1:${port}`, expectIdentity },
    {
      credentials: { current: () => credentials },
      trustDomains: ['cluster.local'],
      decisionSink: { publish: (e) => events.push(e) },
      ...(timeouts ? { timeouts } : {}),
    },
  );
  cleanups.push(() => listener.close());
  return listener;
}

function grpcCall(port: number, text: string): Promise<{ error: grpc.ServiceError | null; response: unknown; trailers: grpc.Metadata | undefined }> {
  const Client = grpc.makeGenericClientConstructor(echoService, 'Echo');
  const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = (c as unknown as { Echo: (req: unknown, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: unknown) => void) => grpc.ClientUnaryCall })
      .Echo({ text }, { deadline: Date.now() + 10_000 }, (error, response) => {
        setImmediate(() => { c.close(); resolve({ error, response, trailers }); });
      });
    call.on('status', (s: grpc.StatusObject) => { trailers = s.metadata; });
  });
}

before(() => {
  pki = createTestPki();
  client = pki.issue({ spiffeId: TEST_IDS.frontend });
});

after(async () => {
  for (const c of cleanups.reverse()) await c();
});

test('HTTP/1.1 through the outbound listener reaches the destination over mTLS with our SVID', async () => {
  const seen: Seen[] = [];
  const { server, port } = await httpsEcho(pki.issue({ spiffeId: TEST_IDS.httpbin }), seen);
  cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const out = await outbound(port, TEST_IDS.httpbin);

  const res = await undiciRequest(`http://127.0.0.1:${out.address.port}/orders/7?x=1`, { method: 'POST', body: '{"n":1}', headers: { 'content-type': 'application/json', connection: 'keep-alive' } });
  assert.equal(res.statusCode, 201);
  assert.equal(res.headers['x-upstream'], 'b');
  assert.deepEqual(await res.body.json(), { ok: true, path: '/orders/7?x=1' });
  assert.equal(seen.length, 1);
  assert.equal(seen[0]?.method, 'POST');
  assert.equal(seen[0]?.url, '/orders/7?x=1');
  assert.equal(seen[0]?.body, '{"n":1}');
  assert.equal(seen[0]?.peerUri, `URI:${TEST_IDS.frontend}`, 'the destination saw our client SVID');
  assert.equal(seen[0]?.headers['host'], `127.0.0.1:${port}`, 'a loopback Host is rewritten to the destination authority');
});

test('wrong server identity: 503, reason in the decision log, and no request byte reaches the server', async () => {
  const seen: Seen[] = [];
  const { server, port } = await httpsEcho(pki.issue({ spiffeId: TEST_IDS.other }), seen);
  cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const out = await outbound(port, TEST_IDS.httpbin);
  events.length = 0;

  const res = await undiciRequest(`http://127.0.0.1:${out.address.port}/secret`, { method: 'POST', body: 'payload' });
  assert.equal(res.statusCode, 503);
  assert.equal(await res.body.text(), 'upstream connect error');
  assert.equal(seen.length, 0, 'the impostor must not receive the request');
  const event = events.find((e) => e.request.path === '/secret');
  assert.ok(event, 'a decision event was published');
  assert.equal(event.reason, 'server_identity_mismatch');
  assert.equal(event.status, 503);
  assert.equal(event.upstream?.outcome, 'identity_rejected');
});

test('a server certificate from another CA is refused at the handshake (503), never sent in plaintext', async () => {
  const seen: Seen[] = [];
  const foreign = pki.otherCa().issue({ spiffeId: TEST_IDS.httpbin });
  const { server, port } = await httpsEcho(foreign, seen);
  cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const out = await outbound(port, TEST_IDS.httpbin);
  const res = await undiciRequest(`http://127.0.0.1:${out.address.port}/x`);
  assert.equal(res.statusCode, 503);
  await res.body.dump();
  assert.equal(seen.length, 0);
});

test('a server SVID without serverAuth (client-only EKU) is refused', async () => {
  const seen: Seen[] = [];
  const { server, port } = await httpsEcho(pki.issue({ spiffeId: TEST_IDS.httpbin, extKeyUsage: ['clientAuth'] }), seen);
  cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const out = await outbound(port, TEST_IDS.httpbin);
  const res = await undiciRequest(`http://127.0.0.1:${out.address.port}/x`);
  assert.equal(res.statusCode, 503);
  await res.body.dump();
  assert.equal(seen.length, 0);
});

test('gRPC (h2c from the app) goes through as h2 over mTLS; trailers and error statuses are preserved', async () => {
  const calls: string[] = [];
  const { server, port } = await grpcServer(pki.issue({ spiffeId: TEST_IDS.httpbin }), calls);
  cleanups.push(() => { server.forceShutdown(); });
  const out = await outbound(port, TEST_IDS.httpbin);

  const ok = await grpcCall(out.address.port, 'hello');
  assert.equal(ok.error, null);
  assert.deepEqual(ok.response, { echoed: 'hello' });
  assert.deepEqual(ok.trailers?.get('x-trailer'), ['kept']);

  const denied = await grpcCall(out.address.port, 'forbidden');
  assert.equal(denied.error?.code, grpc.status.PERMISSION_DENIED);
  assert.equal(denied.error?.details, 'upstream says no');
  assert.deepEqual(denied.error?.metadata.get('x-detail'), ['from-upstream']);
  assert.deepEqual(calls, ['hello', 'forbidden']);
});

test('gRPC to a server with the wrong identity: UNAVAILABLE, the server sees no call', async () => {
  const calls: string[] = [];
  const { server, port } = await grpcServer(pki.issue({ spiffeId: TEST_IDS.admin }), calls);
  cleanups.push(() => { server.forceShutdown(); });
  const out = await outbound(port, TEST_IDS.httpbin);
  events.length = 0;
  const r = await grpcCall(out.address.port, 'hello');
  assert.equal(r.error?.code, grpc.status.UNAVAILABLE);
  assert.deepEqual(calls, []);
  const event = events.find((e) => e.request.protocol === 'grpc');
  assert.equal(event?.reason, 'server_identity_mismatch');
  assert.equal(event?.grpc_status, 14);
});

interface H2Destination { port: number; sessions: number; streams: number; maxInFlight: number }

/** An h2-over-mTLS destination (node:http2) presenting `cert`; `onStream` answers each stream. */
async function h2Destination(cert: IssuedCert, onStream: (stream: import('node:http2').ServerHttp2Stream, headers: import('node:http2').IncomingHttpHeaders, dest: H2Destination) => void, settings: import('node:http2').Settings = {}): Promise<H2Destination> {
  const http2 = await import('node:http2');
  const server = http2.createSecureServer({ cert: cert.chainPem, key: cert.keyPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'], settings });
  const dest: H2Destination = { port: 0, sessions: 0, streams: 0, maxInFlight: 0 };
  let inFlight = 0;
  const open = new Set<import('node:http2').ServerHttp2Session>();
  server.on('session', (session) => {
    dest.sessions++;
    open.add(session);
    session.on('close', () => open.delete(session));
  });
  server.on('stream', (stream, headers) => {
    dest.streams++;
    dest.maxInFlight = Math.max(dest.maxInFlight, ++inFlight);
    stream.once('close', () => { inFlight--; });
    onStream(stream, headers, dest);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  dest.port = (server.address() as AddressInfo).port;
  // A session that sent GOAWAY stays open until the client side hangs up; cut it so the process can exit.
  cleanups.push(() => new Promise<void>((r) => { server.close(() => r()); for (const s of open) s.destroy(); setTimeout(r, 200); }));
  return dest;
}

async function h2cGet(port: number, paths: readonly string[], concurrency: number): Promise<{ status: number; body: string; trailers: Record<string, unknown> | undefined; error?: string }[]> {
  const http2 = await import('node:http2');
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on('error', () => { /* reported per stream */ });
  const results = new Array<{ status: number; body: string; trailers: Record<string, unknown> | undefined; error?: string }>(paths.length);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < paths.length; i = next++) {
      results[i] = await new Promise((resolve) => {
        const req = session.request({ ':method': 'GET', ':path': paths[i] as string }, { endStream: true });
        let status = 0;
        let body = '';
        let trailers: Record<string, unknown> | undefined;
        let settled = false;
        const done = (error?: string): void => { if (!settled) { settled = true; resolve({ status, body, trailers, ...(error ? { error } : {}) }); } };
        req.setTimeout(5_000, () => { req.close(http2.constants.NGHTTP2_CANCEL); done('timeout'); });
        req.setEncoding('utf8');
        req.on('response', (h) => { status = Number(h[':status']); });
        req.on('trailers', (t) => { trailers = { ...t }; });
        req.on('data', (c: string) => { body += c; });
        req.on('end', () => done());
        req.on('error', (e: Error) => done(e.message));
        req.on('close', () => done(req.readableEnded ? undefined : `reset ${String(req.rstCode)}`));
      });
    }
  }));
  await new Promise<void>((r) => session.close(() => r()));
  return results;
}

test('plain HTTP/2 (h2c from the app) ends with END_STREAM without trailers, and keeps trailers when the destination sends them', async () => {
  const dest = await h2Destination(pki.issue({ spiffeId: TEST_IDS.httpbin }), (stream, headers) => {
    const path = String(headers[':path']);
    if (path === '/with-trailers') {
      stream.respond({ ':status': 200 }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
      stream.end('body+trailers');
      return;
    }
    stream.respond({ ':status': 200, 'content-type': 'text/plain' });
    stream.end(`plain ${path}`);
  });
  const out = await outbound(dest.port, TEST_IDS.httpbin);
  const [plain, withTrailers] = await h2cGet(out.address.port, ['/plain', '/with-trailers'], 1);
  assert.deepEqual(plain, { status: 200, body: 'plain /plain', trailers: undefined });
  assert.equal(withTrailers?.status, 200);
  assert.equal(withTrailers?.body, 'body+trailers');
  assert.equal(withTrailers?.trailers?.['x-checksum'], 'abc');
});

test('more concurrent streams than the destination allows per session: spread over more sessions, none refused', async () => {
  const dest = await h2Destination(pki.issue({ spiffeId: TEST_IDS.httpbin }), (stream, headers) => {
    // Hold each response briefly so the streams really overlap.
    setTimeout(() => { stream.respond({ ':status': 200 }); stream.end(String(headers[':path'])); }, 20);
  }, { maxConcurrentStreams: 10 });
  const out = await outbound(dest.port, TEST_IDS.httpbin);
  // One stream first, so the destination's SETTINGS are known: node:http2 assumes 100 until then.
  assert.equal((await h2cGet(out.address.port, ['/warm'], 1))[0]?.status, 200);
  const paths = Array.from({ length: 120 }, (_, i) => `/c/${i}`);
  const results = await h2cGet(out.address.port, paths, 40);
  assert.deepEqual(results.filter((r, i) => r.status !== 200 || r.body !== paths[i] || r.error).slice(0, 3), []);
  assert.equal(dest.streams, 121);
  assert.ok(dest.maxInFlight <= 10 * dest.sessions, 'no session went over the advertised limit');
  assert.ok(dest.sessions >= 2, `40 concurrent streams with a limit of 10 opened ${dest.sessions} session(s)`);
});

test('after the destination sends GOAWAY, new streams go to a fresh session', async () => {
  const dest = await h2Destination(pki.issue({ spiffeId: TEST_IDS.httpbin }), (stream, headers, d) => {
    stream.respond({ ':status': 200 });
    stream.end(`${d.sessions} ${String(headers[':path'])}`);
    // The first session says goodbye after its first stream, as a draining sidecar would.
    if (d.sessions === 1) stream.session?.goaway(0);
  });
  const out = await outbound(dest.port, TEST_IDS.httpbin);
  const [first] = await h2cGet(out.address.port, ['/one'], 1);
  await new Promise((r) => setTimeout(r, 50));
  const [second] = await h2cGet(out.address.port, ['/two'], 1);
  assert.deepEqual(first, { status: 200, body: '1 /one', trailers: undefined });
  assert.deepEqual(second, { status: 200, body: '2 /two', trailers: undefined });
});

test('hop-by-hop headers stop at the listener (also those Connection names); the app\'s own end-to-end headers go through', async () => {
  const seen: Seen[] = [];
  const { server, port } = await httpsEcho(pki.issue({ spiffeId: TEST_IDS.httpbin }), seen);
  cleanups.push(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }));
  const out = await outbound(port, TEST_IDS.httpbin);
  // node:http, not undici: undici refuses to send Connection tokens and Keep-Alive itself.
  const { request: httpRequest } = await import('node:http');
  const status = await new Promise<number>((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: out.address.port, path: '/h', headers: { connection: 'keep-alive, x-hop', 'x-hop': 'local only', 'keep-alive': 'timeout=5', 'x-forwarded-for': '10.0.0.1', 'x-request-id': 'r-1' }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 201);
  const headers = seen[0]?.headers ?? {};
  assert.equal(headers['x-hop'], undefined, 'a header the app\'s Connection header names is hop-by-hop');
  assert.equal(headers['keep-alive'], undefined);
  assert.equal(headers['x-request-id'], 'r-1');
  // The destination's sidecar judges the request; the local app is not a caller whose headers are stripped here.
  assert.equal(headers['x-forwarded-for'], '10.0.0.1');
});

test('HTTP/1.1: chunked response trailers from the destination reach the app', async () => {
  const cert = pki.issue({ spiffeId: TEST_IDS.httpbin });
  const dest = createHttpsServer({ cert: cert.chainPem, key: cert.keyPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: true }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
    res.write('part one, ');
    res.addTrailers({ 'x-checksum': 'abc' });
    res.end('part two');
  });
  await new Promise<void>((r) => dest.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => { dest.closeAllConnections(); dest.close(() => r()); }));
  const out = await outbound((dest.address() as AddressInfo).port, TEST_IDS.httpbin);
  const res = await undiciRequest(`http://127.0.0.1:${out.address.port}/t`, { headers: { te: 'trailers' } });
  assert.equal(res.statusCode, 200);
  assert.equal(await res.body.text(), 'part one, part two');
  assert.deepEqual(res.trailers, { 'x-checksum': 'abc' });
});

test('a destination that never answers: 504 upstream_timeout after the response-headers deadline, over HTTP/1.1 and h2c alike', async () => {
  const cert = pki.issue({ spiffeId: TEST_IDS.httpbin });
  const silent = createHttpsServer({ cert: cert.chainPem, key: cert.keyPem, ca: pki.caCertPem, requestCert: true, rejectUnauthorized: true }, () => { /* never answers */ });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => { silent.closeAllConnections(); silent.close(() => r()); }));
  const h2dest = await h2Destination(cert, () => { /* never answers */ });
  const outH1 = await outbound((silent.address() as AddressInfo).port, TEST_IDS.httpbin, { headersMs: 400 });
  const outH2 = await outbound(h2dest.port, TEST_IDS.httpbin, { headersMs: 400 });
  events.length = 0;

  const started = performance.now();
  const res = await undiciRequest(`http://127.0.0.1:${outH1.address.port}/slow-h1`);
  const h1Elapsed = performance.now() - started;
  assert.equal(res.statusCode, 504);
  assert.equal(res.headers['x-portcullis-reason'], 'upstream_timeout');
  assert.equal(await res.body.text(), 'upstream request timeout');
  assert.ok(h1Elapsed >= 380, `answered after ${h1Elapsed.toFixed(0)} ms, before the deadline`);

  const [viaH2] = await h2cGet(outH2.address.port, ['/slow-h2'], 1);
  assert.equal(viaH2?.status, 504);
  assert.equal(viaH2?.body, 'upstream request timeout');
  assert.deepEqual(events.map((e) => [e.request.path, e.status, e.reason, e.upstream?.outcome]).sort(), [['/slow-h1', 504, 'upstream_timeout', 'upstream_timeout'], ['/slow-h2', 504, 'upstream_timeout', 'upstream_timeout']]);
});

test("a gRPC caller's grpc-timeout is a deadline of its own: DEADLINE_EXCEEDED at it while the call still sends, whatever the route's longer wait", async () => {
  const cert = pki.issue({ spiffeId: TEST_IDS.httpbin });
  const dest = await h2Destination(cert, (stream) => { stream.resume(); /* reads the call, never answers */ });
  const out = await outbound(dest.port, TEST_IDS.httpbin, { headersMs: 60_000 });
  events.length = 0;
  const http2 = await import('node:http2');
  const session = http2.connect(`http://127.0.0.1:${out.address.port}`);
  session.on('error', () => { /* reported by the stream */ });
  try {
    const started = performance.now();
    const req = session.request({ ':method': 'POST', ':path': '/echo.Echo/Echo', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '300m' }, { endStream: false });
    let answeredAt = 0;
    let grpcStatus: unknown;
    req.on('response', (h) => { answeredAt = performance.now(); grpcStatus = h['grpc-status']; });
    req.on('trailers', (t) => { grpcStatus ??= t['grpc-status']; });
    req.on('error', () => undefined);
    req.resume();
    const closed = new Promise<void>((r) => req.on('close', r));
    // A chunk every 100 ms for 1.5 s: the deadline must not move with them.
    for (let i = 0; i < 15 && answeredAt === 0 && !req.closed; i++) {
      req.write(Buffer.from([0, 0, 0, 0, 0]));
      await new Promise((r) => setTimeout(r, 100));
    }
    if (!req.closed) req.end();
    await closed;
    const after = answeredAt - started;
    assert.equal(grpcStatus, '4', 'DEADLINE_EXCEEDED');
    assert.ok(after >= 295 && after < 900, `answered ${after.toFixed(0)} ms after the start`);
    assert.deepEqual(events.map((e) => [e.request.path, e.reason, e.upstream?.outcome]), [['/echo.Echo/Echo', 'upstream_timeout', 'upstream_timeout']]);
  } finally {
    session.destroy();
  }
});

test('a destination that accepts TCP but never finishes the TLS handshake: 503 after the connect timeout, over HTTP/1.1 and h2c', async () => {
  const { createServer: createNetServer } = await import('node:net');
  const held = new Set<import('node:net').Socket>();
  const mute = createNetServer((socket) => { held.add(socket); socket.on('error', () => { /* closed by the listener */ }); });
  await new Promise<void>((r) => mute.listen(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => { for (const s of held) s.destroy(); mute.close(() => r()); }));
  const out = await outbound((mute.address() as AddressInfo).port, TEST_IDS.httpbin, { connectMs: 300, headersMs: 60_000 });
  events.length = 0;

  const res = await undiciRequest(`http://127.0.0.1:${out.address.port}/mute-h1`);
  assert.equal(res.statusCode, 503);
  await res.body.dump();
  const [viaH2] = await h2cGet(out.address.port, ['/mute-h2'], 1);
  assert.equal(viaH2?.status, 503, 'the h2 handshake has the connect timeout too (not the 60 s response deadline)');
  assert.deepEqual(events.map((e) => [e.request.path, e.status, e.reason]).sort(), [['/mute-h1', 503, 'upstream_refused'], ['/mute-h2', 503, 'upstream_refused']]);
});
