// Owns the decision log: one NDJSON line per DecisionEventV1 through pino's async destination (SonicBoom).
// Bounded like OPA's decision logs (models.md §5): a slow destination drops new events and counts them; never blocks.

import pino from 'pino';
import type { Metrics } from './metrics.js';
import type { DecisionSink } from './types.js';

export interface DecisionLogOptions {
  /** `stdout`, `stderr`, `off`, or a file path (appended; parent directories are created). */
  destination: string;
  /** Events written but not yet accepted by the destination before new ones are dropped. */
  maxBufferedEvents: number;
  /** Byte ceiling on the same buffer (default maxBufferedEvents * 2 KiB). */
  maxBufferedBytes?: number;
  metrics?: Pick<Metrics, 'recordDecisionLogDropped'>;
  /** Told once per failure streak when the destination errors (never per event). */
  onError?: (err: Error) => void;
}

export interface DecisionLog extends DecisionSink {
  /** Events dropped since start (also in portcullis_decision_log_dropped_total). */
  readonly dropped: number;
  /** Events handed to the destination and not yet written. */
  readonly pending: number;
  /** Resolves once the destination is open; rejects if it cannot be opened (e.g. a bad path). */
  ready(timeoutMs?: number): Promise<void>;
  /** Resolves when everything buffered so far has been written (bounded by timeoutMs, default 5 s). */
  flush(timeoutMs?: number): Promise<void>;
  /** Flushes, then closes the destination (stdout/stderr stay open). */
  close(timeoutMs?: number): Promise<void>;
}

type Destination = ReturnType<typeof pino.destination>;

const BATCH_BYTES = 16 * 1024;
const FLUSH_EVERY_MS = 100;

export function createDecisionLog(options: DecisionLogOptions): DecisionLog {
  const maxEvents = Math.max(1, options.maxBufferedEvents);
  const maxBytes = options.maxBufferedBytes ?? maxEvents * 2048;
  let dropped = 0;
  const drop = () => { dropped++; options.metrics?.recordDecisionLogDropped(1); };

  if (options.destination === 'off') {
    return { publish() { /* logging disabled by configuration */ }, get dropped() { return 0; }, get pending() { return 0; }, ready: async () => undefined, flush: async () => undefined, close: async () => undefined };
  }

  const target = options.destination === 'stdout' ? 1 : options.destination === 'stderr' ? 2 : options.destination;
  // Batched writes: one fs.write (a thread-pool round trip) per ~16 KiB instead of one per event, which
  // measured at ~30% of the proxy's CPU per request; periodicFlush bounds how long a line waits (100 ms).
  const dest: Destination = pino.destination({
    dest: target, sync: false, mkdir: typeof target === 'string', maxLength: maxBytes * 2,
    minLength: BATCH_BYTES, maxWrite: 4 * BATCH_BYTES, periodicFlush: FLUSH_EVERY_MS,
  });

  // Byte lengths of events not yet written, as a queue: 'write' reports bytes, the bound is in events.
  const lengths: number[] = [];
  let head = 0;
  let headWritten = 0;
  let pendingBytes = 0;
  let failing = false;
  let closed = false;
  /** flush() waiters, resolved when the queue empties. */
  const drained: (() => void)[] = [];
  let opened = typeof target === 'number';
  let openError: Error | undefined;
  dest.once('ready', () => { opened = true; });

  dest.on('write', (n: number) => {
    failing = false;
    pendingBytes -= n;
    let left = n + headWritten;
    while (head < lengths.length && left >= (lengths[head] as number)) { left -= lengths[head] as number; head++; }
    headWritten = left;
    if (head > 1024 && head * 2 > lengths.length) { lengths.splice(0, head); head = 0; }
    if (head === lengths.length && drained.length > 0) for (const resolve of drained.splice(0)) resolve();
  });
  // SonicBoom's own ceiling is a backstop to ours; either way the drop is counted.
  dest.on('drop', () => { drop(); });
  /**
   * Gives up on whatever is still buffered (counted as dropped) so pino's exit hook never blocks or
   * throws on a destination that never opened or stays stalled.
   */
  const abandon = () => {
    const left = pendingEvents();
    for (let i = 0; i < left; i++) drop();
    lengths.length = 0; head = 0; headWritten = 0; pendingBytes = 0;
    for (const resolve of drained.splice(0)) resolve();
    const state = dest as unknown as { fd: number; destroyed: boolean };
    if (state.fd === -1) state.destroyed = true; // SonicBoom's own flag; destroy() would wait for an open that may never come
    else if (!state.destroyed) dest.destroy();
  };
  dest.on('error', (err: Error) => {
    if (!opened) { openError = err; abandon(); }
    if (!failing) options.onError?.(err);
    failing = true;
  });

  const pendingEvents = () => lengths.length - head;

  return {
    publish(event) {
      if (closed) { drop(); return; }
      if (pendingEvents() >= maxEvents || pendingBytes >= maxBytes) { drop(); return; }
      const line = JSON.stringify(event) + '\n';
      const bytes = Buffer.byteLength(line);
      lengths.push(bytes);
      pendingBytes += bytes;
      try {
        dest.write(line);
      } catch {
        lengths.pop();
        pendingBytes -= bytes;
        drop();
      }
    },
    get dropped() { return dropped; },
    get pending() { return pendingEvents(); },
    ready(timeoutMs = 5000) {
      if (opened) return Promise.resolve();
      if (openError) return Promise.reject(openError);
      return new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`decision log ${options.destination} did not open within ${timeoutMs} ms`)), timeoutMs);
        t.unref();
        dest.once('ready', () => { clearTimeout(t); resolve(); });
        dest.once('error', (err: Error) => { clearTimeout(t); reject(err); });
      });
    },
    flush(timeoutMs = 5000) {
      return new Promise<void>((resolve) => {
        if (pendingEvents() === 0) { resolve(); return; }
        // Lines below the batch size wait for periodicFlush; a flush request writes them now.
        try { if (opened && !(dest as unknown as { destroyed: boolean }).destroyed) dest.flush(); } catch { /* the drained wait still bounds this */ }
        // Not unref'd: a shutdown waits for the log, but never longer than timeoutMs.
        const timer = setTimeout(done, timeoutMs);
        function done() { clearTimeout(timer); resolve(); }
        drained.push(done);
      });
    },
    async close(timeoutMs = 5000) {
      if (closed) return;
      await this.flush(timeoutMs);
      closed = true;
      if (pendingEvents() > 0 || !opened) { abandon(); return; }
      if (typeof target === 'number') return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000);
        t.unref();
        dest.once('close', () => { clearTimeout(t); resolve(); });
        dest.once('error', () => { clearTimeout(t); resolve(); });
        try { dest.end(); } catch { clearTimeout(t); resolve(); }
      });
    },
  };
}

/** Fans one event out to several sinks (decision log, metrics adapters, tests); a failing sink never affects others. */
export function fanOut(...sinks: DecisionSink[]): DecisionSink {
  return {
    publish(event) {
      for (const s of sinks) {
        try { s.publish(event); } catch { /* a sink must not break the request path */ }
      }
    },
  };
}
