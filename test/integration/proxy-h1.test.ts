// Integration: HTTP/1.1 through `portcullis run` (mTLS, Istio policy) to a recording node:http upstream.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ALLOW_FRONTEND_POLICY, getText, mtlsAgent, rawTls, startH1Upstream, startProxy, type ProxyUnderTest, type RecordingUpstream } from './harness.js';

describe('HTTP/1.1 through Portcullis', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('forwards an allowed request with clean headers and XFCC from the verified peer', async () => {
    const agent = mtlsAgent(proxy, proxy.svids.frontend);
    const res = await getText(`${proxy.origin}/public/a?x=1`, agent, {
      headers: { 'x-forwarded-client-cert': 'URI=spiffe://cluster.local/ns/foo/sa/admin', 'X-Spiffe-Id': 'evil', 'x-forwarded-for': '1.2.3.4', 'x-real-ip': '1.1.1.1', 'x-original-url': '/admin', 'x-http-method-override': 'DELETE', 'l5d-client-id': 'x', 'x-portcullis-peer': 'x', 'x-keep': 'yes' },
    });
    assert.equal(res.status, 200);
    assert.equal(res.body, 'upstream ok');
    const seen = upstream.requests.at(-1);
    assert.ok(seen);
    assert.equal(seen.url, '/public/a?x=1');
    const hash = (await import('node:crypto')).createHash('sha256').update(proxy.svids.frontend.cert.raw).digest('hex');
    assert.equal(seen.headers['x-forwarded-client-cert'], `By=spiffe://cluster.local/ns/foo/sa/httpbin;Hash=${hash};URI=spiffe://cluster.local/ns/foo/sa/frontend`);
    assert.equal(seen.headers['x-forwarded-proto'], 'https');
    for (const h of ['x-spiffe-id', 'x-forwarded-for', 'x-real-ip', 'x-original-url', 'x-http-method-override', 'l5d-client-id', 'x-portcullis-peer']) assert.equal(seen.headers[h], undefined, h);
    assert.equal(seen.headers['x-keep'], 'yes');
    const ev = await proxy.event((e) => e.request.path === '/public/a' && e.status === 200);
    assert.equal(ev?.verdict, 'allow');
    assert.equal(ev?.peer.spiffe_id, 'spiffe://cluster.local/ns/foo/sa/frontend');
    assert.equal(ev?.request.path, '/public/a');
    assert.equal(ev?.status, 200);
  });

  it('denies by identity and by path with 403 RBAC: access denied, upstream sees nothing', async () => {
    const before = upstream.requests.length;
    const other = await getText(`${proxy.origin}/public/a`, mtlsAgent(proxy, proxy.svids.other));
    assert.equal(other.status, 403);
    assert.equal(other.body, 'RBAC: access denied');
    const admin = await getText(`${proxy.origin}/admin`, mtlsAgent(proxy, proxy.svids.frontend));
    assert.equal(admin.status, 403);
    assert.equal(upstream.requests.length, before);
    assert.ok(await proxy.event((e) => e.verdict === 'deny' && e.reason === 'deny_policy_matched' && e.policy?.name === 'deny-admin'));
    assert.ok(await proxy.event((e) => e.verdict === 'deny' && e.peer.spiffe_id === 'spiffe://cluster.local/ns/foo/sa/other'));
  });

  it('exposes the same outcomes as Prometheus metrics', async () => {
    const text = await proxy.metrics();
    assert.match(text, /portcullis_requests_total\{[^}]*verdict="allow"[^}]*\} [1-9]/);
    assert.match(text, /portcullis_requests_total\{[^}]*reason="deny_policy_matched"[^}]*\} [1-9]/);
    assert.match(text, /portcullis_upstream_duration_seconds_count\{outcome="success"\} [1-9]/);
    assert.match(text, /portcullis_connections_total\{listener="inbound",outcome="accepted"\} [1-9]/);
  });
});

describe('HTTP/1.1 request hygiene', () => {
  let upstream: RecordingUpstream;
  let proxy: ProxyUnderTest;
  before(async () => {
    upstream = await startH1Upstream();
    proxy = await startProxy({ policy: ALLOW_FRONTEND_POLICY, upstream: upstream.url });
  });
  after(async () => { await proxy.stop(); await upstream.close(); });

  it('answers 400 to a duplicate Host and 431 to too many headers; upstream sees nothing', async () => {
    const before = upstream.bytes;
    const dup = await rawTls(proxy, proxy.svids.frontend, 'GET /public/a HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
    assert.match(dup, /^HTTP\/1\.1 400 /);
    const many = Array.from({ length: 150 }, (_, i) => `x-h${i}: v\r\n`).join('');
    const tooMany = await rawTls(proxy, proxy.svids.frontend, `GET /public/a HTTP/1.1\r\nHost: a\r\n${many}\r\n`);
    assert.match(tooMany, /^HTTP\/1\.1 431 /);
    const dupAuth = await rawTls(proxy, proxy.svids.frontend, 'GET /public/a HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\nauthorization: Bearer y\r\n\r\n');
    assert.match(dupAuth, /^HTTP\/1\.1 400 /);
    assert.equal(upstream.bytes, before);
  });

  it('decides and forwards the normalized path: //admin and /public/../admin are denied, /public//a forwarded as /public/a', async () => {
    const before = upstream.requests.length;
    for (const target of ['//admin', '/public/../admin', '/public/%2e%2e/admin', 'http://evil/admin']) {
      const res = await rawTls(proxy, proxy.svids.frontend, `GET ${target} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`);
      assert.match(res, /^HTTP\/1\.1 403 /, target);
    }
    assert.equal(upstream.requests.length, before);
    const ok = await rawTls(proxy, proxy.svids.frontend, 'GET /public//a/./b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(ok, /^HTTP\/1\.1 200 /);
    assert.equal(upstream.requests.at(-1)?.url, '/public/a/b');
    const absolute = await rawTls(proxy, proxy.svids.frontend, 'GET https://a/public/x#frag HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n');
    assert.match(absolute, /^HTTP\/1\.1 200 /);
    assert.equal(upstream.requests.at(-1)?.url, '/public/x', 'absolute-form is forwarded as origin-form, fragment dropped');
  });

  it('removes hop-by-hop headers and those Connection nominates, but never Portcullis-owned ones', async () => {
    const res = await rawTls(proxy, proxy.svids.frontend, 'GET /public/h HTTP/1.1\r\nHost: a\r\nConnection: close, x-drop-me, x-forwarded-client-cert\r\nx-drop-me: 1\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nTE: gzip\r\nx-stay: 1\r\n\r\n');
    assert.match(res, /^HTTP\/1\.1 200 /);
    const seen = upstream.requests.at(-1);
    assert.equal(seen?.url, '/public/h');
    assert.equal(seen?.headers['x-drop-me'], undefined);
    assert.equal(seen?.headers['keep-alive'], undefined);
    assert.equal(seen?.headers['proxy-connection'], undefined);
    assert.equal(seen?.headers['te'], undefined);
    assert.equal(seen?.headers['x-stay'], '1');
    assert.match(String(seen?.headers['x-forwarded-client-cert']), /URI=spiffe:\/\/cluster\.local\/ns\/foo\/sa\/frontend$/);
  });

  it('decides Expect: 100-continue before any 100: a deny is a final 403 without 100', async () => {
    const denied = await rawTls(proxy, proxy.svids.other, 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    assert.doesNotMatch(denied, /100 Continue/);
    assert.match(denied, /^HTTP\/1\.1 403 /);
    const allowed = await rawTls(proxy, proxy.svids.frontend, 'POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    assert.match(allowed, /^HTTP\/1\.1 100 Continue/);
  });

  it('refuses h2c upgrades and CONNECT', async () => {
    const before = upstream.bytes;
    const h2c = await rawTls(proxy, proxy.svids.frontend, 'GET /public/a HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n');
    assert.match(h2c, /^HTTP\/1\.1 400 /);
    const connect = await rawTls(proxy, proxy.svids.frontend, 'CONNECT evil:443 HTTP/1.1\r\nHost: evil:443\r\n\r\n');
    assert.match(connect, /^HTTP\/1\.1 405 /);
    assert.equal(upstream.bytes, before);
  });

  it('refuses framing it cannot re-frame faithfully: a transfer coding other than chunked (501), Transfer-Encoding on HTTP/1.0 (400); upstream sees nothing', async () => {
    const before = upstream.bytes;
    const gzip = await rawTls(proxy, proxy.svids.frontend, 'POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n');
    assert.match(gzip, /^HTTP\/1\.1 501 /);
    assert.match(gzip, /connection: close/i);
    const http10 = await rawTls(proxy, proxy.svids.frontend, 'POST /upload HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.0\r\nHost: a\r\n\r\n');
    assert.match(http10, /^HTTP\/1\.1 400 /);
    assert.doesNotMatch(http10, /HTTP\/1\.1 403/, 'the bytes after the refused request are never read as a request');
    assert.equal(upstream.bytes, before);
    const chunked = await rawTls(proxy, proxy.svids.frontend, 'POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n4\r\nabcd\r\n0\r\n\r\n');
    assert.match(chunked, /^HTTP\/1\.1 200 /, 'chunked in any case is the one coding Portcullis re-frames');
    assert.equal(upstream.requests.at(-1)?.body.toString(), 'abcd');
  });

  it('is reachable with curl presenting a client certificate', async () => {
    const { execFile } = await import('node:child_process');
    // Async: the proxy runs in this process, a blocking spawn would starve it.
    const run = (args: string[]): Promise<{ stdout: string; stderr: string }> => new Promise((resolve) => {
      execFile('curl', args, { encoding: 'utf8', timeout: 20_000 }, (_err, stdout, stderr) => resolve({ stdout, stderr }));
    });
    const { writeFileSync } = await import('node:fs');
    const { join } = await import('node:path');
    const cert = join(proxy.dir, 'curl.crt');
    const key = join(proxy.dir, 'curl.key');
    const ca = join(proxy.dir, 'curl-ca.crt');
    writeFileSync(cert, proxy.svids.frontend.chainPem);
    writeFileSync(key, proxy.svids.frontend.keyPem);
    writeFileSync(ca, proxy.caPem);
    const r = await run(['-sS', '--http1.1', '--cert', cert, '--key', key, '--cacert', ca, '-o', '-', '-w', '\n%{http_code}', `${proxy.origin}/public/curl`]);
    assert.equal(r.stdout.trim().split('\n').at(-1), '200', r.stderr);
    assert.match(r.stdout, /upstream ok/);
    const noCert = await run(['-sS', '--http1.1', '--cacert', ca, '-o', '/dev/null', '-w', '%{http_code}', `${proxy.origin}/public/curl`]);
    assert.notEqual(noCert.stdout.trim(), '200');
  });
});
