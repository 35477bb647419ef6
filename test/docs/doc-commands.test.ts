// Runs every runnable shell block of the documentation (convention: docs/README.md) in a temporary copy
// of the built project: a non-zero exit, a server that never gets ready, or missing documented output fails.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { repoRoot } from '../helpers/paths.js';
import { documentedFiles, missingExpectation, parseDoc, type DocBlock } from './doc-blocks.js';

const root = repoRoot();
const NOT_COPIED = new Set(['node_modules', '.git', '.demo', 'coverage']);

function copyProject(): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-doc-'));
  cpSync(root, dir, {
    recursive: true,
    filter: (src) => {
      const top = relative(root, src).split(sep)[0] ?? '';
      return !NOT_COPIED.has(top) && !top.startsWith('dist-') && !src.endsWith('.tsbuildinfo');
    },
  });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  // `portcullis` on PATH, as `npm link` (README) provides it.
  const bin = join(dir, '.doc-test-bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'portcullis'), `#!/bin/sh\nexec "${process.execPath}" "${join(dir, 'dist/src/main.js')}" "$@"\n`);
  chmodSync(join(bin, 'portcullis'), 0o755);
  return dir;
}

function env(dir: string): NodeJS.ProcessEnv {
  const e: NodeJS.ProcessEnv = { ...process.env, PATH: `${join(dir, '.doc-test-bin')}:${process.env['PATH'] ?? ''}` };
  delete e['NODE_TEST_CONTEXT'];
  delete e['NODE_OPTIONS'];
  return e;
}

function where(b: DocBlock): string {
  return `${b.file}:${b.line}`;
}

function runBlock(dir: string, b: DocBlock): Promise<{ code: number | null; output: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', b.script], { cwd: dir, env: env(dir), detached: true });
    let output = '';
    child.stdout.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { output += d.toString(); });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; killGroup(child, 'SIGKILL'); }, b.timeoutMs);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, output, timedOut }); });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try { if (child.pid) process.kill(-child.pid, signal); } catch { /* already gone */ }
}

interface Server { block: DocBlock; child: ChildProcess; output: () => string; exited: () => boolean }

async function startServer(dir: string, b: DocBlock): Promise<Server> {
  const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', b.script], { cwd: dir, env: env(dir), detached: true });
  let output = '';
  let exited = false;
  child.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
  child.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
  child.on('exit', () => { exited = true; });
  const deadline = Date.now() + Math.min(b.timeoutMs, 30_000);
  for (;;) {
    if (exited) break;
    try {
      const r = await fetch(b.ready!, { signal: AbortSignal.timeout(1000) });
      await r.body?.cancel();
      if (r.status === 200) return { block: b, child, output: () => output, exited: () => exited };
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  killGroup(child, 'SIGKILL');
  throw new Error(`${where(b)}: server ${exited ? 'exited' : 'was not ready'} (${b.ready}):\n${b.script}\n--- output ---\n${output}`);
}

async function stopServer(s: Server): Promise<void> {
  if (s.exited()) return;
  killGroup(s.child, 'SIGTERM');
  for (let i = 0; i < 100 && !s.exited(); i++) await new Promise((r) => setTimeout(r, 100));
  if (!s.exited()) killGroup(s.child, 'SIGKILL');
}

// Server blocks listen on the documented (fixed) ports: one documentation file with servers at a time,
// across processes too (another checkout's test run), through an atomic mkdir lock.
const LOCK = join(tmpdir(), 'portcullis-doc-test-servers.lock');
async function withPortLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 300_000;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(join(LOCK, 'pid'), String(process.pid));
      break;
    } catch {
      let holder = 0;
      try { holder = Number(readFileSync(join(LOCK, 'pid'), 'utf8')); } catch { /* being created */ }
      let alive = true;
      if (holder > 0) { try { process.kill(holder, 0); } catch { alive = false; } }
      if (!alive) { rmSync(LOCK, { recursive: true, force: true }); continue; }
      if (Date.now() > deadline) throw new Error(`doc test: port lock ${LOCK} held too long`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try { return await fn(); } finally { rmSync(LOCK, { recursive: true, force: true }); }
}

async function runFile(blocks: DocBlock[]): Promise<void> {
  const dir = copyProject();
  const servers: Server[] = [];
  try {
    for (const b of blocks) {
      if (b.kind === 'skip') continue;
      if (b.kind === 'server') { servers.push(await startServer(dir, b)); continue; }
      const r = await runBlock(dir, b);
      const context = `${where(b)}\n${b.script}\n--- output ---\n${r.output}${servers.map((s) => `\n--- server ${where(s.block)} ---\n${s.output()}`).join('')}`;
      assert.ok(!r.timedOut, `timed out after ${b.timeoutMs} ms: ${context}`);
      assert.equal(r.code, 0, `exit ${r.code}: ${context}`);
      const missing = missingExpectation(r.output, b.expect);
      assert.equal(missing, undefined, `documented output line not printed (in order): ${JSON.stringify(missing)}\n${context}`);
    }
    for (const s of servers) assert.ok(!s.exited(), `${where(s.block)}: server exited before the file's commands finished:\n${s.output()}`);
  } finally {
    for (const s of servers) await stopServer(s);
    rmSync(dir, { recursive: true, force: true });
  }
}

const parsed = documentedFiles(root).map((f) => ({ file: f, ...parseDoc(root, f) }));

describe('documentation commands run verbatim', { concurrency: 4 }, () => {
  it('every shell block is marked with known doc-test tags', () => {
    const errors = parsed.flatMap((p) => p.errors).map((e) => `${e.file}:${e.line}: ${e.message}`);
    assert.deepEqual(errors, []);
  });
  for (const p of parsed) {
    const runnable = p.blocks.filter((b) => b.kind !== 'skip');
    if (runnable.length === 0) continue;
    const hasServer = runnable.some((b) => b.kind === 'server');
    it(`${p.file}: ${runnable.length} block(s)`, { timeout: 300_000 }, () =>
      hasServer ? withPortLock(() => runFile(p.blocks)) : runFile(p.blocks));
  }
});
