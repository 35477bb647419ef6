import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { normalizePath } from './normalize-path.js';
import type { ContextResult, RequestInput } from './context-types.js';
import { buildRequestContext, type ContextOptions } from './context.js';

const BASE: ContextOptions = { pathNormalization: 'BASE', rejectEncodedSlashes: false };

function input(over: Partial<RequestInput> = {}): RequestInput {
  return { protocol: 'http', method: 'GET', path: '/', host: 'api.example', headers: {}, peer: null, sourceIp: '10.0.0.1', port: 8080, jwt: null, ...over };
}

function ok(r: ContextResult) {
  if (!r.ok) assert.fail(`expected ok, got ${r.reason}: ${r.detail}`);
  return r.context;
}

function reason(r: ContextResult): string {
  assert.equal(r.ok, false);
  return r.ok ? '' : r.reason;
}

test('splits query, strips fragment, normalizes the path', () => {
  const c = ok(buildRequestContext(input({ path: '/public/../admin?x=1#frag' }), BASE));
  assert.equal(c.path, '/admin');
  assert.equal(c.query, 'x=1');
  const f = ok(buildRequestContext(input({ path: '/app#foo' }), BASE));
  assert.equal(f.path, '/app');
  assert.equal(f.query, '');
  const q = ok(buildRequestContext(input({ path: '/a#x?y=1' }), BASE));
  assert.equal(q.path, '/a');
  assert.equal(q.query, '');
  assert.ok(Object.isFrozen(c));
});

test('absolute-form: URI authority wins over Host, origin-form path is kept', () => {
  const c = ok(buildRequestContext(input({ path: 'http://Evil.Example:8080/admin?q', host: 'api' }), BASE));
  assert.equal(c.authority, 'evil.example:8080');
  assert.equal(c.host, 'evil.example');
  assert.equal(c.path, '/admin');
  assert.equal(c.query, 'q');
  const empty = ok(buildRequestContext(input({ path: 'https://x.example' }), BASE));
  assert.equal(empty.path, '/');
  assert.equal(reason(buildRequestContext(input({ path: 'ftp://x/y' }), BASE)), 'bad_path');
  assert.equal(reason(buildRequestContext(input({ path: 'http://user@x/y' }), BASE)), 'bad_authority');
});

test('asterisk-form only for OPTIONS', () => {
  assert.equal(ok(buildRequestContext(input({ method: 'OPTIONS', path: '*' }), BASE)).path, '*');
  assert.equal(reason(buildRequestContext(input({ path: '*' }), BASE)), 'bad_path');
});

test('NUL and %00 are refused (PC-2)', () => {
  assert.equal(reason(buildRequestContext(input({ path: '/a%00b' }), BASE)), 'nul_in_path');
  assert.equal(reason(buildRequestContext(input({ path: '/a\0b' }), BASE)), 'nul_in_path');
  assert.equal(reason(buildRequestContext(input({ path: '/a?x=%00' }), BASE)), 'nul_in_path');
});

test('bad targets', () => {
  for (const path of ['', 'admin', '/a b', '/a%zz', '/\u00e9', '/a%4']) {
    assert.equal(reason(buildRequestContext(input({ path }), BASE)), 'bad_path', JSON.stringify(path));
  }
});

test('rejectEncodedSlashes refuses %2F and %5C in any case', () => {
  const opts = { ...BASE, rejectEncodedSlashes: true };
  for (const path of ['/a%2Fb', '/a%2fb', '/a%5Cb', '/a%5cb']) assert.equal(reason(buildRequestContext(input({ path }), opts)), 'encoded_slash_rejected');
  ok(buildRequestContext(input({ path: '/a%252Fb' }), opts));
});

test('normalization modes apply', () => {
  assert.equal(ok(buildRequestContext(input({ path: '//admin' }), BASE)).path, '//admin');
  assert.equal(ok(buildRequestContext(input({ path: '//admin' }), { ...BASE, pathNormalization: 'MERGE_SLASHES' })).path, '/admin');
  assert.equal(ok(buildRequestContext(input({ path: '/admin%2F' }), { ...BASE, pathNormalization: 'DECODE_AND_MERGE_SLASHES' })).path, '/admin/');
  assert.equal(ok(buildRequestContext(input({ path: '/a/../b' }), { ...BASE, pathNormalization: 'NONE' })).path, '/a/../b');
});

test('methods: upper-case tokens only (PC-7)', () => {
  for (const method of ['get', 'Get', 'G ET', '', 'GET\r\n', 'GE%54']) assert.equal(reason(buildRequestContext(input({ method }), BASE)), 'bad_method', method);
  assert.equal(ok(buildRequestContext(input({ method: 'PROPFIND' }), BASE)).method, 'PROPFIND');
});

test('authority: lower-case, trailing dot, port, refusals', () => {
  const c = ok(buildRequestContext(input({ host: 'API.Example.:8443' }), BASE));
  assert.equal(c.authority, 'api.example:8443');
  assert.equal(c.host, 'api.example');
  assert.equal(ok(buildRequestContext(input({ host: '[::1]:80' }), BASE)).host, '[::1]');
  for (const host of ['', 'a b', 'a:99999', 'a:', 'u@a', 'a\r\nb', 'a:8x', '[::1', '.']) {
    assert.equal(reason(buildRequestContext(input({ host }), BASE)), 'bad_authority', JSON.stringify(host));
  }
});

test('headers: lower-cased, joined with comma, bad names refused (PC-9)', () => {
  const c = ok(buildRequestContext(input({ headers: { 'X-Role': ['user', 'admin'], 'x-role': 'ops', Accept: 'a' } }), BASE));
  assert.equal(c.headers['x-role'], 'user,admin,ops');
  assert.equal(c.headers['accept'], 'a');
  for (const name of ['x_spiffe_id', 'x role', 'bad\tname', '']) {
    assert.equal(reason(buildRequestContext(input({ headers: { [name]: 'v' } }), BASE)), 'bad_header', JSON.stringify(name));
  }
  assert.equal(reason(buildRequestContext(input({ headers: { 'x-a': 'v\0' } }), BASE)), 'bad_header');
  assert.equal(reason(buildRequestContext(input({ headers: { 'x-a': 'v\r\nx: y' } }), BASE)), 'bad_header');
  // HTTP/2 pseudo-headers are exposed as context fields, not as headers.
  assert.equal(ok(buildRequestContext(input({ headers: { ':path': '/x' } }), BASE)).headers[':path'], undefined);
});

test('remoteIp defaults to sourceIp; tcp has no method or path', () => {
  assert.equal(ok(buildRequestContext(input(), BASE)).remoteIp, '10.0.0.1');
  const t = ok(buildRequestContext(input({ protocol: 'tcp', method: '', path: '', host: '' }), BASE));
  assert.equal(t.method, '');
  assert.equal(t.path, '');
});

test('absolute-form edge cases and IPv6 authorities', () => {
  const q = ok(buildRequestContext(input({ path: 'http://a.example?x=1#f' }), BASE));
  assert.equal(q.path, '/');
  assert.equal(q.query, 'x=1');
  assert.equal(q.authority, 'a.example');
  assert.equal(reason(buildRequestContext(input({ path: 'http:///admin' }), BASE)), 'bad_authority');
  const v6 = ok(buildRequestContext(input({ path: 'http://[2001:DB8::1]:8443/x' }), BASE));
  assert.equal(v6.authority, '[2001:db8::1]:8443');
  assert.equal(v6.host, '[2001:db8::1]');
  assert.equal(reason(buildRequestContext(input({ host: '[::1]x' }), BASE)), 'bad_authority');
});

test('the input is not aliased: later changes to it do not reach the context', () => {
  const headers: Record<string, string> = { 'x-a': '1' };
  const c = ok(buildRequestContext(input({ headers }), BASE));
  headers['x-a'] = '2';
  assert.equal(c.headers['x-a'], '1');
  assert.ok(Object.isFrozen(c.headers));
});

test('property: any accepted target yields a clean, stable path; anything else is a 400 with a reason', () => {
  const piece = fc.constantFrom('/', 'a', '.', '..', '%2e', '%2F', '%5c', '\\', '?', '#', '%00', '%', '%4', ' ', 'é', ';', '//', 'http://h', '*', '%41');
  const target = fc.array(piece, { maxLength: 10 }).map((p) => p.join(''));
  const modes = fc.constantFrom<ContextOptions['pathNormalization']>('NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES');
  fc.assert(fc.property(target, modes, fc.boolean(), (path, mode, rejectEncodedSlashes) => {
    const r = buildRequestContext(input({ path }), { pathNormalization: mode, rejectEncodedSlashes });
    if (!r.ok) {
      assert.ok(['bad_path', 'nul_in_path', 'encoded_slash_rejected', 'bad_authority'].includes(r.reason), r.reason);
      return;
    }
    const c = r.context;
    assert.ok(!c.path.includes('#') && !c.path.includes('?') && !c.path.includes('\0'));
    assert.ok(!c.path.includes('%00'));
    assert.ok(c.path === '*' || c.path.startsWith('/'), c.path);
    if (c.path !== '*') assert.equal(normalizePath(c.path, mode), c.path, 'normalizing again changes nothing');
    if (rejectEncodedSlashes) assert.ok(!/%(2f|5c)/i.test(c.path));
  }), { numRuns: 3000 });
});
