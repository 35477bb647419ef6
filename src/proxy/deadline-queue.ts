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

/**
 * Deadlines in the order they pass, with one timer. A Node timer per request costs a Timeout object, a timer-list
 * insert and a clock read, and clearing it another list operation; here a start appends to the list and a cancel
 * unlinks, and the timer is only re-armed when it fires (for the deadline then first in line). A deadline earlier
 * than the last one queued (a shorter limit, such as a gRPC deadline) gets a timer of its own instead.
 */
export class DeadlineQueue {
  private head: Deadline | null = null;
  private tail: Deadline | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** While the timer's callback runs: a deadline started from a reached one does not arm the timer itself. */
  private firing = false;

  /** Starts (or restarts) `d` to pass `ms` from now. */
  start(d: Deadline, ms: number): void {
    this.cancel(d);
    const dueAt = performance.now() + ms;
    d.dueAt = dueAt;
    const tail = this.tail;
    if (tail !== null && dueAt < tail.dueAt) {
      d.ownTimer = setTimeout(ownDeadlineReached, ms, d);
      return;
    }
    d.queued = true;
    d.prevDue = tail;
    if (tail !== null) tail.nextDue = d;
    else this.head = d;
    this.tail = d;
    if (this.timer === null && !this.firing) this.arm(ms);
  }

  cancel(d: Deadline): void {
    if (d.ownTimer !== null) { clearTimeout(d.ownTimer); d.ownTimer = null; }
    if (!d.queued) return;
    this.unlink(d);
    // The timer stays armed: when it fires early for what is then first in line, it is re-armed.
  }

  /** Stops the timer and forgets every deadline (the forwarder is closing). */
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

  private arm(ms: number): void {
    this.timer = setTimeout(this.fire, Math.max(1, Math.ceil(ms)));
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
      if (this.head !== null) this.arm(this.head.dueAt - now);
    }
  };
}
