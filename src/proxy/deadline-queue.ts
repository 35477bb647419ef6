// Owns request deadlines that share one timer: a forwarder's requests mostly have the same limit, so their
// deadlines arrive in order, and a queue with one timer for its head does what a Node timer per request did.

/**
 * One request's deadline, kept in the queue's list itself (no object per deadline). A forwarder's per-request
 * handler extends it and says what happens when the deadline passes.
 */
export abstract class Deadline {
  /** performance.now() at which the deadline passes. */
  dueAt = 0;
  prevDue: Deadline | null = null;
  nextDue: Deadline | null = null;
  /** Set for a deadline that came earlier than the queue's last one: it has a timer of its own. */
  ownTimer: NodeJS.Timeout | null = null;
  queued = false;

  /** The deadline passed; it is no longer running. */
  abstract deadlineReached(): void;

  /** Whether the deadline is running (started, and neither cancelled nor reached). */
  get running(): boolean { return this.queued || this.ownTimer !== null; }
}

function ownDeadlineReached(d: Deadline): void {
  d.ownTimer = null;
  d.deadlineReached();
}

/** How far back from the last deadline a new one may be slotted in (jitter between requests of one limit). */
const SLOT_BACK = 8;

/**
 * Deadlines in the order they pass, with one timer. A Node timer per request costs a Timeout object, a timer-list
 * insert and a clock read, and clearing it another list operation; here a start links the deadline into the list
 * and a cancel unlinks it, and the timer is only re-armed when it fires (for the deadline then first in line).
 * A deadline goes in near the end of the list: a gRPC deadline computed by the caller arrives a transit time later
 * than the one before it and may pass a little earlier, so it is slotted in up to SLOT_BACK places back. One
 * earlier than that (a much shorter limit) gets a timer of its own.
 */
export class DeadlineQueue {
  private head: Deadline | null = null;
  private tail: Deadline | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** When the armed timer is due (performance.now()). */
  private timerDueAt = 0;
  /** While the timer's callback runs: a deadline started from a reached one does not arm the timer itself. */
  private firing = false;

  /** Starts (or restarts) `d` to pass `ms` from now. */
  start(d: Deadline, ms: number): void {
    this.cancel(d);
    const now = performance.now();
    const dueAt = now + ms;
    d.dueAt = dueAt;
    let before = this.tail;
    for (let back = 0; before !== null && before.dueAt > dueAt; back++) {
      if (back === SLOT_BACK) {
        d.ownTimer = setTimeout(ownDeadlineReached, ms, d);
        return;
      }
      before = before.prevDue;
    }
    // Linked in after `before` (at the head when null).
    d.queued = true;
    d.prevDue = before;
    d.nextDue = before === null ? this.head : before.nextDue;
    if (d.prevDue !== null) d.prevDue.nextDue = d;
    else this.head = d;
    if (d.nextDue !== null) d.nextDue.prevDue = d;
    else this.tail = d;
    if (this.firing) return;
    if (this.timer === null) this.arm(dueAt, now);
    else if (dueAt < this.timerDueAt) { clearTimeout(this.timer); this.arm(dueAt, now); }
  }

  cancel(d: Deadline): void {
    if (d.ownTimer !== null) { clearTimeout(d.ownTimer); d.ownTimer = null; }
    if (!d.queued) return;
    this.unlink(d);
    // The timer stays armed: when it fires early for what is then first in line, it is re-armed.
  }

  /** Stops the timer and forgets the queued deadlines (the forwarder is closing); one with a timer of its own keeps it. */
  clear(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    while (this.head !== null) this.unlink(this.head);
  }

  private unlink(d: Deadline): void {
    if (d.prevDue !== null) d.prevDue.nextDue = d.nextDue;
    else this.head = d.nextDue;
    if (d.nextDue !== null) d.nextDue.prevDue = d.prevDue;
    else this.tail = d.prevDue;
    d.prevDue = null;
    d.nextDue = null;
    d.queued = false;
  }

  private arm(dueAt: number, now: number): void {
    this.timerDueAt = dueAt;
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(dueAt - now)));
    // A deadline never keeps the process alive; the request it guards has a socket that does.
    this.timer.unref();
  }

  private readonly fire = (): void => {
    this.timer = null;
    const now = performance.now();
    this.firing = true;
    try {
      while (this.head !== null && this.head.dueAt <= now) {
        const d = this.head;
        this.unlink(d);
        d.deadlineReached();
      }
    } finally {
      this.firing = false;
      if (this.head !== null) this.arm(this.head.dueAt, now);
    }
  };
}
