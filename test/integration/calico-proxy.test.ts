// Integration: Calico tiers through the real proxy (real mTLS, real HTTP/1.1 and gRPC clients): a Pass in the first
// tier hands the request to a later tier whose Deny answers 403 (gRPC: 200 + grpc-status 7), a Log is recorded, and the
// workload never sees a denied request (cni-dialects.md §2.2); a staged policy is previewed in the decision log, never enforced.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { decisionLogLines, getText, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';
import { echoClient, startEchoUpstream, unary, type EchoUpstream } from './grpc-fixture.js';

const POLICY = `
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.triage}
spec:
  tier: security
  selector: all()
  ingress:
  - action: Log
    source: {nets: [127.0.0.0/8]}
  - action: Deny
    source:
      serviceAccounts: {names: [other]}
  - action: Pass
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api, namespace: foo}
spec:
  ingress:
  - action: Deny
    source:
      serviceAccounts: {names: [admin]}
  - action: Allow
    http:
      methods: [GET, POST]
      paths: [{prefix: /public}, {prefix: /test.Echo}]
`;

describe('Calico tiers through the real proxy: HTTP/1.1', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: POLICY, upstream: upstream.url });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('a caller passed by the security tier and allowed by the default tier reaches the workload; the Log is recorded', async () => {
    const res = await getText(`${proxy.origin}/public/items`, mtlsAgent(proxy, proxy.svids.frontend));
    assert.equal(res.status, 200);
    assert.equal(upstream.requests.at(-1)?.url, '/public/items');
    const ev = await proxy.event((e) => e.request.path === '/public/items');
    assert.equal(ev?.verdict, 'allow');
    assert.equal(ev?.dialect, 'calico');
    assert.equal(ev?.policy?.name, 'api');
    assert.equal(ev?.rule, 'tier[default]-policy[foo/api]-ingress[1]');
    assert.equal(ev?.audit?.policy.name, 'security.triage');
    assert.equal(ev?.audit?.rule, 'tier[security]-policy[security.triage]-ingress[0]');
  });

  it('Pass into a later tier\'s Deny: 403, and the workload sees nothing', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${proxy.origin}/public/items`, mtlsAgent(proxy, proxy.svids.admin));
    assert.equal(res.status, 403);
    assert.equal(upstream.requests.length, before);
    const ev = await proxy.event((e) => e.verdict === 'deny' && e.peer.spiffe_id === 'spiffe://cluster.local/ns/foo/sa/admin');
    assert.equal(ev?.dialect, 'calico');
    assert.equal(ev?.reason, 'calico_deny');
    assert.equal(ev?.rule, 'tier[default]-policy[foo/api]-ingress[0]');
    assert.equal(ev?.audit?.rule, 'tier[security]-policy[security.triage]-ingress[0]', 'the Log before the Pass stays on the decision');
  });

  it('a Deny in the first tier ends evaluation there', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${proxy.origin}/public/items`, mtlsAgent(proxy, proxy.svids.other));
    assert.equal(res.status, 403);
    assert.equal(upstream.requests.length, before);
    const ev = await proxy.event((e) => e.verdict === 'deny' && e.peer.spiffe_id === 'spiffe://cluster.local/ns/foo/sa/other');
    assert.equal(ev?.rule, 'tier[security]-policy[security.triage]-ingress[1]');
  });

  it('a passed request no rule of the later tier allows meets its end-of-tier deny', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${proxy.origin}/private`, mtlsAgent(proxy, proxy.svids.frontend));
    assert.equal(res.status, 403);
    assert.equal(upstream.requests.length, before);
    const ev = await proxy.event((e) => e.request.path === '/private');
    assert.equal(ev?.reason, 'calico_end_of_tier_deny');
    assert.equal(ev?.policy?.kind, 'Tier');
    assert.equal(ev?.policy?.name, 'default');
  });
});

describe('Calico tiers through the real proxy: gRPC', () => {
  let upstream: EchoUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startEchoUpstream();
    proxy = await startProxy({ policy: POLICY, upstream: upstream.url });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('a passed caller allowed by the later tier gets its reply', async () => {
    const client = echoClient(proxy.port, proxy.caPem, proxy.svids.frontend);
    try {
      const r = await unary(client, { message: 'hi' });
      assert.equal(r.err, null);
      assert.equal(r.reply?.message, 'hi');
    } finally { client.close(); }
  });

  it('Pass into the later tier\'s Deny: PERMISSION_DENIED (grpc-status 7), the workload sees no call', async () => {
    const before = upstream.calls.length;
    const client = echoClient(proxy.port, proxy.caPem, proxy.svids.admin);
    try {
      const r = await unary(client, { message: 'x' });
      assert.equal(r.err?.code, grpc.status.PERMISSION_DENIED);
      assert.equal(upstream.calls.length, before);
      const ev = await proxy.event((e) => e.request.protocol === 'grpc' && e.verdict === 'deny');
      assert.equal(ev?.status, 200);
      assert.equal(ev?.grpc_status, 7);
      assert.equal(ev?.rule, 'tier[default]-policy[foo/api]-ingress[0]');
    } finally { client.close(); }
  });
});

const STAGED = `
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: api, namespace: foo}
spec:
  ingress:
  - action: Allow
    http:
      methods: [GET]
      paths: [{prefix: /public}]
---
apiVersion: projectcalico.org/v3
kind: StagedNetworkPolicy
metadata: {name: api, namespace: foo}
spec:
  ingress:
  - action: Allow
    http:
      methods: [GET, POST]
      paths: [{prefix: /public/v2}]
`;

describe('a Calico staged policy through the real proxy', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: STAGED, upstream: upstream.url });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('the request is forwarded by the enforced policy; the decision log line carries what the staged version would do', async () => {
    const res = await getText(`${proxy.origin}/public/items`, mtlsAgent(proxy, proxy.svids.frontend));
    assert.equal(res.status, 200);
    assert.equal(upstream.requests.at(-1)?.url, '/public/items');
    const ev = await proxy.event((e) => e.request.path === '/public/items');
    assert.equal(ev?.verdict, 'allow');
    assert.equal(ev?.would_deny, false);
    assert.equal(ev?.rule, 'tier[default]-policy[foo/api]-ingress[0]');
    assert.deepEqual(ev?.shadow, {
      verdict: 'deny', action: 'STAGED', policy: { kind: 'Tier', namespace: '', name: 'default' }, rule: 'tier[default]-calico_end_of_tier_deny',
    });
    const line = decisionLogLines(proxy.logFile).find((l) => l.includes('"path":"/public/items"'));
    assert.match(line ?? '', /"shadow":\{"verdict":"deny","action":"STAGED","policy":\{"kind":"Tier","namespace":"","name":"default"\}/);
  });

  it('a request both versions allow names the staged rule in the shadow result', async () => {
    const res = await getText(`${proxy.origin}/public/v2/items`, mtlsAgent(proxy, proxy.svids.frontend));
    assert.equal(res.status, 200);
    const ev = await proxy.event((e) => e.request.path === '/public/v2/items');
    assert.deepEqual(ev?.shadow, {
      verdict: 'allow', action: 'STAGED', policy: { kind: 'StagedNetworkPolicy', namespace: 'foo', name: 'api' }, rule: 'tier[default]-policy[foo/staged:api]-ingress[0]',
    });
  });

  it('a request the enforced policy denies stays denied although the staged version would allow it', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${proxy.origin}/public/v2/orders`, mtlsAgent(proxy, proxy.svids.frontend), { method: 'POST', body: '{}' });
    assert.equal(res.status, 403);
    assert.equal(upstream.requests.length, before);
    const ev = await proxy.event((e) => e.request.path === '/public/v2/orders');
    assert.equal(ev?.verdict, 'deny');
    assert.equal(ev?.reason, 'calico_end_of_tier_deny');
    assert.equal(ev?.shadow?.verdict, 'allow');
    assert.equal(ev?.shadow?.rule, 'tier[default]-policy[foo/staged:api]-ingress[0]');
  });
});
