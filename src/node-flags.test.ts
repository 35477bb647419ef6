import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../test/helpers/paths.js';
import { portcullisNodeFlags } from './node-flags.js';

test('the bin shebang and the Dockerfile entrypoint launch node with the flags of node-flags.ts', () => {
  const root = repoRoot();
  const shebang = readFileSync(join(root, 'src', 'main.ts'), 'utf8').split('\n')[0] ?? '';
  const entrypoint = readFileSync(join(root, 'Dockerfile'), 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT')) ?? '';
  for (const flag of portcullisNodeFlags) {
    assert.ok(shebang.split(' ').includes(flag), `shebang "${shebang}" lacks ${flag}`);
    assert.ok(entrypoint.includes(`"${flag}"`), `Dockerfile "${entrypoint}" lacks ${flag}`);
  }
});
