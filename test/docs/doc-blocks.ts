// Reads the shell blocks of the documentation and what the doc-test convention says about each one
// (docs/README.md, "Runnable documentation"): run, skip with a reason, or start as a server.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';

/** Reasons a shell block may be left out of the doc test; anything else is a mistake in the marking. */
export const SKIP_REASONS = {
  docker: 'needs a container engine (CI runs the compose demo separately)',
  cluster: 'needs a Kubernetes cluster',
  install: 'installs or builds the project (the doc test runs in an installed, built copy)',
  slow: 'runs for minutes (load tests)',
  self: 'runs the test suite that contains the doc test',
} as const;
export type SkipReason = keyof typeof SKIP_REASONS;

export interface DocBlock {
  file: string; // relative to the repository root
  line: number; // 1-based line of the opening fence
  script: string;
  kind: 'run' | 'server' | 'skip';
  skip?: SkipReason;
  ready?: string; // server blocks: URL that answers 200 once the server is up
  timeoutMs: number;
  expect: string[]; // lines of the following ```output block, to appear in order
}

export interface MarkingError { file: string; line: number; message: string }

const SHELL_LANGS = new Set(['sh', 'bash', 'shell']);

/** The documentation files the convention covers. */
export function documentedFiles(root: string): string[] {
  const files = ['README.md', 'certs/README.md'];
  const docs = join(root, 'docs');
  if (existsSync(docs)) for (const f of readdirSync(docs).sort()) if (f.endsWith('.md')) files.push(`docs/${f}`);
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name === 'README.md') files.push(relative(root, p));
    }
  };
  if (existsSync(join(root, 'examples'))) walk(join(root, 'examples'));
  return files.filter((f) => existsSync(join(root, f)));
}

interface Fence { line: number; info: string; body: string[]; endLine: number }

function fences(text: string): Fence[] {
  const lines = text.split('\n');
  const out: Fence[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})(.*)$/.exec(lines[i] ?? '');
    if (!open) continue;
    const ticks = open[1] ?? '```';
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !(lines[j] ?? '').startsWith(ticks); j++) body.push(lines[j] ?? '');
    out.push({ line: i + 1, info: (open[2] ?? '').trim(), body, endLine: j + 1 });
    i = j;
  }
  return out;
}

/** Parses one markdown file into shell blocks; marking mistakes are returned, never ignored. */
export function parseDoc(root: string, file: string): { blocks: DocBlock[]; errors: MarkingError[] } {
  const text = readFileSync(join(root, file), 'utf8');
  const lines = text.split('\n');
  const blocks: DocBlock[] = [];
  const errors: MarkingError[] = [];
  const all = fences(text);
  for (let k = 0; k < all.length; k++) {
    const f = all[k]!;
    const [lang = '', ...tags] = f.info.split(/\s+/).filter(Boolean);
    if (lang === 'output') {
      const prev = all[k - 1];
      const between = prev ? lines.slice(prev.endLine, f.line - 1).every((l) => l.trim() === '') : false;
      const prevLang = prev?.info.split(/\s+/)[0] ?? '';
      if (!prev || !between || !SHELL_LANGS.has(prevLang)) {
        errors.push({ file, line: f.line, message: 'an ```output block must directly follow a shell block' });
      }
      continue;
    }
    if (!SHELL_LANGS.has(lang)) continue;
    const block: DocBlock = { file, line: f.line, script: f.body.join('\n'), kind: 'run', timeoutMs: 60_000, expect: [] };
    for (const tag of tags) {
      const [key, value] = tag.split('=', 2);
      if (key === 'skip' && value && value in SKIP_REASONS) { block.kind = 'skip'; block.skip = value as SkipReason; }
      else if (key === 'server') block.kind = 'server';
      else if (key === 'ready' && value) block.ready = value;
      else if (key === 'timeout' && value && /^\d+s$/.test(value)) block.timeoutMs = Number(value.slice(0, -1)) * 1000;
      else errors.push({ file, line: f.line, message: `unknown doc-test tag '${tag}' (known: skip=${Object.keys(SKIP_REASONS).join('|')}, server, ready=URL, timeout=Ns)` });
    }
    if (block.kind === 'server' && !block.ready) errors.push({ file, line: f.line, message: 'a server block needs ready=URL' });
    const next = all[k + 1];
    if (next && next.info.split(/\s+/)[0] === 'output' && lines.slice(f.endLine, next.line - 1).every((l) => l.trim() === '')) {
      block.expect = next.body.map((l) => l.trim()).filter((l) => l !== '' && l !== '...');
    }
    blocks.push(block);
  }
  return { blocks, errors };
}

/** The first expected line not found (in order) in the output, or undefined when all are there. */
export function missingExpectation(output: string, expect: string[]): string | undefined {
  const lines = output.split('\n');
  let at = 0;
  for (const want of expect) {
    const idx = lines.findIndex((l, i) => i >= at && l.includes(want));
    if (idx < 0) return want;
    at = idx + 1;
  }
  return undefined;
}
