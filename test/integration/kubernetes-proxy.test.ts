// Integration: Kubernetes NetworkPolicy and ClusterNetworkPolicy YAML through the real proxy (real mTLS, real
// HTTP/1.1, gRPC and TCP clients): isolation, an Admin Deny over a NetworkPolicy allow, and what callers see.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Agent } from 'undici';
import * as grpc from '@grpc/grpc-js';
import { sharedTestPki, type IssuedCert } from '../helpers/pki.js';
import { decisionLogLines, getText, mtlsAgent, parseDecisionLines, startApp, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { echoClient, startEchoUpstream, unary, type EchoUpstream } from './grpc-fixture.js';

// The workload is foo/httpbin (labels app=api) on port 8080. Callers from namespace web and batch are
// admitted by the NetworkPolicy; the Admin tier denies batch before the NetworkPolicy is consulted.
const POLICY = `
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web-and-batch, namespace: foo}
spec:
  podSelector: {matchLabels: {app: api}}
  policyTypes: [Ingress]
  ingress:
  - from:
    - namespaceSelector:
        matchExpressions:
        - {key: kubernetes.io/metadata.name, operator: In, values: [web, batch]}
    ports:
    - {port: 8080, protocol: TCP}
---
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: quarantine-batch}
spec:
  tier: Admin
  priority: 10
  subject:
    namespaces: {matchLabels: {kubernetes.io/metadata.name: foo}}
  ingress:
  - name: deny-batch
    action: Deny
    from:
    - namespaces: {matchLabels: {kubernetes.io/metadata.name: batch}}
`;

const { pki, svids } = sharedTestPki();
const web: IssuedCert = pki.issue({ spiffeId: 'spiffe://cluster.local/ns/web/sa/frontend' });
const batch: IssuedCert = pki.issue({ spiffeId: 'spiffe://cluster.local/ns/batch/sa/jobs' });

describe('Kubernetes policies through the real proxy: HTTP/1.1', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  const plaintext = new Agent();
  before(async () => {
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: POLICY, upstream: upstream.url, listenerMode: 'permissive', flags: ['--labels', 'app=api'] });
  });
  after(async () => { await plaintext.close(); await proxy.stop(); await upstream.close(); });

  it('admits a pod of an allowed namespace and names the NetworkPolicy rule in the decision log', async () => {
    const res = await getText(`${proxy.origin}/orders/1`, mtlsAgent(proxy, web));
    assert.equal(res.status, 200);
    assert.equal(upstream.requests.at(-1)?.url, '/orders/1');
    const ev = await proxy.event((e) => e.request.path === '/orders/1');
    assert.equal(ev?.verdict, 'allow');
    assert.equal(ev?.dialect, 'kubernetes');
    assert.deepEqual(ev?.policy, { kind: 'NetworkPolicy', namespace: 'foo', name: 'allow-web-and-batch' });
    assert.equal(ev?.rule, 'tier[NetworkPolicy]-ns[foo]-policy[allow-web-and-batch]-ingress[0]');
    assert.equal(ev?.reason, 'networkpolicy_allowed');
  });

  it('isolation: a pod of the workload\'s own namespace is not in the NetworkPolicy and gets 403; the workload sees nothing', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${proxy.origin}/orders/2`, mtlsAgent(proxy, svids.frontend));
    assert.equal(res.status, 403);
    assert.equal(upstream.requests.length, before);
    const ev = await proxy.event((e) => e.request.path === '/orders/2');
    assert.equal(ev?.verdict, 'deny');
    assert.equal(ev?.status, 403);
    assert.equal(ev?.reason, 'networkpolicy_isolated');
    assert.deepEqual(ev?.policy, { kind: 'NetworkPolicy', namespace: 'foo', name: 'allow-web-and-batch' });
  });

  it('isolation: a plaintext caller matches no namespace peer and gets 403', async () => {
    const before = upstream.requests.length;
    const res = await getText(`http://127.0.0.1:${proxy.port}/orders/3`, plaintext);
    assert.equal(res.status, 403);
    assert.equal(upstream.requests.length, before);
  });

  it('an Admin ClusterNetworkPolicy Deny overrides the NetworkPolicy allow for namespace batch', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${proxy.origin}/orders/4`, mtlsAgent(proxy, batch));
    assert.equal(res.status, 403);
    assert.equal(upstream.requests.length, before);
    const ev = await proxy.event((e) => e.request.path === '/orders/4');
    assert.equal(ev?.verdict, 'deny');
    assert.equal(ev?.dialect, 'kubernetes');
    assert.deepEqual(ev?.policy, { kind: 'ClusterNetworkPolicy', namespace: '', name: 'quarantine-batch' });
    assert.equal(ev?.rule, 'tier[Admin]-policy[quarantine-batch]-ingress[0:deny-batch]');
    assert.equal(ev?.reason, 'admin_denied');
  });
});

describe('Kubernetes policies through the real proxy: gRPC', () => {
  let upstream: EchoUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startEchoUpstream();
    proxy = await startProxy({ policy: POLICY, upstream: upstream.url, flags: ['--labels', 'app=api'] });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('admits web and answers an Admin deny with grpc-status 7 (HTTP 200); the workload sees no call', async () => {
    const ok = echoClient(proxy.port, proxy.caPem, web);
    try {
      const r = await unary(ok, { message: 'hi' });
      assert.equal(r.err, null);
      assert.equal(r.reply?.message, 'hi');
    } finally { ok.close(); }
    const calls = upstream.calls.length;
    const denied = echoClient(proxy.port, proxy.caPem, batch);
    try {
      const r = await unary(denied, { message: 'x' });
      assert.equal(r.err?.code, grpc.status.PERMISSION_DENIED);
      assert.equal(upstream.calls.length, calls);
      const ev = await proxy.event((e) => e.request.protocol === 'grpc' && e.verdict === 'deny');
      assert.equal(ev?.status, 200);
      assert.equal(ev?.grpc_status, 7);
      assert.equal(ev?.reason, 'admin_denied');
    } finally { denied.close(); }
  });
});

describe('Kubernetes policies through the real proxy: opaque TCP', () => {
  let echo: net.Server;
  let echoPort = 0;
  let accepted = 0;
  let started: Awaited<ReturnType<typeof startApp>>;
  let port = 0;
  before(async () => {
    echo = net.createServer((s) => { accepted++; s.on('error', () => {}); s.pipe(s); });
    echo.listen(0, '127.0.0.1');
    await once(echo, 'listening');
    echoPort = (echo.address() as net.AddressInfo).port;
    started = await startApp({
      dirPrefix: 'portcullis-k8s-tcp-',
      policy: POLICY,
      listener: `name=db,listen=127.0.0.1:0,upstream=tcp://127.0.0.1:${echoPort},protocol=tcp,mode=strict,workloadPort=8080`,
      workload: ['--service-account', 'httpbin', '--labels', 'app=api'],
    });
    port = (started.app.listeners[0] as { address(): net.AddressInfo }).address().port;
  });
  after(async () => { await started.stop(); await new Promise<void>((r) => echo.close(() => r())); });

  async function connect(cert: IssuedCert): Promise<tls.TLSSocket> {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: started.caPem, cert: cert.chainPem, key: cert.keyPem, servername: 'localhost' });
    socket.on('error', () => {});
    await once(socket, 'secureConnect');
    return socket;
  }

  it('an L3/L4 deny closes the connection without a byte; an allowed pod gets its echo', async () => {
    const allowed = await connect(web);
    const echoed = new Promise<string>((resolve) => allowed.once('data', (d: Buffer) => resolve(d.toString())));
    allowed.write('ping');
    assert.equal(await echoed, 'ping');
    allowed.destroy();

    const before = accepted;
    const denied = await connect(batch);
    const chunks: Buffer[] = [];
    denied.on('data', (c: Buffer) => chunks.push(c));
    denied.write('hello?');
    const closed = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 3000);
      const done = (): void => { clearTimeout(timer); resolve(true); };
      denied.once('end', done);
      denied.once('close', done);
    });
    assert.equal(closed, true);
    assert.equal(Buffer.concat(chunks).length, 0);
    assert.equal(accepted, before);
    let event;
    for (let i = 0; i < 150 && !event; i++) {
      event = parseDecisionLines(decisionLogLines(started.logFile)).find((e) => e.request.protocol === 'tcp' && e.verdict === 'deny');
      if (!event) await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(event?.reason, 'admin_denied');
    assert.equal(event?.dialect, 'kubernetes');
  });
});
