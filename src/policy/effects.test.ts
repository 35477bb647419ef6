// Tests header edits as the data plane's remove / set / add lists: Cilium's sequence of ADD / REPLACE / DELETE
// actions must leave each header as applying them one after another would.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { headerEditEffects, mergeEffects } from './effects.js';
import type { DecisionEffects } from './decision.js';
import type { HeaderEdit } from './ir.js';

/** The data plane's order (stages.ts buildUpstreamRequest): removals, then sets, then additions. */
function apply(headers: Record<string, string[]>, e: DecisionEffects): Record<string, string[]> {
  const out: Record<string, string[]> = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [...v]]));
  for (const name of e.removeHeaders) delete out[name];
  for (const { name, value } of e.setHeaders) out[name] = [value];
  for (const { name, value } of e.addHeaders) out[name] = [...(out[name] ?? []), value];
  return out;
}

/** Cilium's sequence: each action on the header map as it stands (cilium/proxy network_policy.cc). */
function sequential(headers: Record<string, string[]>, edits: readonly HeaderEdit[]): Record<string, string[]> {
  const out: Record<string, string[]> = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [...v]]));
  for (const e of edits) {
    if (e.op === 'add') out[e.name] = [...(out[e.name] ?? []), e.value];
    else if (e.op === 'set') out[e.name] = [e.value];
    else delete out[e.name];
  }
  return out;
}

test('edits in sequence: a replace after an add wins, an add after a delete stands alone', () => {
  const e = headerEditEffects([{ op: 'add', name: 'x', value: '1' }, { op: 'set', name: 'x', value: '2' }, { op: 'remove', name: 'y' }, { op: 'add', name: 'y', value: '3' }, { op: 'add', name: 'z', value: '4' }]);
  assert.deepEqual(e.removeHeaders, ['x', 'y']);
  assert.deepEqual(e.addHeaders, [{ name: 'x', value: '2' }, { name: 'y', value: '3' }, { name: 'z', value: '4' }]);
  assert.deepEqual(apply({ x: ['0'], z: ['5'] }, e), { x: ['2'], y: ['3'], z: ['5', '4'] });
});

test('property: the remove / set / add lists leave the headers as the sequence does', () => {
  const name = fc.constantFrom('a', 'b');
  const editArb: fc.Arbitrary<HeaderEdit> = fc.oneof(
    fc.record({ op: fc.constantFrom<'add' | 'set'>('add', 'set'), name, value: fc.constantFrom('1', '2') }),
    name.map((n): HeaderEdit => ({ op: 'remove', name: n })),
  );
  const headersArb = fc.dictionary(name, fc.array(fc.constantFrom('0', '9'), { minLength: 1, maxLength: 2 }));
  fc.assert(fc.property(headersArb, fc.array(editArb, { maxLength: 6 }), (headers, edits) => {
    assert.deepEqual(apply(headers, headerEditEffects(edits)), sequential(headers, edits));
  }), { numRuns: 2000 });
});

test('mergeEffects keeps both tiers\' edits, the first redirect', () => {
  const a = headerEditEffects([{ op: 'add', name: 'x', value: '1' }]);
  const b: DecisionEffects = { ...headerEditEffects([{ op: 'remove', name: 'y' }]), redirect: { status: 302, location: '/' } };
  assert.deepEqual(mergeEffects(a, b), { setHeaders: [], addHeaders: [{ name: 'x', value: '1' }], removeHeaders: ['y'], redirect: { status: 302, location: '/' }, rateLimit: null });
});
