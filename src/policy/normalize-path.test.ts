import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { PathNormalization } from './ir.js';
import { hasValidPercentEncoding, normalizePath } from './normalize-path.js';

const MODES: PathNormalization[] = ['NONE', 'BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'];

test('BASE matches the Istio integration examples (istio.md §6)', () => {
  const cases: [string, string][] = [
    ['/app/../admin', '/admin'],
    ['/app/%2E./admin', '/admin'],
    ['/xyz%30..//abc', '/xyz0..//abc'],
    ['/app\\admin', '/app/admin'],
    ['/app//', '/app//'],
    ['/app/%2f', '/app/%2f'],
    ['/app//../admin', '/app/admin'],
    ['/Admin', '/Admin'],
    ['//admin', '//admin'],
    ['/public/../admin', '/admin'],
    ['/%61dmin', '/admin'],
    ['/admin%2F', '/admin%2F'],
    ['/ADMIN', '/ADMIN'],
    ['/admin/', '/admin/'],
    ['/%252e%252e/admin', '/%252e%252e/admin'],
    ['/a/./b/.', '/a/b/'],
    ['/a/b/..', '/a/'],
    ['/../../admin', '/admin'],
    ['/public/..;/admin', '/admin'],
    ['/public/..;jsessionid=1/admin', '/admin'],
    ['/public/.;x/admin', '/public/admin'],
    ['/a/%2e%2E/b', '/b'],
    ['/app/%5Cadmin', '/app/%5Cadmin'],
  ];
  for (const [input, want] of cases) assert.equal(normalizePath(input, 'BASE'), want, input);
});

test('MERGE_SLASHES and DECODE_AND_MERGE_SLASHES close the slash bypasses', () => {
  assert.equal(normalizePath('//admin', 'MERGE_SLASHES'), '/admin');
  assert.equal(normalizePath('/app//', 'MERGE_SLASHES'), '/app/');
  assert.equal(normalizePath('/app//../admin', 'MERGE_SLASHES'), '/app/admin');
  assert.equal(normalizePath('/admin%2F', 'MERGE_SLASHES'), '/admin%2F');
  assert.equal(normalizePath('/admin%2F', 'DECODE_AND_MERGE_SLASHES'), '/admin/');
  assert.equal(normalizePath('/app%2f..%2fadmin', 'DECODE_AND_MERGE_SLASHES'), '/admin');
  assert.equal(normalizePath('/app%5C..%5cadmin', 'DECODE_AND_MERGE_SLASHES'), '/admin');
  assert.equal(normalizePath('%2F%2Fadmin'.replace(/^/, '/'), 'DECODE_AND_MERGE_SLASHES'), '/admin');
  assert.equal(normalizePath('/%252F', 'DECODE_AND_MERGE_SLASHES'), '/%252F');
});

test('NONE leaves the path alone', () => {
  for (const p of ['/app/../admin', '//x', '/a\\b', '/%61']) assert.equal(normalizePath(p, 'NONE'), p);
});

test('percent-encoding validation', () => {
  assert.equal(hasValidPercentEncoding('/a%2Fb%41'), true);
  assert.equal(hasValidPercentEncoding('/a%'), false);
  assert.equal(hasValidPercentEncoding('/a%4'), false);
  assert.equal(hasValidPercentEncoding('/a%zz'), false);
  assert.equal(hasValidPercentEncoding('/a%%41'), false);
});

// Paths built from pieces that exercise every rule: dots, slashes, backslashes, escapes of reserved and
// unreserved characters, path parameters.
const piece = fc.constantFrom(
  '/', '//', '.', '..', '...', '..;', '.;x', ';', 'a', 'B', '0', '-', '~', '_', '\\', '%2e', '%2E', '%2f', '%2F',
  '%5c', '%5C', '%3F', '%23', '%25', '%41', '%7e', '%20', '%252e', '%2541', 'admin', 'x.y', '%00'.replace('00', '3A'),
);
const pathArb = fc.array(piece, { maxLength: 14 }).map((parts) => '/' + parts.join(''));

function segments(p: string): string[] {
  return p.split('/').slice(1);
}

test('property: every mode is idempotent', () => {
  fc.assert(fc.property(pathArb, fc.constantFrom(...MODES), (p, mode) => {
    const once = normalizePath(p, mode);
    assert.equal(normalizePath(once, mode), once);
  }), { numRuns: 3000 });
});

test('property: normalized paths keep no dot segment and start with /', () => {
  fc.assert(fc.property(pathArb, fc.constantFrom<PathNormalization>('BASE', 'MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'), (p, mode) => {
    const out = normalizePath(p, mode);
    assert.ok(out.startsWith('/'));
    for (const seg of segments(out)) {
      const core = seg.split(';')[0];
      assert.notEqual(core, '.', `${p} -> ${out}`);
      assert.notEqual(core, '..', `${p} -> ${out}`);
    }
    assert.ok(!out.includes('\\'));
  }), { numRuns: 3000 });
});

test('property: reserved escapes are never decoded; %2F/%5C kept unless DECODE_AND_MERGE_SLASHES', () => {
  const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;
  fc.assert(fc.property(pathArb, fc.constantFrom(...MODES), (p, mode) => {
    const out = normalizePath(p, mode);
    // %3F, %23 and %25 can only vanish together with a removed `..` segment, never by decoding.
    assert.ok(!/[?#]/.test(out), `${p} -> ${out}`);
    if (!p.includes('.') && !/%2e/i.test(p)) {
      for (const re of [/%3F/gi, /%23/gi, /%25/gi]) assert.equal(count(out, re), count(p, re), `${p} -> ${out}`);
      if (mode !== 'DECODE_AND_MERGE_SLASHES') {
        assert.equal(count(out, /%2F/gi), count(p, /%2F/gi), `${p} -> ${out}`);
        assert.equal(count(out, /%5C/gi), count(p, /%5C/gi), `${p} -> ${out}`);
      }
    }
  }), { numRuns: 3000 });
});

test('property: MERGE modes never leave //', () => {
  fc.assert(fc.property(pathArb, fc.constantFrom<PathNormalization>('MERGE_SLASHES', 'DECODE_AND_MERGE_SLASHES'), (p, mode) => {
    assert.ok(!normalizePath(p, mode).includes('//'));
  }), { numRuns: 3000 });
});
