import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { candidateKeys, parseKeySet, pinAlgorithms } from './keys.js';

const RSA = { kty: 'RSA', n: 'AQAB', e: 'AQAB' };

describe('pinAlgorithms', () => {
  it('derives algorithms from kty/crv when the JWK has no alg', () => {
    assert.deepEqual(pinAlgorithms(RSA), ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512']);
    assert.deepEqual(pinAlgorithms({ kty: 'EC', crv: 'P-256' }), ['ES256']);
    assert.deepEqual(pinAlgorithms({ kty: 'EC', crv: 'P-384' }), ['ES384']);
    assert.deepEqual(pinAlgorithms({ kty: 'EC', crv: 'P-521' }), ['ES512']);
    assert.deepEqual(pinAlgorithms({ kty: 'OKP', crv: 'Ed25519' }), ['EdDSA', 'Ed25519']);
  });

  it('pins to the declared alg when it agrees with kty', () => {
    assert.deepEqual(pinAlgorithms({ ...RSA, alg: 'RS384' }), ['RS384']);
    assert.deepEqual(pinAlgorithms({ kty: 'EC', crv: 'P-256', alg: 'ES256' }), ['ES256']);
  });

  it('refuses keys that could be confused or are not signature keys', () => {
    assert.match(String(pinAlgorithms({ kty: 'oct', k: 'c2VjcmV0' })), /unsupported kty oct/);
    assert.match(String(pinAlgorithms({ ...RSA, alg: 'HS256' })), /does not match/);
    assert.match(String(pinAlgorithms({ kty: 'EC', crv: 'P-256', alg: 'ES384' })), /does not match/);
    assert.match(String(pinAlgorithms({ ...RSA, use: 'enc' })), /not "sig"/);
    assert.match(String(pinAlgorithms({ ...RSA, d: 'x' })), /private/);
    assert.match(String(pinAlgorithms({ kty: 'EC', crv: 'secp256k1' })), /unsupported EC curve/);
  });
});

describe('parseKeySet / candidateKeys', () => {
  it('rejects documents without a usable key', () => {
    assert.throws(() => parseKeySet('nope'), /not valid JSON/);
    assert.throws(() => parseKeySet('{}'), /no "keys" array/);
    assert.throws(() => parseKeySet('{"keys":[{"kty":"oct","k":"AA"}]}'), /no usable signature key/);
  });

  it('selects by kid and alg; keys without kid stay candidates', () => {
    const set = parseKeySet(JSON.stringify({ keys: [{ ...RSA, kid: 'a', alg: 'RS256' }, { ...RSA, alg: 'RS256' }, { kty: 'EC', crv: 'P-256', kid: 'a' }] }));
    assert.equal(candidateKeys(set, 'a', 'RS256').length, 2);
    assert.equal(candidateKeys(set, 'b', 'RS256').length, 1);
    assert.equal(candidateKeys(set, undefined, 'ES256').length, 1);
    assert.equal(candidateKeys(set, 'a', 'PS256').length, 0);
  });
});
