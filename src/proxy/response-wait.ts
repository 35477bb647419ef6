// Owns the limits before a relayed request's response, for both relays: the wait for the workload's response headers
// (restarted by each request body chunk forwarded, as undici's is), the caller's gRPC deadline (PROTOCOL-HTTP2), and the body's idle limit.

import { Deadline, type DeadlineQueue } from './deadline-queue.js';

/**
 * One deadline (in the forwarder's queue) serves every limit before the response. A body chunk only moves the times
 * they are due; the deadline, when reached, starts itself again for whichever comes first. A stalled body is checked
 * first (408), as a workload cannot be blamed for not answering a request whose body stalled; then the headers' wait
 * and the caller's deadline (504). Each relay says how its body is watched and how it answers either limit.
 */
export abstract class ResponseWait extends Deadline {
  /** When the response headers are due (performance.now()); Infinity until the request is written. */
  private headersDueAt = Number.POSITIVE_INFINITY;
  /** When the caller's gRPC deadline passes (performance.now()), counted from the forward; Infinity: none. */
  private readonly deadlineAt: number;

  constructor(private readonly headersTimeoutMs: number, deadlineMs: number | undefined, protected readonly deadlines: DeadlineQueue) {
    super();
    this.deadlineAt = deadlineMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + deadlineMs;
  }

  /** The request was written: the wait for the response headers starts. */
  protected requestWritten(now: number): void {
    this.headersDueAt = now + this.headersTimeoutMs;
  }

  /** A request body chunk went upstream (or the body flows again): the wait, once started, starts again. */
  requestProgressed(now: number): void {
    if (this.headersDueAt !== Number.POSITIVE_INFINITY) this.headersDueAt = now + this.headersTimeoutMs;
  }

  /** Milliseconds before the caller's body has been idle for limits.bodyTimeout (0 or less: it has); Infinity when none is watched. */
  protected abstract bodyIdleLeftMs(now: number): number;
  /** The body's limit passed: the upstream request is aborted without a complete body, the caller gets 408. */
  protected abstract bodyStalled(): void;
  /** The headers' wait or the caller's deadline passed: the upstream request is cancelled, the caller gets 504. */
  protected abstract answerOverdue(): void;

  /** Acts on a limit that passed, or starts the deadline for the soonest one (none while none runs). */
  protected checkLimits(): void {
    const now = performance.now();
    const bodyLeft = this.bodyIdleLeftMs(now);
    if (bodyLeft <= 0) { this.bodyStalled(); return; }
    const answerLeft = Math.min(this.headersDueAt, this.deadlineAt) - now;
    if (answerLeft <= 0) { this.answerOverdue(); return; }
    const next = Math.min(answerLeft, bodyLeft);
    if (next !== Number.POSITIVE_INFINITY) this.deadlines.start(this, next);
  }
}
