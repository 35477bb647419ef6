// Owns driving a setup with loader.mjs: the loader's spec for a point against a setup's listener, and one loader
// process run to its result line, with callbacks where its measured window starts and ends (the MEASURE markers).

import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const loaderPath = fileURLToPath(new URL('../loader.mjs', import.meta.url));

/** The loader spec for `point` (lib/plan.mjs) against `setup`'s endpoint (lib/env.mjs). */
export function pointSpec(point, setup, { durationS, warmupS }) {
  const endpoint = setup.endpoints[point.endpoint];
  return { ...point.loader, url: endpoint.url + (point.path ?? ''), tls: endpoint.tls, headers: setup.headers, durationS, warmupS };
}

/**
 * Runs one loader process; resolves to its parsed result line, rejects (with the end of its stderr) when it
 * fails or outlives its duration by a minute. `onMeasureStart` / `onMeasureEnd` run once each, when the loader
 * says its measured window starts and ends.
 */
export function runLoader(spec, { onMeasureStart, onMeasureEnd } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [loaderPath, JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let started = false;
    let ended = false;
    child.stdout.on('data', (d) => {
      out += d;
      if (!started && out.includes('MEASURE_START\n')) { started = true; onMeasureStart?.(); }
      if (!ended && out.includes('MEASURE_END\n')) { ended = true; onMeasureEnd?.(); }
    });
    child.stderr.on('data', (d) => { err += d; });
    const timeout = setTimeout(() => child.kill('SIGKILL'), (spec.durationS + (spec.warmupS ?? 0) + 60) * 1000);
    child.once('exit', (code) => {
      clearTimeout(timeout);
      const line = out.split('\n').reverse().find((l) => l.startsWith('{'));
      if (code !== 0 || !line) reject(new Error(`loader exited ${code}: ${err.slice(-1500)}`));
      else resolve(JSON.parse(line));
    });
  });
}
