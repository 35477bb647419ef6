import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { InFlightList } from './in-flight-list.js';

describe('InFlightList', () => {
  it('holds what was added and not removed, newest first, and counts it', () => {
    const list = new InFlightList<string>();
    const a = list.add('a');
    const b = list.add('b');
    const c = list.add('c');
    assert.deepEqual(list.values(), ['c', 'b', 'a']);
    list.remove(b);
    assert.deepEqual(list.values(), ['c', 'a']);
    list.remove(c);
    assert.deepEqual(list.values(), ['a']);
    list.remove(a);
    assert.deepEqual(list.values(), []);
    assert.equal(list.size, 0);
    list.add('d');
    assert.deepEqual([list.values(), list.size], [['d'], 1]);
  });

  it('empties a removed link, so a dead link keeps nothing reachable', () => {
    const list = new InFlightList<{ id: number }>();
    const links = [1, 2, 3].map((id) => list.add({ id }));
    const middle = links[1]!;
    list.remove(middle);
    assert.deepEqual([middle.value, middle.prev, middle.next], [null, null, null]);
    // Removing twice changes nothing.
    list.remove(middle);
    assert.deepEqual([list.size, list.values().map((v) => v.id)], [2, [3, 1]]);
  });

  it('lets a caller remove members while going through values()', () => {
    const list = new InFlightList<number>();
    const links = new Map<number, ReturnType<typeof list.add>>();
    for (let i = 0; i < 5; i++) links.set(i, list.add(i));
    for (const v of list.values()) list.remove(links.get(v)!);
    assert.deepEqual([list.size, list.values()], [0, []]);
  });
});
