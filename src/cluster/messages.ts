// Owns the messages between the `concurrency` primary and its workers (node:cluster IPC): readiness,
// decision-log batches, metrics requests and replies, drain and reload. One place, so both sides agree.

import type { MetricObjectWithValues, MetricValue } from 'prom-client';

/** Worker -> primary. */
export type WorkerMessage =
  | { type: 'portcullis:ready' }
  /** Whole NDJSON lines (each ends with a newline), written by the primary in one write. */
  | { type: 'portcullis:decisions'; lines: string; events: number }
  | { type: 'portcullis:metrics'; id: number; metrics: MetricObjectWithValues<MetricValue<string>>[] };

/** Primary -> worker. */
export type PrimaryMessage =
  | { type: 'portcullis:metrics'; id: number }
  | { type: 'portcullis:reload' }
  | { type: 'portcullis:drain' };

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && typeof (m as { type?: unknown }).type === 'string' && (m as { type: string }).type.startsWith('portcullis:');
}

export const isPrimaryMessage = isWorkerMessage as (m: unknown) => m is PrimaryMessage;
