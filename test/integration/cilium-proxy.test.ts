// Integration: Cilium policy YAML through the real proxy (real mTLS, undici and node:http2 clients): an L7
// deny answers as Cilium's Envoy filter does (403 text/plain `Access denied`), gRPC callers get grpc-status 7,
// a LOG header mismatch is forwarded and logged, ADD/REPLACE/DELETE mismatches edit the headers the workload
// receives, and every decision event names dialect, policy and rule.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getText, h2Client, h2Request, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';

const POLICY = `
apiVersion: cilium.io/v2
kind: CiliumNetworkPolicy
metadata: {name: items-api, namespace: foo}
spec:
  endpointSelector:
    matchLabels: {app: api}
  ingress:
  - fromEndpoints:
    - matchLabels:
        io.cilium.k8s.policy.serviceaccount: frontend
    toPorts:
    - ports:
      - {port: "8080", protocol: TCP}
      rules:
        http:
        - method: GET
          path: "/items(/.*)?"
        - method: POST
          path: "/test\\\\.Echo/.*"
        - method: GET
          path: /tenant
          headerMatches:
          - {name: x-tenant, value: acme, mismatch: LOG}
        - method: GET
          path: /edited
          headerMatches:
          - {name: x-region, value: eu, mismatch: ADD}
          - {name: x-tenant, value: acme, mismatch: REPLACE}
          - {name: x-debug, value: "off", mismatch: DELETE}
`;

describe('Cilium policies through the real proxy', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: POLICY, upstream: upstream.url, flags: ['--labels', 'app=api'] });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('forwards a request an HTTP rule admits, naming dialect, policy and rule', async () => {
    const res = await getText(`${proxy.origin}/items/1`, mtlsAgent(proxy, proxy.svids.frontend));
    assert.equal(res.status, 200);
    assert.equal(upstream.requests.at(-1)?.url, '/items/1');
    const ev = await proxy.event((e) => e.request.path === '/items/1');
    assert.equal(ev?.verdict, 'allow');
    assert.equal(ev?.dialect, 'cilium');
    assert.deepEqual(ev?.policy, { kind: 'CiliumNetworkPolicy', namespace: 'foo', name: 'items-api' });
    assert.equal(ev?.rule, 'spec.ingress[0].toPorts[0].rules.http[0]');
  });

  it('refuses an L7 mismatch with Cilium\'s 403 body; the workload sees nothing', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${proxy.origin}/items/1`, mtlsAgent(proxy, proxy.svids.frontend), { method: 'DELETE' });
    assert.equal(res.status, 403);
    assert.equal(res.body, 'Access denied\r\n');
    assert.equal(res.headers['content-type'], 'text/plain');
    assert.equal(res.headers['content-length'], '15');
    assert.equal(upstream.requests.length, before);
    const ev = await proxy.event((e) => e.request.path === '/items/1' && e.verdict === 'deny');
    assert.equal(ev?.status, 403);
    assert.equal(ev?.dialect, 'cilium');
    assert.equal(ev?.reason, 'http_rule_not_matched');
    assert.equal(ev?.rule, 'spec.ingress[0].toPorts[0].rules');
  });

  it('refuses another identity (an L3 deny) with the same answer', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${proxy.origin}/items/2`, mtlsAgent(proxy, proxy.svids.other));
    assert.equal(res.status, 403);
    assert.equal(res.body, 'Access denied\r\n');
    assert.equal(upstream.requests.length, before);
    const ev = await proxy.event((e) => e.request.path === '/items/2');
    assert.equal(ev?.reason, 'no_allow_policy_matched');
    assert.equal(ev?.policy?.name, 'items-api');
  });

  it('answers a refused gRPC call over HTTP/2 with 200 and grpc-status 7', async () => {
    const before = upstream.requests.length;
    const session = h2Client(proxy, proxy.svids.other);
    try {
      const res = await h2Request(session, { ':method': 'POST', ':path': '/test.Echo/Unary', 'content-type': 'application/grpc', te: 'trailers' }, Buffer.alloc(5));
      assert.equal(res.status, 200);
      const grpcStatus = res.headers['grpc-status'] ?? res.trailers?.['grpc-status'];
      assert.equal(grpcStatus, '7');
      assert.equal(res.headers['grpc-message'] ?? res.trailers?.['grpc-message'], 'Access denied');
    } finally {
      session.close();
    }
    assert.equal(upstream.requests.length, before);
  });

  it('forwards a LOG header mismatch and records the rule in the decision event', async () => {
    const res = await getText(`${proxy.origin}/tenant`, mtlsAgent(proxy, proxy.svids.frontend), { headers: { 'x-tenant': 'globex' } });
    assert.equal(res.status, 200);
    assert.equal(upstream.requests.at(-1)?.headers['x-tenant'], 'globex');
    const ev = await proxy.event((e) => e.request.path === '/tenant');
    assert.equal(ev?.verdict, 'allow');
    assert.deepEqual(ev?.audit, { policy: { kind: 'CiliumNetworkPolicy', namespace: 'foo', name: 'items-api' }, rule: 'spec.ingress[0].toPorts[0].rules.http[2].headerMatches[0]' });
  });

  it('forwards ADD, REPLACE and DELETE mismatches with the headers edited as Cilium does', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${proxy.origin}/edited`, mtlsAgent(proxy, proxy.svids.frontend), { headers: { 'x-tenant': 'globex', 'x-debug': 'on', 'x-keep': 'yes' } });
    assert.equal(res.status, 200);
    assert.equal(upstream.requests.length, before + 1);
    const got = upstream.requests.at(-1)?.headers ?? {};
    assert.equal(got['x-region'], 'eu', 'ADD adds the missing header with the expected value');
    assert.equal(got['x-tenant'], 'acme', 'REPLACE sets the expected value over the wrong one');
    assert.equal(got['x-debug'], undefined, 'DELETE removes the header carrying a wrong value');
    assert.equal(got['x-keep'], 'yes');
    const ev = await proxy.event((e) => e.request.path === '/edited');
    assert.equal(ev?.verdict, 'allow');
    assert.equal(ev?.rule, 'spec.ingress[0].toPorts[0].rules.http[3]');
    assert.equal(ev?.audit?.rule, 'spec.ingress[0].toPorts[0].rules.http[3].headerMatches[0]');
  });

  it('forwards a request whose headers already match unchanged', async () => {
    const res = await getText(`${proxy.origin}/edited`, mtlsAgent(proxy, proxy.svids.frontend), { headers: { 'x-region': 'eu', 'x-tenant': 'acme', 'x-debug': 'off' } });
    assert.equal(res.status, 200);
    const got = upstream.requests.at(-1)?.headers ?? {};
    assert.deepEqual([got['x-region'], got['x-tenant'], got['x-debug']], ['eu', 'acme', 'off']);
    const ev = await proxy.event((e) => e.request.path === '/edited' && e.audit === null);
    assert.equal(ev?.verdict, 'allow');
  });
});
