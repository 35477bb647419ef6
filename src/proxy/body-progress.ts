// Owns the request body progress (idle) timeout: a caller that stops sending its body for limits.bodyTimeout
// is cut (slow body / slow POST; Envoy's stream_idle_timeout for the request direction, security.md PC-20).

import type { Readable } from 'node:stream';

/**
 * A request body's idle clock: when it last delivered a byte. Time spent paused by backpressure (the workload
 * not reading) is not the caller's idleness and does not count. The HTTP/2 relay's body forward is one
 * (forward-h2.ts, checked from the relay's own deadline timer); watchBodyProgress keeps one with a timer.
 */
export class BodyIdleClock {
  private lastProgress = performance.now();

  /** The body delivered a byte, or the workload let it go on. */
  progressed(): void {
    this.lastProgress = performance.now();
  }

  /** Milliseconds left at `now` before `body` has been idle for `timeoutMs`: 0 or less, it has. */
  idleLeftMs(body: Readable, now: number, timeoutMs: number): number {
    if (body.isPaused()) this.lastProgress = now;
    return timeoutMs - (now - this.lastProgress);
  }
}

/**
 * Calls `onStall` once when `body` delivers no byte for `timeoutMs` while it is being read (BodyIdleClock).
 * The clock is one timestamp per chunk; the timer is re-armed only when it fires, never per chunk.
 * `onChunk` runs on every chunk too (one listener serves both). Returns `stop`, to call when the body ended
 * or the exchange settled (also called on 'end'/'close'). `timeoutMs` 0: no limit, only `onChunk`.
 */
export function watchBodyProgress(body: Readable, timeoutMs: number, onStall: () => void, onChunk?: () => void): () => void {
  const clock = new BodyIdleClock();
  let timer: NodeJS.Timeout | null = null;
  const progress = (): void => { clock.progressed(); onChunk?.(); };
  const stop = (): void => {
    if (timer) clearTimeout(timer);
    timer = null;
    body.off('data', progress);
    body.off('resume', progress);
    body.off('end', stop);
    body.off('close', stop);
  };
  const check = (): void => {
    timer = null;
    const left = clock.idleLeftMs(body, performance.now(), timeoutMs);
    if (left > 0) { timer = setTimeout(check, Math.max(1, Math.ceil(left))); return; }
    stop();
    onStall();
  };
  body.on('data', progress);
  body.on('resume', progress);
  body.once('end', stop);
  body.once('close', stop);
  if (timeoutMs > 0) timer = setTimeout(check, timeoutMs);
  return stop;
}
