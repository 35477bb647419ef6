// Owns the configured CRL files: loaded at start (a bad file refuses to start), watched and hot-reloaded
// like the trust bundle; a file that stops parsing keeps its last good lists and says so (security.md §5).

import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { CrlParseError, parseCrlFile, RevocationList, type ParsedCrl } from './crl.js';
import type { IdentityLogger } from './credentials.js';

export interface CrlStoreOptions {
  files: readonly string[];
  logger: IdentityLogger;
  now?: () => number;
  /** Safety poll; default 30 s while every directory is watched, 2 s otherwise; 0 = never. */
  pollIntervalMs?: number;
  /** Debounce for file-system events (default 200 ms). */
  debounceMs?: number;
  watch?: boolean;
}

export interface CrlReloadResult {
  changed: boolean;
  /** One message per file that could not be read or parsed (its last good lists stay in force). */
  errors: string[];
}

interface FileState {
  digest: string;
  crls: ParsedCrl[];
}

export class CrlStore {
  private list: RevocationList;
  private readonly states = new Map<string, FileState>();
  private readonly watchers: FSWatcher[] = [];
  private pollTimer: NodeJS.Timeout | undefined;
  private debounceTimer: NodeJS.Timeout | undefined;
  private inFlight: Promise<CrlReloadResult> | undefined;
  private closed = false;
  readonly stats = { reloads: 0, failures: 0 };

  private constructor(private readonly files: readonly string[], private readonly opts: CrlStoreOptions) {
    this.list = RevocationList.EMPTY;
  }

  /** Reads every file; throws CrlParseError naming the file when one is unreadable or malformed. */
  static async load(opts: CrlStoreOptions): Promise<CrlStore> {
    const files = opts.files.map((f) => resolve(f));
    const store = new CrlStore(files, opts);
    for (const file of files) {
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (err) {
        throw new CrlParseError(`cannot read CRL file ${file}: ${(err as Error).message}`);
      }
      try {
        store.states.set(file, { digest: digestOf(bytes), crls: parseCrlFile(bytes) });
      } catch (err) {
        throw new CrlParseError(`CRL file ${file}: ${(err as Error).message}`);
      }
    }
    store.swap();
    store.warnStale();
    if (files.length > 0) opts.logger.info({ event: 'crls_loaded', files: files.length, crls: store.list.size }, 'loaded certificate revocation lists');
    if (files.length > 0 && opts.watch !== false) store.startWatching();
    return store;
  }

  current(): RevocationList {
    return this.list;
  }

  /** Re-reads every file now (also what watching and polling call). Never throws. */
  reload(): Promise<CrlReloadResult> {
    this.inFlight ??= this.doReload().finally(() => { this.inFlight = undefined; });
    return this.inFlight;
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.splice(0)) w.close();
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
  }

  private async doReload(): Promise<CrlReloadResult> {
    const errors: string[] = [];
    let changed = false;
    for (const file of this.files) {
      let bytes: Buffer;
      try {
        bytes = await readFile(file);
      } catch (err) {
        errors.push(`cannot read CRL file ${file}: ${(err as Error).message}`);
        continue;
      }
      const digest = digestOf(bytes);
      const prior = this.states.get(file);
      if (prior?.digest === digest) continue;
      try {
        this.states.set(file, { digest, crls: parseCrlFile(bytes) });
        changed = true;
      } catch (err) {
        errors.push(`CRL file ${file}: ${(err as Error).message}`);
      }
    }
    if (this.closed) return { changed: false, errors };
    for (const error of errors) {
      this.stats.failures++;
      this.opts.logger.warn({ event: 'crl_reload_failed', error }, 'a CRL file could not be used; keeping its last good lists');
    }
    if (changed) {
      this.swap();
      this.stats.reloads++;
      this.warnStale();
      this.opts.logger.info({ event: 'crls_reloaded', crls: this.list.size, generation: this.list.generation }, 'certificate revocation lists reloaded');
    }
    return { changed, errors };
  }

  private swap(): void {
    const all = [...this.states.values()].flatMap((s) => s.crls);
    this.list = new RevocationList(all, this.list.generation + 1);
  }

  /** A CRL past its nextUpdate still revokes what it lists; say so, since newer revocations are missing. */
  private warnStale(): void {
    const now = (this.opts.now ?? Date.now)();
    const stale = this.list.crls.filter((c) => c.nextUpdateMs !== undefined && c.nextUpdateMs < now).length;
    if (stale > 0) this.opts.logger.warn({ event: 'crl_stale', crls: stale }, 'CRL past its nextUpdate: still applied, but newer revocations are not known');
  }

  private schedule(): void {
    if (this.debounceTimer) clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => void this.reload(), this.opts.debounceMs ?? 200);
    this.debounceTimer.unref();
  }

  private startWatching(): void {
    // Directories, not files: atomic renames and Kubernetes `..data` swaps replace the inode.
    const dirs = new Map<string, Set<string>>();
    for (const f of this.files) dirs.set(dirname(f), (dirs.get(dirname(f)) ?? new Set()).add(basename(f)));
    let unwatched = 0;
    for (const dir of dirs.keys()) {
      try {
        const watcher = watch(dir, { persistent: false }, () => this.schedule());
        watcher.on('error', () => undefined);
        this.watchers.push(watcher);
      } catch {
        unwatched++;
      }
    }
    const pollIntervalMs = this.opts.pollIntervalMs ?? (unwatched === 0 ? 30_000 : 2000);
    if (pollIntervalMs > 0) {
      this.pollTimer = setInterval(() => void this.reload(), pollIntervalMs);
      this.pollTimer.unref();
    }
  }
}

function digestOf(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}
