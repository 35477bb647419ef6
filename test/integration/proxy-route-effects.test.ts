// Integration: Linkerd route effects applied by the data plane: RequestHeaderModifier edits what the workload
// receives, RequestRedirect answers locally, HTTPLocalRateLimitPolicy turns excess requests into 429.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { getText, mtlsAgent, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';

const LINKERD = `
apiVersion: policy.linkerd.io/v1beta3
kind: Server
metadata: {namespace: foo, name: api}
spec:
  podSelector: {matchLabels: {app: api}}
  port: 8080
  accessPolicy: all-authenticated
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {namespace: foo, name: headers}
spec:
  parentRefs: [{name: api, kind: Server, group: policy.linkerd.io}]
  rules:
    - matches: [{path: {value: /v2}}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: x-api-version, value: "2"}]
            add: [{name: x-trace, value: "on"}]
            remove: [x-debug]
    - matches: [{path: {value: /limited}}]
---
apiVersion: policy.linkerd.io/v1beta3
kind: HTTPRoute
metadata: {namespace: foo, name: moved}
spec:
  parentRefs: [{name: api, kind: Server, group: policy.linkerd.io}]
  rules:
    - matches: [{path: {value: /old}}]
      filters:
        - type: RequestRedirect
          requestRedirect:
            path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
            statusCode: 301
---
apiVersion: policy.linkerd.io/v1alpha1
kind: HTTPLocalRateLimitPolicy
metadata: {namespace: foo, name: api-rl}
spec:
  targetRef: {group: policy.linkerd.io, kind: Server, name: api}
  identity: {requestsPerSecond: 3}
`;

describe('Linkerd route effects in the data plane', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: LINKERD, upstream: upstream.url, flags: ['--labels', 'app=api'] });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('applies RequestHeaderModifier to the forwarded request', async () => {
    const res = await getText(`${proxy.origin}/v2/items`, mtlsAgent(proxy, proxy.svids.frontend), { headers: { 'x-debug': '1', 'x-trace': 'client', 'x-api-version': '1' } });
    assert.equal(res.status, 200);
    const seen = upstream.requests.at(-1);
    assert.equal(seen?.headers['x-api-version'], '2');
    assert.equal(seen?.headers['x-debug'], undefined);
    assert.equal(seen?.headers['x-trace'], 'client, on');
  });

  it('answers RequestRedirect locally; the workload sees nothing', async () => {
    const before = upstream.requests.length;
    const res = await getText(`${proxy.origin}/old/page?id=7`, mtlsAgent(proxy, proxy.svids.frontend));
    assert.equal(res.status, 301);
    assert.match(String(res.headers['location']), /\/new\/page\?id=7$/);
    assert.equal(upstream.requests.length, before);
  });

  it('turns requests above the per-identity rate into 429', async () => {
    const agent = mtlsAgent(proxy, proxy.svids.admin);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await getText(`${proxy.origin}/limited`, agent)).status);
    assert.ok(statuses.includes(200));
    assert.ok(statuses.includes(429), statuses.join(','));
    const ev = await proxy.event((e) => e.status === 429);
    assert.equal(ev?.reason, 'rate_limited');
  });
});
