import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { util as undiciUtil } from 'undici';
import fc from 'fast-check';
import { cleanRawResponseHeaders, cleanRequestHeaders, cleanResponseHeaders, connectionForwardedClientCert, forwardedClientCert, groupHeaders, hopRequestHeaders, scanRequestHeaders } from './headers.js';

const scan = (raw: string[], owned: string[] = [], max = 10) => scanRequestHeaders(raw, { maxHeaderCount: max, ownedNames: new Set(owned) });

describe('scanRequestHeaders', () => {
  it('refuses repeated singleton headers in any case (PC-8)', () => {
    for (const name of ['Host', 'authorization', 'Content-Length', 'content-type']) {
      const r = scan([name, 'a', name.toUpperCase(), 'b']);
      assert.equal(r.ok, false, name);
      if (!r.ok) assert.deepEqual(r.refusal, { kind: 'bad_request', reason: 'duplicate_header' });
    }
    assert.equal(scan(['accept', 'a', 'Accept', 'b']).ok, true);
  });

  it('answers 431 above the count instead of truncating (PC-11); pseudo-headers do not count', () => {
    const raw = Array.from({ length: 11 }, (_, i) => [`x-${i}`, 'v']).flat();
    const r = scan(raw);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.refusal.kind, 'headers_too_large');
    assert.equal(scan([':path', '/', ':method', 'GET', ...raw.slice(0, 20)]).ok, true);
  });

  it('refuses header names containing `_` with 400 bad_header (PC-9), like the engine and `portcullis check`', () => {
    for (const name of ['x_spiffe_id', 'X_Forwarded_For', 'x-user_id']) {
      const r = scan([name, 'v']);
      assert.equal(r.ok, false, name);
      if (!r.ok) assert.deepEqual(r.refusal, { kind: 'bad_request', reason: 'bad_header' });
    }
  });

  it('cleanRequestHeaders applies JWT edits after stripping, and is what policy sees', () => {
    const seen = groupHeaders([['Authorization', 'Bearer t'], ['X-Forwarded-Client-Cert', 'spoof'], ['x-claim', 'client'], ['x-keep', 'ok']]);
    const r = cleanRequestHeaders(seen, { ownedNames: new Set(['x-claim']), jwtEdits: { remove: ['authorization'], set: { 'x-claim': 'verified' } } });
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.deepEqual(r.forPolicy, { 'x-keep': 'ok', 'x-claim': 'verified' });
  });

  it('drops hop-by-hop, framing, Connection-nominated, identity and override headers', () => {
    const r = scan([
      'Connection', 'close, X-Custom', 'X-Custom', '1', 'Keep-Alive', '5', 'Transfer-Encoding', 'chunked', 'TE', 'trailers',
      'X-Forwarded-Client-Cert', 'x', 'x-spiffe-id', 'y', 'X-Forwarded-For', '1.1.1.1', 'Forwarded', 'for=x', 'X-Real-IP', 'z',
      'X-Original-URL', '/admin', 'X-HTTP-Method-Override', 'DELETE', 'L5D-Client-Id', 'a', 'x-portcullis-foo', 'b', 'x-claim', 'c', 'x-keep', 'ok',
    ], ['x-claim'], 100);
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.deepEqual(Object.keys(r.headers.forPolicy), ['x-keep']);
    assert.deepEqual(r.headers.forPolicy, { 'x-keep': 'ok' });
    assert.equal(r.headers.teTrailers, true);
    assert.equal(r.headers.original['x-forwarded-for'], '1.1.1.1');
  });

  it('reads `trailers` in TE whatever its case, place or repetition, and nothing else as it', () => {
    const te = (...values: string[]) => {
      const r = scan(values.flatMap((v) => ['TE', v]));
      return r.ok ? r.headers.teTrailers : undefined;
    };
    assert.deepEqual([te('trailers'), te('deflate, Trailers'), te('gzip', ' trailers '), te('gzip'), te('trailersx'), te('deflate;q=0.5')], [true, true, true, false, false, false]);
  });

  it('reports Expect, Upgrade, content type and host', () => {
    const r = scan(['Host', 'API', 'Expect', '100-continue', 'Upgrade', 'WebSocket', 'Content-Type', 'application/grpc']);
    assert.ok(r.ok);
    if (!r.ok) return;
    assert.equal(r.headers.host, 'API');
    assert.equal(r.headers.expectContinue, true);
    assert.equal(r.headers.upgrade, 'websocket');
    assert.equal(r.headers.contentType, 'application/grpc');
  });
});

describe('response headers and XFCC', () => {
  it('removes connection-specific response headers and those Connection names', () => {
    assert.deepEqual(cleanResponseHeaders({ connection: 'x-secret', 'x-secret': '1', 'transfer-encoding': 'chunked', 'keep-alive': 'timeout=5', 'content-type': 'text/plain', ':status': '200' }), { 'content-type': 'text/plain' });
  });

  it('uses the one hop-by-hop set both ways: Proxy-Authenticate answers the hop that asked, never the caller (RFC 9110 §11.7.1)', () => {
    const clean = cleanResponseHeaders({ 'proxy-authenticate': 'Basic realm="upstream proxy"', 'www-authenticate': 'Bearer', 'content-type': 'text/plain' });
    assert.deepEqual(clean, { 'www-authenticate': 'Bearer', 'content-type': 'text/plain' });
    assert.deepEqual(cleanRawResponseHeaders(['Proxy-Authenticate', 'Basic', 'WWW-Authenticate', 'Bearer']), { 'www-authenticate': 'Bearer' });
  });

  it('hopRequestHeaders (the outbound listener) removes hop-by-hop and Connection-named headers and keeps the rest as sent', () => {
    const raw = ['Host', 'localhost:15001', 'Connection', 'keep-alive, X-Hop', 'X-Hop', 'a', 'TE', 'trailers', 'Content-Length', '3',
      'X-Forwarded-For', '10.0.0.1', 'x_under', 'kept', 'Accept', 'a', 'accept', 'b'];
    assert.deepEqual(hopRequestHeaders(raw), {
      headers: { 'x-forwarded-for': '10.0.0.1', x_under: 'kept', accept: ['a', 'b'] },
      authority: 'localhost:15001',
    });
    assert.equal(hopRequestHeaders([':authority', 'svc:8443', ':path', '/', 'host', 'other']).authority, 'svc:8443');
  });

  it('cleans undici raw response headers exactly as parsing them with undici and cleaning the object', () => {
    const raw = (pairs: string[]): Buffer[] => pairs.map((p) => Buffer.from(p, 'latin1'));
    const cases = [
      ['Content-Type', 'text/plain', 'Content-Length', '24', 'Connection', 'keep-alive'],
      ['Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'SET-COOKIE', 'c=3', 'X-Dup', 'x', 'x-dup', 'y'],
      ['Connection', 'X-Secret, x-other', 'Connection', 'close', 'X-Secret', '1', 'X-Other', '2', 'Transfer-Encoding', 'chunked', 'Keep-Alive', 'timeout=5', 'Trailer', 'x', 'X-Kept', 'yes'],
      ['__proto__', 'x', 'constructor', 'c', 'toString', 't', 'Upgrade', 'h2c', 'X-Latin', 'caf\u00e9'],
      // A single `close` or `keep-alive` option still nominates a field of that name.
      ['Connection', 'close', 'Close', 'x', 'X-Kept', 'yes'],
      ['Connection', 'Keep-Alive', 'keep-alive', 'timeout=5', 'X-Kept', 'yes'],
      ['Connection', 'Close', 'close', 'x'],
      [],
    ];
    for (const c of cases) {
      const expected = cleanResponseHeaders(undiciUtil.parseHeaders(raw(c)) as Record<string, string | string[] | undefined>);
      assert.deepEqual(cleanRawResponseHeaders(raw(c)), expected, c.join(' '));
      assert.deepEqual(Object.keys(cleanRawResponseHeaders(raw(c))), Object.keys(expected), 'same order');
    }
  });

  it('builds XFCC once per connection and again when our own SPIFFE ID changes', () => {
    const conn = { peer: { spiffeId: 'spiffe://td/ns/b/sa/you' }, peerCertHash: 'ab12' };
    const first = connectionForwardedClientCert(conn, 'spiffe://td/ns/a/sa/me');
    assert.equal(first, 'By=spiffe://td/ns/a/sa/me;Hash=ab12;URI=spiffe://td/ns/b/sa/you');
    assert.equal(connectionForwardedClientCert(conn, 'spiffe://td/ns/a/sa/me'), first);
    assert.equal(connectionForwardedClientCert(conn, 'spiffe://td/ns/a/sa/renamed'), 'By=spiffe://td/ns/a/sa/renamed;Hash=ab12;URI=spiffe://td/ns/b/sa/you');
    assert.equal(connectionForwardedClientCert({ peer: null, peerCertHash: null }, 'spiffe://td/ns/a/sa/me'), null);
  });

  it('formats XFCC as Envoy does', () => {
    assert.equal(forwardedClientCert('spiffe://td/ns/a/sa/me', 'ab12', 'spiffe://td/ns/b/sa/you'), 'By=spiffe://td/ns/a/sa/me;Hash=ab12;URI=spiffe://td/ns/b/sa/you');
  });
});

describe('scanRequestHeaders in one pass', () => {
  /** The two-step definition: group the list, refuse repeated singletons, count, then the one cleaning step. */
  function reference(raw: string[], maxHeaderCount: number, ownedNames: ReadonlySet<string>): unknown {
    const pairs: [string, string][] = [];
    let count = 0;
    for (let i = 0; i + 1 < raw.length; i += 2) { if (!(raw[i] as string).startsWith(':')) count++; pairs.push([raw[i] as string, raw[i + 1] as string]); }
    const seen = groupHeaders(pairs);
    for (const [name, values] of seen) if (values.length > 1 && ['host', 'authorization', 'content-length', 'content-type', ':authority', ':path', ':method', ':scheme'].includes(name)) return { refusal: 'duplicate_header' };
    if (count > maxHeaderCount) return { refusal: 'too_many_headers' };
    const cleaned = cleanRequestHeaders(seen, { ownedNames });
    if (!cleaned.ok) return { refusal: cleaned.refusal.reason };
    const original: Record<string, string | string[]> = {};
    for (const [name, values] of seen) original[name] = values.length === 1 ? (values[0] as string) : values;
    return { order: Object.keys(cleaned.forPolicy), forPolicy: cleaned.forPolicy, original, seen: [...seen] };
  }
  const names = fc.constantFrom('Host', 'host', ':authority', ':path', 'Content-Type', 'Accept', 'accept', 'X-Trace', 'Connection', 'keep-alive', 'TE', 'Upgrade',
    'x-forwarded-for', 'X-Portcullis-User', 'x-envoy-peer', 'x-claim', 'Authorization', 'Content-Length', 'expect', 'x_under', 'cookie', 'x-nominated', 'close', 'Close');
  const values = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom('x-nominated, X-Trace', 'close', 'Close', 'keep-alive', 'Keep-Alive', 'trailers, deflate', '100-continue', 'h2c'));
  it('gives what grouping and then cleaning give, refusals and their precedence included', () => {
    fc.assert(fc.property(fc.array(fc.tuple(names, values), { maxLength: 14 }), fc.integer({ min: 2, max: 12 }), (list, max) => {
      const raw = list.flat();
      const owned = new Set(['x-claim']);
      const r = scanRequestHeaders(raw, { maxHeaderCount: max, ownedNames: owned });
      const got = r.ok ? { order: Object.keys(r.headers.forPolicy), forPolicy: r.headers.forPolicy, original: r.headers.original, seen: [...r.headers.seen] } : { refusal: (r.refusal as { reason: string }).reason };
      assert.deepEqual(got, reference(raw, max, owned));
    }), { numRuns: 3000 });
  });
});
