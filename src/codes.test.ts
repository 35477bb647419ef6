import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Code } from './codes.js';

test('every code is PRT_ plus its name, and no two names share a code', () => {
  for (const [name, code] of Object.entries(Code)) assert.equal(code, `PRT_${name}`);
  assert.equal(new Set(Object.values(Code)).size, Object.keys(Code).length);
});

test('every PRT_ code the sources mention is a row of the table', () => {
  const srcRoot = new URL('../../src', import.meta.url).pathname;
  const known = new Set<string>(Object.values(Code));
  const unknown: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) { walk(path); continue; }
      if (!name.endsWith('.ts') || name.endsWith('.test.ts')) continue;
      for (const m of readFileSync(path, 'utf8').matchAll(/['"`](PRT_[A-Z0-9_]+)['"`]/g)) if (!known.has(m[1] as string)) unknown.push(`${path}: ${m[1]}`);
    }
  };
  walk(srcRoot);
  assert.deepEqual(unknown, []);
});
