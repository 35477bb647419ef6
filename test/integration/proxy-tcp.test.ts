// Integration: opaque TCP listeners (`protocol: tcp`) with real mTLS, a real echo workload and real policy files:
// one decision per connection (istio.md §9, linkerd.md §2/§8), piping, audit, revocation on reload, upstream refused.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { App } from '../../src/app.js';
import type { DecisionEventV1 } from '../../src/observe/types.js';
import { sharedTestPki, type IssuedCert } from '../helpers/pki.js';
import { closedPort, decisionLogLines, parseDecisionLines, startApp } from './harness.js';

const WORKLOAD_PORT = 9000;

interface EchoUpstream { port: number; accepted: number; close(): Promise<void> }

/** A TCP echo workload that honours half-close (echoes everything, then ends when the caller ends). */
async function startEcho(): Promise<EchoUpstream> {
  const state = { accepted: 0 };
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    state.accepted++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    get accepted() { return state.accepted; },
    async close() { for (const s of sockets) s.destroy(); await new Promise<void>((r) => server.close(() => r())); },
  };
}

interface TcpProxy {
  app: App;
  port: number;
  caPem: string;
  policyFile: string;
  event(predicate: (e: DecisionEventV1) => boolean): Promise<DecisionEventV1 | undefined>;
  events(): DecisionEventV1[];
  stop(): Promise<void>;
}

async function startTcpProxy(opts: { policy: string; upstreamPort: number; mode?: 'enforce' | 'audit'; listenerMode?: 'strict' | 'permissive'; flags?: string[] }): Promise<TcpProxy> {
  const started = await startApp({
    dirPrefix: 'portcullis-tcp-',
    policy: opts.policy,
    listener: `name=db,listen=127.0.0.1:0,upstream=tcp://127.0.0.1:${opts.upstreamPort},protocol=tcp,mode=${opts.listenerMode ?? 'strict'},workloadPort=${WORKLOAD_PORT}`,
    workload: ['--service-account', 'db', '--labels', 'app=db'],
    mode: opts.mode,
    flags: opts.flags,
  });
  const { app, logFile } = started;
  const events = (): DecisionEventV1[] => parseDecisionLines(decisionLogLines(logFile));
  return {
    app,
    port: (app.listeners[0] as { address(): net.AddressInfo }).address().port,
    caPem: started.caPem,
    policyFile: started.policyFile,
    events,
    async event(predicate) {
      for (let i = 0; i < 150; i++) {
        const found = events().filter(predicate).at(-1);
        if (found) return found;
        await new Promise((r) => setTimeout(r, 20));
      }
      return undefined;
    },
    stop: () => started.stop(),
  };
}

/** An mTLS client connection, resolved once the handshake completed on the client side. */
async function connect(proxy: TcpProxy, cert: IssuedCert, localAddress?: string): Promise<tls.TLSSocket> {
  const socket = tls.connect({ host: '127.0.0.1', port: proxy.port, ca: proxy.caPem, cert: cert.chainPem, key: cert.keyPem, servername: 'localhost', ...(localAddress ? { localAddress } : {}) });
  socket.on('error', () => {});
  await once(socket, 'secureConnect');
  return socket;
}

/** Everything received until the proxy closed the connection (bounded wait); `closed` false on timeout. */
async function untilClosed(socket: tls.TLSSocket, ms = 3000): Promise<{ closed: boolean; data: Buffer }> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  if (socket.destroyed || socket.readableEnded) return { closed: true, data: Buffer.concat(chunks) };
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    // The proxy's close_notify/FIN arrives as 'end'; 'close' may come later (or never, while we keep our half).
    const closed = (): void => { clearTimeout(timer); resolve(true); };
    socket.once('end', closed);
    socket.once('close', closed);
  });
  return { closed, data: Buffer.concat(chunks) };
}

/** Sends `payload`, half-closes, and collects the echo until the proxy ends the stream. */
async function echoRoundTrip(socket: tls.TLSSocket, payload: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const ended = once(socket, 'end');
  socket.end(payload);
  const timer = setTimeout(() => socket.destroy(new Error('echo timed out')), 10_000);
  try { await ended; } finally { clearTimeout(timer); }
  return Buffer.concat(chunks);
}

const ISTIO_ALLOW_FRONTEND_ON_PORT = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-frontend-db, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/frontend"]}}]
    to: [{operation: {ports: ["${WORKLOAD_PORT}"]}}]
`;

test('Istio ALLOW by principal on the port: a few hundred KB echo both ways, half-close ends the tunnel, one event', async () => {
  const echo = await startEcho();
  const proxy = await startTcpProxy({ policy: ISTIO_ALLOW_FRONTEND_ON_PORT, upstreamPort: echo.port });
  try {
    const payload = randomBytes(384 * 1024);
    const socket = await connect(proxy, sharedTestPki().svids.frontend);
    const back = await echoRoundTrip(socket, payload);
    assert.equal(back.length, payload.length);
    assert.ok(back.equals(payload), 'echoed bytes differ');
    const e = await proxy.event((x) => x.request.protocol === 'tcp' && x.upstream?.outcome === 'ok');
    assert.ok(e, `no tcp event: ${JSON.stringify(proxy.events())}`);
    assert.equal(e.verdict, 'allow');
    assert.equal(e.would_deny, false);
    assert.deepEqual(e.policy, { kind: 'AuthorizationPolicy', namespace: 'foo', name: 'allow-frontend-db' });
    assert.equal(e.peer.spiffe_id, 'spiffe://cluster.local/ns/foo/sa/frontend');
    // destination_ip and sni: the replayable capture of a connection (what TCP-level policies test).
    assert.deepEqual(e.request, { protocol: 'tcp', method: '', authority: '', path: '', listener: 'db', port: WORKLOAD_PORT, destination_ip: '127.0.0.1', sni: 'localhost' });
    assert.equal(e.capture, 'replayable');
    assert.equal(e.upstream?.bytes_sent, payload.length);
    assert.equal(e.upstream?.bytes_received, payload.length);

    // Another identity is not in the ALLOW: closed without a byte, the workload never sees it.
    const acceptedBefore = echo.accepted;
    const other = await connect(proxy, sharedTestPki().svids.other);
    other.write('hello?');
    const r = await untilClosed(other);
    assert.equal(r.closed, true);
    assert.equal(r.data.length, 0);
    assert.equal(echo.accepted, acceptedBefore);
    const denied = await proxy.event((x) => x.verdict === 'deny' && x.peer.spiffe_id === 'spiffe://cluster.local/ns/foo/sa/other');
    assert.ok(denied);
    assert.equal(denied.request.protocol, 'tcp');
    assert.equal(denied.upstream, undefined);
  } finally {
    await proxy.stop();
    await echo.close();
  }
});

test('Istio DENY on the port: the connection is closed and the workload never accepts a connection', async () => {
  const echo = await startEcho();
  const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-db, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {ports: ["${WORKLOAD_PORT}"]}}]
`;
  const proxy = await startTcpProxy({ policy, upstreamPort: echo.port });
  try {
    const socket = await connect(proxy, sharedTestPki().svids.frontend);
    socket.write(randomBytes(1024));
    const r = await untilClosed(socket);
    assert.equal(r.closed, true, 'the proxy did not close a denied connection');
    assert.equal(r.data.length, 0, 'a denied TCP connection got bytes back');
    assert.equal(echo.accepted, 0);
    const e = await proxy.event((x) => x.request.protocol === 'tcp');
    assert.ok(e);
    assert.equal(e.verdict, 'deny');
    assert.deepEqual(e.policy, { kind: 'AuthorizationPolicy', namespace: 'foo', name: 'deny-db' });
    assert.notEqual(e.rule, null);
    assert.ok(e.reason.length > 0);
    const metrics = await proxy.app.metrics.scrape();
    assert.match(metrics, /verdict="deny"[^\n]*listener="db"|listener="db"[^\n]*verdict="deny"/);
  } finally {
    await proxy.stop();
    await echo.close();
  }
});

test('Istio ALLOW with only HTTP fields: the rule is dropped on TCP, so the connection is denied (istio.md §9)', async () => {
  const echo = await startEcho();
  const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-get, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/frontend"]}}]
    to: [{operation: {methods: ["GET"], ports: ["${WORKLOAD_PORT}"]}}]
`;
  const proxy = await startTcpProxy({ policy, upstreamPort: echo.port });
  try {
    const socket = await connect(proxy, sharedTestPki().svids.frontend);
    const r = await untilClosed(socket);
    assert.equal(r.closed, true);
    assert.equal(r.data.length, 0);
    assert.equal(echo.accepted, 0);
    const e = await proxy.event((x) => x.request.protocol === 'tcp');
    assert.equal(e?.verdict, 'deny');
  } finally {
    await proxy.stop();
    await echo.close();
  }
});

/**
 * Linkerd appends a `localhost` authorization (127.0.0.1, ::1) to every server (linkerd.md §4), so Linkerd
 * cases connect from another loopback address: the policy under test decides, not the localhost rule.
 */
const NOT_LOCALHOST = '127.0.0.2';

test('Linkerd opaque Server + MeshTLSAuthentication: the authorized identity passes, another is closed', async () => {
  const echo = await startEcho();
  const policy = `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: foo, name: db}
spec:
  podSelector: {matchLabels: {app: db}}
  port: ${WORKLOAD_PORT}
  proxyProtocol: opaque
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: foo, name: db-clients}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: db}
  requiredAuthenticationRefs:
    - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: db-clients}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {namespace: foo, name: db-clients}
spec:
  identityRefs: [{kind: ServiceAccount, name: frontend, namespace: foo}]
`;
  const proxy = await startTcpProxy({ policy, upstreamPort: echo.port });
  try {
    const payload = randomBytes(64 * 1024);
    const ok = await connect(proxy, sharedTestPki().svids.frontend, NOT_LOCALHOST);
    assert.ok((await echoRoundTrip(ok, payload)).equals(payload));
    const allowed = await proxy.event((x) => x.verdict === 'allow' && x.request.protocol === 'tcp');
    assert.ok(allowed);
    assert.equal(allowed.dialect, 'linkerd');
    assert.equal(allowed.authorization, 'authorizationpolicy/db-clients');
    assert.equal(allowed.peer.ip, NOT_LOCALHOST);

    const acceptedBefore = echo.accepted;
    const other = await connect(proxy, sharedTestPki().svids.other, NOT_LOCALHOST);
    other.write('select 1');
    const r = await untilClosed(other);
    assert.equal(r.closed, true);
    assert.equal(r.data.length, 0);
    assert.equal(echo.accepted, acceptedBefore);
    const denied = await proxy.event((x) => x.verdict === 'deny' && x.request.protocol === 'tcp');
    assert.ok(denied);
    assert.deepEqual(denied.policy ? { kind: denied.policy.kind, name: denied.policy.name } : null, { kind: 'Server', name: 'db' });
  } finally {
    await proxy.stop();
    await echo.close();
  }
});

test('audit mode: a denied connection is forwarded and logged as would_deny', async () => {
  const echo = await startEcho();
  const proxy = await startTcpProxy({ policy: ISTIO_ALLOW_FRONTEND_ON_PORT, upstreamPort: echo.port, mode: 'audit' });
  try {
    const payload = randomBytes(32 * 1024);
    const socket = await connect(proxy, sharedTestPki().svids.other);
    assert.ok((await echoRoundTrip(socket, payload)).equals(payload));
    assert.equal(echo.accepted, 1);
    const e = await proxy.event((x) => x.request.protocol === 'tcp');
    assert.ok(e);
    assert.equal(e.verdict, 'deny');
    assert.equal(e.would_deny, true);
    assert.equal(e.mode, 'audit');
    assert.equal(e.upstream?.outcome, 'ok');
  } finally {
    await proxy.stop();
    await echo.close();
  }
});

test('a policy rewrite that revokes an open connection closes it (Linkerd terminate); others keep running', async () => {
  const echo = await startEcho();
  const allowBoth = ISTIO_ALLOW_FRONTEND_ON_PORT.replace('["cluster.local/ns/foo/sa/frontend"]', '["cluster.local/ns/foo/sa/frontend", "cluster.local/ns/foo/sa/admin"]');
  const proxy = await startTcpProxy({ policy: allowBoth, upstreamPort: echo.port });
  try {
    const revoked = await connect(proxy, sharedTestPki().svids.admin);
    const kept = await connect(proxy, sharedTestPki().svids.frontend);
    // Both tunnels are up (the echo proves the upstream leg exists) before the policy changes.
    for (const s of [revoked, kept]) {
      const got = once(s, 'data');
      s.write('ping');
      assert.equal(String((await got)[0]), 'ping');
    }
    const revision = proxy.app.policyStore?.current().revision;
    writeFileSync(proxy.policyFile, ISTIO_ALLOW_FRONTEND_ON_PORT);
    await proxy.app.policyStore?.reload();
    assert.notEqual(proxy.app.policyStore?.current().revision, revision);
    const r = await untilClosed(revoked);
    assert.equal(r.closed, true, 'the revoked connection stayed open');
    const e = await proxy.event((x) => x.upstream?.outcome === 'policy_revoked');
    assert.ok(e);
    assert.equal(e.verdict, 'deny');
    assert.equal(e.peer.spiffe_id, 'spiffe://cluster.local/ns/foo/sa/admin');
    assert.equal(e.policy_revision, proxy.app.policyStore?.current().revision);
    assert.equal(kept.destroyed, false);
    assert.ok((await echoRoundTrip(kept, Buffer.from('still here'))).equals(Buffer.from('still here')));
  } finally {
    await proxy.stop();
    await echo.close();
  }
});

test('upstream refused: the allowed downstream connection is closed and the event says upstream_refused', async () => {
  const port = await closedPort();
  const proxy = await startTcpProxy({ policy: ISTIO_ALLOW_FRONTEND_ON_PORT, upstreamPort: port });
  try {
    const socket = await connect(proxy, sharedTestPki().svids.frontend);
    socket.write('hello');
    const r = await untilClosed(socket);
    assert.equal(r.closed, true);
    assert.equal(r.data.length, 0);
    const e = await proxy.event((x) => x.request.protocol === 'tcp');
    assert.ok(e);
    assert.equal(e.verdict, 'allow');
    assert.equal(e.upstream?.outcome, 'upstream_refused');
    assert.equal(e.upstream?.bytes_sent, 0);
  } finally {
    await proxy.stop();
  }
});

test('drain: new connections are refused, an open tunnel gets drainTimeout and is then closed', async () => {
  const echo = await startEcho();
  const proxy = await startTcpProxy({ policy: ISTIO_ALLOW_FRONTEND_ON_PORT, upstreamPort: echo.port, flags: ['--drain-timeout', '300ms'] });
  try {
    const socket = await connect(proxy, sharedTestPki().svids.frontend);
    const got = once(socket, 'data');
    socket.write('ping');
    await got;
    const listener = proxy.app.listeners[0] as { drain(ms: number): Promise<void>; readonly inFlight: number };
    const started = Date.now();
    const draining = listener.drain(300);
    const r = await untilClosed(socket);
    await draining;
    assert.equal(r.closed, true);
    assert.ok(Date.now() - started >= 250, 'the tunnel was cut before drainTimeout');
    assert.equal(listener.inFlight, 0);
    const refused = await new Promise<boolean>((resolve) => {
      const s = net.connect(proxy.port, '127.0.0.1');
      s.on('error', () => resolve(true));
      s.on('connect', () => { s.destroy(); resolve(false); });
    });
    assert.equal(refused, true, 'a draining listener still accepted');
    const e = await proxy.event((x) => x.upstream?.outcome === 'drained');
    assert.ok(e);
  } finally {
    await proxy.stop();
    await echo.close();
  }
});

test('permissive opaque port: a plaintext caller is an unauthenticated peer and its bytes (even an h2 preface) are piped, not parsed', async () => {
  const echo = await startEcho();
  const policy = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-anyone-db, namespace: foo}
spec:
  action: ALLOW
  rules:
  - to: [{operation: {ports: ["${WORKLOAD_PORT}"]}}]
`;
  const proxy = await startTcpProxy({ policy, upstreamPort: echo.port, listenerMode: 'permissive' });
  try {
    const payload = Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), randomBytes(16 * 1024)]);
    const socket = net.connect({ host: '127.0.0.1', port: proxy.port, allowHalfOpen: true });
    socket.on('error', () => {});
    await once(socket, 'connect');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    const ended = once(socket, 'end');
    socket.end(payload);
    const timer = setTimeout(() => socket.destroy(new Error('echo timed out')), 10_000);
    try { await ended; } finally { clearTimeout(timer); }
    assert.ok(Buffer.concat(chunks).equals(payload));
    const e = await proxy.event((x) => x.request.protocol === 'tcp');
    assert.ok(e);
    assert.equal(e.verdict, 'allow');
    assert.equal(e.peer.spiffe_id, null);
  } finally {
    await proxy.stop();
    await echo.close();
  }
});

test('idle timeout: a tunnel with no bytes either way for limits.idleTimeout is closed', async () => {
  const echo = await startEcho();
  const proxy = await startTcpProxy({ policy: ISTIO_ALLOW_FRONTEND_ON_PORT, upstreamPort: echo.port, flags: ['--idle-timeout', '250ms'] });
  try {
    const socket = await connect(proxy, sharedTestPki().svids.frontend);
    const got = once(socket, 'data');
    socket.write('ping');
    await got;
    const r = await untilClosed(socket, 5000);
    assert.equal(r.closed, true, 'an idle tunnel stayed open');
    const e = await proxy.event((x) => x.upstream?.outcome === 'idle_timeout');
    assert.ok(e);
    assert.equal(e.upstream?.bytes_sent, 4);
  } finally {
    await proxy.stop();
    await echo.close();
  }
});
