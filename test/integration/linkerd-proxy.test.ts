// Integration: Linkerd policy YAML through the real proxy: what linkerd2-proxy callers see on the wire
// (linkerd.md §8) for HTTP and gRPC denies, unrouted requests and local rate limits, and the decision log.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent } from 'undici';
import * as grpc from '@grpc/grpc-js';
import { getText, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { echoClient, startEchoUpstream, unary, type EchoUpstream } from './grpc-fixture.js';
import * as net from 'node:net';
import { once } from 'node:events';

/**
 * Linkerd admits loopback callers (127.0.0.1, ::1) by its `default:localhost` authorization, so callers
 * here reach the proxy from 127.0.0.2 through a plain TCP relay (bytes untouched; TLS is end to end).
 */
async function startRelay(targetPort: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort, localAddress: '127.0.0.2' });
    for (const s of [client, upstream]) { sockets.add(s); s.on('close', () => sockets.delete(s)); s.on('error', () => { client.destroy(); upstream.destroy(); }); }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    async close() { for (const s of sockets) s.destroy(); await new Promise<void>((r) => server.close(() => r())); },
  };
}

const HTTP_POLICY = `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: foo, name: api}
spec:
  podSelector: {matchLabels: {app: api}}
  port: 8080
  proxyProtocol: HTTP/1
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {namespace: foo, name: items}
spec:
  parentRefs: [{name: api, kind: Server, group: policy.linkerd.io}]
  rules:
    - matches: [{path: {type: PathPrefix, value: /items}}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {namespace: foo, name: limited}
spec:
  parentRefs: [{name: api, kind: Server, group: policy.linkerd.io}]
  rules:
    - matches: [{path: {value: /limited}}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: foo, name: items-frontend}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: items}
  requiredAuthenticationRefs:
    - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: frontend-only}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: foo, name: limited-admin}
spec:
  targetRef: {group: policy.linkerd.io, kind: HTTPRoute, name: limited}
  requiredAuthenticationRefs:
    - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: admin-only}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {namespace: foo, name: frontend-only}
spec:
  identityRefs: [{kind: ServiceAccount, name: frontend, namespace: foo}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {namespace: foo, name: admin-only}
spec:
  identityRefs: [{kind: ServiceAccount, name: admin, namespace: foo}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: HTTPLocalRateLimitPolicy
metadata: {namespace: foo, name: api-rl}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: api}
  identity: {requestsPerSecond: 2}
`;

const GRPC_POLICY = `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: foo, name: echo}
spec:
  podSelector: {matchLabels: {app: echo}}
  port: 8080
  proxyProtocol: gRPC
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {namespace: foo, name: echo-unary}
spec:
  parentRefs: [{name: echo, kind: Server, group: policy.linkerd.io}]
  rules:
    - matches: [{method: {service: test.Echo, method: Unary}}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: AuthorizationPolicy
metadata: {namespace: foo, name: unary-callers}
spec:
  targetRef: {group: gateway.networking.k8s.io, kind: GRPCRoute, name: echo-unary}
  requiredAuthenticationRefs:
    - {group: policy.linkerd.io, kind: MeshTLSAuthentication, name: callers}
---
apiVersion: policy.linkerd.io/v1alpha1
kind: MeshTLSAuthentication
metadata: {namespace: foo, name: callers}
spec:
  identityRefs: [{kind: ServiceAccount, name: frontend, namespace: foo}, {kind: ServiceAccount, name: admin, namespace: foo}]
---
apiVersion: policy.linkerd.io/v1alpha1
kind: HTTPLocalRateLimitPolicy
metadata: {namespace: foo, name: echo-rl}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: echo}
  identity: {requestsPerSecond: 2}
`;

describe('Linkerd policies through the real proxy: HTTP', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let origin: string;
  let plainOrigin: string;
  const plaintext = new Agent();
  before(async () => {
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: HTTP_POLICY, upstream: upstream.url, listenerMode: 'permissive', flags: ['--labels', 'app=api'] });
    relay = await startRelay(proxy.port);
    origin = `https://127.0.0.1:${relay.port}`;
    plainOrigin = `http://127.0.0.1:${relay.port}`;
  });
  after(async () => { await plaintext.close(); await relay.close(); await proxy.stop(); await upstream.close(); });

  it('admits the authorized identity and logs route and authorization', async () => {
    const res = await getText(`${origin}/items/1`, mtlsAgent(proxy, proxy.svids.frontend));
    assert.equal(res.status, 200);
    assert.equal(upstream.requests.at(-1)?.url, '/items/1');
    const ev = await proxy.event((e) => e.request.path === '/items/1' && e.verdict === 'allow');
    assert.equal(ev?.dialect, 'linkerd');
    assert.match(String(ev?.rule), /items/);
    assert.equal(ev?.authorization, 'authorizationpolicy/items-frontend');
    // The same provenance is in the metrics, with bounded labels (policy, route, authorization names).
    const metrics = await proxy.metrics();
    const line = metrics.split('\n').find((l) => l.startsWith('portcullis_policy_decisions_total{') && l.includes('authorization="authorizationpolicy/items-frontend"') && l.includes('verdict="allow"'));
    assert.ok(line, `no policy-decision series for the authorization in:\n${metrics.split('\n').filter((l) => l.includes('policy_decisions')).join('\n')}`);
    assert.match(line, /dialect="linkerd"/);
    assert.match(line, /rule="[^"]*items[^"]*"/);
    assert.match(line, / [1-9]\d*$/);
  });

  it('denies another mTLS identity: 403, empty body, l5d-proxy-error; the workload sees nothing', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${origin}/items/2`, mtlsAgent(proxy, proxy.svids.other));
    assert.equal(res.status, 403);
    assert.equal(res.body, '');
    assert.equal(res.headers['content-length'], '0');
    assert.match(String(res.headers['l5d-proxy-error']), /^client 127\.0\.0\.2:\d+: server: 127\.0\.0\.1:\d+: unauthorized request on route$/);
    assert.equal(upstream.requests.length, before);
    const ev = await proxy.event((e) => e.request.path === '/items/2');
    assert.equal(ev?.verdict, 'deny');
    assert.equal(ev?.status, 403);
    assert.match(String(ev?.rule), /items/);
  });

  it('denies a permissive plaintext caller with the bare status (no l5d-proxy-error)', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${plainOrigin}/items/3`, plaintext);
    assert.equal(res.status, 403);
    assert.equal(res.body, '');
    assert.equal(res.headers['l5d-proxy-error'], undefined);
    assert.equal(upstream.requests.length, before);
  });

  it('answers 404 for a path no route matches, before authorization', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${origin}/nowhere`, mtlsAgent(proxy, proxy.svids.frontend));
    assert.equal(res.status, 404);
    assert.equal(res.body, '');
    assert.match(String(res.headers['l5d-proxy-error']), /no route found for request$/);
    const bare = await getText(`${plainOrigin}/nowhere`, plaintext);
    assert.equal(bare.status, 404);
    assert.equal(bare.headers['l5d-proxy-error'], undefined);
    assert.equal(upstream.requests.length, before);
    const ev = await proxy.event((e) => e.request.path === '/nowhere');
    assert.equal(ev?.verdict, 'not_found');
  });

  it('rate-limits per identity with 429; refused requests never reach the workload', async () => {
    const agent = mtlsAgent(proxy, proxy.svids.admin);
    const before = upstream.requests.length;
    const statuses: number[] = [];
    let limited: Awaited<ReturnType<typeof getText>> | undefined;
    for (let i = 0; i < 8; i++) {
      const res = await getText(`${origin}/limited`, agent);
      statuses.push(res.status);
      if (res.status === 429) limited = res;
    }
    assert.ok(statuses.includes(429), statuses.join(','));
    assert.equal(limited?.body, '');
    assert.match(String(limited?.headers['l5d-proxy-error']), /^client 127\.0\.0\.2:\d+: server: 127\.0\.0\.1:\d+: too many requests$/);
    assert.equal(upstream.requests.length - before, statuses.filter((s) => s === 200).length);
    const ev = await proxy.event((e) => e.request.path === '/limited' && e.status === 429);
    assert.equal(ev?.verdict, 'rate_limited');
    assert.match(String(ev?.rule), /limited/);
    assert.equal(ev?.authorization, 'authorizationpolicy/limited-admin');
  });
});

describe('Linkerd policies through the real proxy: gRPC', () => {
  let upstream: EchoUpstream;
  let proxy: ProxyUnderTest;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  before(async () => {
    upstream = await startEchoUpstream();
    proxy = await startProxy({ policy: GRPC_POLICY, upstream: upstream.url, flags: ['--labels', 'app=echo'] });
    relay = await startRelay(proxy.port);
  });
  after(async () => { await relay.close(); await proxy.stop(); await upstream.close(); });

  it('admits the authorized identity', async () => {
    const client = echoClient(relay.port, proxy.caPem, proxy.svids.frontend);
    try {
      const r = await unary(client, { message: 'hi' });
      assert.equal(r.err, null);
      assert.equal(r.reply?.message, 'hi');
      const ev = await proxy.event((e) => e.request.protocol === 'grpc' && e.verdict === 'allow');
      assert.equal(ev?.authorization, 'authorizationpolicy/unary-callers');
      assert.match(String(ev?.rule), /echo-unary/);
    } finally { client.close(); }
  });

  it('denies an unauthorized identity with grpc-status 7 (HTTP 200); the workload sees nothing', async () => {
    const client = echoClient(relay.port, proxy.caPem, proxy.svids.other);
    try {
      const before = upstream.calls.length;
      const r = await unary(client, { message: 'x' });
      assert.equal(r.err?.code, grpc.status.PERMISSION_DENIED);
      assert.match(String(r.err?.details), /unauthorized request on route$/);
      assert.equal(upstream.calls.length, before);
      const ev = await proxy.event((e) => e.request.protocol === 'grpc' && e.verdict === 'deny');
      assert.equal(ev?.status, 200);
      assert.equal(ev?.grpc_status, 7);
      assert.match(String(ev?.rule), /echo-unary/);
    } finally { client.close(); }
  });

  it('answers grpc-status 5 (NOT_FOUND) for a method no GRPCRoute matches', async () => {
    const client = echoClient(relay.port, proxy.caPem, proxy.svids.frontend);
    try {
      const before = upstream.calls.length;
      const code = await new Promise<number>((resolve) => {
        const call = client.ServerStream({ message: 'x', count: 1, delay_ms: 0 });
        call.on('data', () => {});
        call.on('error', (err: grpc.ServiceError) => resolve(err.code));
        call.on('end', () => resolve(0));
      });
      assert.equal(code, grpc.status.NOT_FOUND);
      assert.equal(upstream.calls.length, before);
      const ev = await proxy.event((e) => e.request.protocol === 'grpc' && e.verdict === 'not_found');
      assert.equal(ev?.grpc_status, 5);
    } finally { client.close(); }
  });

  it('rate-limits with grpc-status 8 (RESOURCE_EXHAUSTED)', async () => {
    const client = echoClient(relay.port, proxy.caPem, proxy.svids.admin);
    try {
      const before = upstream.calls.length;
      const codes: number[] = [];
      for (let i = 0; i < 8; i++) codes.push((await unary(client, { message: 'r' })).err?.code ?? 0);
      assert.ok(codes.includes(grpc.status.RESOURCE_EXHAUSTED), codes.join(','));
      assert.equal(upstream.calls.length - before, codes.filter((c) => c === 0).length);
      const ev = await proxy.event((e) => e.request.protocol === 'grpc' && e.verdict === 'rate_limited');
      assert.equal(ev?.grpc_status, 8);
      assert.equal(ev?.authorization, 'authorizationpolicy/unary-callers');
    } finally { client.close(); }
  });
});

const ISTIO_ONLY_POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: foo}
spec:
  rules: [{}]
`;

describe('an explicitly configured Linkerd default policy without any Linkerd resource', () => {
  const plaintext = new Agent();
  after(async () => { await plaintext.close(); });

  for (const how of ['--default-policy', 'annotation'] as const) {
    it(`deny (${how}) denies every request, as linkerd2-proxy does, though Istio alone would allow`, async () => {
      const upstream = await startH1Upstream();
      const flags = how === '--default-policy' ? ['--default-policy', 'deny'] : ['--annotations', 'config.linkerd.io/default-inbound-policy=deny'];
      const proxy = await startProxy({ policy: ISTIO_ONLY_POLICY, upstream: upstream.url, listenerMode: 'permissive', flags });
      const relay = await startRelay(proxy.port);
      try {
        const res = await getText(`https://127.0.0.1:${relay.port}/anything`, mtlsAgent(proxy, proxy.svids.frontend));
        assert.equal(res.status, 403);
        assert.equal(res.body, '');
        assert.match(String(res.headers['l5d-proxy-error']), /unauthorized request on route$/);
        assert.equal(upstream.requests.length, 0);
        const ev = await proxy.event((e) => e.request.path === '/anything');
        assert.deepEqual([ev?.verdict, ev?.dialect, ev?.reason, ev?.policy?.kind, ev?.policy?.name], ['deny', 'linkerd', 'unauthorized', 'default', 'deny']);
      } finally { await relay.close(); await proxy.stop(); await upstream.close(); }
    });
  }

  it('left unset, an Istio-only workload keeps Istio alone deciding (the Linkerd default is not consulted)', async () => {
    const upstream = await startH1Upstream();
    const proxy = await startProxy({ policy: ISTIO_ONLY_POLICY, upstream: upstream.url, listenerMode: 'permissive' });
    const relay = await startRelay(proxy.port);
    try {
      const res = await getText(`http://127.0.0.1:${relay.port}/anything`, plaintext);
      assert.equal(res.status, 200);
      assert.equal(upstream.requests.length, 1);
      const ev = await proxy.event((e) => e.request.path === '/anything');
      assert.deepEqual([ev?.verdict, ev?.dialect, ev?.reason], ['allow', 'istio', 'allow_policy_matched']);
    } finally { await relay.close(); await proxy.stop(); await upstream.close(); }
  });
});
