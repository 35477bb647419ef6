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

async function outbound(port: number, expectIdentity: string): Promise<OutboundListener> {
  const { credentials } = buildCredentials(client.chainPem, client.keyPem, pki.caCertPem, Date.now());
  const listener = await startOutboundListener(
    { name: `outbound-test-${port}`, listen: { host: '127.0.0.1', port: 0 }, target: `https://127.0.0.1:${port}`, expectIdentity },
    {
      credentials: { current: () => credentials },
      trustDomains: ['cluster.local'],
      decisionSink: { publish: (e) => events.push(e) },
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
