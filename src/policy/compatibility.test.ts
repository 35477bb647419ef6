import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compatibilities, compatibilityDifferences, compatibilitySettings, resolveCompatibility } from './compatibility.js';
import { compileMatcher } from './match/compile.js';
import { buildRequestContext } from './context.js';
import type { Matcher } from './ir.js';
import type { RequestContext } from './context-types.js';

function ctx(host: string, headers: Record<string, string | string[]> = {}): RequestContext {
  const built = buildRequestContext(
    { protocol: 'http', method: 'GET', path: '/', host, headers, peer: null, sourceIp: '10.0.0.1', port: 8080, jwt: null },
    { pathNormalization: 'MERGE_SLASHES', rejectEncodedSlashes: false },
  );
  assert.ok(built.ok);
  return built.context;
}

const env = {};

test('every setting differs between secure and istio-exact and is listed once', () => {
  const secure = compatibilitySettings('secure');
  const exact = compatibilitySettings('istio-exact');
  const keys = Object.keys(secure) as (keyof typeof secure)[];
  for (const k of keys) assert.notDeepEqual(secure[k], exact[k], k);
  assert.deepEqual(compatibilityDifferences.map((d) => d.setting).sort(), [...keys].sort());
  assert.deepEqual([...compatibilities], ['secure', 'istio-exact']);
});

test('explicit settings win over the switch; DECODE_AND_MERGE_SLASHES turns the encoded-slash 400 off unless set', () => {
  assert.equal(resolveCompatibility('secure', { denyPathsIgnoreCase: false }).denyPathsIgnoreCase, false);
  assert.equal(resolveCompatibility('istio-exact', { rejectEncodedSlashes: true }).rejectEncodedSlashes, true);
  assert.equal(resolveCompatibility('secure', { pathNormalization: 'DECODE_AND_MERGE_SLASHES' }).rejectEncodedSlashes, false);
  assert.equal(resolveCompatibility('secure', { pathNormalization: 'DECODE_AND_MERGE_SLASHES', rejectEncodedSlashes: true }).rejectEncodedSlashes, true);
  assert.equal(resolveCompatibility('secure').pathNormalization, 'MERGE_SLASHES');
  assert.equal(resolveCompatibility('istio-exact').pathNormalization, 'BASE');
});

test('request.header elements: any = whole value or an element; all = every element; absent = joined value', () => {
  const m = (elements?: 'any' | 'all'): Matcher => ({ type: 'request.header', name: 'x-env', match: { kind: 'exact', value: 'prod' }, ...(elements ? { elements } : {}) });
  const joined = compileMatcher(m(), env);
  const any = compileMatcher(m('any'), env);
  const all = compileMatcher(m('all'), env);
  const repeated = ctx('api', { 'x-env': ['dev', 'prod'] });
  const listed = ctx('api', { 'x-env': 'dev,  prod ' });
  const single = ctx('api', { 'x-env': 'prod' });
  const both = ctx('api', { 'x-env': ['prod', 'prod'] });
  assert.deepEqual([joined(repeated), joined(listed), joined(single)], [false, false, true]);
  assert.deepEqual([any(repeated), any(listed), any(single), any(ctx('api'))], [true, true, true, false]);
  assert.deepEqual([all(repeated), all(listed), all(single), all(both), all(ctx('api'))], [false, false, true, true, false]);
});

test('request.host anyPort matches the host on any port; without it the whole authority', () => {
  const exact = compileMatcher({ type: 'request.host', match: { kind: 'exact', value: 'admin.api' } }, env);
  const anyPort = compileMatcher({ type: 'request.host', match: { kind: 'exact', value: 'admin.api' }, anyPort: true }, env);
  const hosts = ['admin.api', 'admin.api:443', 'Admin.Api.:8443', 'ADMIN.API.', 'admin.apix:443', 'www.admin.api'];
  assert.deepEqual(hosts.map((h) => exact(ctx(h))), [true, false, false, true, false, false]);
  assert.deepEqual(hosts.map((h) => anyPort(ctx(h))), [true, true, true, true, false, false]);
});
