// Owns the cache of verified JWT signatures: a token whose exact bytes were verified against the same
// key set need not be verified again (Envoy jwt_authn's token cache). Time and audience claims are not cached.

/**
 * Bounded, least-recently-used. Entries hold the key-set object they were verified with, and the token's parse
 * (a pure function of its bytes, frozen by the caller), so a repeated token is neither verified nor decoded again.
 */
export class VerifiedSignatureCache<K extends object, P, T = undefined> {
  readonly #entries = new Map<string, { keys: K; provider: P; parsed: T }>();
  constructor(private readonly maxEntries: number) {}

  /** True only when this exact token verified against this very key set for this provider. */
  has(token: string, provider: P, keys: K): boolean {
    const hit = this.#entries.get(token);
    if (hit === undefined) return false;
    if (hit.keys !== keys || hit.provider !== provider) {
      // The key set was refreshed or rotated since: verify again rather than trust the old keys.
      this.#entries.delete(token);
      return false;
    }
    this.#entries.delete(token);
    this.#entries.set(token, hit);
    return true;
  }

  /** The parse stored with a token that verified (for any provider), without touching its recency. */
  parsedOf(token: string): T | undefined {
    return this.#entries.get(token)?.parsed;
  }

  add(token: string, provider: P, keys: K, parsed: T): void {
    if (this.maxEntries <= 0) return;
    this.#entries.delete(token);
    this.#entries.set(token, { keys, provider, parsed });
    if (this.#entries.size > this.maxEntries) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}
