import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContains, cidrContainsCidr, parseCidr, parseCidrStrict, parseIp } from './cidr.js';

test('parses IPv4, IPv6 and bare addresses; rejects junk', () => {
  assert.deepEqual(parseCidrStrict('10.1.2.3'), { words: [0, 0, 0xffff, 0x0a010203], bits: 128, family: 4 });
  assert.deepEqual(parseCidrStrict('10.1.2.3/8'), { words: [0, 0, 0xffff, 0x0a000000], bits: 104, family: 4 });
  assert.equal(parseCidrStrict('::1')?.bits, 128);
  assert.deepEqual(parseCidrStrict('fd00::/8')?.words, [0xfd000000, 0, 0, 0]);
  assert.deepEqual(parseCidrStrict('::ffff:10.0.0.1'), { words: [0, 0, 0xffff, 0x0a000001], bits: 128, family: 6 });
  for (const bad of ['10.0.0.0/33', '10.0.0', '256.0.0.1', '1::2::3', 'fd00::/129', '010.0.0.1', 'x']) assert.equal(parseCidrStrict(bad), null, bad);
});

test('containment is by family and prefix', () => {
  const c = (s: string) => parseCidrStrict(s)!;
  assert.equal(cidrContainsCidr(c('10.0.0.0/8'), c('10.1.0.0/16')), true);
  assert.equal(cidrContainsCidr(c('10.0.0.0/16'), c('10.1.0.0/24')), false);
  assert.equal(cidrContainsCidr(c('10.0.0.0/8'), c('10.0.0.0/8')), true);
  assert.equal(cidrContainsCidr(c('10.0.0.0/24'), c('10.0.0.0/16')), false);
  assert.equal(cidrContainsCidr(c('::/0'), c('10.0.0.0/8')), false);
});

test('CIDR-in-CIDR keeps families apart while address matching maps IPv4 into IPv6', () => {
  const mapped = parseCidr('::ffff:0:0/96')!;
  assert.equal(cidrContainsCidr(mapped, parseCidr('10.0.0.0/8')!), false);
  assert.equal(cidrContains(mapped, parseIp('10.1.2.3')!), true);
  assert.equal(cidrContainsCidr(parseCidr('fd00::/8')!, parseCidr('fd00:1::/32')!), true);
  assert.equal(cidrContainsCidr(parseCidr('fd00::/8')!, parseCidr('fe00::/16')!), false);
  assert.equal(cidrContainsCidr(parseCidr('0.0.0.0/0')!, parseCidr('255.255.255.255')!), true);
});

test('the strict form refuses what only the lenient parser accepts', () => {
  for (const text of ['fe80::1%eth0', '[::1]', '[::1]/128', '10.0.0.0/08', 'fd00::/008', '1.2.3.4::']) {
    assert.notEqual(parseCidr(text), null, `lenient ${text}`);
    assert.equal(parseCidrStrict(text), null, `strict ${text}`);
  }
  for (const text of ['10.0.0.0/8', '::ffff:10.0.0.0/104', '::', '1:2:3:4:5:6:1.2.3.4', 'fd00::/0']) {
    assert.deepEqual(parseCidrStrict(text), parseCidr(text), text);
  }
});
