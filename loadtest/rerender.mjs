// Owns re-rendering a finished run's summary, chart and latest.* from its per-setup JSON files (no load).
// Usage: node loadtest/rerender.mjs <results-dir> <prefix, e.g. 2026-11-21T0644Z-quick> [--no-latest]

import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderMarkdown, renderSvg, summarize } from './lib/report.mjs';

const [dir, prefix, flag] = process.argv.slice(2);
if (!dir || !prefix) {
  process.stderr.write('usage: node loadtest/rerender.mjs <results-dir> <prefix> [--no-latest]\n');
  process.exit(2);
}
const files = readdirSync(dir).filter((f) => f.startsWith(`${prefix}-`) && f.endsWith('.json') && !f.endsWith('-summary.json'));
let meta;
const runs = [];
for (const f of files) {
  const data = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  meta = data.meta;
  runs.push(...data.runs);
}
if (!meta) {
  process.stderr.write(`no ${prefix}-<setup>.json files in ${dir}\n`);
  process.exit(1);
}
const summary = summarize(runs, meta);
writeFileSync(join(dir, `${prefix}-summary.json`), JSON.stringify(summary, null, 1) + '\n');
writeFileSync(join(dir, `${prefix}-summary.md`), renderMarkdown(summary, { chart: `${prefix}-chart.svg`, prefix }));
writeFileSync(join(dir, `${prefix}-chart.svg`), renderSvg(summary));
if (flag !== '--no-latest') {
  copyFileSync(join(dir, `${prefix}-chart.svg`), join(dir, 'latest.svg'));
  writeFileSync(join(dir, 'latest.md'), renderMarkdown(summary, { chart: 'latest.svg', prefix }));
}
process.stdout.write(renderMarkdown(summary, { chart: `${prefix}-chart.svg`, prefix }));
