// Owns reading policy paths (files and directories, recursively) into PolicySources for the pure core;
// the CLI and the reload watcher share it so both see the same files in the same order.

import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { PolicySource } from '../policy/documents-types.js';

const policyFile = /\.(ya?ml|json)$/i;

/** Whether a file name can be part of a policy set read from a directory (`.yaml`, `.yml`, `.json`). */
export function isPolicyFileName(name: string): boolean {
  return policyFile.test(name);
}

export async function listPolicyFiles(paths: readonly string[]): Promise<string[]> {
  const files: string[] = [];
  async function walk(path: string, explicit: boolean): Promise<void> {
    const info = await stat(path);
    if (info.isDirectory()) {
      const names = (await readdir(path)).sort();
      for (const name of names) if (!name.startsWith('.')) await walk(join(path, name), false);
    } else if (explicit || policyFile.test(path)) {
      files.push(path);
    }
  }
  for (const p of paths) await walk(p, true);
  return files;
}

/** Reads every policy file; a missing path rejects with an error naming it. */
export async function readPolicySources(paths: readonly string[]): Promise<PolicySource[]> {
  const files = await listPolicyFiles(paths);
  return Promise.all(files.map(async (file) => ({ file, text: await readFile(file, 'utf8') })));
}
