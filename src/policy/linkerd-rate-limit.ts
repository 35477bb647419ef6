// Owns the Linkerd local rate limiter (HTTPLocalRateLimitPolicy): pure token buckets, time passed in.
// Follows linkerd2-proxy server-policy/src/local_rate_limit.rs (GCRA, burst = one second of quota).

import type { DecisionEffects } from './decision.js';

type Limit = NonNullable<DecisionEffects['rateLimit']>;

interface Bucket {
  rps: number;
  tokens: number;
  lastMs: number;
}

export interface LocalRateLimiterOptions {
  /** Cap on remembered per-identity buckets; the least recently used is forgotten first. */
  maxBuckets?: number;
}

/**
 * Checks the total bucket first, then the client's override bucket or else its per-identity bucket
 * (identity-less clients share the `''` key). A bucket holds at most `rps` tokens and refills `rps` per
 * second, which is GCRA with a one-second burst. A rejected request consumes nothing from later buckets.
 */
export class LocalRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly maxBuckets: number;

  constructor(options: LocalRateLimiterOptions = {}) {
    this.maxBuckets = options.maxBuckets ?? 100_000;
  }

  admit(limit: DecisionEffects['rateLimit'], peerKey: string, nowMs: number): boolean {
    if (!limit) return true;
    if (limit.totalRps !== undefined && !this.take(`${limit.key}\0total`, limit.totalRps, nowMs)) return false;
    if (limit.overrideRps !== undefined) return this.take(`${limit.key}\0override\0${peerKey}`, limit.overrideRps, nowMs);
    if (limit.identityRps !== undefined) return this.take(`${limit.key}\0identity\0${peerKey}`, limit.identityRps, nowMs);
    return true;
  }

  /** Forgets every bucket (a new policy snapshot starts from full buckets). */
  reset(): void {
    this.buckets.clear();
  }

  private take(key: string, rps: number, nowMs: number): boolean {
    if (!(rps > 0)) return false;
    let bucket = this.buckets.get(key);
    if (!bucket || bucket.rps !== rps) {
      bucket = { rps, tokens: rps, lastMs: nowMs };
    } else {
      this.buckets.delete(key);
      const elapsed = Math.max(0, nowMs - bucket.lastMs);
      bucket.tokens = Math.min(rps, bucket.tokens + (elapsed * rps) / 1000);
      bucket.lastMs = Math.max(bucket.lastMs, nowMs);
    }
    // Re-inserting keeps Map order = recency, so eviction drops the least recently used bucket.
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxBuckets) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    // Tolerate float drift from fractional refills (10 rps over 100 ms must give exactly one token).
    if (bucket.tokens >= 1 - 1e-9) {
      bucket.tokens -= 1;
      return true;
    }
    return false;
  }
}

export type { Limit as LinkerdRateLimitEffect };
