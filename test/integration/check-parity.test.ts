// Integration: `portcullis check` (decideRequest) and `portcullis run` (the real proxy) give the same verdict
// and status for the same request: one header-cleaning step, one JWT step, one engine (security.md PC-8/9/21).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createCheckAuthenticator, decideRequest, type CheckRequest } from '../../src/check/decide.js';
import { jwksJson, makeKey, mint, type TestKey } from '../../src/jwt/testing.js';
import { TEST_IDS } from '../helpers/pki.js';
import { rawTls, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';

const policy = (key: TestKey): string => `
apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: jwt, namespace: foo}
spec:
  jwtRules:
  - issuer: https://issuer.test
    jwks: '${jwksJson(key)}'
    # Query tokens only when named (compatibility: secure drops Istio's default ?access_token=).
    fromHeaders: [{name: authorization, prefix: "Bearer "}]
    fromParams: [access_token]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: deny-admin, namespace: foo}
spec:
  action: DENY
  rules:
  - to: [{operation: {paths: ["/admin", "/admin/*"]}}]
  - when: [{key: "request.headers[x-forwarded-client-cert]", values: ["*"]}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow, namespace: foo}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/foo/sa/frontend"]}}]
    to: [{operation: {paths: ["/public/*", "/ok"]}}]
  - to: [{operation: {paths: ["/role"]}}]
    when: [{key: "request.headers[x-role]", values: ["admin"]}]
  - to: [{operation: {paths: ["/authz-header"]}}]
    when: [{key: "request.headers[authorization]", values: ["Bearer *"]}]
  - from: [{source: {requestPrincipals: ["https://issuer.test/*"]}}]
    to: [{operation: {paths: ["/jwt"]}}]
`;

interface Row {
  name: string;
  method?: string;
  target: string;
  /** Header lines in wire order (a repeated name is sent twice). */
  headers?: [string, string][];
}

function statusOf(raw: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}

describe('check/run parity', () => {
  let key: TestKey;
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  let valid: string;
  before(async () => {
    key = await makeKey('ES256', 'k1');
    valid = await mint(key, { iss: 'https://issuer.test', sub: 'alice', exp: Math.floor(Date.now() / 1000) + 600 });
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: policy(key), upstream: upstream.url });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  const rows = (): Row[] => [
    { name: 'normal allow', target: '/ok' },
    { name: 'normal deny (no rule)', target: '/private' },
    { name: 'spoofed XFCC is stripped before policy', target: '/ok', headers: [['X-Forwarded-Client-Cert', 'By=x;URI=spiffe://cluster.local/ns/foo/sa/admin']] },
    { name: 'duplicate Host', target: '/ok', headers: [['Host', 'other.foo']] },
    { name: 'underscore header name', target: '/ok', headers: [['X_Role', 'admin']] },
    { name: 'hop-by-hop nominated header is invisible to policy', target: '/role', headers: [['Connection', 'close, x-role'], ['X-Role', 'admin']] },
    { name: 'plain header is visible to policy', target: '/role', headers: [['X-Role', 'admin']] },
    { name: 'valid JWT in Authorization', target: '/jwt', headers: [['Authorization', `Bearer ${valid}`]] },
    { name: 'invalid JWT', target: '/jwt', headers: [['Authorization', 'Bearer not.a.jwt']] },
    { name: 'missing JWT', target: '/jwt' },
    { name: 'token in query', target: `/jwt?access_token=${valid}&keep=1` },
    { name: 'authorization header after the JWT filter removed it', target: '/authz-header', headers: [['Authorization', `Bearer ${valid}`]] },
    { name: 'double slash', target: '//admin' },
    { name: 'dot segments', target: '/public/../admin' },
    { name: 'encoded dot segments', target: '/public/%2e%2e/admin' },
    { name: 'encoded dot segments, upper case', target: '/public/%2E%2E/admin/x' },
  ];

  it('every row: same verdict and status from the proxy and from decideRequest', async () => {
    const snapshot = proxy.app.policyStore?.current();
    assert.ok(snapshot);
    const authenticator = createCheckAuthenticator(snapshot, { now: Date.now });
    const mismatches: string[] = [];
    let seenEvents = (await proxy.events(0)).length;
    for (const row of rows()) {
      const headerLines = (row.headers ?? []).map(([n, v]) => `${n}: ${v}\r\n`).join('');
      const closes = (row.headers ?? []).some(([n]) => n.toLowerCase() === 'connection');
      const wire = `${row.method ?? 'GET'} ${row.target} HTTP/1.1\r\nHost: api.foo\r\n${headerLines}${closes ? '' : 'Connection: close\r\n'}\r\n`;
      const raw = await rawTls(proxy, proxy.svids.frontend, wire);
      const status = statusOf(raw);
      const events = await proxy.events(seenEvents + 1);
      const event = events[seenEvents];
      seenEvents = events.length;

      const headers: Record<string, string | string[]> = { Host: 'api.foo' };
      for (const [n, v] of row.headers ?? []) {
        const prev = headers[n];
        headers[n] = prev === undefined ? v : [...(Array.isArray(prev) ? prev : [prev]), v];
      }
      const request: CheckRequest = { method: row.method ?? 'GET', path: row.target, host: 'api.foo', headers, peer: TEST_IDS.frontend, sourceIp: '127.0.0.1', port: 8080 };
      const checked = await decideRequest(snapshot, request, { authenticator });
      const proxySide = `${event?.verdict ?? '?'} ${status}`;
      const checkSide = `${checked.verdict} ${checked.status}`;
      if (proxySide !== checkSide) mismatches.push(`${row.name}: run=${proxySide} check=${checkSide}`);
    }
    assert.deepEqual(mismatches, []);
  });

  it('the rows decide what they claim (so parity is not two identical mistakes)', async () => {
    const snapshot = proxy.app.policyStore?.current();
    assert.ok(snapshot);
    const authenticator = createCheckAuthenticator(snapshot, { now: Date.now });
    const verdict = async (path: string, headers: Record<string, string | string[]> = {}): Promise<string> =>
      (await decideRequest(snapshot, { path, host: 'api.foo', headers, peer: TEST_IDS.frontend }, { authenticator })).verdict;
    assert.equal(await verdict('/ok'), 'allow');
    assert.equal(await verdict('/ok', { 'x-forwarded-client-cert': 'spoof' }), 'allow');
    assert.equal(await verdict('/ok', { x_role: 'admin' }), 'bad_request');
    assert.equal(await verdict('/ok', { host: ['a', 'b'] }), 'bad_request');
    assert.equal(await verdict('/role', { connection: 'x-role', 'x-role': 'admin' }), 'deny');
    assert.equal(await verdict('/role', { 'x-role': 'admin' }), 'allow');
    assert.equal(await verdict('/jwt', { authorization: `Bearer ${valid}` }), 'allow');
    assert.equal(await verdict('/jwt', { authorization: 'Bearer not.a.jwt' }), 'unauthenticated');
    assert.equal(await verdict('/authz-header', { authorization: `Bearer ${valid}` }), 'deny');
    assert.equal(await verdict('/public/%2e%2e/admin'), 'deny');
  });

  it('a query-borne token is removed from the forwarded target; other parameters stay', async () => {
    const before = upstream.requests.length;
    const raw = await rawTls(proxy, proxy.svids.frontend, `GET /jwt?keep=1&access_token=${valid}&z=2 HTTP/1.1\r\nHost: api.foo\r\nConnection: close\r\n\r\n`);
    assert.equal(statusOf(raw), 200);
    assert.equal(upstream.requests.length, before + 1);
    assert.equal(upstream.requests.at(-1)?.url, '/jwt?keep=1&z=2');
  });

  it('an underscore header is refused with 400 and never forwarded', async () => {
    const before = upstream.requests.length;
    const raw = await rawTls(proxy, proxy.svids.frontend, 'GET /ok HTTP/1.1\r\nHost: api.foo\r\nX_Forwarded_For: 1.2.3.4\r\nConnection: close\r\n\r\n');
    assert.equal(statusOf(raw), 400);
    assert.equal(upstream.requests.length, before);
    const ev = await proxy.event((e) => e.status === 400 && e.reason === 'bad_header');
    assert.ok(ev);
  });
});

const MIXED = `
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-all, namespace: foo}
spec:
  action: ALLOW
  rules: [{}]
---
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
metadata: {namespace: foo, name: moved}
spec:
  parentRefs: [{name: api, kind: Server, group: policy.linkerd.io}]
  rules:
    - matches: [{path: {value: /old}}]
      filters:
        - type: RequestRedirect
          requestRedirect:
            path: {type: ReplaceFullPath, replaceFullPath: /new}
            statusCode: 301
    - matches: [{path: {type: PathPrefix, value: /}}]
`;

describe('check/run parity with mixed Istio + Linkerd policies', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: MIXED, upstream: upstream.url, flags: ['--labels', 'app=api'] });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('a Linkerd redirect is the answer in both, whatever status the combined decision reports', async () => {
    const snapshot = proxy.app.policyStore?.current();
    assert.ok(snapshot);
    const authenticator = createCheckAuthenticator(snapshot, { now: Date.now });
    for (const target of ['/old', '/other']) {
      const before = upstream.requests.length;
      const raw = await rawTls(proxy, proxy.svids.frontend, `GET ${target} HTTP/1.1\r\nHost: api.foo\r\nConnection: close\r\n\r\n`);
      const checked = await decideRequest(snapshot, { path: target, host: 'api.foo', headers: {}, peer: TEST_IDS.frontend, port: 8080 }, { authenticator });
      assert.equal(checked.status, statusOf(raw), target);
      assert.equal(upstream.requests.length - before, target === '/old' ? 0 : 1);
    }
  });
});

describe('check and run agree on what run refuses before policy', () => {
  let key: TestKey;
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  let valid: string;
  let expired: string;
  before(async () => {
    key = await makeKey('ES256', 'k1');
    const now = Math.floor(Date.now() / 1000);
    valid = await mint(key, { iss: 'https://issuer.test', sub: 'alice', exp: now + 600 });
    expired = await mint(key, { iss: 'https://issuer.test', sub: 'alice', exp: now - 3600 });
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: policy(key), upstream: upstream.url, flags: ['--reject-encoded-slashes'] });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  const cases = (): { name: string; target: string; authorization?: string; expected: string }[] => [
    { name: 'encoded slash', target: '/public/a%2Fb', expected: 'bad_request 400' },
    { name: 'encoded backslash, lower case', target: '/public/a%5cb', expected: 'bad_request 400' },
    { name: 'plain path beside it', target: '/public/a', expected: 'allow 200' },
    { name: 'valid JWT', target: '/jwt', authorization: `Bearer ${valid}`, expected: 'allow 200' },
    { name: 'expired JWT', target: '/jwt', authorization: `Bearer ${expired}`, expected: 'unauthenticated 401' },
    { name: 'no JWT where one is required by policy', target: '/jwt', expected: 'deny 403' },
  ];

  it('each request: the same verdict and status from the proxy and from check, and the one each claims', async () => {
    const snapshot = proxy.app.policyStore?.current();
    assert.ok(snapshot);
    assert.equal(snapshot.options.rejectEncodedSlashes, true, 'the flag reaches the compiled options check reads');
    const authenticator = createCheckAuthenticator(snapshot, { now: Date.now });
    const got: string[] = [];
    try {
      for (const c of cases()) {
        const auth = c.authorization ? `Authorization: ${c.authorization}\r\n` : '';
        const seen = (await proxy.events(0)).length;
        const raw = await rawTls(proxy, proxy.svids.frontend, `GET ${c.target} HTTP/1.1\r\nHost: api.foo\r\n${auth}Connection: close\r\n\r\n`);
        const event = (await proxy.events(seen + 1))[seen];
        const checked = await decideRequest(snapshot, {
          path: c.target, host: 'api.foo', headers: c.authorization ? { authorization: c.authorization } : {}, peer: TEST_IDS.frontend, port: 8080,
        }, { authenticator });
        got.push(`${c.name}: run=${event?.verdict ?? '?'} ${statusOf(raw)} check=${checked.verdict} ${checked.status} want=${c.expected}`);
      }
    } finally {
      authenticator.close();
    }
    assert.deepEqual(got, cases().map((c) => `${c.name}: run=${c.expected} check=${c.expected} want=${c.expected}`));
  });
});
