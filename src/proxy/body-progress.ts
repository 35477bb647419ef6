// Owns the request body progress (idle) timeout: a caller that stops sending its body for limits.bodyTimeout
// is cut (slow body / slow POST; Envoy's stream_idle_timeout for the request direction, security.md PC-20).

import type { Readable } from 'node:stream';

/**
 * Calls `onStall` once when `body` delivers no byte for `timeoutMs` while it is being read. Time spent
 * paused by backpressure (the workload not reading) is not the caller's idleness and does not count.
 * The clock is one timestamp per chunk; the timer is re-armed only when it fires, never per chunk.
 * `onChunk` runs on every chunk too (one listener serves both). Returns `stop`, to call when the body ended
 * or the exchange settled (also called on 'end'/'close'). `timeoutMs` 0: no limit, only `onChunk`.
 */
export function watchBodyProgress(body: Readable, timeoutMs: number, onStall: () => void, onChunk?: () => void): () => void {
  let lastProgress = performance.now();
  let timer: NodeJS.Timeout | null = null;
  const progress = (): void => { lastProgress = performance.now(); onChunk?.(); };
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
    const now = performance.now();
    if (body.isPaused()) lastProgress = now;
    const idle = now - lastProgress;
    if (idle < timeoutMs) { timer = setTimeout(check, Math.max(1, Math.ceil(timeoutMs - idle))); return; }
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
