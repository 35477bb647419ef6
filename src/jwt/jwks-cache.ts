// Owns the per-URI JWKS cache: TTL, background refresh, rate-limited refetch on an unknown kid, stale keys
// served for a bounded grace after refreshes fail, then fail closed (security.md PC-27, §5). One cache may serve
// the authenticators of several policy snapshots: a URI stays (warm, refreshed) while any of them registered it.

import { parseKeySet, type KeySet } from './keys.js';

export interface JwksCacheOptions {
  now: () => number;
  fetchJwks: (uri: string, timeoutMs: number) => Promise<string>;
  cacheTtlMs: number;
  refreshIntervalMs: number;
  staleGraceMs: number;
  unknownKidMinIntervalMs: number;
  /** After a failed fetch, callers do not trigger another one for this long (no fetch storm). */
  retryAfterFailureMs: number;
  /** Called on each fetch failure (for logs/metrics); must not throw. */
  onFetchError?: (uri: string, error: unknown) => void;
}

interface Entry {
  uri: string;
  /** Registrations not yet released (an authenticator per provider using the URI). */
  refs: number;
  timeoutMs: number;
  keys: KeySet | null;
  /** When the current keys stop being fresh (fetch time + TTL). */
  expiresAt: number;
  lastAttemptAt: number;
  lastAttemptFailed: boolean;
  lastUnknownKidFetchAt: number;
  inflight: Promise<void> | null;
  timer: NodeJS.Timeout | null;
  fetchCount: number;
  lastError: string | null;
}

export type KeySetLookup = { kind: 'keys'; keys: KeySet; stale: boolean } | { kind: 'unavailable'; error: string };

export class JwksCache {
  private readonly entries = new Map<string, Entry>();
  private closed = false;

  constructor(private readonly options: JwksCacheOptions) {}

  /**
   * Registers a URI, starts its first fetch and its background refresh timer; a URI already registered keeps
   * its keys (the latest fetch timeout applies). Each register is undone by one release().
   */
  register(uri: string, timeoutMs: number): void {
    if (this.closed) return;
    const known = this.entries.get(uri);
    if (known) {
      known.refs++;
      known.timeoutMs = timeoutMs;
      return;
    }
    const entry: Entry = {
      uri,
      refs: 1,
      timeoutMs,
      keys: null,
      expiresAt: 0,
      lastAttemptAt: Number.NEGATIVE_INFINITY,
      lastAttemptFailed: false,
      lastUnknownKidFetchAt: Number.NEGATIVE_INFINITY,
      inflight: null,
      timer: null,
      fetchCount: 0,
      lastError: null,
    };
    this.entries.set(uri, entry);
    void this.refresh(entry);
    if (this.options.refreshIntervalMs > 0) {
      entry.timer = setInterval(() => void this.refresh(entry), this.options.refreshIntervalMs);
      entry.timer.unref();
    }
  }

  /** The keys for a URI when they are fresh: what get() would answer at once, without a promise (else undefined). */
  fresh(uri: string): KeySet | undefined {
    const entry = this.entries.get(uri);
    if (entry === undefined || entry.keys === null || this.options.now() >= entry.expiresAt) return undefined;
    return entry.keys;
  }

  /** Current keys for a URI: fresh, or stale within the grace, else one (rate-limited) fetch, else unavailable. */
  async get(uri: string): Promise<KeySetLookup> {
    const entry = this.entries.get(uri);
    if (entry === undefined) return { kind: 'unavailable', error: 'JWKS URI not registered' };
    const now = this.options.now();
    if (entry.keys !== null && now < entry.expiresAt) return { kind: 'keys', keys: entry.keys, stale: false };
    if (entry.inflight !== null) {
      await entry.inflight;
    } else if (this.mayAttempt(entry, now)) {
      if (entry.keys !== null && now < entry.expiresAt + this.options.staleGraceMs) {
        // Stale-while-revalidate: this request is served from the stale set, the refresh runs behind it.
        void this.refresh(entry);
      } else {
        await this.refresh(entry);
      }
    }
    return this.lookup(entry);
  }

  /**
   * A token named a kid (or alg) the set lacks: refetch once, at most every unknownKidMinIntervalMs per URI,
   * so a stream of forged kids cannot turn Portcullis into a fetch amplifier. Returns the (maybe new) keys.
   */
  async refetchForUnknownKid(uri: string): Promise<KeySetLookup> {
    const entry = this.entries.get(uri);
    if (entry === undefined) return { kind: 'unavailable', error: 'JWKS URI not registered' };
    const now = this.options.now();
    if (entry.inflight !== null) {
      await entry.inflight;
    } else if (now - entry.lastUnknownKidFetchAt >= this.options.unknownKidMinIntervalMs) {
      entry.lastUnknownKidFetchAt = now;
      await this.refresh(entry);
    }
    return this.lookup(entry);
  }

  /** Undoes one register(): a URI nobody uses any more stops refreshing and is forgotten. */
  release(uri: string): void {
    const entry = this.entries.get(uri);
    if (entry === undefined || --entry.refs > 0) return;
    if (entry.timer !== null) clearInterval(entry.timer);
    this.entries.delete(uri);
  }

  /** Fetch counters for diagnostics and tests. */
  stats(uri: string): { fetches: number; lastError: string | null; hasKeys: boolean } | undefined {
    const entry = this.entries.get(uri);
    return entry && { fetches: entry.fetchCount, lastError: entry.lastError, hasKeys: entry.keys !== null };
  }

  /** Waits for fetches in flight (tests and `check` use it to start from a warm cache). */
  async settle(): Promise<void> {
    await Promise.all([...this.entries.values()].map((e) => e.inflight ?? Promise.resolve()));
  }

  close(): void {
    this.closed = true;
    for (const entry of this.entries.values()) {
      if (entry.timer !== null) clearInterval(entry.timer);
      entry.timer = null;
    }
  }

  private mayAttempt(entry: Entry, now: number): boolean {
    return !entry.lastAttemptFailed || now - entry.lastAttemptAt >= this.options.retryAfterFailureMs;
  }

  private lookup(entry: Entry): KeySetLookup {
    const now = this.options.now();
    if (entry.keys !== null && now < entry.expiresAt) return { kind: 'keys', keys: entry.keys, stale: false };
    if (entry.keys !== null && now < entry.expiresAt + this.options.staleGraceMs) return { kind: 'keys', keys: entry.keys, stale: true };
    return { kind: 'unavailable', error: entry.lastError ?? 'JWKS not fetched' };
  }

  private refresh(entry: Entry): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (entry.inflight !== null) return entry.inflight;
    entry.lastAttemptAt = this.options.now();
    entry.fetchCount++;
    const run = async (): Promise<void> => {
      try {
        const text = await this.options.fetchJwks(entry.uri, entry.timeoutMs);
        const keys = parseKeySet(text);
        entry.keys = keys;
        entry.expiresAt = this.options.now() + this.options.cacheTtlMs;
        entry.lastAttemptFailed = false;
        entry.lastError = null;
      } catch (error) {
        // The last good set is kept; lookup() decides whether it is still within its grace.
        entry.lastAttemptFailed = true;
        entry.lastError = error instanceof Error ? error.message : String(error);
        try {
          this.options.onFetchError?.(entry.uri, error);
        } catch {
          // A faulty observer must not break key refresh.
        }
      }
    };
    // `.finally` always runs asynchronously, so `inflight` is set before it is cleared.
    const inflight: Promise<void> = run().finally(() => {
      if (entry.inflight === inflight) entry.inflight = null;
    });
    entry.inflight = inflight;
    return inflight;
  }
}
