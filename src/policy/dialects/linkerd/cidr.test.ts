import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContainsCidr, parseCidr } from './cidr.js';

test('parses IPv4, IPv6 and bare addresses; rejects junk', () => {
  assert.deepEqual(parseCidr('10.1.2.3'), { family: 4, base: 0x0a010203n, prefix: 32 });
  assert.deepEqual(parseCidr('10.1.2.3/8'), { family: 4, base: 0x0a000000n, prefix: 8 });
  assert.equal(parseCidr('::1')?.prefix, 128);
  assert.equal(parseCidr('fd00::/8')?.base, 0xfdn << 120n);
  assert.equal(parseCidr('::ffff:10.0.0.1')?.base, (0xffffn << 32n) | 0x0a000001n);
  for (const bad of ['10.0.0.0/33', '10.0.0', '256.0.0.1', '1::2::3', 'fd00::/129', '010.0.0.1', 'x']) assert.equal(parseCidr(bad), undefined, bad);
});

test('containment is by family and prefix', () => {
  const c = (s: string) => parseCidr(s)!;
  assert.equal(cidrContainsCidr(c('10.0.0.0/8'), c('10.1.0.0/16')), true);
  assert.equal(cidrContainsCidr(c('10.0.0.0/16'), c('10.1.0.0/24')), false);
  assert.equal(cidrContainsCidr(c('10.0.0.0/8'), c('10.0.0.0/8')), true);
  assert.equal(cidrContainsCidr(c('10.0.0.0/24'), c('10.0.0.0/16')), false);
  assert.equal(cidrContainsCidr(c('::/0'), c('10.0.0.0/8')), false);
});
