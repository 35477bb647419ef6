// Owns where the peer registry comes from at run time: the PeerSource interface (read now, tell me when it
// may have changed) and its file implementation; a Kubernetes API source would implement the same two calls.
import { watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Code } from '../codes.js';
import { parsePeerFile, type PeerFileResult } from './peers-file.js';

export interface PeerSource {
  /** What /policy and the logs name (`file /etc/portcullis/peers.yaml`). */
  readonly description: string;
  /** The registry now, or the errors that refuse it whole. */
  read(): Promise<PeerFileResult>;
  /** Calls `onChange` whenever the registry may have changed; returns the function that stops watching. */
  watch(onChange: () => void): () => void;
}

/** Reads and validates a registry file; an unreadable file is an error diagnostic, never a throw. */
export async function readPeerFile(path: string): Promise<PeerFileResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const cause = e.code === 'ENOENT' ? 'no such file or directory' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    return { registry: undefined, diagnostics: [{ code: Code.PEERS_READ, severity: 'error', message: `cannot read the peer registry: ${cause}`, origin: { file: path, line: 1, column: 1 }, fieldPath: '' }] };
  }
  return parsePeerFile(text, path);
}

const SAFETY_POLL_MS = 30_000;
const FALLBACK_POLL_MS = 2000;

/**
 * A registry file, watched through its directory (editors and ConfigMap volumes replace files by rename),
 * with a polling safety net for events fs.watch misses.
 */
export function filePeerSource(path: string, opts: { pollIntervalMs?: number } = {}): PeerSource {
  return {
    description: `file ${path}`,
    read: () => readPeerFile(path),
    watch(onChange) {
      let watcher: FSWatcher | undefined;
      try {
        watcher = watch(dirname(path), { persistent: false }, (_event, name) => {
          const base = typeof name === 'string' ? basename(name) : null;
          if (base === null || base === basename(path) || base.startsWith('..')) onChange();
        });
        watcher.on('error', () => { /* the poll keeps working */ });
      } catch {
        watcher = undefined;
      }
      const fingerprint = async (): Promise<string> => {
        try {
          const s = await stat(path);
          return `${s.size}\u0000${s.mtimeMs}\u0000${s.ino}`;
        } catch (err) {
          return `error:${(err as NodeJS.ErrnoException).code ?? ''}`;
        }
      };
      let last: string | undefined;
      void fingerprint().then((fp) => { last ??= fp; });
      const every = opts.pollIntervalMs ?? (watcher ? SAFETY_POLL_MS : FALLBACK_POLL_MS);
      const poll = every > 0 ? setInterval(() => {
        void fingerprint().then((fp) => {
          if (last !== undefined && fp !== last) onChange();
          last = fp;
        });
      }, every) : undefined;
      poll?.unref();
      return () => {
        watcher?.close();
        if (poll) clearInterval(poll);
      };
    },
  };
}
