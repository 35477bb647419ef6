// Owns following a Downward API directory at run time: when the kubelet swaps in new labels or annotations
// (its `..data` symlink), the policy store recompiles with them; unreadable or malformed files keep the last good.

import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { CompileOptions } from '../policy/ir.js';
import { readDownwardApi } from './downward-api.js';
import type { PolicyStore } from './policy-store.js';

export interface WorkloadWatchLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface WorkloadWatch {
  /** Re-reads now (tests, SIGHUP); resolves once the store has the result. */
  check(): Promise<void>;
  close(): void;
}

const sameMap = (a: Record<string, string>, b: Record<string, string>): boolean => {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => b[k] === a[k]);
};

export function watchWorkloadFacts(opts: {
  dir: string;
  store: Pick<PolicyStore, 'setOptions'>;
  /** Options the store was built with; namespace, labels and annotations are replaced from the files. */
  options: CompileOptions;
  logger: WorkloadWatchLogger;
  /** Safety-net poll for missed fs events (default 10 s; 0 = off). */
  pollIntervalMs?: number;
  debounceMs?: number;
}): WorkloadWatch {
  let current = opts.options;
  let closed = false;
  let chain: Promise<void> = Promise.resolve();

  const checkOnce = async (): Promise<void> => {
    const read = await readDownwardApi(opts.dir, (p) => readFile(p, 'utf8'));
    if (closed) return;
    if ('problems' in read) {
      opts.logger.error({ event: 'workload_facts_invalid', dir: opts.dir, problems: read.problems }, 'workload facts unreadable; keeping the last good ones');
      return;
    }
    const w = current.workload;
    const f = read.facts;
    if (f.namespace === w.namespace && sameMap(f.labels, w.labels) && sameMap(f.annotations, w.annotations)) return;
    const workload = { ...w, namespace: f.namespace, labels: f.labels, annotations: f.annotations };
    if (w.namespaceLabels !== undefined) workload.namespaceLabels = { ...w.namespaceLabels, 'kubernetes.io/metadata.name': f.namespace };
    const next: CompileOptions = { ...current, workload };
    const report = await opts.store.setOptions(next);
    if (report.result === 'failure') {
      opts.logger.error({ event: 'workload_facts_rejected', dir: opts.dir, revision: report.revision }, 'policies do not compile for the new workload facts; keeping the last good snapshot');
      return;
    }
    current = next;
    opts.logger.info({ event: 'workload_facts_changed', labels: f.labels, revision: report.revision }, 'workload labels or annotations changed; policies recompiled');
  };
  const check = (): Promise<void> => {
    chain = chain.then(checkOnce, checkOnce).catch((err: unknown) => {
      opts.logger.error({ event: 'workload_facts_invalid', dir: opts.dir, error: err instanceof Error ? err.message : String(err) }, 'workload facts unreadable');
    });
    return chain;
  };

  let debounce: NodeJS.Timeout | undefined;
  const schedule = (): void => {
    if (closed) return;
    if (debounce) clearTimeout(debounce);
    debounce = setTimeout(() => { debounce = undefined; void check(); }, opts.debounceMs ?? 100);
    debounce.unref();
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(opts.dir, { persistent: false }, () => schedule());
    watcher.on('error', () => { /* the poll keeps working */ });
  } catch { /* the poll keeps working */ }
  const every = opts.pollIntervalMs ?? 10_000;
  const poll = every > 0 ? setInterval(() => { void check(); }, every) : undefined;
  poll?.unref();

  return {
    check,
    close() {
      closed = true;
      if (debounce) clearTimeout(debounce);
      if (poll) clearInterval(poll);
      watcher?.close();
    },
  };
}
