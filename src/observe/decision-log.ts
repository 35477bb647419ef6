// Owns the decision log: one NDJSON line per DecisionEventV1, written in batches (64 KiB or 100 ms) through pino's
// async destination. Bounded like OPA's decision logs (models.md §5): a slow destination drops new events and counts them; never blocks.

import pino from 'pino';
import { buildDecisionEvent, type DecisionRecord } from './decision-event.js';
import { decisionRecordJson, writeRecordLine } from './decision-json.js';
import type { Metrics } from './metrics.js';
import type { DecisionEventV1, DecisionSink } from './types.js';

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
  /**
   * Appends `events` whole NDJSON lines already serialized elsewhere (a batch from a `concurrency` worker),
   * bounded and counted like publish(). Written in one piece, so they never interleave with other lines.
   */
  publishLines?(lines: string, events: number): void;
  /** Resolves once the destination is open; rejects if it cannot be opened (e.g. a bad path). */
  ready(timeoutMs?: number): Promise<void>;
  /** Resolves when everything buffered so far has been written (bounded by timeoutMs, default 5 s). */
  flush(timeoutMs?: number): Promise<void>;
  /** Flushes, then closes the destination (stdout/stderr stay open). */
  close(timeoutMs?: number): Promise<void>;
}

type Destination = ReturnType<typeof pino.destination>;

/** The bytes a batch holds before it is handed over: one thread-pool write per batch, not per event. */
const BATCH_BYTES = 64 * 1024;
const FLUSH_EVERY_MS = 100;

/** Events handed to the destination in one write, still (partly) unwritten. */
interface Batch { events: number; bytes: number }

export function createDecisionLog(options: DecisionLogOptions): DecisionLog {
  const maxEvents = Math.max(1, options.maxBufferedEvents);
  const maxBytes = options.maxBufferedBytes ?? maxEvents * 2048;
  let dropped = 0;
  const drop = (count = 1) => { dropped += count; options.metrics?.recordDecisionLogDropped(count); };

  if (options.destination === 'off') {
    // publishRecord too: a sink without it makes fanOut build an event object per request for nothing.
    const disabled = (): void => { /* logging disabled by configuration */ };
    return { publish: disabled, publishRecord: disabled, get dropped() { return 0; }, get pending() { return 0; }, ready: async () => undefined, flush: async () => undefined, close: async () => undefined };
  }

  const target = options.destination === 'stdout' ? 1 : options.destination === 'stderr' ? 2 : options.destination;
  // Lines are encoded here into one batch of bytes and handed to SonicBoom in a single write: SonicBoom
  // measures the byte length of its whole pending buffer on every write(), so one write per event cost
  // up to 16 KiB of copying per request, and every write costs a hand-off to the thread pool. A batch goes
  // out near 64 KiB or after 100 ms, whichever is first; the timer is armed only while lines are waiting, so
  // an idle sidecar never wakes up for the log. Batches go to SonicBoom as bytes (contentMode 'buffer'): a
  // batch waiting for its write is a Buffer outside the JS heap, not a string that scavenges copy and
  // promote when the write is slow (a busy machine delays the thread pool), and SonicBoom neither rescans
  // nor re-encodes it.
  const dest: Destination = pino.destination({
    dest: target, sync: false, mkdir: typeof target === 'string', maxLength: maxBytes * 2, minLength: 0, contentMode: 'buffer',
  });

  /**
   * Lines not yet handed to the destination, encoded as they come into the batch's own bytes: no string of the
   * whole batch is built, flattened and encoded again at hand-over, and the byte count is exact.
   */
  let batch: Buffer | null = null;
  let batchBytes = 0;
  let batchEvents = 0;
  let timer: NodeJS.Timeout | undefined;
  /** Batches handed to the destination and not yet fully written, oldest first. */
  const inFlight: Batch[] = [];
  let inFlightHead = 0;
  let inFlightEvents = 0;
  let inFlightBytes = 0;
  let headWritten = 0;
  let failing = false;
  let closed = false;
  let destGone = false;
  /** flush() waiters, resolved when nothing is pending. */
  const drained: (() => void)[] = [];
  let opened = typeof target === 'number';
  let openError: Error | undefined;
  dest.once('ready', () => { opened = true; });

  const pendingEvents = () => batchEvents + inFlightEvents;
  const resolveDrained = () => { if (pendingEvents() === 0 && drained.length > 0) for (const resolve of drained.splice(0)) resolve(); };

  dest.on('write', (n: number) => {
    failing = false;
    let left = n + headWritten;
    while (inFlightHead < inFlight.length && left >= (inFlight[inFlightHead] as Batch).bytes) {
      const b = inFlight[inFlightHead] as Batch;
      left -= b.bytes;
      inFlightEvents -= b.events;
      inFlightBytes -= b.bytes;
      inFlightHead++;
    }
    headWritten = left;
    if (inFlightHead > 64 && inFlightHead * 2 > inFlight.length) { inFlight.splice(0, inFlightHead); inFlightHead = 0; }
    resolveDrained();
  });
  // SonicBoom's own ceiling is a backstop to ours: a batch it refuses is counted as its events.
  let refused = false;
  dest.on('drop', () => { refused = true; });

  /** Hands the waiting lines to the destination as one write. */
  const handOver = () => {
    if (timer) { clearTimeout(timer); timer = undefined; }
    if (batchEvents === 0 || batch === null) return;
    const events = batchEvents;
    const bytes = batch.subarray(0, batchBytes);
    batch = null; batchBytes = 0; batchEvents = 0;
    if (destGone) { drop(events); return; }
    const handed: Batch = { events, bytes: bytes.length };
    refused = false;
    try {
      // contentMode 'buffer' takes bytes; SonicBoom's types know only strings.
      dest.write(bytes as unknown as string);
    } catch {
      refused = true;
    }
    if (refused) { drop(handed.events); resolveDrained(); return; }
    inFlight.push(handed);
    inFlightEvents += handed.events;
    inFlightBytes += handed.bytes;
  };
  const onTimer = () => { timer = undefined; handOver(); };
  const counted = (events: number) => {
    batchEvents += events;
    if (!timer) { timer = setTimeout(onTimer, FLUSH_EVERY_MS); timer.unref(); }
  };
  /** Appends lines already made as text (a worker's batch, or one line larger than a batch). */
  const append = (lines: string, events: number) => {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: a batch that might not hold the lines goes out first.
    const most = lines.length * 3;
    if (batch !== null && batchBytes + most > batch.length) { handOver(); batch = null; }
    batch ??= Buffer.allocUnsafe(Math.max(BATCH_BYTES, most));
    batchBytes += batch.write(lines, batchBytes, 'utf8');
    counted(events);
  };
  /**
   * Encodes a record's line straight into the batch (decision-json.ts); a batch that cannot hold it goes out
   * first, and a line larger than a whole batch is appended as text in a batch of its own size.
   */
  const appendRecord = (record: DecisionRecord) => {
    batch ??= Buffer.allocUnsafe(BATCH_BYTES);
    let next = writeRecordLine(batch, batchBytes, record);
    if (next === -1 && batchEvents > 0) {
      handOver();
      batch = Buffer.allocUnsafe(BATCH_BYTES);
      next = writeRecordLine(batch, 0, record);
    }
    if (next === -1) { append(`${decisionRecordJson(record)}\n`, 1); return; }
    batchBytes = next;
    counted(1);
  };

  /**
   * Gives up on whatever is still pending (counted as dropped) so pino's exit hook never blocks or
   * throws on a destination that never opened or stays stalled.
   */
  const abandon = () => {
    if (timer) { clearTimeout(timer); timer = undefined; }
    const left = pendingEvents();
    if (left > 0) drop(left);
    batch = null; batchBytes = 0; batchEvents = 0;
    inFlight.length = 0; inFlightHead = 0; inFlightEvents = 0; inFlightBytes = 0; headWritten = 0;
    destGone = true;
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

  return {
    publish(event) {
      if (closed) { drop(); return; }
      if (pendingEvents() >= maxEvents || batchBytes + inFlightBytes >= maxBytes) { drop(); return; }
      // An event object comes from outside the data plane (the data plane hands over records): the line is its JSON.
      append(`${JSON.stringify(event)}\n`, 1);
    },
    publishRecord(record) {
      if (closed) { drop(); return; }
      if (pendingEvents() >= maxEvents || batchBytes + inFlightBytes >= maxBytes) { drop(); return; }
      appendRecord(record);
    },
    publishLines(lines, events) {
      if (closed) { drop(events); return; }
      if (pendingEvents() + events > maxEvents || batchBytes + inFlightBytes >= maxBytes) { drop(events); return; }
      append(lines, events);
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
        handOver();
        if (pendingEvents() === 0) { resolve(); return; }
        // Not unref'd: a shutdown waits for the log, but never longer than timeoutMs.
        const wait = setTimeout(done, timeoutMs);
        function done() { clearTimeout(wait); resolve(); }
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
    // The event object is built only if some sink needs it (publishDecision fixed the id and time already).
    publishRecord(record) {
      let event: DecisionEventV1 | undefined;
      for (const s of sinks) {
        try {
          if (s.publishRecord) s.publishRecord(record);
          else s.publish(event ??= buildDecisionEvent(record));
        } catch { /* a sink must not break the request path */ }
      }
    },
  };
}
