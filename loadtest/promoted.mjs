#!/usr/bin/env node
// Owns finding what reaches old space: starts the setups with V8's sampling heap profiler keeping only objects a
// minor GC did not free, drives a point against each, and prints those bytes per request by allocation site and stack.
// Usage: node loadtest/promoted.mjs [--setups pc-10[,bare]] [--point h1-get-sat] [--seconds 20] [--top 20] [--depth 4]
//        [--dist dist] [--out DIR] [--all]
// --all counts every allocation, what minor GCs free included: bytes allocated per request, by site.
// Objects that died young never show; objects still live at the end (connections, modules, caches) show beside
// what was promoted and later freed by a mark-compact, so run long enough for the per-request part to dominate.

import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { pointSpec, runLoader } from './lib/drive.mjs';
import { createEnvironment } from './lib/env.mjs';
import { POINTS } from './lib/plan.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const { values: args } = parseArgs({
  options: {
    setups: { type: 'string', default: 'pc-10' },
    point: { type: 'string', default: 'h1-get-sat' },
    seconds: { type: 'string', default: '20' },
    top: { type: 'string', default: '20' },
    depth: { type: 'string', default: '4' },
    dist: { type: 'string', default: join(here, '..', 'dist') },
    out: { type: 'string' },
    all: { type: 'boolean', default: false },
  },
});
const log = (m) => process.stderr.write(`[promoted ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const point = POINTS[args.point];
if (!point) throw new Error(`unknown --point ${args.point}`);
const setups = args.setups.split(',');
const tmp = mkdtempSync(join(os.tmpdir(), 'portcullis-promoted-'));
const outDir = resolve(args.out ?? join(tmp, 'profiles'));
mkdirSync(outDir, { recursive: true });

const preload = join(here, 'lib', 'heap-sampling-preload.mjs');
// One profile file per setup: the preload reads its path from the environment the setup's process inherits.
const outFile = (name) => join(outDir, `${name}.heapprofile`);

/** Bytes by allocation site and by the innermost `depth` frames, from a sampling heap profile. */
function aggregate(profile) {
  const bySite = new Map();
  const byStack = new Map();
  let total = 0;
  const frame = (n) => `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^file:\/\//, '')}:${n.callFrame.lineNumber + 1}`;
  const walk = (node, stack) => {
    const here = [frame(node), ...stack];
    if (node.selfSize > 0) {
      total += node.selfSize;
      bySite.set(here[0], (bySite.get(here[0]) ?? 0) + node.selfSize);
      const key = here.slice(0, Number(args.depth)).join(' < ');
      byStack.set(key, (byStack.get(key) ?? 0) + node.selfSize);
    }
    for (const c of node.children) walk(c, here);
  };
  walk(profile.head, []);
  return { total, bySite, byStack };
}

const env = await createEnvironment({ dist: resolve(args.dist), tmp, setups, log, nodeOptions: [`--import=${preload}`], childEnv: (name) => (setups.includes(name) ? { PORTCULLIS_HEAP_SAMPLING_OUT: outFile(name), ...(args.all ? { PORTCULLIS_HEAP_SAMPLING_ALL: '1' } : {}) } : undefined) });
const reports = [];
try {
  for (const name of setups) {
    const setup = env.info.setups[name];
    log(`driving ${args.point} against ${name} for ${args.seconds} s`);
    const result = await runLoader(pointSpec(point, setup, { durationS: Number(args.seconds), warmupS: 1 }));
    for (const pid of setup.pids()) process.kill(pid, 'SIGUSR2');
    for (let i = 0; i < 100 && !existsSync(outFile(name)); i++) await new Promise((r) => setTimeout(r, 100));
    if (!existsSync(outFile(name))) throw new Error(`${name}: no heap profile written (is it a Node setup?)`);
    await new Promise((r) => setTimeout(r, 500));
    reports.push({ name, requests: result.requests, ...aggregate(JSON.parse(readFileSync(outFile(name), 'utf8'))) });
  }
} finally {
  await env.stop();
  if (!args.out) rmSync(tmp, { recursive: true, force: true });
}

const top = Number(args.top);
const perRequest = (bytes, requests) => `${(bytes / Math.max(1, requests)).toFixed(0).padStart(6)} B/req`;
for (const r of reports) {
  process.stdout.write(`\n## ${r.name}: ${args.point}, ${r.requests} requests; ${args.all ? 'allocated' : 'objects that outlived a minor GC'}: ${perRequest(r.total, r.requests)} (${(r.total / 1e6).toFixed(1)} MB sampled)\n\nBy allocation site:\n`);
  for (const [k, v] of [...r.bySite].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`  ${perRequest(v, r.requests)}  ${k}\n`);
  process.stdout.write(`\nBy stack (innermost ${args.depth} frames):\n`);
  for (const [k, v] of [...r.byStack].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`  ${perRequest(v, r.requests)}  ${k}\n`);
}
