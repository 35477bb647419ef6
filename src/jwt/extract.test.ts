import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { extractTokens, parseCookies, parseQuery, planLocations, removeQueryParams } from './extract.js';
import { provider } from './testing.js';

describe('extractTokens', () => {
  it('applies Istio defaults only when no location is configured', () => {
    const plans = planLocations([provider()]);
    assert.deepEqual(plans.map((p) => p.location), [
      { kind: 'header', name: 'authorization', prefix: 'Bearer ' },
      { kind: 'param', name: 'access_token' },
    ]);
    const custom = planLocations([provider({ fromCookies: ['c'] })]);
    assert.deepEqual(custom.map((p) => p.location), [{ kind: 'cookie', name: 'c' }]);
  });

  it('takes the rest of the value from the first base64url character after the prefix (Envoy extractJWT)', () => {
    const plans = planLocations([provider({ fromHeaders: [{ name: 'Authorization', prefix: 'Bearer ' }] })]);
    const tokens = extractTokens(plans, { target: '/', headers: { authorization: 'x Bearer  "aa.bb.cc, other' } });
    assert.deepEqual(tokens.map((t) => t.token), ['aa.bb.cc, other']);
    // No token character after the prefix: the whole value is the token (and fails as malformed).
    assert.deepEqual(extractTokens(plans, { target: '/', headers: { authorization: 'Bearer  ' } }).map((t) => t.token), ['Bearer  ']);
    assert.deepEqual(extractTokens(plans, { target: '/', headers: { authorization: 'bearer aa.bb.cc' } }), []);
  });

  it('keeps every value of a repeated header or parameter, deduplicating identical tokens', () => {
    const plans = planLocations([provider()]);
    const tokens = extractTokens(plans, { target: '/p?access_token=t1&access_token=t2&access_token=t1', headers: { authorization: ['Bearer t1', 'Bearer t3'] } });
    assert.deepEqual(tokens.map((t) => t.token).sort(), ['t1', 't2', 't3']);
    const t1 = tokens.find((t) => t.token === 't1');
    assert.equal(t1?.locations.length, 2);
  });

  it('records which providers may verify a token from each location', () => {
    const plans = planLocations([provider({ fromHeaders: [{ name: 'a', prefix: '' }] }), provider({ fromHeaders: [{ name: 'A', prefix: '' }], fromParams: ['p'] })]);
    const [fromHeader] = extractTokens(plans, { target: '/', headers: { a: 'tok' } });
    assert.deepEqual(fromHeader?.providers, [0, 1]);
    const [fromParam] = extractTokens(plans, { target: '/?p=tok2', headers: {} });
    assert.deepEqual(fromParam?.providers, [1]);
  });
});

describe('parseQuery / parseCookies', () => {
  it('decodes the query of the raw target and ignores the fragment', () => {
    const q = parseQuery('/a?x=1&access%5Ftoken=a%2Eb&flag#access_token=no');
    assert.deepEqual(q.get('access_token'), ['a.b']);
    assert.deepEqual(q.get('flag'), ['']);
    assert.equal(parseQuery('/no-query').size, 0);
    assert.deepEqual(parseQuery('/?t=%E0%A4%A').get('t'), ['%E0%A4%A']);
  });

  it('reads cookies across several Cookie headers and strips quotes', () => {
    const c = parseCookies({ cookie: ['a=1; tok="x.y.z"', 'tok=second'] });
    assert.deepEqual(c.get('tok'), ['x.y.z', 'second']);
    assert.deepEqual(c.get('a'), ['1']);
  });
});

describe('removeQueryParams', () => {
  it('drops every occurrence of the token parameter and keeps the rest as sent', () => {
    assert.equal(removeQueryParams('/a%2Fb?x=1&access_token=t&y=%20&access%5Ftoken=u#f', ['access_token']), '/a%2Fb?x=1&y=%20#f');
    assert.equal(removeQueryParams('/a?access_token=t', ['access_token']), '/a');
    assert.equal(removeQueryParams('/a', ['access_token']), '/a');
  });
});
