// Owns the load test's object-shape figures: starts the setups with V8's --log-maps and --log-ic, drives a point
// against each in turn and reports, within the measured window, the hidden classes (maps) created and the inline
// cache misses per request, by reason and by site. A map made per request, or an IC that misses on every request,
// is work the same request does not cost when its objects share shapes (docs/loadtest.md, seventh round).
// Usage: node loadtest/v8-shapes.mjs [--setups bare,pc-10] [--point grpc-unary-sat] [--seconds 5] [--min 0.05]
//        [--dist dist] [--keep DIR (keep the V8 logs there)]

import { createReadStream, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
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
    point: { type: 'string', default: 'grpc-unary-sat' },
    seconds: { type: 'string', default: '5' },
    min: { type: 'string', default: '0.05' },
    dist: { type: 'string', default: join(here, '..', 'dist') },
    keep: { type: 'string' },
  },
});
const log = (msg) => process.stderr.write(`[v8-shapes ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const setups = args.setups.split(',');
const point = POINTS[args.point];
if (!point) throw new Error(`unknown point ${args.point}; one of ${Object.keys(POINTS).join(', ')}`);
const minPerRequest = Number(args.min);

const tmp = mkdtempSync(join(os.tmpdir(), 'portcullis-v8-shapes-'));
const logDir = resolve(args.keep ?? join(tmp, 'v8-logs'));
mkdirSync(logDir, { recursive: true });

/** CLOCK_MONOTONIC in µs: the clock /proc/<pid>/stat's start time is counted on (since boot). */
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
const ticksPerSecond = 100; // USER_HZ on Linux
function processStartUs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[19]) / ticksPerSecond) * 1e6;
}

// --log-maps-details off: the map lines carry the reason and the property, the details would be gigabytes.
const nodeOptions = ['--log-maps', '--no-log-maps-details', '--log-ic', `--logfile=${join(logDir, '%p.v8.log')}`, '--no-logfile-per-isolate'];
const runs = {};
const env = await createEnvironment({ dist: resolve(args.dist), tmp, setups, log, nodeOptions });
try {
  for (const name of setups) {
    const setup = env.info.setups[name];
    const pids = setup.pids();
    log(`driving ${args.point} against ${name} for ${args.seconds} s`);
    const load = loadAverage();
    // V8's log counts µs from the isolate's start, which is within milliseconds of the process's.
    const window = {};
    const result = await runLoader(pointSpec(point, setup, { durationS: Number(args.seconds), warmupS: 1 }), {
      onMeasureStart: () => { window.from = monotonicUs(); },
      onMeasureEnd: () => { window.to = monotonicUs(); },
    });
    runs[name] = { pids, result, load: load?.one, windows: Object.fromEntries(pids.map((pid) => [pid, { from: window.from - processStartUs(pid), to: window.to - processStartUs(pid) }])) };
  }
} finally {
  await env.stop();
}

/** Map creations by reason and property, and IC misses by kind, site and property, inside `window`. */
async function countLog(file, window) {
  const maps = new Map();
  const ics = new Map();
  /** Code objects by start address (created, moved, deleted as the log goes), to say which function an IC sits in. */
  const code = new Map();
  const siteName = new Map();
  const nameOf = (pc) => {
    const a = Number.parseInt(pc, 16);
    for (const [start, { size, name }] of code) if (a >= start && a < start + size) return name;
    return '?';
  };
  /** A new code object replaces whatever overlapped its range (freed code's addresses are reused). */
  const place = (start, entry) => {
    for (const [s, e] of code) if (s < start + entry.size && start < s + e.size) code.delete(s);
    code.set(start, entry);
  };
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of lines) {
    const f = line.split(',');
    if (f[0] === 'code-creation') { place(Number.parseInt(f[4], 16), { size: Number(f[5]), name: f[6] }); continue; }
    if (f[0] === 'code-move') {
      const from = Number.parseInt(f[1], 16);
      const entry = code.get(from);
      if (entry) { code.delete(from); place(Number.parseInt(f[2], 16), entry); }
      continue;
    }
    if (f[0] === 'code-delete') { code.delete(Number.parseInt(f[1], 16)); continue; }
    if (f[0] === 'map') {
      const t = Number(f[2]);
      if (t < window.from || t > window.to) continue;
      const key = `${f[1]} ${f[8] ?? ''} ${f[9] ?? ''}`.trim();
      maps.set(key, (maps.get(key) ?? 0) + 1);
      continue;
    }
    if (f[0].endsWith('IC') && f.length > 8) {
      const t = Number(f[2]);
      if (t < window.from || t > window.to) continue;
      const site = `${f[0]} line ${f[3]}:${f[4]} .${f[8]}`;
      ics.set(site, (ics.get(site) ?? 0) + 1);
      if (!siteName.has(site)) siteName.set(site, nameOf(f[1]));
    }
  }
  return { maps, ics, siteName };
}

const pad = (s, n) => String(s).padStart(n);
for (const name of setups) {
  const run = runs[name];
  const requests = run.result.requests;
  process.stdout.write(`\n## ${name}: ${args.point}, ${requests} requests in the measured window, load ${run.load}\n`);
  for (const pid of run.pids) {
    const file = readdirSync(logDir).map((f) => join(logDir, f)).find((f) => f.endsWith(`/${pid}.v8.log`));
    if (!file) { process.stdout.write(`(no V8 log for pid ${pid})\n`); continue; }
    const { maps, ics, siteName } = await countLog(file, run.windows[pid]);
    const perRequest = (n) => n / requests;
    const total = [...maps.values()].reduce((a, b) => a + b, 0);
    process.stdout.write(`\nMaps created: ${perRequest(total).toFixed(2)} per request (pid ${pid}); by reason and property, ≥ ${minPerRequest} per request:\n`);
    for (const [k, n] of [...maps].sort((a, b) => b[1] - a[1])) if (perRequest(n) >= minPerRequest) process.stdout.write(`  ${pad(perRequest(n).toFixed(2), 6)}  ${k}\n`);
    const misses = [...ics.values()].reduce((a, b) => a + b, 0);
    process.stdout.write(`\nInline-cache misses (to the runtime): ${perRequest(misses).toFixed(2)} per request; by site, ≥ ${minPerRequest} per request:\n`);
    for (const [k, n] of [...ics].sort((a, b) => b[1] - a[1])) if (perRequest(n) >= minPerRequest) process.stdout.write(`  ${pad(perRequest(n).toFixed(2), 6)}  ${k}  in ${siteName.get(k)}\n`);
  }
}
if (args.keep) log(`V8 logs kept in ${logDir}`);
rmSync(tmp, { recursive: true, force: true });
