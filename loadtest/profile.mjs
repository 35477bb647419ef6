// Owns profiling under load: starts setups with `node --cpu-prof` (Portcullis and the bare reference proxy),
// drives a point through loader.mjs against each in turn, stops them (each writes its .cpuprofile) and prints
// self time by category, module and function within the measured window, per request and as a share.
// Usage: node loadtest/profile.mjs [--setup pc-10[,bare,...]] [--point h1-get-sat] [--seconds 10] [--dist dist] [--out DIR]
//        node loadtest/profile.mjs --analyze DIR   (re-analyze profiles written earlier; no load)

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pointSpec, runLoader } from './lib/drive.mjs';
import { createEnvironment } from './lib/env.mjs';
import { POINTS } from './lib/plan.mjs';
import { cpuSeconds, loadAverage } from './lib/procfs.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const { values: args } = parseArgs({
  options: {
    setup: { type: 'string', default: 'pc-10' },
    point: { type: 'string', default: 'h1-get-sat' },
    seconds: { type: 'string', default: '10' },
    dist: { type: 'string', default: join(here, '..', 'dist') },
    out: { type: 'string' },
    top: { type: 'string', default: '30' },
    analyze: { type: 'string' },
  },
});
const log = (msg) => process.stderr.write(`[profile] ${msg}\n`);
const profDir = resolve(args.analyze ?? args.out ?? join(mkdtempSync(join(os.tmpdir(), 'portcullis-profile-')), 'cpuprofiles'));
/** Per setup: the loader's result, the measured window (monotonic µs, the profiles' clock), /proc CPU and load. */
const runs = {};
const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);
if (!args.analyze) {
  const setups = args.setup.split(',');
  const tmp = mkdtempSync(join(os.tmpdir(), 'portcullis-profile-'));
  mkdirSync(profDir, { recursive: true });
  const env = await createEnvironment({ dist: resolve(args.dist), tmp, setups, log, cpuProfDir: profDir });
  try {
    const point = POINTS[args.point];
    for (const name of setups) {
      const setup = env.info.setups[name];
      log(`driving ${args.point} against ${name} for ${args.seconds} s`);
      const load = loadAverage();
      const pids = setup.pids();
      const run = { window: {}, load_average_1m: load?.one };
      const cpuOfPids = () => pids.reduce((a, p) => a + (cpuSeconds(p) ?? 0), 0);
      let cpu0 = 0;
      run.result = await runLoader(pointSpec(point, setup, { durationS: Number(args.seconds), warmupS: 1 }), {
        onMeasureStart: () => { run.window.from = monotonicUs(); cpu0 = cpuOfPids(); },
        onMeasureEnd: () => { run.window.to = monotonicUs(); run.proc_cpu_s = cpuOfPids() - cpu0; },
      });
      runs[name] = run;
      log(`${name}: ${Math.round(run.result.rps)} requests/s, p50 ${run.result.latency.p50_ms} ms, p99 ${run.result.latency.p99_ms} ms, `
        + `/proc CPU ${(run.proc_cpu_s * 1e6 / run.result.requests).toFixed(1)} µs per request, load ${load?.one}`);
    }
  } finally {
    // Each process writes its .cpuprofile when it exits: stop them (bounded) even when a loader failed.
    await env.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
  writeFileSync(join(profDir, 'runs.json'), JSON.stringify({ point: args.point, runs }, null, 1));
} else if (existsSync(join(profDir, 'runs.json'))) {
  Object.assign(runs, JSON.parse(readFileSync(join(profDir, 'runs.json'), 'utf8')).runs);
}

/** Self time per function and per module from a V8 .cpuprofile (samples x interval). */
export function analyze(profile, window) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    // Only the measured window when it is known (startup, pre-warm and shutdown are not per-request work).
    if (window && (t < window.from || t > window.to)) continue;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fn = new Map();
  const mod = new Map();
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    const url = cf.url || '(native/VM)';
    const module = url.includes('node_modules/')
      ? url.slice(url.lastIndexOf('node_modules/') + 13).split('/').slice(0, url.includes('node_modules/@') ? 2 : 1).join('/')
      : url.startsWith('node:') ? url : url.includes('/dist') ? url.slice(url.indexOf('/src/') + 1) : url;
    const name = `${cf.functionName || '(anonymous)'} ${module}:${cf.lineNumber + 1}`;
    fn.set(name, (fn.get(name) ?? 0) + us);
    mod.set(module, (mod.get(module) ?? 0) + us);
  }
  // Coarse buckets answer "where does the time go" before the per-function list does.
  const category = (fnName, module) => {
    if (fnName === '(idle)') return 'idle (event loop waiting)';
    if (fnName === '(garbage collector)') return 'garbage collection';
    if (/^(writev|writeLatin1String|writeUtf8String|writeString|writeBuffer|writeAsciiString|writeUcs2String|readFileUtf8|read|close)$/.test(fnName) && module === '(native/VM)') return 'native I/O: socket + TLS writes, log file writes';
    if (module.startsWith('src/')) return 'Portcullis (src/)';
    if (module.startsWith('node:')) return 'Node core JS (http, streams, events, net, tls)';
    if (module === '(native/VM)' || module.startsWith('wasm')) return 'other native / VM / wasm';
    return `dependency: ${module}`;
  };
  const cat = new Map();
  for (const [id, us] of self) {
    const cf = byId.get(id).callFrame;
    const url = cf.url || '(native/VM)';
    const module = url.includes('node_modules/') ? url.slice(url.lastIndexOf('node_modules/') + 13).split('/')[0] : url.startsWith('node:') ? url : url.includes('/src/') ? url.slice(url.indexOf('/src/') + 1) : url === '(native/VM)' ? url : url;
    const c = category(cf.functionName, module);
    cat.set(c, (cat.get(c) ?? 0) + us);
  }
  const top = (m, n) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, us]) => ({ name: k, ms: us / 1000, share: us / total }));
  return { total_ms: total / 1000, categories: top(cat, 20), functions: top(fn, Number(args.top)), modules: top(mod, 25) };
}

const reports = {};
for (const dir of readdirSync(profDir).filter((d) => statSync(join(profDir, d)).isDirectory())) {
  for (const f of readdirSync(join(profDir, dir)).filter((x) => x.endsWith('.cpuprofile'))) {
    const run = runs[dir];
    const a = analyze(JSON.parse(readFileSync(join(profDir, dir, f), 'utf8')), run?.window);
    reports[`${dir}/${f}`] = a;
    // Main-thread time per request (idle excluded); /proc counts every thread (GC helpers, thread pool) too.
    const requests = run?.result?.requests;
    const perRequest = (ms) => (requests ? `${((ms * 1000) / requests).toFixed(1).padStart(6)} µs/req  ` : '');
    const busy = a.categories.filter((c) => !c.name.startsWith('idle')).reduce((x, c) => x + c.ms, 0);
    process.stdout.write(`\n## ${dir}/${f}: ${a.total_ms.toFixed(0)} ms sampled${run?.window ? ' in the measured window' : ''}`
      + (requests ? `; ${requests} requests, main thread busy ${((busy * 1000) / requests).toFixed(1)} µs per request, /proc CPU ${((run.proc_cpu_s * 1e6) / requests).toFixed(1)} µs per request, load ${run.load_average_1m}` : '')
      + '\n\nSelf time by category:\n');
    for (const m of a.categories) process.stdout.write(`  ${(m.share * 100).toFixed(1).padStart(5)}%  ${m.ms.toFixed(0).padStart(6)} ms  ${perRequest(m.ms)}${m.name}\n`);
    process.stdout.write('\nTop modules by self time:\n');
    for (const m of a.modules) process.stdout.write(`  ${(m.share * 100).toFixed(1).padStart(5)}%  ${m.ms.toFixed(0).padStart(6)} ms  ${perRequest(m.ms)}${m.name}\n`);
    process.stdout.write('\nTop functions by self time:\n');
    for (const m of a.functions) process.stdout.write(`  ${(m.share * 100).toFixed(1).padStart(5)}%  ${m.ms.toFixed(0).padStart(6)} ms  ${perRequest(m.ms)}${m.name}\n`);
  }
}
writeFileSync(join(profDir, 'analysis.json'), JSON.stringify({ setups: args.setup, point: args.point, runs, reports }, null, 1));
log(`profiles and analysis.json in ${profDir}`);
