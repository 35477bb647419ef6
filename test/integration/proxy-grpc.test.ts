// Integration: HTTP/2 and gRPC through Portcullis to h2c upstreams (node:http2, @grpc/grpc-js), with real
// mTLS clients (node:http2, grpc-js createSsl), JWTs (jose) and the decision log.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { jwksJson, makeKey, mint, type TestKey } from '../../src/jwt/testing.js';
import { ALLOW_FRONTEND_POLICY, h2Client, h2Request, startH1Upstream, startH2Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { echoClient, startEchoUpstream, unary, type EchoReply, type EchoUpstream } from './grpc-fixture.js';

describe('gRPC through Portcullis', () => {
  let upstream: EchoUpstream;
  let proxy: ProxyUnderTest;
  let key: TestKey;
  before(async () => {
    key = await makeKey('ES256', 'k1');
    upstream = await startEchoUpstream();
    const jwtPolicy = `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec:
  jwtRules:
  - issuer: https://issuer.test
    jwks: '${jwksJson(key)}'
`;
    proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY + '---\n' + jwtPolicy, upstream: upstream.url });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('unary: allowed, forwarded with XFCC, trailers relayed', async () => {
    const client = echoClient(proxy.port, proxy.caPem, proxy.svids.frontend);
    const r = await unary(client, { message: 'hi' });
    client.close();
    assert.equal(r.err, null);
    assert.equal(r.reply?.message, 'hi');
    assert.match(String(r.reply?.peer), /URI=spiffe:\/\/cluster\.local\/ns\/foo\/sa\/frontend$/);
    assert.deepEqual(r.trailers?.get('x-trailer'), ['yes']);
    const failed = await unary(echoClient(proxy.port, proxy.caPem, proxy.svids.frontend), { message: 'fail' });
    assert.equal(failed.err?.code, grpc.status.FAILED_PRECONDITION);
  });

  it('deny: HTTP 200 trailers-only with grpc-status 7, upstream never called', async () => {
    const before = upstream.calls.length;
    const client = echoClient(proxy.port, proxy.caPem, proxy.svids.other);
    const r = await unary(client, { message: 'hi' });
    client.close();
    assert.equal(r.err?.code, grpc.status.PERMISSION_DENIED);
    assert.equal(r.err?.details, 'RBAC: access denied');
    assert.equal(upstream.calls.length, before);
    const ev = await proxy.event((e) => e.peer.spiffe_id?.endsWith('/sa/other') === true);
    assert.equal(ev?.verdict, 'deny');
    assert.equal(ev?.grpc_status, 7);
    assert.equal(ev?.request.protocol, 'grpc');
  });

  it('raw h2 view of a gRPC deny: :status 200, grpc-status 7 in the only HEADERS frame', async () => {
    const s = h2Client(proxy, proxy.svids.other);
    const r = await h2Request(s, { ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' }, Buffer.from([0, 0, 0, 0, 0]));
    s.close();
    assert.equal(r.status, 200);
    assert.equal(r.headers['grpc-status'], '7');
    assert.equal(r.trailers, undefined);
  });

  it('invalid JWT: grpc-status 16; valid JWT passes and is removed before forwarding', async () => {
    const client = echoClient(proxy.port, proxy.caPem, proxy.svids.frontend);
    const bad = new grpc.Metadata();
    bad.set('authorization', 'Bearer a.b.c');
    const r = await unary(client, { message: 'x' }, { metadata: bad });
    assert.equal(r.err?.code, grpc.status.UNAUTHENTICATED);
    const good = new grpc.Metadata();
    good.set('authorization', `Bearer ${await mint(key, { iss: 'https://issuer.test', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 })}`);
    const ok = await unary(client, { message: 'y' }, { metadata: good });
    client.close();
    assert.equal(ok.err, null);
    assert.equal(upstream.calls.at(-1)?.metadata['authorization'], undefined);
    const ev = await proxy.event((e) => e.jwt !== null);
    assert.deepEqual(ev?.jwt && { iss: ev.jwt.iss, sub: ev.jwt.sub }, { iss: 'https://issuer.test', sub: 'alice' });
    // The replayable event keeps the verified claims, never the token.
    assert.equal(ev?.jwt?.claims?.['sub'], 'alice');
    assert.equal(ev?.request.headers?.['authorization'], 'Bearer [redacted]');
  });

  it('invalid JWT over HTTP/2 (non-gRPC): 401 with WWW-Authenticate naming the request URL', async () => {
    const s = h2Client(proxy, proxy.svids.frontend);
    const expired = await mint(key, { iss: 'https://issuer.test', sub: 'bob', exp: Math.floor(Date.now() / 1000) - 3600 });
    const r = await h2Request(s, { ':method': 'GET', ':path': '/public/a?access=1', ':authority': 'svc.foo:8443', authorization: `Bearer ${expired}` });
    s.close();
    assert.equal(r.status, 401);
    assert.equal(r.headers['www-authenticate'], 'Bearer realm="https://svc.foo:8443/public/a", error="invalid_token"');
    assert.equal(r.body.toString(), 'Jwt is expired');
    const ev = await proxy.event((e) => e.status === 401);
    assert.equal(ev?.verdict, 'unauthenticated');
    assert.equal(ev?.reason, 'jwt_expired');
  });

  it('client-streaming, server-streaming and bidirectional calls work', async () => {
    const client = echoClient(proxy.port, proxy.caPem, proxy.svids.frontend);
    const cs = await new Promise<EchoReply>((resolve, reject) => {
      const call = client['ClientStream']((err: grpc.ServiceError | null, reply: EchoReply) => (err ? reject(err) : resolve(reply))) as grpc.ClientWritableStream<unknown>;
      for (const m of ['a', 'b', 'c']) call.write({ message: m });
      call.end();
    });
    assert.equal(cs.message, 'a,b,c');
    const ss = await new Promise<string[]>((resolve, reject) => {
      const out: string[] = [];
      const call = client['ServerStream']({ message: 's', count: 5, delay_ms: 1 }) as grpc.ClientReadableStream<EchoReply>;
      call.on('data', (m: EchoReply) => out.push(m.message));
      call.on('error', reject);
      call.on('end', () => resolve(out));
    });
    assert.deepEqual(ss, ['s-0', 's-1', 's-2', 's-3', 's-4']);
    const bidi = await new Promise<string[]>((resolve, reject) => {
      const out: string[] = [];
      const call = client['Bidi']() as grpc.ClientDuplexStream<unknown, EchoReply>;
      call.on('data', (m: EchoReply) => {
        out.push(m.message);
        if (out.length < 3) call.write({ message: String(out.length) }); else call.end();
      });
      call.on('error', reject);
      call.on('end', () => resolve(out));
      call.write({ message: '0' });
    });
    client.close();
    assert.deepEqual(bidi, ['echo:0', 'echo:1', 'echo:2']);
  });

  it('propagates deadlines (grpc-timeout) and cancellations to the upstream', async () => {
    const client = echoClient(proxy.port, proxy.caPem, proxy.svids.frontend);
    // A first call opens the connection, so the deadline below is spent on the upstream call and not on a
    // handshake a loaded machine may stretch past it.
    await unary(client, { message: 'warm', delay_ms: 0 });
    const r = await unary(client, { message: 'slow', delay_ms: 2000 }, { deadlineMs: 600 });
    assert.equal(r.err?.code, grpc.status.DEADLINE_EXCEEDED);
    const slow = upstream.calls.filter((c) => c.method === 'Unary').at(-1);
    assert.ok(slow && Number.isFinite(slow.deadline), 'upstream saw a deadline');
    assert.ok(slow.deadline - Date.now() < 2000);
    const call = client['ServerStream']({ message: 'c', count: 1000, delay_ms: 20 }) as grpc.ClientReadableStream<EchoReply>;
    await new Promise<void>((resolve) => call.once('data', () => resolve()));
    call.on('error', () => {});
    call.cancel();
    const rec = upstream.calls.filter((c) => c.method === 'ServerStream').at(-1);
    for (let i = 0; i < 100 && !rec?.cancelled; i++) await new Promise((res) => setTimeout(res, 20));
    client.close();
    assert.equal(rec?.cancelled, true);
  });
});

describe('HTTP/2 downstream to either upstream kind', () => {
  let h1: RecordingUpstream;
  let h2: RecordingUpstream;
  let toH1: ProxyUnderTest;
  let toH2: ProxyUnderTest;
  before(async () => {
    h1 = await startH1Upstream();
    h2 = await startH2Upstream();
    toH1 = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: h1.url });
    toH2 = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: h2.url });
  });
  after(async () => { await toH1.stop(); await toH2.stop(); await h1.close(); await h2.close(); });

  it('h2 -> h1 upstream: POST body and headers arrive, response relayed', async () => {
    const s = h2Client(toH1, toH1.svids.frontend);
    const r = await h2Request(s, { ':method': 'POST', ':path': '/echo', 'content-type': 'text/plain', 'x-spiffe-id': 'spoof', 'x-forwarded-for': '9.9.9.9' }, 'hello h2');
    // A `_` header name is refused (PC-9), never silently dropped; the upstream sees nothing of it.
    const before = h1.requests.length;
    const underscore = await h2Request(s, { ':method': 'POST', ':path': '/echo', 'content-type': 'text/plain', 'x_spiffe_id': 'spoof' }, 'nope');
    s.close();
    assert.equal(underscore.status, 400);
    assert.equal(h1.requests.length, before);
    assert.equal(r.status, 200);
    assert.equal(r.body.toString(), 'upstream ok');
    const seen = h1.requests.at(-1);
    assert.equal(seen?.method, 'POST');
    assert.equal(seen?.body.toString(), 'hello h2');
    assert.equal(seen?.headers['x-forwarded-for'], undefined);
    assert.equal(seen?.headers['x-spiffe-id'], undefined);
    assert.match(String(seen?.headers['x-forwarded-client-cert']), /sa\/frontend$/);
  });

  it('h2 -> h2c upstream: forwarded; a deny is 403 and the upstream sees nothing', async () => {
    const s = h2Client(toH2, toH2.svids.frontend);
    const ok = await h2Request(s, { ':method': 'GET', ':path': '/public/x?q=1' });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.toString(), 'upstream h2 ok');
    assert.equal(h2.requests.at(-1)?.url, '/public/x?q=1');
    const before = h2.requests.length;
    const denied = await h2Request(s, { ':method': 'GET', ':path': '/admin' });
    s.close();
    assert.equal(denied.status, 403);
    assert.equal(denied.body.toString(), 'RBAC: access denied');
    assert.equal(h2.requests.length, before);
  });

  it('h1 -> h2c upstream works too', async () => {
    const { getText, mtlsAgent } = await import('./harness.js');
    const res = await getText(`${toH2.origin}/public/y`, mtlsAgent(toH2, toH2.svids.frontend));
    assert.equal(res.status, 200);
    assert.equal(res.body, 'upstream h2 ok');
  });

  it('h2: a duplicate authorization header is 400 and Host disagreeing with :authority is 400', async () => {
    const s = h2Client(toH1, toH1.svids.frontend);
    const r = await h2Request(s, { ':method': 'GET', ':path': '/public/a', ':authority': 'a.example', host: 'b.example' });
    s.close();
    assert.equal(r.status, 400);
  });
});
