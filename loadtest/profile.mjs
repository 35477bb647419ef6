// Owns profiling Portcullis under load: starts one setup with `node --cpu-prof`, drives a point through
// loader.mjs, stops the sidecar (which writes the .cpuprofile) and prints top self time by function and module.
// Usage: node loadtest/profile.mjs [--setup pc-10] [--point h1-get-sat] [--seconds 10] [--dist dist] [--out DIR]
//        node loadtest/profile.mjs --analyze DIR   (re-analyze profiles written earlier; no load)

import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createEnvironment } from './lib/env.mjs';
import { POINTS } from './lib/plan.mjs';

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
let result = null;
if (!args.analyze) {
  const tmp = mkdtempSync(join(os.tmpdir(), 'portcullis-profile-'));
  mkdirSync(profDir, { recursive: true });
  const env = await createEnvironment({ dist: resolve(args.dist), tmp, setups: [args.setup], log, cpuProfDir: profDir });
  try {
    const setup = env.info.setups[args.setup];
    const point = POINTS[args.point];
    const endpoint = setup.endpoints[point.endpoint];
    const spec = { ...point.loader, url: endpoint.url + (point.path ?? ''), tls: endpoint.tls, headers: setup.headers, durationS: Number(args.seconds), warmupS: 1 };
    log(`driving ${args.point} against ${args.setup} for ${args.seconds} s`);
    result = await new Promise((res, rej) => {
      const child = spawn(process.execPath, [join(here, 'loader.mjs'), JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d) => { out += d; });
      const timeout = setTimeout(() => child.kill('SIGKILL'), (spec.durationS + spec.warmupS + 60) * 1000);
      child.once('exit', (code) => {
        clearTimeout(timeout);
        if (code === 0) res(JSON.parse(out.split('\n').reverse().find((l) => l.startsWith('{'))));
        else rej(new Error(`loader exited ${code}`));
      });
    });
    log(`${Math.round(result.rps)} requests/s, p50 ${result.latency.p50_ms} ms, p99 ${result.latency.p99_ms} ms`);
  } finally {
    // The sidecar writes its .cpuprofile when it exits: stop it (bounded) even when the loader failed.
    await env.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Self time per function and per module from a V8 .cpuprofile (samples x interval). */
export function analyze(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
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
    const a = analyze(JSON.parse(readFileSync(join(profDir, dir, f), 'utf8')));
    reports[`${dir}/${f}`] = a;
    process.stdout.write(`\n## ${dir}/${f}: ${a.total_ms.toFixed(0)} ms sampled\n\nSelf time by category:\n`);
    for (const m of a.categories) process.stdout.write(`  ${(m.share * 100).toFixed(1).padStart(5)}%  ${m.ms.toFixed(0).padStart(6)} ms  ${m.name}\n`);
    process.stdout.write('\nTop modules by self time:\n');
    for (const m of a.modules) process.stdout.write(`  ${(m.share * 100).toFixed(1).padStart(5)}%  ${m.ms.toFixed(0).padStart(6)} ms  ${m.name}\n`);
    process.stdout.write('\nTop functions by self time:\n');
    for (const m of a.functions) process.stdout.write(`  ${(m.share * 100).toFixed(1).padStart(5)}%  ${m.ms.toFixed(0).padStart(6)} ms  ${m.name}\n`);
  }
}
writeFileSync(join(profDir, 'analysis.json'), JSON.stringify({ setup: args.setup, point: args.point, result, reports }, null, 1));
log(`profiles and analysis.json in ${profDir}`);
