// Owns the load test's in-place CPU attribution: samples each setup's whole process with Linux `perf` (node's
// --perf-basic-prof names the JIT code) while a point drives it, and charges every sample to the first JavaScript
// frame on its stack, so what a function costs includes the builtins, runtime calls and system calls it makes
// (a megamorphic property load, a number turned into a string, a write). Figures are µs per request.
// Usage: node loadtest/perf-attribution.mjs [--setups bare,pc-10] [--point h1-get-sat] [--seconds 8] [--by module|function]
//        [--top 30] [--under PATTERN (what the frames matching it spend, by leaf symbol)] [--warmup 5] [--dist dist] [--keep DIR]

import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pointSpec, runLoader } from './lib/drive.mjs';
import { createEnvironment } from './lib/env.mjs';
import { loadAverage } from './lib/procfs.mjs';
import { POINTS } from './lib/plan.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const { values: args } = parseArgs({
  options: {
    setups: { type: 'string', default: 'bare,pc-10' },
    point: { type: 'string', default: 'h1-get-sat' },
    seconds: { type: 'string', default: '8' },
    // TurboFan still compiles for a few seconds after the first requests: sampled, it looks like a per-request cost.
    warmup: { type: 'string', default: '5' },
    by: { type: 'string', default: 'module' },
    top: { type: 'string', default: '30' },
    under: { type: 'string' },
    dist: { type: 'string', default: join(here, '..', 'dist') },
    keep: { type: 'string' },
  },
});
const log = (msg) => process.stderr.write(`[perf-attribution ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const setups = args.setups.split(',');
const point = POINTS[args.point];
if (!point) throw new Error(`unknown point ${args.point}; one of ${Object.keys(POINTS).join(', ')}`);
if (!['module', 'function'].includes(args.by)) throw new Error(`--by module or function, not ${args.by}`);
if (spawnSync('perf', ['--version']).status !== 0) throw new Error('perf not found (Debian: apt-get install linux-perf); this tool samples with it');
const SAMPLE_HZ = 2000;

const tmp = mkdtempSync(join(os.tmpdir(), 'portcullis-perf-attribution-'));
const outDir = resolve(args.keep ?? join(tmp, 'perf'));
mkdirSync(outDir, { recursive: true });

/** Samples `pids` (every thread) until stopped; resolves with the perf.data path once perf has written it. */
function record(pids, file) {
  const perf = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', String(SAMPLE_HZ), '-g', '-p', pids.join(','), '-o', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((res) => perf.once('exit', res));
  return { stop: async () => { perf.kill('SIGINT'); await exited; return file; } };
}

const runs = {};
const env = await createEnvironment({ dist: resolve(args.dist), tmp, setups, log, nodeOptions: ['--perf-basic-prof'] });
try {
  // Every setup is driven at the same time, so each sees the same machine (as cpu-cost.mjs --together does):
  // driven in turn, the one alone on the machine batches more per system call and looks cheaper per request.
  log(`driving ${args.point} against ${setups.join(', ')} at once for ${args.seconds} s under perf`);
  const load = loadAverage();
  await Promise.all(setups.map(async (name) => {
    const pids = env.info.setups[name].pids();
    let recording = null;
    let stopped = null;
    const result = await runLoader(pointSpec(point, env.info.setups[name], { durationS: Number(args.seconds), warmupS: Number(args.warmup) }), {
      onMeasureStart: () => { recording = record(pids, join(outDir, `${name}.perf.data`)); },
      onMeasureEnd: () => { stopped = recording.stop(); },
    });
    const file = await stopped;
    // perf reads the JIT names from /tmp/perf-<pid>.map: kept beside the data, since the process goes away.
    for (const pid of pids) if (existsSync(`/tmp/perf-${pid}.map`)) copyFileSync(`/tmp/perf-${pid}.map`, join(outDir, `perf-${pid}.map`));
    runs[name] = { pids, file, requests: result.requests, load: load?.one };
  }));
} finally {
  await env.stop();
}

/**
 * The samples of one recording, one `{ main, leaf, js }` each: whether its thread is the main one, the leaf symbol, the first JS frame (or null).
 * A JS frame reads `JS:*name file:line:column` in the map node writes (`*` optimized, `~` interpreted).
 */
async function samples(file, mainPids) {
  const script = spawn('perf', ['script', '-i', file, '-F', 'pid,tid,ip,sym', '--no-demangle'], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, PERF_BUILDID_DIR: outDir } });
  const out = [];
  let current = null;
  for await (const line of createInterface({ input: script.stdout, crlfDelay: Infinity })) {
    if (line === '') { if (current) out.push(current); current = null; continue; }
    if (!line.startsWith('\t')) {
      const [pid, tid] = line.trim().split(/\s+/)[0].split('/');
      current = { main: mainPids.has(Number(tid ?? pid)), leaf: null, js: null };
      continue;
    }
    if (current === null) continue;
    const sym = line.trim().split(/\s+/).slice(1).join(' ');
    current.leaf ??= sym;
    if (current.js === null && sym.startsWith('JS:')) current.js = sym;
  }
  if (current) out.push(current);
  return out;
}

/** What a sample is charged to: the first JS frame's module (or function), else what ran outside JavaScript. */
function chargeOf(sample) {
  if (sample.js === null) {
    if (!sample.main) return /compiler|Turbofan|Maglev/.test(sample.leaf ?? '') ? '(other threads: optimizing compiler)' : '(other threads: GC helpers, thread pool)';
    return /epoll|schedule/.test(sample.leaf ?? '') ? '(main thread waiting)' : `(outside JS) ${sample.leaf ?? '?'}`;
  }
  const m = /^JS:[*~^]?(\S*) (\S+?):(\d+):\d+$/.exec(sample.js);
  if (!m) return sample.js;
  const file = m[2].replace(/^file:\/\//, '').replace(/.*\/(dist\/src|node_modules|loadtest)\//, '$1/');
  return args.by === 'module' ? file : `${m[1] || '(anonymous)'} ${file}:${m[3]}`;
}

const perSample = 1e6 / SAMPLE_HZ; // µs of CPU one sample stands for
const tables = {};
for (const name of setups) {
  const run = runs[name];
  const all = await samples(run.file, new Set(run.pids));
  const charges = new Map();
  const under = new Map();
  for (const s of all) {
    const k = chargeOf(s);
    charges.set(k, (charges.get(k) ?? 0) + 1);
    if (args.under && s.js !== null && s.js.includes(args.under)) under.set(s.leaf, (under.get(s.leaf) ?? 0) + 1);
  }
  const us = (n) => (n * perSample) / run.requests;
  tables[name] = { total: us(all.length), charges: new Map([...charges].map(([k, n]) => [k, us(n)])), under: new Map([...under].map(([k, n]) => [k, us(n)])) };
  process.stdout.write(`${name}: ${run.requests} requests, ${tables[name].total.toFixed(1)} µs of CPU per request sampled (all threads), load ${run.load}\n`);
}

const first = setups[0];
const keys = new Set(setups.flatMap((n) => [...tables[n].charges.keys()]));
const rows = [...keys].map((k) => ({ k, v: setups.map((n) => tables[n].charges.get(k) ?? 0) }));
// Ordered by how much the last setup's figure differs from the first's, either way: where the difference goes.
const gap = (r) => r.v[r.v.length - 1] - r.v[0];
rows.sort((a, b) => Math.abs(gap(b)) - Math.abs(gap(a)));
const top = Number(args.top);
process.stdout.write(`\n## µs per request by ${args.by}, charged to the first JavaScript frame (the ${top} largest differences, ${setups.at(-1)} − ${first})\n\n`);
process.stdout.write(`| ${args.by} | ${setups.map((n) => `\`${n}\``).join(' | ')} | difference |\n|---|${setups.map(() => '---|').join('')}---|\n`);
for (const r of rows.slice(0, top)) process.stdout.write(`| ${r.k} | ${r.v.map((x) => x.toFixed(2)).join(' | ')} | ${gap(r) >= 0 ? '+' : ''}${gap(r).toFixed(2)} |\n`);
process.stdout.write(`| total | ${setups.map((n) => tables[n].total.toFixed(1)).join(' | ')} | ${(tables[setups.at(-1)].total - tables[first].total).toFixed(1)} |\n`);
if (args.under) {
  for (const name of setups) {
    const list = [...tables[name].under].sort((a, b) => b[1] - a[1]).slice(0, 15);
    process.stdout.write(`\n## ${name}: under frames matching "${args.under}", by leaf symbol (µs per request)\n\n`);
    for (const [k, v] of list) process.stdout.write(`  ${v.toFixed(3)}  ${k}\n`);
  }
}
for (const name of setups) for (const pid of runs[name].pids) rmSync(`/tmp/perf-${pid}.map`, { force: true });
if (args.keep) log(`perf data and JIT maps kept in ${outDir}`);
rmSync(tmp, { recursive: true, force: true });
