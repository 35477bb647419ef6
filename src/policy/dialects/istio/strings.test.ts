import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeRegex, hasMidStar, isValidIpOrCidr, parseGoBool, parseGoDuration, parsePort, pathForm, pathTemplateError, stringForm } from './strings.js';

test('stringForm: Istio * forms', () => {
  assert.deepEqual(stringForm('*'), { kind: 'present' });
  assert.deepEqual(stringForm('abc*'), { kind: 'prefix', value: 'abc' });
  assert.deepEqual(stringForm('*abc'), { kind: 'suffix', value: 'abc' });
  assert.deepEqual(stringForm('a*c'), { kind: 'exact', value: 'a*c' });
  assert.deepEqual(stringForm('**'), { kind: 'suffix', value: '*' });
  assert.deepEqual(stringForm('X', true), { kind: 'exact', value: 'X', ignoreCase: true });
  assert.equal(hasMidStar('/a/*/b'), true);
  assert.equal(hasMidStar('*a*'), false);
});

test('escapeRegex escapes RE2 metacharacters', () => {
  assert.equal(escapeRegex('a.b+c(d)[e]{f}|g^h$i?j*k\\l'), 'a\\.b\\+c\\(d\\)\\[e\\]\\{f\\}\\|g\\^h\\$i\\?j\\*k\\\\l');
});

test('ports', () => {
  assert.equal(parsePort('0'), 0);
  assert.equal(parsePort('65535'), 65535);
  for (const bad of ['65536', '-1', '+1', '1.0', ' 80', '', 'http', '123456']) assert.equal(parsePort(bad), undefined, bad);
});

test('IPs and CIDRs as Go netip accepts them', () => {
  for (const ok of ['1.2.3.4', '0.0.0.0/0', '10.0.0.0/8', '10.1.2.3/32', '::', '::1', '2001:db8::/32', 'fe80::1:2:3:4', '1:2:3:4:5:6:7:8', '::ffff:1.2.3.4', '::/0', '1:2:3:4:5:6:1.2.3.4']) {
    assert.equal(isValidIpOrCidr(ok), true, ok);
  }
  for (const bad of ['1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4/33', '1.2.3.4/08', '::1/129', '1::2::3', '1:2:3:4:5:6:7:8:9', 'fe80::1%eth0', 'abc', '', '1.2.3.4/', '/8', '12345::']) {
    assert.equal(isValidIpOrCidr(bad), false, bad);
  }
});

test('path templates: validation and lowering', () => {
  assert.equal(pathTemplateError('/a/{*}/b/{**}'), undefined);
  assert.equal(pathTemplateError('/store/{**}/cart'), undefined);
  assert.equal(pathTemplateError('/plain/path'), undefined);
  assert.equal(pathTemplateError('/api/*/admin'), undefined, 'a literal * outside templates is allowed');
  assert.match(pathTemplateError('/a/{**}/{*}') ?? '', /last operator/);
  assert.ok(pathTemplateError('/a/b{*}'));
  assert.ok(pathTemplateError('/a/{id}'));
  assert.ok(pathTemplateError('/a/*/{*}'));
  assert.ok(pathTemplateError('/a//{*}'));
  assert.deepEqual(pathForm('/allow/admin/{**}'), { kind: 'template', segments: [{ kind: 'literal', value: 'allow' }, { kind: 'literal', value: 'admin' }, { kind: 'many' }] });
  assert.deepEqual(pathForm('/x*'), { kind: 'prefix', value: '/x' });
});

test('Go ParseBool and durations', () => {
  assert.equal(parseGoBool('True'), true);
  assert.equal(parseGoBool('0'), false);
  assert.equal(parseGoBool('yes'), undefined);
  assert.equal(parseGoBool('tRUE'), undefined);
  assert.equal(parseGoDuration('5s'), 5000);
  assert.equal(parseGoDuration('1m30s'), 90000);
  assert.equal(parseGoDuration('1.5s'), 1500);
  assert.equal(parseGoDuration('250ms'), 250);
  assert.equal(parseGoDuration('1h'), 3_600_000);
  assert.equal(parseGoDuration('0'), 0);
  assert.equal(parseGoDuration('-5s'), -5000);
  for (const bad of ['5', '5 seconds', 's', '', '5x', '1m 30s']) assert.equal(parseGoDuration(bad), undefined, bad);
});
