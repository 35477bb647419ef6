// Owns one `concurrency` worker: runs the whole data plane (listeners shared through node:cluster, its own
// policy store and credential watch) without an admin listener; decision lines go to the primary in batches.

import type { Config } from '../config/types.js';
import { createApp, StartupError, type App } from '../app.js';
import { createDecisionLog, type DecisionLog } from '../observe/decision-log.js';
import { decisionRecordJson } from '../observe/decision-json.js';
import type { Metrics } from '../observe/metrics.js';
import { isPrimaryMessage, type WorkerMessage } from './messages.js';

const BATCH_BYTES = 16 * 1024;
const FLUSH_EVERY_MS = 100;

function send(message: WorkerMessage, done?: (err: Error | null) => void): boolean {
  if (!process.send || !process.connected) { done?.(new Error('no channel to the primary')); return false; }
  return process.send(message, undefined, {}, done ?? (() => undefined));
}

/**
 * The worker's decision log: lines are joined into batches (16 KiB or 100 ms, as the file writer does) and
 * sent to the primary, which writes each batch whole, so lines from different workers never interleave.
 * Bounded like the file writer: events not yet acknowledged by the channel count against maxBufferedEvents.
 */
export function createWorkerDecisionLog(options: { maxBufferedEvents: number; maxBufferedBytes?: number; metrics?: Pick<Metrics, 'recordDecisionLogDropped'> }): DecisionLog {
  const maxEvents = Math.max(1, options.maxBufferedEvents);
  const maxBytes = options.maxBufferedBytes ?? maxEvents * 2048;
  let dropped = 0;
  const drop = (count = 1) => { dropped += count; options.metrics?.recordDecisionLogDropped(count); };
  let buffer = '';
  let bufferEvents = 0;
  let bufferBytes = 0;
  let sendingEvents = 0;
  let sendingBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const drained: (() => void)[] = [];
  const pending = () => bufferEvents + sendingEvents;

  const handOver = () => {
    if (timer) { clearTimeout(timer); timer = undefined; }
    if (bufferEvents === 0) return;
    const events = bufferEvents;
    const bytes = bufferBytes;
    const lines = buffer;
    buffer = ''; bufferEvents = 0; bufferBytes = 0;
    sendingEvents += events;
    sendingBytes += bytes;
    send({ type: 'portcullis:decisions', lines, events }, (err) => {
      sendingEvents -= events;
      sendingBytes -= bytes;
      if (err) drop(events);
      if (pending() === 0) for (const resolve of drained.splice(0)) resolve();
    });
  };
  const onTimer = () => { timer = undefined; handOver(); };

  const append = (json: () => string) => {
    if (closed) { drop(); return; }
    if (pending() >= maxEvents || bufferBytes + sendingBytes >= maxBytes) { drop(); return; }
    const line = json() + '\n';
    buffer += line;
    bufferEvents++;
    bufferBytes += Buffer.byteLength(line);
    if (bufferBytes >= BATCH_BYTES) handOver();
    else if (!timer) { timer = setTimeout(onTimer, FLUSH_EVERY_MS); timer.unref(); }
  };

  const log: DecisionLog = {
    publish(event) { append(() => JSON.stringify(event)); },
    publishRecord(record) { append(() => decisionRecordJson(record)); },
    get dropped() { return dropped; },
    get pending() { return pending(); },
    ready: async () => undefined,
    flush(timeoutMs = 5000) {
      return new Promise<void>((resolve) => {
        handOver();
        if (pending() === 0) { resolve(); return; }
        const wait = setTimeout(done, timeoutMs);
        function done() { clearTimeout(wait); resolve(); }
        drained.push(done);
      });
    },
    async close(timeoutMs = 5000) {
      if (closed) return;
      await log.flush(timeoutMs);
      closed = true;
    },
  };
  return log;
}

/** Starts the worker's app; tells the primary when it serves, answers metrics requests, drains on request. */
export async function runWorker(config: Config): Promise<number> {
  const app: App = createApp(config, undefined, {
    serveAdmin: false,
    // With the log off, nothing is sent to the primary at all.
    decisionLog: (metrics) => (config.decisionLog.destination === 'off'
      ? createDecisionLog({ destination: 'off', maxBufferedEvents: 1 })
      : createWorkerDecisionLog({ maxBufferedEvents: config.decisionLog.maxBufferedEvents, metrics })),
  });
  try {
    await app.start();
  } catch (err) {
    process.stderr.write(`portcullis run (worker ${process.pid}): ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof StartupError ? err.exitCode : 2;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      const hard = setTimeout(() => process.exit(0), config.limits.drainTimeoutMs + 3000);
      const exit = (code: number): void => {
        clearTimeout(hard);
        resolve(code);
        // The IPC channel keeps a worker alive; its last decision lines were handed over by app.stop().
        setTimeout(() => process.exit(code), 100);
      };
      app.stop().then(() => exit(0), () => exit(1));
    };
    process.on('message', (m: unknown) => {
      if (!isPrimaryMessage(m)) return;
      if (m.type === 'portcullis:drain') stop();
      else if (m.type === 'portcullis:reload') void app.policyStore?.reload();
      else if (m.type === 'portcullis:metrics') {
        app.metrics.registry.getMetricsAsJSON().then(
          (metrics) => send({ type: 'portcullis:metrics', id: m.id, metrics }),
          () => send({ type: 'portcullis:metrics', id: m.id, metrics: [] }),
        );
      }
    });
    // Signals sent to the whole process group (Ctrl-C) reach workers too: drain as if the primary asked.
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    // The primary gone means nobody can stop us in order: drain and leave.
    process.once('disconnect', stop);
    send({ type: 'portcullis:ready' });
  });
}
