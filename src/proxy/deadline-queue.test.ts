import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Deadline, DeadlineQueue } from './deadline-queue.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** A Node timer may fire up to a millisecond early by performance.now(): its clock is the event loop's, read once per turn. */
const notBefore = (reachedAfter: number, ms: number) => reachedAfter >= ms - 1;

/** A deadline that notes when it passed, relative to `t0`, and may start another one when it does. */
class Noted extends Deadline {
  reachedAfter = -1;
  onReached: (() => void) | null = null;
  constructor(readonly name: string, private readonly t0: number, private readonly log: string[]) { super(); }
  deadlineReached(): void {
    this.reachedAfter = performance.now() - this.t0;
    this.log.push(this.name);
    this.onReached?.();
  }
}

/** Waits (bounded) until `log` has `n` entries. */
async function until(log: string[], n: number): Promise<void> {
  for (let i = 0; i < 200 && log.length < n; i++) await sleep(5);
}

describe('DeadlineQueue', () => {
  it('passes each deadline once, in order, never before its time; a cancelled one never', async () => {
    const q = new DeadlineQueue();
    const log: string[] = [];
    const t0 = performance.now();
    const a = new Noted('a', t0, log);
    const b = new Noted('b', t0, log);
    const c = new Noted('c', t0, log);
    q.start(a, 30);
    await sleep(5);
    q.start(b, 30);
    q.start(c, 40);
    q.cancel(b);
    assert.deepEqual([a.running, b.running, c.running], [true, false, true]);
    await until(log, 2);
    await sleep(30);
    assert.deepEqual(log, ['a', 'c']);
    assert.ok(notBefore(a.reachedAfter, 30) && notBefore(c.reachedAfter, 45), `${a.reachedAfter} ${c.reachedAfter}`);
    assert.deepEqual([a.running, c.running], [false, false]);
  });

  it('restarting moves a deadline later; an earlier one than the last queued still passes first', async () => {
    const q = new DeadlineQueue();
    const log: string[] = [];
    const t0 = performance.now();
    const slow = new Noted('slow', t0, log);
    const restarted = new Noted('restarted', t0, log);
    const short = new Noted('short', t0, log);
    q.start(restarted, 20);
    q.start(slow, 60);
    // A shorter limit (a gRPC deadline) after a longer one.
    q.start(short, 10);
    await sleep(12);
    q.start(restarted, 20);
    await until(log, 3);
    assert.deepEqual(log, ['short', 'restarted', 'slow']);
    assert.ok(notBefore(short.reachedAfter, 10) && notBefore(restarted.reachedAfter, 32) && notBefore(slow.reachedAfter, 60), `${short.reachedAfter} ${restarted.reachedAfter} ${slow.reachedAfter}`);
  });

  it('a much shorter limit behind many longer ones passes first, at its own time', async () => {
    const q = new DeadlineQueue();
    const log: string[] = [];
    const t0 = performance.now();
    const long = Array.from({ length: 12 }, (_, i) => new Noted(`long${i}`, t0, log));
    for (const d of long) q.start(d, 60);
    const short = new Noted('short', t0, log);
    q.start(short, 10);
    await until(log, 13);
    assert.deepEqual(log, ['short', ...long.map((d) => d.name)]);
    assert.ok(notBefore(short.reachedAfter, 10), `${short.reachedAfter}`);
    assert.ok(long.every((d) => notBefore(d.reachedAfter, 60)));
  });

  it('a deadline started while another passes is kept on time, and clear() forgets them all', async () => {
    const q = new DeadlineQueue();
    const log: string[] = [];
    const t0 = performance.now();
    const first = new Noted('first', t0, log);
    const waiting = new Noted('waiting', t0, log);
    const started = new Noted('started', t0, log);
    q.start(first, 10);
    q.start(waiting, 40);
    first.onReached = () => q.start(started, 200);
    await until(log, 2);
    // `waiting` passes at its own time, not when the timer armed for the 200 ms deadline `first` started would fire.
    assert.deepEqual(log, ['first', 'waiting']);
    assert.ok(waiting.reachedAfter < first.reachedAfter + 199, `${waiting.reachedAfter} ${first.reachedAfter}`);
    q.clear();
    await sleep(250);
    assert.deepEqual(log, ['first', 'waiting']);
    assert.equal(started.running, false);
  });
});
