// Owns the load test's garbage-collection figures: starts the given setups with V8's --trace-gc-nvp, drives
// each at a fixed rate (default HTTP/1.1 GET at 1,000 requests/s for 10 s, setups interleaved) and reports,
// over the measured window only: bytes allocated and bytes promoted to old space per request, scavenges, mark-compacts,
// GC pauses. What a request allocates sets how often scavenges come; what survives them sets their cost.
// Usage: node loadtest/gc.mjs [--setups bare,pc-10] [--point h1-get-rate1000] [--seconds 10] [--repetitions 2]
//        [--dist dist] [--baseline-dist DIR (adds setup pc-10-baseline)] [--json FILE]

import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pointSpec, runLoader } from './lib/drive.mjs';
import { createEnvironment } from './lib/env.mjs';
import { cpuSeconds, loadAverage } from './lib/procfs.mjs';
import { POINTS } from './lib/plan.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const { values: args } = parseArgs({
  options: {
    setups: { type: 'string', default: 'bare,pc-10' },
    point: { type: 'string', default: 'h1-get-rate1000' },
    seconds: { type: 'string', default: '10' },
    repetitions: { type: 'string', default: '2' },
    dist: { type: 'string', default: join(here, '..', 'dist') },
    json: { type: 'string' },
    'baseline-dist': { type: 'string' },
  },
});
const log = (msg) => process.stderr.write(`[gc ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const setups = args.setups.split(',');
const point = POINTS[args.point];
const tmp = mkdtempSync(join(os.tmpdir(), 'portcullis-gc-'));
const env = await createEnvironment({ dist: resolve(args.dist), baselineDist: args['baseline-dist'] && resolve(args['baseline-dist']), tmp, setups, log, nodeOptions: ['--trace-gc-nvp'] });

/**
 * One --trace-gc-nvp line per GC: its kind (s = scavenge, ms = mark-compact, mmc = minor mark-compact), pause, promoted
 * bytes, and the bytes allocated since the collection before it.
 */
function parseGcLines(text) {
  const out = { scavenges: 0, mark_compacts: 0, other: 0, allocated_bytes: 0, promoted_bytes: 0, pause_ms_total: 0, pause_ms_max: 0 };
  for (const line of text.split('\n')) {
    const kind = / gc=(\w+)/.exec(line)?.[1];
    if (!kind) continue;
    if (kind === 's') out.scavenges++;
    else if (kind === 'ms') out.mark_compacts++;
    else out.other++;
    out.promoted_bytes += Number(/ promoted=(\d+)/.exec(line)?.[1] ?? 0);
    out.allocated_bytes += Number(/ allocated=(\d+)/.exec(line)?.[1] ?? 0);
    const pause = Number(/ pause=([\d.]+)/.exec(line)?.[1] ?? 0);
    out.pause_ms_total += pause;
    out.pause_ms_max = Math.max(out.pause_ms_max, pause);
  }
  return out;
}

async function runOnce(setupName) {
  const setup = env.info.setups[setupName];
  const logFile = join(tmp, `${setupName}.stdout.log`);
  const pid = setup.pids()[0];
  let from = 0;
  let to = 0;
  let cpu0 = 0;
  let cpu = 0;
  const r = await runLoader(pointSpec(point, setup, { durationS: Number(args.seconds), warmupS: 2 }), {
    onMeasureStart: () => { from = statSync(logFile).size || 1; cpu0 = cpuSeconds(pid); },
    onMeasureEnd: () => { to = statSync(logFile).size; cpu = cpuSeconds(pid) - cpu0; },
  });
  const gc = parseGcLines(readFileSync(logFile, 'utf8').slice(from, to));
  return { setup: setupName, rps: r.rps, requests: r.requests, p99_ms: r.latency.p99_ms, cpu_s: cpu, ...gc, allocated_bytes_per_request: gc.allocated_bytes / Math.max(1, r.requests), promoted_bytes_per_request: gc.promoted_bytes / Math.max(1, r.requests) };
}

const results = [];
try {
  for (let rep = 1; rep <= Number(args.repetitions); rep++) {
    for (const s of setups) {
      const load = loadAverage();
      const r = { ...(await runOnce(s)), rep, load_average_1m: load?.one };
      results.push(r);
      log(`${s} #${rep}: ${Math.round(r.rps)}/s, allocated ${(r.allocated_bytes_per_request / 1024).toFixed(1)} KB/request, promoted ${(r.promoted_bytes_per_request / 1024).toFixed(2)} KB/request, `
        + `${r.scavenges} scavenges, ${r.mark_compacts} mark-compacts, GC pause total ${r.pause_ms_total.toFixed(0)} ms (max ${r.pause_ms_max.toFixed(1)}), `
        + `CPU ${(r.cpu_s / (r.requests / 1000)).toFixed(3)} s per 1,000 requests, load ${load?.one}`);
    }
  }
} finally {
  await env.stop();
  rmSync(tmp, { recursive: true, force: true });
}
process.stdout.write(`\n${args.point}, ${args.seconds} s measured per run, node --trace-gc-nvp\n\n`);
process.stdout.write('| Setup | run | req/s | allocated KB/request | promoted KB/request | scavenges | mark-compacts | GC pause total / max ms | p99 ms | load avg 1m |\n|---|---|---|---|---|---|---|---|---|---|\n');
for (const r of results) {
  process.stdout.write(`| \`${r.setup}\` | ${r.rep} | ${Math.round(r.rps)} | ${(r.allocated_bytes_per_request / 1024).toFixed(1)} | ${(r.promoted_bytes_per_request / 1024).toFixed(2)} | ${r.scavenges} | ${r.mark_compacts} | ${r.pause_ms_total.toFixed(0)} / ${r.pause_ms_max.toFixed(1)} | ${r.p99_ms?.toFixed(2)} | ${r.load_average_1m} |\n`);
}
if (args.json) writeFileSync(args.json, JSON.stringify({ point: args.point, seconds: Number(args.seconds), results }, null, 1) + '\n');
