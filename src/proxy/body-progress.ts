// Owns the request body progress (idle) timeout: a caller that stops sending its body for limits.bodyTimeout
// is cut (slow body / slow POST; Envoy's stream_idle_timeout for the request direction, security.md PC-20).

import type { Readable } from 'node:stream';

/**
 * A request body's idle clock: when it last delivered a byte. Time spent paused by backpressure (the workload
 * not reading) is not the caller's idleness and does not count. Both relays check it from their one deadline
 * before the response (forward-h1.ts, forward-h2.ts), never from a timer of its own.
 */
export class BodyIdleClock {
  private lastProgress = performance.now();

  /** The body delivered a byte, or the workload let it go on. */
  progressed(now = performance.now()): void {
    this.lastProgress = now;
  }

  /** Milliseconds left at `now` before `body` has been idle for `timeoutMs`: 0 or less, it has. */
  idleLeftMs(body: Readable, now: number, timeoutMs: number): number {
    if (body.isPaused()) this.lastProgress = now;
    return timeoutMs - (now - this.lastProgress);
  }
}
