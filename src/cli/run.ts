// Owns the `portcullis run` command: argv -> Config (or diagnostics, exit 2; any unusable configuration exits 2), start the app, and on
// SIGTERM/SIGINT fail /ready, keep accepting for limits.drainDelay, then drain in-flight requests within
// limits.drainTimeout and exit 0; SIGHUP reloads policies; --workload-from facts are watched.

import { readFile } from 'node:fs/promises';
import { createApp } from '../app.js';
import { loadConfig, wantsHelp } from '../config/load.js';
import { renderRunHelp } from '../config/schema.js';
import { watchWorkloadFacts } from '../config/workload-watch.js';
import { opLoggerAtLevel } from '../observe/op-log.js';
import { formatDiagnostic } from '../policy/diagnostics.js';

export async function main(argv: string[]): Promise<number> {
  if (wantsHelp(argv)) {
    process.stdout.write(renderRunHelp() + '\n');
    return 0;
  }
  const loaded = await loadConfig(argv, { readFile: (p) => readFile(p, 'utf8'), cwd: process.cwd() });
  if ('diagnostics' in loaded) {
    for (const d of loaded.diagnostics) process.stderr.write(formatDiagnostic(d) + '\n');
    return 2;
  }
  if (loaded.config.concurrency > 1) {
    const { runClustered } = await import('../cluster/run.js');
    return runClustered(loaded.config);
  }
  const logger = opLoggerAtLevel(loaded.config.logLevel);
  const app = createApp(loaded.config, logger);
  try {
    await app.start();
  } catch (err) {
    process.stderr.write(`portcullis run: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const workloadWatch = loaded.config.workloadFrom && app.policyStore
    ? watchWorkloadFacts({ dir: loaded.config.workloadFrom, store: app.policyStore, options: loaded.config.compile, logger })
    : undefined;
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      workloadWatch?.close();
      const delayMs = loaded.config.limits.drainDelayMs ?? 0;
      logger.info({ signal, drain_delay_ms: delayMs, drain_timeout_ms: loaded.config.limits.drainTimeoutMs }, 'draining');
      // Endpoints learn of the termination late: /ready fails now, new connections are still served
      // until the delay is over, and only then do the listeners stop accepting.
      app.beginDrain();
      // A hard deadline so a stuck close never keeps the pod alive past its grace period.
      const hard = setTimeout(() => { resolve(0); setTimeout(() => process.exit(0), 100).unref(); }, delayMs + loaded.config.limits.drainTimeoutMs + 3000);
      hard.unref();
      const done = (code: number): void => {
        clearTimeout(hard);
        resolve(code);
        // Anything a module forgot to unref must not keep a drained sidecar alive.
        setTimeout(() => process.exit(code), 500).unref();
      };
      setTimeout(() => { app.stop().then(() => done(0), () => done(1)); }, delayMs);
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
    // SIGHUP: re-read policies now (the store also watches the files); a bad set keeps the last good one.
    process.on('SIGHUP', () => { void app.policyStore?.reload(); void workloadWatch?.check(); });
  });
}
