// Tests peer-name matching: a one-placeholder template read from the parsed ID must answer as rendering the name does.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseSpiffeId, toPeerIdentity } from '../../identity/spiffe.js';
import { compilePeerName, peerName } from './identity.js';

test('property: {ns}, {sa} and {td} templates answer as the rendered name, for every ID shape', () => {
  const seg = fc.constantFrom('ns', 'sa', 'a', 'b', 'web');
  const idArb = fc.tuple(fc.constantFrom('td', 'other.td'), fc.array(seg, { minLength: 1, maxLength: 5 })).map(([td, segs]) => `spiffe://${td}/${segs.join('/')}`);
  fc.assert(fc.property(idArb, fc.constantFrom('{ns}', '{sa}', '{td}', '{sa}.{ns}'), fc.subarray(['a', 'b', 'web', 'td', 'other.td', 'ns', 'sa']), (id, template, exact) => {
    const parsed = parseSpiffeId(id);
    if (!parsed.ok) return;
    const peer = toPeerIdentity(parsed.id);
    const name = peerName(peer, template);
    assert.equal(compilePeerName(template, exact, [])(peer), name !== null && exact.includes(name));
    assert.equal(compilePeerName(template, [], [''])(peer), name !== null);
  }), { numRuns: 3000 });
});
