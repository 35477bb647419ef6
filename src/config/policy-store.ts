// Owns the one mutable cell of the data plane: the current PolicySnapshot, its file watch and reloads, and the
// peer registry compiled into it (docs/cni.md). PC-29 (security.md): validate before swap, swap whole, keep
// the last good snapshot (and the last good registry) on any reload error.

import { watch, type FSWatcher } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { performance } from 'node:perf_hooks';
import { compilePolicies, type StageTiming } from '../policy/compile.js';
import { hasErrors, type Diagnostic } from '../policy/diagnostics.js';
import type { PolicySource } from '../policy/documents-types.js';
import type { CompileOptions, LoadedDocumentSummary, PeerRegistry } from '../policy/ir.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { PeerSource } from './peer-source.js';
import { isPolicyFileName, listPolicyFiles, readPolicySources } from './policy-files.js';
import { Code } from '../codes.js';
import { logDiagnostics } from '../observe/op-log.js';

/** The subset of a pino logger the store needs. */
export interface StoreLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Outcome of one reload attempt: a new snapshot, the last good one kept, or the same revision again. */
export type ReloadResult = 'success' | 'failure' | 'unchanged';

/** What the store tells the metrics about reloads (a narrow view, so config does not depend on observe). */
export interface ReloadRecorder {
  recordPolicyReload: (result: ReloadResult) => void;
  setPolicyRevision: (revision: string) => void;
  /** Every read of the peer registry: a new registry, the same one again, or a refused one (the last good stays). */
  recordPeerReload?: (result: ReloadResult) => void;
}

/** The peer registry on /policy: its source, the registry in force, and the last read. */
export interface PeerRegistryStatus {
  source: string;
  /** Identities and pods of the registry in force. */
  identities: number;
  pods: number;
  /** ISO time the registry in force was read. */
  loadedAt: string;
  /** The last read: `failure` means the registry in force is the last good one and the source is refused. */
  lastReload: { result: ReloadResult; time: string; diagnostics: Diagnostic[] };
}

export interface ReloadReport {
  result: ReloadResult;
  /** ISO time of the attempt. */
  time: string;
  /** Errors of a failed attempt, warnings of a successful one. */
  diagnostics: Diagnostic[];
  /** Revision in force after the attempt. */
  revision: string;
  /** Read + compile wall time. */
  durationMs: number;
  /** Compile stages (synchronous, on the event loop): their sum is the pause a reload causes. */
  stages: StageTiming[];
}

export interface PolicyStoreStatus {
  revision: string;
  /** ISO time the snapshot in force was loaded. */
  loadedAt: string;
  documents: LoadedDocumentSummary[];
  /** Warnings/infos of the snapshot in force. */
  diagnostics: Diagnostic[];
  lastReload: ReloadReport;
  /** Present when a peer registry source is configured. */
  peers?: PeerRegistryStatus;
}

export type SwapListener = (next: PolicySnapshot, previous: PolicySnapshot) => void;

export interface PolicyStore {
  /** O(1); always a complete, frozen snapshot. Read it once per request. */
  current(): PolicySnapshot;
  status(): PolicyStoreStatus;
  /** Called after each swap; returns an unsubscribe function. */
  onSwap(listener: SwapListener): () => void;
  /** Re-reads and recompiles now (SIGHUP, tests); concurrent calls coalesce into one more run. */
  reload(): Promise<ReloadReport>;
  /** Recompiles with new workload facts (relabelled pod); the last good snapshot stays on failure. The peer registry of a configured source stays the store's. */
  setOptions(options: CompileOptions): Promise<ReloadReport>;
  close(): Promise<void>;
}

export interface PolicyStoreOptions {
  paths: readonly string[];
  options: CompileOptions;
  logger?: StoreLogger;
  metrics?: ReloadRecorder;
  /** Wall clock, epoch ms (default Date.now). */
  clock?: () => number;
  /** Watch the paths and reload on change (default true). */
  watch?: boolean;
  /** Quiet time after the last change before reloading (default 200 ms). */
  debounceMs?: number;
  /**
   * Polling period, the safety net for changes fs.watch misses (0 = off). Default: 30 s while every path is
   * watched, 2 s when a watch could not be set up (an idle sidecar should not wake up every 2 s).
   */
  pollIntervalMs?: number;
  /** A set with no policy document at all is refused (default), since it is usually a half-written update. */
  allowEmpty?: boolean;
  /** Injected reader (default readPolicySources). */
  readSources?: (paths: readonly string[]) => Promise<PolicySource[]>;
  /**
   * The peer registry's source: read before every compile, watched like the policy files. A refused registry
   * keeps the last good one in force; at creation it refuses the store. Absent: `options.peers` as given.
   */
  peers?: PeerSource;
}

const SAFETY_POLL_MS = 30_000;
const FALLBACK_POLL_MS = 2000;

export type CreatePolicyStoreResult = { store: PolicyStore } | { diagnostics: Diagnostic[] };

/** Fingerprint of the files on disk: a read is only trusted if it did not change while reading. */
async function fingerprint(paths: readonly string[]): Promise<string> {
  try {
    const files = await listPolicyFiles(paths);
    const parts = await Promise.all(files.map(async (f) => {
      const s = await stat(f);
      return `${f}\u0000${s.size}\u0000${s.mtimeMs}\u0000${s.ino}`;
    }));
    return parts.join('\n');
  } catch (err) {
    return `error:${err instanceof Error ? err.message : String(err)}`;
  }
}

const maxSettleAttempts = 5;

interface Attempt {
  snapshot: PolicySnapshot | undefined;
  diagnostics: Diagnostic[];
  durationMs: number;
  fingerprint: string;
  stages?: StageTiming[];
}

function storeDiagnostic(code: string, message: string, file: string): Diagnostic {
  return { code, severity: 'error', message, origin: { file, line: 1, column: 1 }, fieldPath: '' };
}

/** Reads the files until two fingerprints agree around the read, then compiles on a later tick. */
async function attemptLoad(opts: PolicyStoreOptions, read: (paths: readonly string[]) => Promise<PolicySource[]>): Promise<Attempt> {
  const t0 = performance.now();
  let sources: PolicySource[] | undefined;
  let before = '';
  for (let i = 0; i < maxSettleAttempts; i++) {
    before = await fingerprint(opts.paths);
    try {
      sources = await read(opts.paths);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return { snapshot: undefined, diagnostics: [storeDiagnostic(Code.POLICY_READ, `cannot read policies: ${message}`, opts.paths.join(','))], durationMs: performance.now() - t0, fingerprint: before };
    }
    const after = await fingerprint(opts.paths);
    if (after === before) break;
    if (i === maxSettleAttempts - 1) {
      return { snapshot: undefined, diagnostics: [storeDiagnostic(Code.POLICY_UNSETTLED, 'policy files kept changing while being read; will retry on the next change', opts.paths.join(','))], durationMs: performance.now() - t0, fingerprint: after };
    }
  }
  const read_ = sources as PolicySource[];
  // Compile is synchronous: give pending I/O (requests) a turn first, so a reload is one bounded pause.
  await new Promise<void>((r) => setImmediate(r));
  let result: ReturnType<typeof compilePolicies>;
  try {
    result = compilePolicies(read_, opts.options, { clock: () => performance.now() });
  } catch (err) {
    // A compiler bug must cost a reload, never the process or the snapshot in force.
    const message = err instanceof Error ? err.message : String(err);
    return { snapshot: undefined, diagnostics: [storeDiagnostic(Code.POLICY_INTERNAL, `policy compiler failed: ${message}`, opts.paths.join(','))], durationMs: performance.now() - t0, fingerprint: before };
  }
  const diagnostics = result.diagnostics;
  let snapshot = result.snapshot;
  if (snapshot && !opts.allowEmpty && snapshot.documents.length === 0) {
    diagnostics.push(storeDiagnostic(Code.POLICY_EMPTY_SET, read_.length === 0 ? 'no policy files found' : 'the policy files contain no policy document', opts.paths.join(',')));
    snapshot = undefined;
  }
  return { snapshot: hasErrors(diagnostics) ? undefined : snapshot, diagnostics, durationMs: performance.now() - t0, fingerprint: before, stages: result.timings };
}

// Registries are compared by content: reading the same file again is no change.
const registryDigest = (r: PeerRegistry): string => JSON.stringify([...r.byId]);
const podCount = (r: PeerRegistry): number => {
  let n = 0;
  for (const pods of r.byId.values()) n += pods.length;
  return n;
};
const withPeers = (options: CompileOptions, peers: PeerRegistry | undefined): CompileOptions => (peers === undefined ? options : { ...options, peers });

/** Initial load (refuses on errors: returns the diagnostics), then watches and hot-reloads. */
export async function createPolicyStore(opts: PolicyStoreOptions): Promise<CreatePolicyStoreResult> {
  const clock = opts.clock ?? Date.now;
  const read = opts.readSources ?? readPolicySources;
  // The registry in force and its digest; a newer one read from the source is committed with the snapshot it compiled into.
  let peers: PeerRegistry | undefined = opts.options.peers;
  let peerDigest = peers === undefined ? '' : registryDigest(peers);
  let peerStatus: PeerRegistryStatus | undefined;
  if (opts.peers) {
    const r = await opts.peers.read();
    if (!r.registry) {
      opts.metrics?.recordPeerReload?.('failure');
      return { diagnostics: r.diagnostics };
    }
    peers = r.registry;
    peerDigest = registryDigest(peers);
    const time = new Date(clock()).toISOString();
    peerStatus = { source: opts.peers.description, identities: peers.byId.size, pods: podCount(peers), loadedAt: time, lastReload: { result: 'success', time, diagnostics: r.diagnostics } };
    opts.metrics?.recordPeerReload?.('success');
    opts.logger?.info({ event: 'peers_loaded', source: opts.peers.description, identities: peerStatus.identities, pods: peerStatus.pods }, 'peer registry loaded');
  }
  const first = await attemptLoad({ ...opts, options: withPeers(opts.options, peers) }, read);
  if (!first.snapshot) {
    opts.metrics?.recordPolicyReload('failure');
    return { diagnostics: first.diagnostics };
  }
  let snapshot: PolicySnapshot = first.snapshot;
  let loadedAt = new Date(clock()).toISOString();
  let lastReload: ReloadReport = { result: 'success', time: loadedAt, diagnostics: first.diagnostics, revision: snapshot.revision, durationMs: first.durationMs, stages: first.stages ?? [] };
  let lastFingerprint = first.fingerprint;
  let compileOptions = opts.options;
  opts.metrics?.recordPolicyReload('success');
  opts.metrics?.setPolicyRevision(snapshot.revision);
  opts.logger?.info({ revision: snapshot.revision, documents: snapshot.documents.length, durationMs: Math.round(first.durationMs), warnings: first.diagnostics.length }, 'policy loaded');
  logDiagnostics(opts.logger, first.diagnostics, 'policy_warning');

  const listeners = new Set<SwapListener>();
  let closed = false;
  let running: Promise<ReloadReport> | undefined;

  /** Reads the peer source: the registry to compile with (a new one, or the one in force). */
  async function readPeers(): Promise<{ registry: PeerRegistry | undefined; digest: string }> {
    const source = opts.peers;
    if (!source || !peerStatus) return { registry: peers, digest: peerDigest };
    const r = await source.read();
    const time = new Date(clock()).toISOString();
    if (!r.registry) {
      peerStatus = { ...peerStatus, lastReload: { result: 'failure', time, diagnostics: r.diagnostics } };
      opts.metrics?.recordPeerReload?.('failure');
      opts.logger?.error({ event: 'peers_reload_failed', source: source.description, diagnostics: r.diagnostics.filter((d) => d.severity === 'error').slice(0, 50) }, 'peer registry refused; keeping the last good registry');
      logDiagnostics(opts.logger, r.diagnostics, 'peers_reload_diagnostic');
      return { registry: peers, digest: peerDigest };
    }
    const digest = registryDigest(r.registry);
    if (digest === peerDigest) {
      peerStatus = { ...peerStatus, lastReload: { result: 'unchanged', time, diagnostics: r.diagnostics } };
      opts.metrics?.recordPeerReload?.('unchanged');
      return { registry: peers, digest: peerDigest };
    }
    return { registry: r.registry, digest };
  }

  /** The new registry compiled into the snapshot in force: it is in force too. */
  function commitPeers(registry: PeerRegistry | undefined, digest: string): void {
    if (!opts.peers || !peerStatus || registry === undefined || digest === peerDigest) return;
    const time = new Date(clock()).toISOString();
    peers = registry;
    peerDigest = digest;
    peerStatus = { source: opts.peers.description, identities: registry.byId.size, pods: podCount(registry), loadedAt: time, lastReload: { result: 'success', time, diagnostics: [] } };
    opts.metrics?.recordPeerReload?.('success');
    opts.logger?.info({ event: 'peers_reloaded', source: opts.peers.description, identities: peerStatus.identities, pods: peerStatus.pods, revision: snapshot.revision }, 'peer registry reloaded; policies recompiled');
  }

  async function runOnce(): Promise<ReloadReport> {
    const nextPeers = await readPeers();
    const attempt = await attemptLoad({ ...opts, options: withPeers(compileOptions, nextPeers.registry) }, read);
    const time = new Date(clock()).toISOString();
    lastFingerprint = attempt.fingerprint;
    if (closed) return lastReload;
    if (!attempt.snapshot) {
      lastReload = { result: 'failure', time, diagnostics: attempt.diagnostics, revision: snapshot.revision, durationMs: attempt.durationMs, stages: attempt.stages ?? [] };
      opts.metrics?.recordPolicyReload('failure');
      opts.logger?.error({ revision: snapshot.revision, diagnostics: attempt.diagnostics.filter((d) => d.severity === 'error').slice(0, 50) }, 'policy reload failed; keeping the last good snapshot');
      logDiagnostics(opts.logger, attempt.diagnostics, 'policy_reload_diagnostic');
      return lastReload;
    }
    if (attempt.snapshot.revision === snapshot.revision) {
      lastReload = { result: 'unchanged', time, diagnostics: attempt.diagnostics, revision: snapshot.revision, durationMs: attempt.durationMs, stages: attempt.stages ?? [] };
      opts.metrics?.recordPolicyReload('unchanged');
      commitPeers(nextPeers.registry, nextPeers.digest);
      return lastReload;
    }
    const previous = snapshot;
    snapshot = attempt.snapshot; // the swap: one assignment, readers see old or new, never a mix
    loadedAt = time;
    lastReload = { result: 'success', time, diagnostics: attempt.diagnostics, revision: snapshot.revision, durationMs: attempt.durationMs, stages: attempt.stages ?? [] };
    opts.metrics?.recordPolicyReload('success');
    opts.metrics?.setPolicyRevision(snapshot.revision);
    commitPeers(nextPeers.registry, nextPeers.digest);
    opts.logger?.info({ revision: snapshot.revision, previous: previous.revision, documents: snapshot.documents.length, durationMs: Math.round(attempt.durationMs), warnings: attempt.diagnostics.length }, 'policy reloaded');
    logDiagnostics(opts.logger, attempt.diagnostics, 'policy_warning');
    for (const l of listeners) {
      try { l(snapshot, previous); } catch (err) { opts.logger?.error({ err }, 'policy swap listener failed'); }
    }
    return lastReload;
  }

  let queued: Promise<ReloadReport> | undefined;
  /** One reload at a time; calls during a run share one follow-up run that sees their change. */
  function reload(): Promise<ReloadReport> {
    if (!running) {
      running = runOnce().finally(() => { running = undefined; });
      return running;
    }
    queued ??= running.catch(() => undefined).then(() => { queued = undefined; return reload(); });
    return queued;
  }

  // --- watching
  const watchers: FSWatcher[] = [];
  let stopPeerWatch: (() => void) | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let firstPendingAt: number | undefined;
  let poll: NodeJS.Timeout | undefined;
  const debounceMs = opts.debounceMs ?? 200;
  const schedule = () => {
    if (closed) return;
    if (debounce) clearTimeout(debounce);
    // Bounded debounce: a steady stream of events can delay a reload by at most five quiet periods.
    const now = performance.now();
    firstPendingAt ??= now;
    const wait = Math.max(0, Math.min(debounceMs, firstPendingAt + 5 * debounceMs - now));
    debounce = setTimeout(() => { debounce = undefined; firstPendingAt = undefined; void reload(); }, wait);
    debounce.unref();
  };
  if (opts.watch !== false) {
    stopPeerWatch = opts.peers?.watch(schedule);
    let unwatched = 0;
    for (const p of opts.paths) {
      try {
        // A file is watched through its directory: editors and ConfigMaps replace files by rename.
        // Only events that can change the policy set count, so busy neighbours (a decision log written
        // next to the policies) never hold a reload back.
        const isDirectory = (await stat(p)).isDirectory();
        const relevant = (name: string | null): boolean => {
          if (name === null) return true;
          const base = basename(name);
          if (base.startsWith('..')) return true; // ConfigMap volumes swap a `..data` symlink
          return isDirectory ? isPolicyFileName(base) || !base.includes('.') : base === basename(p);
        };
        const w = watch(isDirectory ? p : dirname(p), { recursive: isDirectory, persistent: false }, (_event, name) => {
          if (relevant(typeof name === 'string' ? name : null)) schedule();
        });
        w.on('error', () => { /* the polling fallback keeps working */ });
        watchers.push(w);
      } catch {
        // recursive watch unsupported or path gone: the poll below still notices changes
        unwatched++;
      }
    }
    const every = opts.pollIntervalMs ?? (unwatched === 0 ? SAFETY_POLL_MS : FALLBACK_POLL_MS);
    if (every > 0) {
      let polling = false;
      poll = setInterval(() => {
        if (polling || running) return;
        polling = true;
        void fingerprint(opts.paths).then((fp) => { if (fp !== lastFingerprint) schedule(); }).finally(() => { polling = false; });
      }, every);
      poll.unref();
    }
  }

  const store: PolicyStore = {
    current: () => snapshot,
    status: () => ({ revision: snapshot.revision, loadedAt, documents: snapshot.documents, diagnostics: snapshot.diagnostics, lastReload, ...(peerStatus ? { peers: peerStatus } : {}) }),
    onSwap(listener) { listeners.add(listener); return () => { listeners.delete(listener); }; },
    reload,
    setOptions(options) { compileOptions = options; return reload(); },
    async close() {
      closed = true;
      if (debounce) clearTimeout(debounce);
      if (poll) clearInterval(poll);
      for (const w of watchers) w.close();
      stopPeerWatch?.();
      listeners.clear();
      if (queued) await queued.catch(() => undefined);
      if (running) await running.catch(() => undefined);
    },
  };
  return { store };
}
