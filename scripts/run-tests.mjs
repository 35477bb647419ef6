#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with node:test. Unit tests live beside the code,
// conformance and integration tests under test/. `--only unit|conformance|integration` narrows the set.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const dist = new URL('../dist', import.meta.url).pathname;
const onlyIdx = process.argv.indexOf('--only');
const only = onlyIdx >= 0 ? process.argv[onlyIdx + 1] : undefined;
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) { walk(path); continue; }
    if (path.endsWith('.test.js')) files.push(path);
  }
}
walk(dist);
const selected = files.filter((f) => {
  const rel = relative(dist, f);
  if (!only) return true;
  if (only === 'unit') return rel.startsWith('src/');
  return rel.startsWith(`test/${only}/`);
}).sort();
if (selected.length === 0) { console.error('no test files found under dist/'); process.exit(1); }
// A file's timeout only stops a hung file; the documentation-commands file runs every CLI command the docs
// show and needs about a minute on an idle machine, so a loaded one must not cut it off at two.
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=2', '--test-timeout=300000', ...selected], { stdio: 'inherit' });
process.exit(r.status ?? 1);
