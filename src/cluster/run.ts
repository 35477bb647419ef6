// Owns `portcullis run` with `concurrency` > 1: the primary forks and supervises the workers and turns
// SIGTERM/SIGINT into a drain of every worker and SIGHUP into a reload in every worker; workers serve.

import cluster from 'node:cluster';
import type { Config } from '../config/types.js';
import { StartupError } from '../app.js';
import { opLoggerAtLevel } from '../observe/op-log.js';
import { startPrimary } from './primary.js';
import { runWorker } from './worker.js';

export async function runClustered(config: Config): Promise<number> {
  if (cluster.isWorker) return runWorker(config);
  const logger = opLoggerAtLevel(config.logLevel);
  let primary;
  try {
    primary = await startPrimary(config, logger);
  } catch (err) {
    process.stderr.write(`portcullis run: ${err instanceof Error ? err.message : String(err)}\n`);
    return err instanceof StartupError ? err.exitCode : 2;
  }
  const p = primary;
  let stopped: Promise<void> | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopped) return;
    logger.info({ signal, workers: p.workers, drain_timeout_ms: config.limits.drainTimeoutMs }, 'draining');
    stopped = p.stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  process.on('SIGHUP', () => p.reload());
  const code = await p.exited;
  // stop() closes the admin listener and flushes the decision log once the workers are gone.
  await (stopped ??= p.stop());
  // Anything a module forgot to unref must not keep a drained sidecar alive.
  setTimeout(() => process.exit(code), 500).unref();
  return code;
}
