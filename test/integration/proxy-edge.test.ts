// Integration: upstream failures through the one error table, audit mode, permissive listeners, streaming
// with backpressure and WebSocket tunnels, all through a real `portcullis run` app.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { Agent, request as undiciRequest } from 'undici';
import WebSocket, { WebSocketServer } from 'ws';
import * as grpc from '@grpc/grpc-js';
import { ALLOW_FRONTEND_POLICY, closedPort, getText, h2Client, h2Request, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { echoClient, unary } from './grpc-fixture.js';

describe('upstream failures map through respond.ts', () => {
  const cleanups: (() => Promise<void>)[] = [];
  after(async () => { for (const c of cleanups.reverse()) await c(); });

  it('refused: 503 (h1) and grpc-status 14 (h2c), no socket details leaked', async () => {
    const port = await closedPort();
    const h1 = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: `http://127.0.0.1:${port}` });
    cleanups.push(() => h1.stop());
    const res = await getText(`${h1.origin}/public/a`, mtlsAgent(h1, h1.svids.frontend));
    assert.equal(res.status, 503);
    assert.doesNotMatch(res.body, /ECONNREFUSED|127\.0\.0\.1|at /);
    const ev = await h1.event((e) => e.upstream !== undefined);
    assert.equal(ev?.upstream?.outcome, 'upstream_refused');
    const h2 = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: `h2c://127.0.0.1:${port}` });
    cleanups.push(() => h2.stop());
    const client = echoClient(h2.port, h2.caPem, h2.svids.frontend);
    const r = await unary(client, { message: 'x' });
    client.close();
    assert.equal(r.err?.code, grpc.status.UNAVAILABLE);
    assert.doesNotMatch(String(r.err?.details), /ECONNREFUSED|127\.0\.0\.1/);
  });

  it('timeout: 504 (h1) and grpc-status 4 (h2c) when the workload never answers', async () => {
    const silentH1 = http.createServer(() => { /* never answers */ });
    silentH1.listen(0, '127.0.0.1');
    await once(silentH1, 'listening');
    cleanups.push(async () => { silentH1.closeAllConnections(); silentH1.close(); });
    const h1 = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: `http://127.0.0.1:${(silentH1.address() as net.AddressInfo).port}`, flags: ['--upstream-timeout', '300ms'] });
    cleanups.push(() => h1.stop());
    const res = await getText(`${h1.origin}/public/a`, mtlsAgent(h1, h1.svids.frontend));
    assert.equal(res.status, 504);
    const silentH2 = http2.createServer();
    silentH2.on('stream', () => { /* never answers */ });
    silentH2.listen(0, '127.0.0.1');
    await once(silentH2, 'listening');
    cleanups.push(async () => { silentH2.close(); });
    const h2 = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: `h2c://127.0.0.1:${(silentH2.address() as net.AddressInfo).port}`, flags: ['--upstream-timeout', '300ms'] });
    cleanups.push(() => h2.stop());
    const client = echoClient(h2.port, h2.caPem, h2.svids.frontend);
    const r = await unary(client, { message: 'x' });
    client.close();
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
  });

  it('reset: 502 when the workload drops the connection', async () => {
    const rude = http.createServer((req) => req.socket.destroy());
    rude.listen(0, '127.0.0.1');
    await once(rude, 'listening');
    cleanups.push(async () => { rude.close(); });
    const p = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: `http://127.0.0.1:${(rude.address() as net.AddressInfo).port}` });
    cleanups.push(() => p.stop());
    const res = await getText(`${p.origin}/public/a`, mtlsAgent(p, p.svids.frontend));
    assert.equal(res.status, 502);
    assert.doesNotMatch(res.body, /ECONNRESET|socket/i);
  });
});

describe('audit mode and permissive listeners', () => {
  let upstream: RecordingUpstream;
  let audit: ProxyUnderTest;
  let permissive: ProxyUnderTest;
  before(async () => {
    upstream = await startH1Upstream();
    audit = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url, mode: 'audit' });
    permissive = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url, listenerMode: 'permissive' });
  });
  after(async () => { await audit.stop(); await permissive.stop(); await upstream.close(); });

  it('audit mode forwards a policy deny and logs would_deny with the policy and rule', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${audit.origin}/admin`, mtlsAgent(audit, audit.svids.frontend));
    assert.equal(res.status, 200);
    assert.equal(upstream.requests.length, before + 1);
    const ev = await audit.event((e) => e.request.path === '/admin');
    assert.equal(ev?.mode, 'audit');
    assert.equal(ev?.would_deny, true);
    assert.equal(ev?.verdict, 'deny');
    assert.equal(ev?.policy?.name, 'deny-admin');
    assert.match(String(ev?.rule), /deny-admin.*rule\[0\]/);
    assert.match(await audit.metrics(), /portcullis_/);
  });

  it('Istio AUDIT matches and dry-run results appear in the decision events (enforce mode)', async () => {
    const extra = `
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: audit-public, namespace: foo}
spec:
  action: AUDIT
  rules:
  - to: [{operation: {paths: ["/public/*"]}}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: dry-deny
  namespace: foo
  annotations: {istio.io/dry-run: "true"}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/public/dry"]}}]
`;
    const p = await startProxy({ policy: ALLOW_FRONTEND_POLICY + extra, upstream: upstream.url });
    try {
      const res = await getText(`${p.origin}/public/dry`, mtlsAgent(p, p.svids.frontend));
      assert.equal(res.status, 200, 'a dry-run DENY never enforces');
      const ev = await p.event((e) => e.request.path === '/public/dry');
      assert.equal(ev?.verdict, 'allow');
      assert.equal(ev?.audit?.policy.name, 'audit-public');
      assert.equal(ev?.shadow?.verdict, 'deny');
      assert.equal(ev?.shadow?.policy?.name, 'dry-deny');
    } finally {
      await p.stop();
    }
  });

  it('permissive: a TLS caller whose certificate fails validation is refused, not downgraded', async () => {
    const before = upstream.bytes;
    await assert.rejects(getText(`${permissive.origin}/anon`, mtlsAgent(permissive, permissive.svids.otherCa)));
    await assert.rejects(getText(`${permissive.origin}/anon`, mtlsAgent(permissive, permissive.svids.twoUriSans)));
    assert.equal(upstream.bytes, before);
  });

  it('audit mode still enforces parse failures (duplicate Host)', async () => {
    const { rawTls } = await import('./harness.js');
    const res = await rawTls(audit, audit.svids.frontend, 'GET /admin HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    assert.match(res, /^HTTP\/1\.1 400 /);
  });

  it('permissive: a plaintext caller is an unauthenticated peer (allowed only where policy allows anonymous)', async () => {
    const plain = new Agent();
    const anon = await getText(`http://127.0.0.1:${permissive.port}/anon`, plain);
    assert.equal(anon.status, 200);
    const seen = upstream.requests.at(-1);
    assert.equal(seen?.headers['x-forwarded-client-cert'], undefined);
    assert.equal(seen?.headers['x-forwarded-proto'], 'http');
    const pub = await getText(`http://127.0.0.1:${permissive.port}/public/a`, plain);
    assert.equal(pub.status, 403);
    // TLS without a client certificate on the same port: also unauthenticated.
    const noCert = await getText(`${permissive.origin}/anon`, mtlsAgent(permissive, null));
    assert.equal(noCert.status, 200);
    // And a verified SVID still identifies.
    const tlsOk = await getText(`${permissive.origin}/public/a`, mtlsAgent(permissive, permissive.svids.frontend));
    assert.equal(tlsOk.status, 200);
    // A plaintext h2 (prior knowledge) caller works too.
    const s = http2.connect(`http://127.0.0.1:${permissive.port}`);
    const r = await h2Request(s, { ':method': 'GET', ':path': '/anon' });
    s.close();
    assert.equal(r.status, 200);
    void h2Client;
  });
});

describe('streaming and WebSocket', () => {
  const SIZE = 20 * 1024 * 1024;
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  let wsServer: http.Server;
  let wsProxy: ProxyUnderTest;
  const uploadSeen = { bytes: 0, hash: '', firstByteAt: 0 };
  const downloadState = { backpressured: false };
  before(async () => {
    upstream = await startH1Upstream(undefined, {
      streamBody(req, res) {
        if (req.url === '/upload') {
          const h = createHash('sha256');
          req.on('data', (c: Buffer) => {
            if (uploadSeen.firstByteAt === 0) uploadSeen.firstByteAt = Date.now();
            uploadSeen.bytes += c.length;
            h.update(c);
            // A slow reader: pause for a moment every chunk so backpressure must reach the client.
            req.pause();
            setTimeout(() => req.resume(), 1);
          });
          req.on('end', () => { uploadSeen.hash = h.digest('hex'); res.end('stored'); });
          return;
        }
        // /big: 20 MB of deterministic bytes, honouring backpressure.
        req.resume();
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(SIZE) });
        let sent = 0;
        const chunk = Buffer.alloc(64 * 1024, 7);
        const pump = (): void => {
          while (sent < SIZE) {
            sent += chunk.length;
            if (!res.write(chunk)) { downloadState.backpressured = true; res.once('drain', pump); return; }
          }
          res.end();
        };
        pump();
      },
    });
    proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url });
    wsServer = http.createServer((_req, res) => { res.writeHead(426); res.end(); });
    const wss = new WebSocketServer({ server: wsServer });
    wss.on('connection', (sock) => sock.on('message', (m) => sock.send(`echo:${String(m)}`)));
    wsServer.listen(0, '127.0.0.1');
    await once(wsServer, 'listening');
    wsProxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: `http://127.0.0.1:${(wsServer.address() as net.AddressInfo).port}` });
  });
  after(async () => { await proxy.stop(); await wsProxy.stop(); await upstream.close(); wsServer.closeAllConnections(); wsServer.close(); });

  it('streams a 20 MB upload to a slow reader and a 20 MB download to a slow client, bytes intact', async () => {
    const agent = mtlsAgent(proxy, proxy.svids.frontend);
    const payload = Buffer.alloc(SIZE);
    for (let i = 0; i < SIZE; i += 4096) payload[i] = i % 251;
    const expected = createHash('sha256').update(payload).digest('hex');
    let clientFinishedAt = 0;
    async function* body(): AsyncGenerator<Buffer> {
      for (let off = 0; off < SIZE; off += 256 * 1024) yield payload.subarray(off, off + 256 * 1024);
      clientFinishedAt = Date.now();
    }
    const up = await undiciRequest(`${proxy.origin}/upload`, { dispatcher: agent, method: 'POST', body: Readable.from(body()) });
    assert.equal(up.statusCode, 200);
    assert.equal(await up.body.text(), 'stored');
    assert.equal(uploadSeen.bytes, SIZE);
    assert.equal(uploadSeen.hash, expected);
    assert.ok(uploadSeen.firstByteAt <= clientFinishedAt, 'upstream received bytes before the client finished sending (streamed, not buffered)');

    const down = await undiciRequest(`${proxy.origin}/big`, { dispatcher: agent });
    assert.equal(down.statusCode, 200);
    let received = 0;
    for await (const chunk of down.body) {
      received += (chunk as Buffer).length;
      if (received % (2 * 1024 * 1024) < 65536) await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal(received, SIZE);
    assert.equal(downloadState.backpressured, true, 'the upstream felt backpressure from the slow client');
  });

  it('a caller that stops reading its response is cut after limits.idleTimeout', async () => {
    const idle = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url, flags: ['--idle-timeout', '500ms'] });
    const caller = tls.connect({ host: '127.0.0.1', port: idle.port, ca: idle.caPem, cert: idle.svids.frontend.chainPem, key: idle.svids.frontend.keyPem, ALPNProtocols: ['http/1.1'] });
    caller.on('error', () => { /* cut by the proxy */ });
    try {
      await once(caller, 'secureConnect');
      const sentAt = Date.now();
      caller.write('GET /big HTTP/1.1\r\nhost: workload\r\n\r\n');
      // Never reads: the response fills the socket buffers both ways, the relay pauses the workload, no byte moves.
      caller.pause();
      let ev: Awaited<ReturnType<ProxyUnderTest['event']>>;
      for (let i = 0; i < 200 && ev === undefined; i++) {
        ev = (await idle.events(0)).find((e) => e.request.path === '/big');
        if (ev === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(ev, 'the stalled exchange ends with its decision line');
      assert.ok(Date.now() - sentAt >= 500, 'not before the idle limit');
      assert.equal(ev.status, 200);
      assert.equal(ev.upstream?.outcome, 'client_aborted');
    } finally {
      caller.destroy();
      await idle.stop();
    }
  });

  it('WebSocket: tunnelled when allowed, 403 when denied', async () => {
    const url = `wss://127.0.0.1:${wsProxy.port}/ws`;
    const ok = new WebSocket(url, { ca: wsProxy.caPem, cert: wsProxy.svids.frontend.chainPem, key: wsProxy.svids.frontend.keyPem });
    await once(ok, 'open');
    ok.send('ping');
    const [msg] = await once(ok, 'message');
    assert.equal(String(msg), 'echo:ping');
    ok.close();
    const denied = new WebSocket(url, { ca: wsProxy.caPem, cert: wsProxy.svids.other.chainPem, key: wsProxy.svids.other.keyPem });
    denied.on('error', () => {});
    const [, res] = (await once(denied, 'unexpected-response')) as [unknown, http.IncomingMessage];
    assert.equal(res.statusCode, 403);
    denied.terminate();
  });
});
