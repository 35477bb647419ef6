// Owns the `concurrency` primary (node:cluster, Envoy's --concurrency): forks the workers that share the
// listeners, serves the admin listener with metrics aggregated over all workers, writes their decision lines.

import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { Config } from '../config/types.js';
import { createPolicyStore, type PolicyStore } from '../config/policy-store.js';
import { filePeerSource } from '../config/peer-source.js';
import { isPeerDiagnostic } from '../config/peers-file.js';
import { packageVersion, StartupError, type AppLogger } from '../app.js';
import { startAdminServer, type AdminServer } from '../observe/admin.js';
import { createDecisionLog, type DecisionLog } from '../observe/decision-log.js';
import { createMetrics } from '../observe/metrics.js';
import { isWorkerMessage, type PrimaryMessage } from './messages.js';

/** How long a scrape waits for a worker's metrics before answering without them. */
const SCRAPE_TIMEOUT_MS = 5000;
/** A worker that dies while serving is replaced after this pause (never in a tight loop). */
const RESPAWN_DELAY_MS = 1000;

export interface Primary {
  /** Resolves with the exit code once every worker has stopped (after stop(), or a failed start). */
  readonly exited: Promise<number>;
  /** Drains every worker (each within limits.drainTimeout), then closes the admin listener and the log. */
  stop(): Promise<void>;
  /** Asks every worker to re-read its policies now (SIGHUP). */
  reload(): void;
  readonly workers: number;
}

function sendTo(worker: Worker, message: PrimaryMessage): void {
  if (worker.isConnected()) worker.send(message, undefined, () => undefined);
}

/**
 * Starts `config.concurrency` workers and resolves once all of them serve. The primary compiles the policy
 * set too, only to answer /policy and /ready: every worker compiles and reloads its own copy.
 */
export async function startPrimary(config: Config, logger: AppLogger): Promise<Primary> {
  const metrics = createMetrics();
  const created = await createPolicyStore({ paths: config.policies, options: config.compile, logger, ...(config.peersFile ? { peers: filePeerSource(config.peersFile) } : {}) });
  if ('diagnostics' in created) {
    const lines = created.diagnostics.filter((d) => d.severity === 'error').map((d) => `${d.origin?.file ?? '<policies>'}:${d.origin?.line ?? 0}: ${d.code} ${d.message}`);
    throw new StartupError(`${created.diagnostics.some(isPeerDiagnostic) ? 'peer registry' : 'policies'} refused, nothing started:\n${lines.join('\n')}`);
  }
  const store: PolicyStore = created.store;
  const decisionLog: DecisionLog = createDecisionLog({
    destination: config.decisionLog.destination,
    maxBufferedEvents: config.decisionLog.maxBufferedEvents,
    metrics,
    onError: (err) => logger.error({ event: 'decision_log_error', error: err.message }, 'decision log destination failed'),
  });

  const ready = new Set<Worker>();
  let stopping = false;
  let starting = true;
  let exitCode = 0;
  let resolveExited!: (code: number) => void;
  const exited = new Promise<number>((r) => { resolveExited = r; });
  let scrapeId = 0;
  const scrapes = new Map<number, { want: Set<Worker>; got: MetricObjectWithValues<MetricValue<string>>[][]; done: () => void }>();

  const onMessage = (worker: Worker) => (m: unknown): void => {
    if (!isWorkerMessage(m)) return;
    if (m.type === 'portcullis:ready') ready.add(worker);
    else if (m.type === 'portcullis:decisions') decisionLog.publishLines?.(m.lines, m.events);
    else if (m.type === 'portcullis:metrics') {
      const s = scrapes.get(m.id);
      if (!s) return;
      s.got.push(m.metrics);
      s.want.delete(worker);
      if (s.want.size === 0) s.done();
    }
  };

  const live = (): Worker[] => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);

  function fork(): Worker {
    const worker = cluster.fork();
    worker.on('message', onMessage(worker));
    worker.on('exit', (code, signal) => {
      ready.delete(worker);
      for (const s of scrapes.values()) if (s.want.delete(worker) && s.want.size === 0) s.done();
      if (stopping) {
        if (live().length === 0) resolveExited(exitCode);
        return;
      }
      if (starting) {
        // A worker that cannot start (unreadable certificates, a listener in use) fails the whole start.
        exitCode = code || 2;
        stopping = true;
        for (const w of live()) sendTo(w, { type: 'portcullis:drain' });
        if (live().length === 0) resolveExited(exitCode);
        return;
      }
      logger.error({ event: 'worker_exited', pid: worker.process.pid, code, signal }, 'worker exited; starting a new one');
      setTimeout(() => { if (!stopping) fork(); }, RESPAWN_DELAY_MS).unref();
    });
    return worker;
  }

  for (let i = 0; i < config.concurrency; i++) fork();
  // Every worker reports ready, or one fails and takes the others down.
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (stopping || ready.size >= config.concurrency) { clearInterval(check); resolve(); }
    }, 20);
  });
  if (stopping) {
    const code = await exited;
    await store.close();
    await decisionLog.close(2000);
    throw new StartupError(`a worker failed to start (exit ${code}); see its message above`);
  }
  starting = false;

  /** Every worker's registry plus the primary's own (decision lines it had to drop), summed per series. */
  async function scrape(): Promise<string> {
    const id = ++scrapeId;
    const want = new Set(live().filter((w) => w.isConnected()));
    const got: MetricObjectWithValues<MetricValue<string>>[][] = [];
    await new Promise<void>((resolve) => {
      const timer = setTimeout(finish, SCRAPE_TIMEOUT_MS);
      function finish(): void { clearTimeout(timer); scrapes.delete(id); resolve(); }
      scrapes.set(id, { want, got, done: finish });
      if (want.size === 0) { finish(); return; }
      for (const w of want) sendTo(w, { type: 'portcullis:metrics', id });
    });
    got.push((await metrics.registry.getMetricsAsJSON()).filter((m) => m.name === 'portcullis_decision_log_dropped_total'));
    return AggregatorRegistry.aggregate(got).metrics();
  }

  let admin: AdminServer | undefined;
  try {
    admin = await startAdminServer({
      listen: config.admin,
      metrics: { scrape, contentType: metrics.contentType },
      policyStore: store,
      readiness: () => {
        const n = ready.size;
        return n >= config.concurrency && !stopping ? { ready: true, reasons: [] } : { ready: false, reasons: [stopping ? 'draining' : `${n} of ${config.concurrency} workers serving`] };
      },
      version: packageVersion(),
    });
  } catch (err) {
    stopping = true;
    for (const w of live()) sendTo(w, { type: 'portcullis:drain' });
    await exited;
    throw new StartupError(`cannot listen: ${err instanceof Error ? err.message : String(err)}`);
  }
  logger.info({ event: 'workers_ready', workers: config.concurrency, admin: `${admin.address.host}:${admin.address.port}` }, 'all workers serving');

  return {
    exited,
    workers: config.concurrency,
    reload() {
      void store.reload();
      for (const w of live()) sendTo(w, { type: 'portcullis:reload' });
    },
    async stop() {
      stopping = true;
      const workers = live();
      if (workers.length === 0) resolveExited(exitCode);
      for (const w of workers) sendTo(w, { type: 'portcullis:drain' });
      // Workers drain within limits.drainTimeout; a worker stuck beyond that is killed.
      const hard = setTimeout(() => { for (const w of live()) w.process.kill('SIGKILL'); }, config.limits.drainTimeoutMs + 5000);
      hard.unref();
      await exited;
      clearTimeout(hard);
      await admin?.close();
      await store.close();
      await decisionLog.close(2000);
    },
  };
}
