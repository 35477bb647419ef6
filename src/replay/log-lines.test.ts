import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { logLines, MAX_LINE_BYTES } from './log-lines.js';

async function collect(file: string) {
  const out: { line: number; text: string | null }[] = [];
  for await (const batch of logLines(file)) out.push(...batch);
  return out;
}

test('plain and gzip logs give the same lines, whatever the file is called; empty lines are skipped, CRLF trimmed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'replay-lines-'));
  try {
    const text = '{"a":1}\n\n{"b":"é"}\r\n{"c":3}';
    writeFileSync(join(dir, 'plain.ndjson'), text);
    writeFileSync(join(dir, 'packed.ndjson'), gzipSync(text));
    const want = [{ line: 1, text: '{"a":1}' }, { line: 3, text: '{"b":"é"}' }, { line: 4, text: '{"c":3}' }];
    assert.deepEqual(await collect(join(dir, 'plain.ndjson')), want);
    assert.deepEqual(await collect(join(dir, 'packed.ndjson')), want);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a line longer than the bound is reported as null, not held whole; the next line is read normally', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'replay-lines-'));
  try {
    writeFileSync(join(dir, 'big.ndjson'), `{"a":1}\n${'x'.repeat(MAX_LINE_BYTES * 3)}\n{"b":2}\n`);
    assert.deepEqual(await collect(join(dir, 'big.ndjson')), [{ line: 1, text: '{"a":1}' }, { line: 2, text: null }, { line: 3, text: '{"b":2}' }]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a line and a character cut across read chunks come back whole, plain and gzip', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'replay-lines-'));
  try {
    // Reads are 256 KiB: the first line ends past the first chunk, with the two bytes of "é" either side of it.
    const first = `{"a":"${'x'.repeat(256 * 1024 - 7)}é${'y'.repeat(100)}"}`;
    const text = `${first}\n{"b":"é"}\n`;
    assert.equal(Buffer.from(text).indexOf(Buffer.from('é')), 256 * 1024 - 1);
    writeFileSync(join(dir, 'plain.ndjson'), text);
    writeFileSync(join(dir, 'packed.ndjson'), gzipSync(text));
    const want = [{ line: 1, text: first }, { line: 2, text: '{"b":"é"}' }];
    assert.deepEqual(await collect(join(dir, 'plain.ndjson')), want);
    assert.deepEqual(await collect(join(dir, 'packed.ndjson')), want);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a corrupt gzip file and a missing file reject with the error', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'replay-lines-'));
  try {
    writeFileSync(join(dir, 'bad.gz'), Buffer.concat([gzipSync('{"a":1}\n'.repeat(1000)).subarray(0, 40), Buffer.from('garbage')]));
    await assert.rejects(collect(join(dir, 'bad.gz')), (e: NodeJS.ErrnoException) => typeof e.code === 'string' && e.code.startsWith('Z_'));
    await assert.rejects(collect(join(dir, 'missing.ndjson')), { code: 'ENOENT' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
