#!/usr/bin/env node
// Fails when src/policy (the pure core) reaches for I/O, the environment or a clock.
// eslint enforces the same through no-restricted-imports; this grep also catches dynamic imports and requires.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../src/policy', import.meta.url).pathname;
const forbidden = [
  /\b(?:from|import|require)\s*\(?\s*['"](?:node:)?(?:net|tls|http|https|http2|fs|fs\/promises|child_process|dgram|dns|worker_threads|cluster|perf_hooks)['"]/,
  /['"]undici['"]/,
  /\bprocess\.(?:env|hrtime|uptime|cwd)\b/,
  /\bDate\.now\(/,
  /\bnew Date\(\s*\)/,
  /\bperformance\.now\(/,
];
const offenders = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) { walk(path); continue; }
    if (!path.endsWith('.ts') || path.endsWith('.test.ts')) continue;
    readFileSync(path, 'utf8').split('\n').forEach((line, i) => {
      if (line.trimStart().startsWith('//')) return;
      if (forbidden.some((re) => re.test(line))) offenders.push(`${path}:${i + 1}: ${line.trim()}`);
    });
  }
}
walk(root);
if (offenders.length > 0) {
  console.error('src/policy must stay pure (no sockets, files, clocks, env):');
  for (const o of offenders) console.error('  ' + o);
  process.exit(1);
}
console.log('policy purity: ok (src/policy imports no I/O, env or clock)');
